import assert from "node:assert/strict";
import { Router } from "../server/router.ts";
import { HttpError } from "../server/errors.ts";
import type { Context, Middleware } from "../server/context.ts";
import type { ServeHandlerInfo } from "../server/types.ts";
import { routerCases } from "../server/router_cases_test.ts";
import { captureErrors } from "./fixtures/console.ts";

const info: ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1234 },
  completed: Promise.resolve(),
};

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
