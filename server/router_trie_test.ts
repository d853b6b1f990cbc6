// The trie matcher on its own: the router's shared table of cases with the trie passed in as any matcher
// would be, then what the table cannot show through a router (the exact method only, when errors surface).
import assert from "node:assert/strict";
import { HttpError } from "./errors.ts";
import { routerCases } from "./router_cases_test.ts";
import { TrieMatcher } from "./router_trie.ts";

Deno.test("TrieMatcher passes the router's shared table of cases", routerCases(() => new TrieMatcher()));

Deno.test("TrieMatcher answers for the exact method only, and lists a path's methods", () => {
  const matcher = new TrieMatcher<string>();
  matcher.add("GET", "/a/:x", "get a");
  matcher.add("POST", "/a/:x", "post a");
  matcher.add("PROPFIND", "/b", "dav");
  assert.deepEqual(matcher.match("GET", "/a/%41"), { value: "get a", params: { x: "A" } });
  assert.equal(matcher.match("HEAD", "/a/1"), null, "HEAD from GET is the router's business");
  assert.equal(matcher.match("get", "/a/1"), null, "methods are case-sensitive");
  assert.deepEqual(matcher.methods("/a/1"), ["GET", "POST"]);
  assert.deepEqual(matcher.methods("/b"), ["PROPFIND"]);
  assert.deepEqual(matcher.methods("/c"), []);
});

Deno.test("TrieMatcher refuses a bad pattern when added, a duplicate at the first match", () => {
  const matcher = new TrieMatcher<number>();
  assert.throws(() => matcher.add("GET", "/files/*/x", 1), TypeError);
  matcher.add("GET", "/u/:id", 1);
  matcher.add("GET", "/u/:name", 2);
  assert.throws(() => matcher.match("GET", "/u/1"), /GET \/u\/:name duplicates GET \/u\/:id/);
});

Deno.test("TrieMatcher refuses a route once matching started", () => {
  const matcher = new TrieMatcher<number>();
  matcher.add("GET", "/", 1);
  assert.equal(matcher.match("GET", "/")?.value, 1);
  assert.throws(() => matcher.add("GET", "/late", 2), /after matching started/);
});

Deno.test("TrieMatcher throws a 400 HttpError for a param it cannot decode", () => {
  const matcher = new TrieMatcher<number>();
  matcher.add("GET", "/p/:name", 1);
  assert.throws(
    () => matcher.match("GET", "/p/%FF"),
    (err) => err instanceof HttpError && err.status === 400,
  );
});
