import assert from "node:assert/strict";
import { Router } from "../server/router.ts";
import { HttpError } from "../server/errors.ts";
import type { Context, Middleware } from "../server/context.ts";
import type { ServeHandlerInfo } from "../server/types.ts";
import { captureErrors } from "./fixtures/console.ts";

const info: ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1234 },
  completed: Promise.resolve(),
};

/** Every route answers with its own pattern and params, so a case can tell which route won. */
function echo(pattern: string) {
  return (_req: Request, ctx: Context) =>
    Response.json({ pattern, params: ctx.params }, { headers: { "x-route": pattern } });
}

const ROUTES: [method: string, pattern: string][] = [
  ["GET", "/"],
  ["GET", "/about"],
  ["GET", "/profile/:name"],
  ["GET", "/profile/me"],
  ["GET", "/post/:id(\\d+)"],
  ["GET", "/post/:slug"],
  ["GET", "/post/:id(\\d+)/comments"],
  ["GET", "/files/*"],
  ["GET", "/files/readme"],
  ["GET", "/a/:x/c"],
  ["GET", "/a/b/d"],
  ["GET", "/users/:user/repos/:repo"],
  ["POST", "/posts"],
  ["GET", "/posts"],
  ["PUT", "/posts/:id"],
  ["DELETE", "/posts/:id"],
  ["PATCH", "/posts/:id"],
  ["POST", "/only-post"],
  ["GET", "/caf\u00e9"],
  ["GET", "/trailing/"],
  ["GET", "/custom-head"],
  ["HEAD", "/custom-head"],
  ["OPTIONS", "/custom-options"],
  ["PROPFIND", "/dav"],
];

interface Case {
  method: string;
  path: string;
  status: number;
  pattern?: string;
  params?: Record<string, string>;
  allow?: string;
  why: string;
}

/** The shared table: method and path in, status, winning route, params and Allow out. */
const CASES: Case[] = [
  { method: "GET", path: "/", status: 200, pattern: "/", params: {}, why: "root" },
  { method: "GET", path: "/about", status: 200, pattern: "/about", params: {}, why: "static" },
  { method: "GET", path: "/about/", status: 404, why: "trailing slash is another path" },
  { method: "GET", path: "/About", status: 404, why: "paths are case-sensitive" },
  { method: "GET", path: "/nowhere", status: 404, why: "no route" },
  {
    method: "GET",
    path: "/profile/ada",
    status: 200,
    pattern: "/profile/:name",
    params: { name: "ada" },
    why: "named param",
  },
  {
    method: "GET",
    path: "/profile/me",
    status: 200,
    pattern: "/profile/me",
    params: {},
    why: "static beats param, whatever the order added",
  },
  {
    method: "GET",
    path: "/profile/ada%20lovelace",
    status: 200,
    pattern: "/profile/:name",
    params: { name: "ada lovelace" },
    why: "param percent-decoded",
  },
  {
    method: "GET",
    path: "/profile/%2541",
    status: 200,
    pattern: "/profile/:name",
    params: { name: "%41" },
    why: "decoded once, not twice",
  },
  {
    method: "GET",
    path: "/profile/a%2Fb",
    status: 200,
    pattern: "/profile/:name",
    params: { name: "a/b" },
    why: "encoded slash stays inside the param",
  },
  {
    method: "GET",
    path: "/profile/%C3%A9",
    status: 200,
    pattern: "/profile/:name",
    params: { name: "\u00e9" },
    why: "UTF-8 param",
  },
  { method: "GET", path: "/profile/%E0%A4%A", status: 400, why: "truncated escape is a 400" },
  { method: "GET", path: "/profile/%zz", status: 400, why: "malformed escape is a 400" },
  { method: "GET", path: "/profile/%C3%28", status: 400, why: "invalid UTF-8 is a 400" },
  { method: "GET", path: "/profile/%FF", status: 400, why: "lone 0xFF is a 400" },
  { method: "GET", path: "/profile/a%00b", status: 400, why: "NUL is a 400" },
  { method: "GET", path: "/profile/", status: 404, why: "empty segment is not a param" },
  { method: "GET", path: "/profile/a/b", status: 404, why: "a param is one segment" },
  {
    method: "GET",
    path: "/post/42",
    status: 200,
    pattern: "/post/:id(\\d+)",
    params: { id: "42" },
    why: "constraint matches",
  },
  {
    method: "GET",
    path: "/post/hello",
    status: 200,
    pattern: "/post/:slug",
    params: { slug: "hello" },
    why: "constraint fails, plain param takes it",
  },
  {
    method: "GET",
    path: "/post/42x",
    status: 200,
    pattern: "/post/:slug",
    params: { slug: "42x" },
    why: "constraint is anchored to the whole segment",
  },
  {
    method: "GET",
    path: "/post/%34%32",
    status: 200,
    pattern: "/post/:id(\\d+)",
    params: { id: "42" },
    why: "constraint tested on the decoded value",
  },
  { method: "GET", path: "/post/%zz", status: 400, why: "malformed escape checked by a constraint is a 400" },
  {
    method: "GET",
    path: "/post/7/comments",
    status: 200,
    pattern: "/post/:id(\\d+)/comments",
    params: { id: "7" },
    why: "param in the middle",
  },
  { method: "GET", path: "/post/x/comments", status: 404, why: "constraint fails and nothing else fits" },
  {
    method: "GET",
    path: "/files/a/b.txt",
    status: 200,
    pattern: "/files/*",
    params: { "*": "a/b.txt" },
    why: "wildcard takes the rest",
  },
  {
    method: "GET",
    path: "/files/",
    status: 200,
    pattern: "/files/*",
    params: { "*": "" },
    why: "wildcard may be empty",
  },
  { method: "GET", path: "/files", status: 404, why: "wildcard needs the slash" },
  {
    method: "GET",
    path: "/files/readme",
    status: 200,
    pattern: "/files/readme",
    params: {},
    why: "static beats wildcard",
  },
  {
    method: "GET",
    path: "/files/my%20doc.txt",
    status: 200,
    pattern: "/files/*",
    params: { "*": "my doc.txt" },
    why: "wildcard decoded",
  },
  { method: "GET", path: "/files/%00", status: 400, why: "NUL in wildcard is a 400" },
  {
    method: "GET",
    path: "/a/b/c",
    status: 200,
    pattern: "/a/:x/c",
    params: { x: "b" },
    why: "backtracks from a static dead end to the param",
  },
  { method: "GET", path: "/a/b/d", status: 200, pattern: "/a/b/d", params: {}, why: "static path" },
  {
    method: "GET",
    path: "/users/ada/repos/pier",
    status: 200,
    pattern: "/users/:user/repos/:repo",
    params: { user: "ada", repo: "pier" },
    why: "two params",
  },
  {
    method: "GET",
    path: "/caf%C3%A9",
    status: 200,
    pattern: "/caf\u00e9",
    params: {},
    why: "non-ASCII static pattern matches the encoded path",
  },
  {
    method: "GET",
    path: "/trailing/",
    status: 200,
    pattern: "/trailing/",
    params: {},
    why: "trailing slash",
  },
  { method: "GET", path: "/trailing", status: 404, why: "without the slash" },
  {
    method: "GET",
    path: "/%61bout",
    status: 404,
    why: "an encoded static segment is not decoded (so path guards in middleware cannot be bypassed)",
  },
  { method: "POST", path: "/posts", status: 200, pattern: "/posts", params: {}, why: "POST route" },
  { method: "GET", path: "/posts", status: 200, pattern: "/posts", params: {}, why: "GET on the same path" },
  {
    method: "PUT",
    path: "/posts/3",
    status: 200,
    pattern: "/posts/:id",
    params: { id: "3" },
    why: "PUT route",
  },
  {
    method: "DELETE",
    path: "/posts/3",
    status: 200,
    pattern: "/posts/:id",
    params: { id: "3" },
    why: "DELETE route",
  },
  {
    method: "PATCH",
    path: "/posts/3",
    status: 200,
    pattern: "/posts/:id",
    params: { id: "3" },
    why: "PATCH route",
  },
  {
    method: "POST",
    path: "/about",
    status: 405,
    allow: "GET, HEAD, OPTIONS",
    why: "405 with Allow when only the method differs",
  },
  {
    method: "GET",
    path: "/posts/3",
    status: 405,
    allow: "PUT, PATCH, DELETE, OPTIONS",
    why: "405 lists every method of the path",
  },
  {
    method: "DELETE",
    path: "/posts",
    status: 405,
    allow: "GET, HEAD, POST, OPTIONS",
    why: "405 on a static path",
  },
  {
    method: "GET",
    path: "/only-post",
    status: 405,
    allow: "POST, OPTIONS",
    why: "no HEAD in Allow without GET",
  },
  {
    method: "patch",
    path: "/posts/3",
    status: 501,
    why:
      "methods are case-sensitive (fetch does not upper-case PATCH): `patch` is no route's, so not implemented",
  },
  {
    method: "REPORT",
    path: "/about",
    status: 501,
    why: "a method that is neither standard nor routed anywhere is not implemented (RFC 9110 §9.1)",
  },
  {
    method: "PROPFIND",
    path: "/about",
    status: 405,
    allow: "GET, HEAD, OPTIONS",
    why: "an extension method some route has is known: on another path it is a 405",
  },
  {
    method: "HEAD",
    path: "/about",
    status: 200,
    pattern: "/about",
    why: "HEAD served by the GET route",
  },
  {
    method: "HEAD",
    path: "/profile/ada",
    status: 200,
    pattern: "/profile/:name",
    why: "HEAD served by a GET param route",
  },
  {
    method: "HEAD",
    path: "/custom-head",
    status: 200,
    pattern: "/custom-head",
    why: "a HEAD route of its own wins",
  },
  {
    method: "HEAD",
    path: "/only-post",
    status: 405,
    allow: "POST, OPTIONS",
    why: "HEAD without GET is a 405",
  },
  {
    method: "OPTIONS",
    path: "/posts",
    status: 204,
    allow: "GET, HEAD, POST, OPTIONS",
    why: "OPTIONS answered with Allow",
  },
  {
    method: "OPTIONS",
    path: "/profile/ada",
    status: 204,
    allow: "GET, HEAD, OPTIONS",
    why: "OPTIONS on a param route",
  },
  { method: "OPTIONS", path: "/nowhere", status: 404, why: "OPTIONS on no route is a 404" },
  {
    method: "OPTIONS",
    path: "/custom-options",
    status: 200,
    pattern: "/custom-options",
    params: {},
    why: "an OPTIONS route of its own wins",
  },
  {
    method: "PROPFIND",
    path: "/dav",
    status: 200,
    pattern: "/dav",
    params: {},
    why: "extension method via on()",
  },
  { method: "GET", path: "/dav", status: 405, allow: "PROPFIND, OPTIONS", why: "extension method in Allow" },
];

function buildRouter(): Router {
  const router = new Router();
  for (const [method, pattern] of ROUTES) router.on(method, pattern, echo(pattern));
  return router;
}

Deno.test("Router answers the shared table of cases", async (t) => {
  const router = buildRouter();
  for (const c of CASES) {
    await t.step(`${c.method} ${c.path} -> ${c.status}: ${c.why}`, async () => {
      // Request normalises the method name of standard methods; build it from the raw string.
      const res = await router.fetch(new Request(`http://localhost${c.path}`, { method: c.method }), info);
      assert.equal(res.status, c.status);
      assert.equal(res.headers.get("allow"), c.allow ?? null);
      if (c.pattern !== undefined) assert.equal(res.headers.get("x-route"), c.pattern);
      if (c.method === "HEAD" || res.status === 204) {
        assert.equal(await res.text(), "");
      } else if (c.params !== undefined) {
        assert.deepEqual(await res.json(), { pattern: c.pattern, params: c.params });
      } else {
        await res.body?.cancel();
      }
    });
  }
});

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
