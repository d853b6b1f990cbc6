// What real clients send and Deno.serve accepts, Pier accepts: a raw `\` in the query (Chromium keeps it),
// a `#fragment` in the target (dropped), any valid method token, and Host values that are RFC 3986
// reg-names. What cannot become the request's URL is still refused, and the refusal says why.
import assert from "node:assert/strict";
import { type Refusal, Router } from "../../mod.ts";
import type { Handler } from "../../server/types.ts";
import { exchange, start, statuses } from "../fixtures/raw_http.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Answers with what the handler saw: the method and the URL. */
const echo: Handler = (req) => new Response(`${req.method} ${req.url}`);

/** One request on its own connection; its status and body. */
async function ask(port: number, raw: string): Promise<{ status: number | undefined; body: string }> {
  const { text } = await exchange(port, [raw], { quietMs: 300 });
  return { status: statuses(text)[0], body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

Deno.test({
  name: "a raw backslash in the query is accepted, as Chromium sends it; in the path it is still a 400",
  ...opts,
  async fn() {
    const s = start((req) => new Response(new URL(req.url).search));
    try {
      let r = await ask(s.addr.port, "GET /profile/x?q=a\\b HTTP/1.1\r\nHost: t\r\n\r\n");
      assert.equal(r.status, 200);
      assert.equal(r.body, "?q=a\\b");
      r = await ask(s.addr.port, "GET /p?a=1&b=\\\\c\\ HTTP/1.1\r\nHost: t\r\n\r\n");
      assert.equal(r.status, 200);
      assert.equal(r.body, "?a=1&b=\\\\c\\");
      for (const target of ["/a\\b", "/a\\b?q=1", "\\a"]) {
        r = await ask(s.addr.port, `GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);
        assert.equal(r.status, 400, target);
      }
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "a #fragment in the target is accepted and dropped: the handler's URL has none",
  ...opts,
  async fn() {
    const s = start(echo);
    try {
      const cases: [string, string][] = [
        ["/a#frag", "http://t/a"],
        ["/a?b=c#frag", "http://t/a?b=c"],
        ["/a?b=c#frag?x#y", "http://t/a?b=c"],
        ["/a#", "http://t/a"],
        ["/a?q=\\#f", "http://t/a?q=\\"],
        ["http://t/abs?x=1#f", "http://t/abs?x=1"],
      ];
      for (const [target, url] of cases) {
        const r = await ask(s.addr.port, `GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);
        assert.equal(r.status, 200, target);
        assert.equal(r.body, `GET ${url}`, target);
      }
      // What stays refused anywhere in the target, the fragment included.
      for (const target of ['/a#"x"', "/a#<x>", "/a?<b>", '/a?"q"', "/a#\x7f", "#frag", "/a#\xe9"]) {
        const r = await ask(s.addr.port, `GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);
        assert.equal(r.status, 400, JSON.stringify(target));
      }
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "every valid method token reaches the handler by default; the methods option still restricts",
  ...opts,
  async fn() {
    const methods = ["QUERY", "REPORT", "PROPFIND", "MKCOL", "PURGE", "SEARCH", "LINK", "M-SEARCH", "get"];
    const all = start(echo);
    const some = start(echo, { methods: ["GET", "HEAD", "PROPFIND"] });
    try {
      for (const method of methods) {
        const r = await ask(all.addr.port, `${method} /x HTTP/1.1\r\nHost: t\r\n\r\n`);
        assert.equal(r.status, 200, method);
        assert.equal(r.body, `${method} http://t/x`);
      }
      // A body with an extension method is read like any other.
      const q = await ask(
        all.addr.port,
        "QUERY /q HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\nselect\n",
      );
      assert.equal(q.status, 200);
      assert.equal((await ask(some.addr.port, "PROPFIND /x HTTP/1.1\r\nHost: t\r\n\r\n")).status, 200);
      assert.equal((await ask(some.addr.port, "QUERY /x HTTP/1.1\r\nHost: t\r\n\r\n")).status, 501);
      // Still refused: a method over the length limit (501), CONNECT (an origin server opens no tunnels).
      const long = "X".repeat(33);
      assert.equal((await ask(all.addr.port, `${long} /x HTTP/1.1\r\nHost: t\r\n\r\n`)).status, 501);
      assert.equal((await ask(all.addr.port, "CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n")).status, 501);
    } finally {
      await all.shutdown();
      await some.shutdown();
    }
  },
});

Deno.test({
  name: "the Router: a method no route has is 501; a known method a path lacks is 405 with Allow",
  ...opts,
  async fn() {
    const router = new Router()
      .get("/doc", () => new Response("read"))
      .on("PROPFIND", "/doc", () => new Response("props", { status: 207 }));
    const s = start(router.fetch);
    try {
      let r = await exchange(s.addr.port, ["PROPFIND /doc HTTP/1.1\r\nHost: t\r\n\r\n"]);
      assert.deepEqual(statuses(r.text), [207]);
      r = await exchange(s.addr.port, ["QUERY /doc HTTP/1.1\r\nHost: t\r\n\r\n"]);
      assert.deepEqual(statuses(r.text), [501]);
      r = await exchange(s.addr.port, ["DELETE /doc HTTP/1.1\r\nHost: t\r\n\r\n"]);
      assert.deepEqual(statuses(r.text), [405]);
      assert.match(r.text, /\r\nallow: GET, HEAD, PROPFIND, OPTIONS\r\n/i);
      r = await exchange(s.addr.port, ["PROPFIND /elsewhere HTTP/1.1\r\nHost: t\r\n\r\n"]);
      assert.deepEqual(statuses(r.text), [404]);
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name:
    "Host values that are RFC 3986 reg-names are accepted; what cannot become a URL is refused, saying so",
  ...opts,
  async fn() {
    const refusals: Refusal[] = [];
    const s = start(echo, { onRefused: (r) => refusals.push(r) });
    try {
      const accepted: [string, string][] = [
        ["a=b", "http://a=b/x"],
        ["0.0.0.0=5000", "http://0.0.0.0=5000/x"],
        ["x!$&'()*+,;=", "http://x!$&'()*+,;=/x"],
        ["a_b.example:8080", "http://a_b.example:8080/x"],
        ["%41.example", "http://%41.example/x"],
        ["[::1]:80", "http://[::1]:80/x"],
        ["localhost:", "http://localhost:/x"],
      ];
      for (const [host, url] of accepted) {
        const r = await ask(s.addr.port, `GET /x HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
        assert.equal(r.status, 200, host);
        assert.equal(r.body, `GET ${url}`, host);
      }
      const refused: [string, RegExp][] = [
        ["lo.0", /URL/], // a reg-name to RFC 3986, an invalid IPv4 address to the WHATWG URL parser
        ["a%zz", /RFC 3986|URL/],
        ["a b", /RFC 3986/],
        ["user@host", /RFC 3986/],
        ["h/x", /RFC 3986/],
        ["h:80x", /RFC 3986/],
        ["h:65536", /port/],
        ["[::1", /RFC 3986/],
        ["a<b", /RFC 3986/],
      ];
      for (const [host, reason] of refused) {
        refusals.length = 0;
        const r = await ask(s.addr.port, `GET /x HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
        assert.equal(r.status, 400, host);
        assert.equal(refusals.length, 1, host);
        assert.match(refusals[0].reason, reason, `${host}: ${refusals[0].reason}`);
        assert.match(refusals[0].reason, /Host/);
      }
    } finally {
      await s.shutdown();
    }
  },
});
