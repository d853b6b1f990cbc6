// The router's shared table of cases: routes, then a method and path in, the status, winning route, params
// and Allow out. Every matcher behind the router must pass it (Hono's common.case.test.ts): run it with
// routerCases(). It declares no test itself, so importing it registers nothing.
import assert from "node:assert/strict";
import type { Context } from "./context.ts";
import { Router, type RouterOptions } from "./router.ts";
import type { ServeHandlerInfo } from "./types.ts";

const info: ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1234 },
  completed: Promise.resolve(),
};

/** Every route answers with its own pattern and params, so a case can tell which route won. */
function echo(pattern: string) {
  return (_req: Request, ctx: Context) =>
    Response.json({ pattern, params: ctx.params }, { headers: { "x-route": pattern } });
}

/** The routes every case runs against. */
export const ROUTES: [method: string, pattern: string][] = [
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

/** One case: a request, what it must get, and why. */
export interface Case {
  method: string;
  path: string;
  status: number;
  pattern?: string;
  params?: Record<string, string>;
  allow?: string;
  why: string;
}

/** The shared table: method and path in, status, winning route, params and Allow out. */
export const CASES: Case[] = [
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
    why: "methods are case-sensitive (fetch does not upper-case PATCH): " +
      "`patch` is no route's, so not implemented",
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

/**
 * The table as one test: a router over {@link ROUTES} with the given matcher (the default one when none),
 * one step per case.
 *
 * @param matcher The matcher factory under test, as `RouterOptions.matcher` takes it.
 * @returns A test function for `Deno.test`.
 */
export function routerCases(matcher?: RouterOptions["matcher"]): (t: Deno.TestContext) => Promise<void> {
  return async (t) => {
    const router = new Router({ matcher });
    for (const [method, pattern] of ROUTES) router.on(method, pattern, echo(pattern));
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
  };
}
