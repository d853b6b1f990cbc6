// Router unit tests beside the module: the shared table of matching cases (router_cases_test.ts) on the
// default router, HEAD, 404, 405, OPTIONS and 501 around it, errors, the verb shorthands from their table, and
// middleware scoped to paths as a table of cases.
import assert from "node:assert/strict";
import { captureErrors } from "../tests/fixtures/console.ts";
import type { Context, Middleware } from "./context.ts";
import { HttpError } from "./errors.ts";
import { routerCases } from "./router_cases_test.ts";
import { Router, ROUTER_VERBS } from "./router.ts";
import type { ServeHandlerInfo } from "./types.ts";

const info: ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1234 },
  completed: Promise.resolve(),
};

Deno.test("Router has a shorthand per verb of ROUTER_VERBS, each adding a route for its method", async () => {
  assert.deepEqual([...ROUTER_VERBS], ["get", "post", "put", "delete", "patch"]);
  const router = new Router();
  for (const verb of ROUTER_VERBS) {
    assert.equal(router[verb]("/x", (req) => new Response(req.method)), router, `${verb} chains`);
  }
  for (const verb of ROUTER_VERBS) {
    const method = verb.toUpperCase();
    const res = await router.fetch(new Request("http://localhost/x", { method }), info);
    assert.equal(await res.text(), method);
  }
  assert.deepEqual(router.allowed("/x"), ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
});

interface ScopeCase {
  scope: string | string[];
  exact?: boolean;
  path: string;
  runs: boolean;
  why: string;
}

/** `use(scope, middleware, { exact })` in, whether a request for the path went through it out. */
const SCOPE_CASES: ScopeCase[] = [
  { scope: "/contact", path: "/contact", runs: true, why: "the path itself" },
  { scope: "/contact", path: "/contact/thanks", runs: true, why: "a path below it" },
  { scope: "/contact", path: "/contact/", runs: true, why: "its trailing slash" },
  { scope: "/contact", path: "/contacts", runs: false, why: "a prefix ends at a segment boundary" },
  { scope: "/contact", path: "/", runs: false, why: "a path above it" },
  { scope: "/contact", path: "/Contact", runs: false, why: "case-sensitive, as routes are" },
  { scope: "/contact", path: "/contact?to=ada", runs: true, why: "the query is not the path" },
  { scope: "/contact", path: "/%63ontact", runs: true, why: "the path is decoded once" },
  { scope: "/contact", path: "/%2563ontact", runs: false, why: "decoded once, not twice" },
  {
    scope: "/contact",
    path: "/contact%2Fthanks",
    runs: true,
    why: "an encoded slash is a slash once decoded: a scope errs towards running",
  },
  {
    scope: "/contact",
    path: "/contact/%FF",
    runs: true,
    why: "a path that cannot be decoded is compared as it arrived",
  },
  {
    scope: "/contact",
    path: "/%63ontact/%FF",
    runs: false,
    why: "as it arrived, an encoded form is not the scope (nor does a route's static segment match it)",
  },
  { scope: "/caf\u00e9", path: "/caf%C3%A9", runs: true, why: "a non-ASCII scope written as it reads" },
  { scope: "/caf%C3%A9", path: "/caf%C3%A9/menu", runs: true, why: "a scope's own escapes are decoded too" },
  { scope: "/admin/", path: "/admin/users", runs: true, why: "a scope ending in / covers what is below" },
  { scope: "/admin/", path: "/admin/", runs: true, why: "and the folder itself" },
  { scope: "/admin/", path: "/admin", runs: false, why: "but not the path without the slash" },
  { scope: "/", path: "/anything/at/all", runs: true, why: "the root's prefix is every path" },
  { scope: "/", exact: true, path: "/", runs: true, why: "exact: the home page" },
  { scope: "/", exact: true, path: "/about", runs: false, why: "exact: nothing else" },
  { scope: "/contact", exact: true, path: "/contact/thanks", runs: false, why: "exact: nothing below" },
  { scope: "/contact", exact: true, path: "/contact/", runs: false, why: "exact: not its trailing slash" },
  {
    scope: ["/", "/index.html"],
    exact: true,
    path: "/index.html",
    runs: true,
    why: "a list: any of its paths",
  },
  {
    scope: ["/", "/index.html"],
    exact: true,
    path: "/%69ndex.html",
    runs: true,
    why: "a list, decoded: the site's home page under another spelling",
  },
  { scope: ["/", "/index.html"], exact: true, path: "/other.html", runs: false, why: "a list: no other" },
  { scope: ["/contact", "/upload"], path: "/upload/x", runs: true, why: "a list of prefixes" },
  { scope: ["/contact", "/upload"], path: "/uploads", runs: false, why: "each ends at a boundary" },
];

Deno.test("Router.use(path) runs middleware on its paths only: the table of cases", async (t) => {
  for (const c of SCOPE_CASES) {
    const label = `${JSON.stringify(c.scope)}${c.exact ? " exact" : ""} on ${c.path}: ${c.runs}, ${c.why}`;
    await t.step(label, async () => {
      const mark: Middleware = async (_req, next) => {
        const res = await next();
        res.headers.set("x-scoped", "ran");
        return res;
      };
      const router = new Router()
        .use(c.scope, mark, { exact: c.exact })
        .get("/*", () => new Response("page"));
      const res = await router.fetch(new Request(`http://localhost${c.path}`), info);
      await res.body?.cancel();
      assert.equal(res.headers.get("x-scoped"), c.runs ? "ran" : null);
    });
  }
});

Deno.test("Router.use(path) keeps its place among the others, around 404s and 405s too", async () => {
  const order: string[] = [];
  const tag = (name: string): Middleware => async (_req, next) => {
    order.push(name);
    return await next();
  };
  const router = new Router()
    .use(tag("all"))
    .use("/a", tag("a"))
    .use("/b", tag("b"))
    .use(tag("last"))
    .get("/a", () => new Response("a"))
    .post("/a", () => new Response("a"));
  await router.fetch(new Request("http://localhost/a"), info);
  assert.deepEqual(order, ["all", "a", "last"]);
  order.length = 0;
  // Around a 404 and a 405 in its scope too, as middleware without a path.
  assert.equal((await router.fetch(new Request("http://localhost/a/missing"), info)).status, 404);
  assert.deepEqual(order, ["all", "a", "last"]);
  order.length = 0;
  assert.equal((await router.fetch(new Request("http://localhost/a", { method: "PUT" }), info)).status, 405);
  assert.deepEqual(order, ["all", "a", "last"]);
});

Deno.test("Router.use(path) refuses a path that is not one, an empty list, and a late call", async () => {
  const pass: Middleware = (_req, next) => next();
  assert.throws(() => new Router().use("contact", pass), /bad path "contact"/);
  assert.throws(() => new Router().use("/50%off", pass), /bad path/);
  assert.throws(() => new Router().use([], pass), /empty/);
  assert.throws(() => new Router().use("/a", undefined as unknown as Middleware), /must be a function/);
  const router = new Router().get("/", () => new Response());
  await router.fetch(new Request("http://localhost/"), info);
  assert.throws(() => router.use("/a", pass), /after matching started/);
});

Deno.test("Router answers the shared table of cases", routerCases());

Deno.test("Router serves HEAD from GET with the headers kept and the body dropped", async () => {
  const router = new Router().get("/x", () => new Response("hello", { headers: { "content-length": "5" } }));
  const res = await router.fetch(new Request("http://localhost/x", { method: "HEAD" }), info);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-length"), "5");
  assert.equal(res.body, null);
});

Deno.test("Router turns a HttpError into its status and message", async () => {
  const router = new Router().get("/x", () => {
    throw new HttpError(418, "short and stout");
  });
  const res = await router.fetch(new Request("http://localhost/x"), info);
  assert.equal(res.status, 418);
  assert.equal(await res.text(), "short and stout");
});

Deno.test("Router answers a thrown error with a bare 500 and logs it", async () => {
  const logged = await captureErrors(async () => {
    const router = new Router().get("/x", () => {
      throw new Error("database password is hunter2");
    });
    const res = await router.fetch(new Request("http://localhost/x"), info);
    assert.equal(res.status, 500);
    const body = await res.text();
    assert.equal(body, "Internal Server Error");
  });
  assert.equal(logged.length, 1);
  assert.match(String(logged[0][0]), /GET http:\/\/localhost\/x/);
  assert.match(String((logged[0][1] as Error).message), /hunter2/);
});

Deno.test("Router treats a handler that returns no Response as a 500", async () => {
  await captureErrors(async () => {
    const router = new Router().get("/x", (() => "oops") as unknown as () => Response);
    const res = await router.fetch(new Request("http://localhost/x"), info);
    assert.equal(res.status, 500);
  });
});

Deno.test("Router runs middleware in order, around routes and 404s", async () => {
  const order: string[] = [];
  const tag = (name: string): Middleware => async (_req, next) => {
    order.push(`${name} in`);
    const res = await next();
    order.push(`${name} out`);
    res.headers.append("x-mw", name);
    return res;
  };
  const router = new Router().use(tag("a")).use(tag("b")).get("/x", () => {
    order.push("route");
    return new Response("x");
  });
  const res = await router.fetch(new Request("http://localhost/x"), info);
  assert.deepEqual(order, ["a in", "b in", "route", "b out", "a out"]);
  assert.equal(res.headers.get("x-mw"), "b, a");
  const missing = await router.fetch(new Request("http://localhost/nope"), info);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("x-mw"), "b, a");
});

Deno.test("Router middleware sees a route's error as a response", async () => {
  const router = new Router()
    .use(async (_req, next) => {
      const res = await next();
      res.headers.set("x-seen", String(res.status));
      return res;
    })
    .get("/x", () => {
      throw new HttpError(403);
    });
  const res = await router.fetch(new Request("http://localhost/x"), info);
  assert.equal(res.status, 403);
  assert.equal(res.headers.get("x-seen"), "403");
  assert.equal(await res.text(), "Forbidden");
});

Deno.test("Router middleware can answer without calling next", async () => {
  let reached = false;
  const router = new Router()
    .use(() => new Response("stop", { status: 401 }))
    .get("/x", () => {
      reached = true;
      return new Response("x");
    });
  const res = await router.fetch(new Request("http://localhost/x"), info);
  assert.equal(res.status, 401);
  assert.equal(reached, false);
});

Deno.test("Router rejects a second next() call with an Error", async () => {
  let second: unknown;
  let calls = 0;
  const router = new Router()
    .use(async function twice(_req, next) {
      const res = await next();
      try {
        await next();
      } catch (e) {
        second = e;
      }
      return res;
    })
    .get("/x", () => {
      calls++;
      return new Response("x");
    });
  const res = await router.fetch(new Request("http://localhost/x"), info);
  assert.equal(res.status, 200);
  assert.equal(calls, 1);
  assert.ok(second instanceof Error);
  assert.match(second.message, /next\(\) called twice in middleware twice/);
});

Deno.test("Router gives route params to the handler's context", async () => {
  let seen: Context | undefined;
  const router = new Router({ trustedProxies: [] }).get("/u/:id", (_req, ctx) => {
    seen = ctx;
    return new Response();
  });
  const req = new Request("http://localhost/u/5", { headers: { "x-forwarded-for": "203.0.113.9" } });
  await router.fetch(req, info);
  assert.deepEqual(seen?.params, { id: "5" });
  // trustedProxies: [] means even loopback is not believed.
  assert.equal(seen?.clientAddr, "127.0.0.1");
});

Deno.test("Router uses custom notFound, methodNotAllowed and onError handlers", async () => {
  const router = new Router({
    notFound: (req) => new Response(`no ${new URL(req.url).pathname}`, { status: 404 }),
    methodNotAllowed: (_req, _ctx, allow) => new Response(`only ${allow.join(" ")}`, { status: 405 }),
    onError: (error) => new Response(`caught ${(error as Error).message}`, { status: 503 }),
  })
    .get("/x", () => new Response("x"))
    .get("/boom", () => {
      throw new Error("boom");
    });
  const nf = await router.fetch(new Request("http://localhost/y"), info);
  assert.equal(await nf.text(), "no /y");
  const mna = await router.fetch(new Request("http://localhost/x", { method: "POST" }), info);
  assert.equal(mna.status, 405);
  assert.equal(await mna.text(), "only GET HEAD OPTIONS");
  assert.equal(mna.headers.get("allow"), "GET, HEAD, OPTIONS", "Allow added when the handler forgot it");
  const err = await router.fetch(new Request("http://localhost/boom"), info);
  assert.equal(err.status, 503);
  assert.equal(await err.text(), "caught boom");
});

Deno.test("Router falls back to the default error response when onError throws", async () => {
  await captureErrors(async () => {
    const router = new Router({
      onError: () => {
        throw new Error("broken handler");
      },
    }).get("/x", () => {
      throw new HttpError(409, "conflict here");
    });
    const res = await router.fetch(new Request("http://localhost/x"), info);
    assert.equal(res.status, 409);
    assert.equal(await res.text(), "conflict here");
  });
});

Deno.test("Router refuses routes and middleware once matching started", async () => {
  const router = new Router().get("/x", () => new Response("x"));
  await router.fetch(new Request("http://localhost/x"), info);
  assert.throws(() => router.get("/y", () => new Response()), /after matching started/);
  assert.throws(() => router.use((_r, next) => next()), /after matching started/);
});

Deno.test("Router rejects bad and duplicate patterns when compiling or adding", () => {
  assert.throws(() => new Router().get("x", () => new Response()), TypeError);
  assert.throws(() => new Router().get("/a/*/b", () => new Response()), /must be the last segment/);
  assert.throws(() => new Router().get("/:1x", () => new Response()), /bad parameter/);
  assert.throws(() => new Router().get("/:a/:a", () => new Response()), /appears twice/);
  assert.throws(() => new Router().get("/:a([)", () => new Response()), /bad constraint/);
  assert.throws(() => new Router().on("GE T", "/", () => new Response()), /invalid method/);
  const dup = new Router().get("/a/:x", () => new Response()).get("/a/:y", () => new Response());
  assert.throws(() => dup.match("GET", "/a/1"), /duplicates GET \/a\/:x/);
});

Deno.test("Router.match() returns decoded params without a request", () => {
  const router = new Router().get("/p/:name", () => new Response());
  assert.deepEqual(router.match("GET", "/p/a%20b")?.params, { name: "a b" });
  assert.equal(router.match("POST", "/p/a"), null);
  assert.deepEqual(router.allowed("/p/a"), ["GET", "HEAD", "OPTIONS"]);
  assert.deepEqual(router.allowed("/q"), []);
});
