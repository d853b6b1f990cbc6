// Router unit tests beside the module: the verb shorthands from their table, and middleware scoped to paths
// as a table of cases. The shared table of matching cases is router_cases_test.ts.
import assert from "node:assert/strict";
import type { Middleware } from "./context.ts";
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
