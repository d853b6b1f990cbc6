// Static files and the path jail, attacked over real sockets: every traversal form, symlinks out of the
// tree, dotfiles; then RFC 9110 preconditions in order, ranges at the edges, compression negotiation, HEAD,
// directory indexes and cache invalidation.
import assert from "node:assert/strict";
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { decodePathOnce, isInside, resolveSafePath } from "../../server/safe_path.ts";
import { type SecurityEvent, serveStatic, staticFiles, type StaticOptions } from "../../server/static.ts";
import { makeSiteFixture, rawRequest, requestText, SECRET_MARKER } from "../fixtures/static_fixture.ts";
import { ENCODING_CASES } from "../fixtures/encoding_cases.ts";

const dec = new TextDecoder();
const LOOPBACK = { transport: "tcp" as const, hostname: "127.0.0.1", port: 1 };

/** Bytes that do not compress: a fixed pseudo-random sequence. */
function noise(n: number, seed = 7): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = x >> 16;
  }
  return out;
}

const CSS_4K = ("body { color: #123456; margin: 0 auto; }\n".repeat(100)).slice(0, 4096);

interface Site {
  dir: string;
  port: number;
  events: SecurityEvent[];
  close(): Promise<void>;
}

/** A fixture site with extra files for these tests, served by serveStatic on a free loopback port. */
async function startSite(options: StaticOptions = {}): Promise<Site> {
  const dir = await makeSiteFixture();
  const s = `${dir}/static`;
  await Deno.writeTextFile(`${s}/.env`, `TOKEN=${SECRET_MARKER}\n`);
  await Deno.mkdir(`${s}/.git`);
  await Deno.writeTextFile(`${s}/.git/config`, SECRET_MARKER);
  await Deno.writeTextFile(`${s}/images/.hidden.txt`, SECRET_MARKER);
  await Deno.mkdir(`${s}/docs`);
  await Deno.writeTextFile(`${s}/docs/index.html`, "<h1>docs</h1>");
  await Deno.mkdir(`${s}/empty`);
  await Deno.writeTextFile(`${s}/big.css`, CSS_4K);
  await Deno.writeFile(`${s}/data.bin`, noise(2000));
  await Deno.writeTextFile(`${s}/empty.txt`, "");
  await Deno.writeTextFile(`${s}/app.3f2a9c1b.js`, "console.log(1);\n");
  await Deno.writeTextFile(`${s}/page.txt`, "plain text\n");
  await Deno.writeTextFile(`${s}/small.css`, "p { margin: 0; }\n".repeat(20)); // under 1 KiB
  await Deno.writeTextFile(`${s}/images/logo.svg`, '<svg xmlns="http://www.w3.org/2000/svg"/>\n');
  await Deno.writeTextFile(`${s}/with space.txt`, "space\n");
  // Symlinks: one staying inside (allowed), and three ways out (refused).
  await Deno.symlink("style.css", `${s}/alias.css`);
  await Deno.mkdir(`${dir}/outside`);
  await Deno.writeTextFile(`${dir}/outside/page.html`, SECRET_MARKER);
  await Deno.symlink("../outside", `${s}/outdir`);
  await Deno.symlink(`${dir}/secret.txt`, `${s}/abs-link.txt`);
  await Deno.symlink("images/escape-link", `${s}/chain-link.txt`);
  // A symlink to a dotfile inside the root must not unhide it.
  await Deno.symlink(".env", `${s}/env-alias.txt`);
  const events: SecurityEvent[] = [];
  const handler = serveStatic(`${dir}/static`, { onSecurityEvent: (e) => events.push(e), ...options });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return {
    dir,
    port: server.addr.port,
    events,
    async close() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function get(site: Site, target: string, headers: Record<string, string> = {}, method = "GET") {
  return rawRequest(site.port, requestText(target, headers, method));
}

// ---------------------------------------------------------------------------------------------- the jail

Deno.test("resolveSafePath() cleans benign paths and refuses every way out of the root", () => {
  const ok: [string, string[], boolean][] = [
    ["/", [], true],
    ["/index.html", ["index.html"], false],
    ["/images/", ["images"], true],
    ["/images/../style.css", ["style.css"], false],
    ["/a/./b//c", ["a", "b", "c"], false],
    ["/with%20space.txt", ["with space.txt"], false],
    ["/%252e%252e/x", ["%2e%2e", "x"], false], // decoded once: a literal name, not a dot-segment
    ["/caf%C3%A9", ["café"], false],
    ["/images/..%2findex.html", ["index.html"], false], // encoded slash, still inside: allowed
    ["/a/..", [], true],
  ];
  for (const [path, segments, trailingSlash] of ok) {
    assert.deepEqual(resolveSafePath(path), { ok: true, segments, trailingSlash }, path);
  }
  const refused: [string, number][] = [
    ["/../secret.txt", 403],
    ["/..%2fsecret.txt", 403],
    ["/%2e%2e/secret.txt", 403],
    ["/%2E%2E%2Fsecret.txt", 403],
    ["/.%2e/secret.txt", 403],
    ["/images/..%2f..%2fsecret.txt", 403],
    ["/a/b/../../../secret.txt", 403],
    ["/..\\secret.txt", 403],
    ["/..%5csecret.txt", 403],
    ["/..%5Csecret.txt", 403],
    ["/index.html%00.png", 403],
    ["/%0d%0aX-Injected:%20yes", 403],
    ["/%c0%ae%c0%ae/secret.txt", 400], // overlong "."
    ["/%e0%80%ae%e0%80%ae/secret.txt", 400], // 3-byte overlong "."
    ["/..%c0%afsecret.txt", 400], // overlong "/"
    ["/%ed%a0%80", 400], // a UTF-16 surrogate
    ["/%ff", 400],
    ["/%zz", 400],
    ["/%2", 400],
    ["/%u002e%u002e/x", 400],
    ["secret.txt", 400],
    ["/.env", 404],
    ["/.git/config", 404],
    ["/images/.hidden.txt", 404],
    ["/....//secret.txt", 404], // "...." is a dotfile name, not a way up
    ["/..;/x", 404],
  ];
  for (const [path, status] of refused) {
    const r = resolveSafePath(path);
    assert.equal(r.ok, false, path);
    assert.equal(!r.ok && r.status, status, path);
  }
});

Deno.test("decodePathOnce() decodes exactly once and rejects bad encodings", () => {
  assert.equal(decodePathOnce("/a%2fb"), "/a/b");
  assert.equal(decodePathOnce("/%252e"), "/%2e");
  assert.equal(decodePathOnce("/%E2%84%AA"), "/\u212a");
  assert.equal(decodePathOnce("/%c0%ae"), null);
  assert.equal(decodePathOnce("/%g0"), null);
  assert.equal(decodePathOnce("/100%"), null);
});

Deno.test("isInside() refuses a sibling folder that only shares a prefix", () => {
  assert.equal(isInside("/srv/static", "/srv/static"), true);
  assert.equal(isInside("/srv/static", "/srv/static/a/b.css"), true);
  assert.equal(isInside("/srv/static", "/srv/static2/a.css"), false);
  assert.equal(isInside("/srv/static", "/srv"), false);
});

Deno.test("serveStatic() refuses every traversal form over a socket, logs it, never leaks", async () => {
  const site = await startSite();
  try {
    // [raw target, status, logged as a security event]
    const cases: [string, number, boolean][] = [
      ["/../secret.txt", 403, true],
      ["/../../../../../../etc/passwd", 403, true],
      ["/images/../../secret.txt", 403, true],
      ["/./././../secret.txt", 403, true],
      ["/%2e%2e/secret.txt", 403, true],
      ["/%2E%2E/%2E%2E/etc/passwd", 403, true],
      ["/%2e%2e%2fsecret.txt", 403, true],
      ["/..%2fsecret.txt", 403, true],
      ["/..%2F..%2F..%2Fetc%2Fpasswd", 403, true],
      ["/images/..%2f..%2fsecret.txt", 403, true],
      ["/.%2e/secret.txt", 403, true],
      ["/%2e./secret.txt", 403, true],
      ["/%252e%252e%252fsecret.txt", 404, false], // decoded once: a literal, missing name
      ["/..%252f..%252fsecret.txt", 404, true], // a literal name starting with "." is a dotfile
      ["/..\\secret.txt", 403, true],
      ["/..%5csecret.txt", 403, true],
      ["/..%5c..%5cetc%5cpasswd", 403, true],
      ["/%c0%ae%c0%ae/secret.txt", 400, true],
      ["/%e0%80%ae%e0%80%ae/secret.txt", 400, true],
      ["/..%c0%afsecret.txt", 400, true],
      ["/%ef%bc%8e%ef%bc%8e/secret.txt", 404, false], // fullwidth dots are just characters
      ["/index.html%00.png", 403, true],
      ["/../secret.txt%00.html", 403, true],
      ["/etc/passwd", 404, false],
      ["//etc/passwd", 404, false],
      ["/%2fetc%2fpasswd", 404, false],
      ["/....//....//secret.txt", 404, true],
      ["/..;/secret.txt", 404, true],
      ["/..%2fsecret.txt.", 403, true],
      ["/..%2fsecret.txt%20", 403, true],
      ["/%u002e%u002e/secret.txt", 400, true],
      ["/%zz", 400, true],
      ["/images/escape-link", 404, true],
      ["/abs-link.txt", 404, true],
      ["/chain-link.txt", 404, true],
      ["/outdir/page.html", 404, true],
      ["/outdir/", 404, true],
      ["/.env", 404, true],
      ["/.git/config", 404, true],
      ["/images/.hidden.txt", 404, true],
      ["/env-alias.txt", 404, true],
    ];
    for (const [target, status, logged] of cases) {
      site.events.length = 0;
      const res = await get(site, target);
      assert.equal(res.status, status, target);
      assert.ok(!dec.decode(res.raw).includes(SECRET_MARKER), `${target} leaked the secret`);
      assert.equal(site.events.length, logged ? 1 : 0, `${target}: ${JSON.stringify(site.events)}`);
      if (logged) {
        assert.equal(site.events[0].client, "127.0.0.1", target);
        assert.equal(site.events[0].status, status, target);
        assert.equal(site.events[0].target, target, target);
      }
    }
    // A symlink that stays inside the root is followed.
    const alias = await get(site, "/alias.css");
    assert.equal(alias.status, 200);
    assert.equal(dec.decode(alias.body), await Deno.readTextFile(`${site.dir}/static/style.css`));
  } finally {
    await site.close();
  }
});

Deno.test("serveStatic() logs one console.warn line with the client address and the raw target", async () => {
  const handler = serveStatic("static");
  const lines: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    const req = new Request("http://localhost/x");
    // An engine may hand over the target un-normalised (Deno.serve does): simulate it.
    Object.defineProperty(req, "url", { value: "http://localhost/..%2f..%2fsecret.txt?a=1" });
    const res = await handler(req, {
      remoteAddr: { ...LOOPBACK, hostname: "203.0.113.7" },
      completed: Promise.resolve(),
    });
    assert.equal(res.status, 403);
  } finally {
    console.warn = warn;
  }
  assert.equal(lines.length, 1);
  assert.match(lines[0], /client=203\.0\.113\.7/);
  assert.match(lines[0], /target="\/\.\.%2f\.\.%2fsecret\.txt\?a=1"/);
});

Deno.test("serveStatic() never answers a malformed target with a 500", async () => {
  const site = await startSite();
  try {
    const targets = [
      "/%",
      "/%%",
      "/%0",
      "/%c0",
      "/%ff%fe",
      "/a%00",
      "/%7f",
      "/" + "a".repeat(300),
      "/" + "a/".repeat(2000),
      "/%2e%2e%2f%2e%2e%2f" + "x".repeat(5000),
      "/images/escape-link/x",
      "/index.html/x",
      "/style.css/",
    ];
    for (const t of targets) {
      const res = await get(site, t);
      assert.ok([400, 403, 404, 414, 431].includes(res.status), `${t.slice(0, 40)}: ${res.status}`);
    }
  } finally {
    await site.close();
  }
});

// ------------------------------------------------------------------------------------ files and folders

Deno.test("serveStatic() serves folder index.html, redirects bare folders, never lists", async () => {
  const site = await startSite();
  try {
    const root = await get(site, "/");
    assert.equal(root.status, 200);
    assert.equal(dec.decode(root.body), await Deno.readTextFile(`${site.dir}/static/index.html`));
    assert.equal(root.headers.get("content-type"), "text/html; charset=utf-8");
    const docs = await get(site, "/docs/");
    assert.equal(docs.status, 200);
    assert.equal(dec.decode(docs.body), "<h1>docs</h1>");
    const bare = await get(site, "/docs?x=1");
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.get("location"), "docs/?x=1"); // relative: never an open redirect
    const evil = await get(site, "//docs");
    assert.equal(evil.status, 301);
    assert.equal(evil.headers.get("location"), "docs/");
    for (const t of ["/images/", "/empty/", "/images", "/nope.html", "/index.html/"]) {
      const res = await get(site, t);
      if (t === "/images") assert.equal(res.status, 301);
      else assert.equal(res.status, 404, t);
      assert.ok(!dec.decode(res.body).includes("logo.svg"), `${t} listed the folder`);
    }
    const q = await get(site, "/style.css?v=3");
    assert.equal(q.status, 200);
    const sp = await get(site, "/with%20space.txt");
    assert.equal(dec.decode(sp.body), "space\n");
  } finally {
    await site.close();
  }
});

Deno.test("serveStatic() sets mime-db Content-Type (+charset), nosniff, Cache-Control by path", async () => {
  const site = await startSite();
  try {
    const table: [string, string, string][] = [
      ["/index.html", "text/html; charset=utf-8", "no-cache"],
      ["/style.css", "text/css; charset=utf-8", "public, max-age=600"],
      ["/images/logo.svg", "image/svg+xml", "public, max-age=600"],
      ["/app.3f2a9c1b.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"],
      ["/page.txt", "text/plain; charset=utf-8", "public, max-age=600"],
      ["/data.bin", "application/octet-stream", "public, max-age=600"],
      ["/", "text/html; charset=utf-8", "no-cache"],
    ];
    for (const [target, type, cc] of table) {
      const res = await get(site, target);
      assert.equal(res.status, 200, target);
      assert.equal(res.headers.get("content-type"), type, target);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", target);
      assert.equal(res.headers.get("cache-control"), cc, target);
      assert.match(res.headers.get("etag") ?? "", /^"[0-9a-f]+-[0-9a-f]+"$/, target);
      assert.ok(res.headers.get("last-modified")?.endsWith(" GMT"), target);
    }
  } finally {
    await site.close();
  }
  const custom = await startSite({ cacheControl: [{ pattern: /\.css$/, value: "private, max-age=5" }] });
  try {
    assert.equal((await get(custom, "/style.css")).headers.get("cache-control"), "private, max-age=5");
    assert.equal((await get(custom, "/index.html")).headers.get("cache-control"), "no-cache");
  } finally {
    await custom.close();
  }
});

Deno.test("serveStatic() answers HEAD with GET's headers and no body; POST gets 405 + Allow", async () => {
  const site = await startSite();
  try {
    for (
      const [target, headers] of [["/index.html", {}], ["/big.css", { "accept-encoding": "gzip" }], [
        "/data.bin",
        { range: "bytes=0-9" },
      ]] as const
    ) {
      const g = await get(site, target, headers);
      const h = await get(site, target, headers, "HEAD");
      assert.equal(h.status, g.status, target);
      for (
        const name of ["content-type", "content-length", "etag", "last-modified", "content-encoding", "vary"]
      ) {
        assert.equal(h.headers.get(name), g.headers.get(name), `${target} ${name}`);
      }
      assert.equal(h.body.length, 0, `${target}: HEAD sent body bytes`);
    }
    const post = await get(site, "/index.html", { "content-length": "0" }, "POST");
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
  } finally {
    await site.close();
  }
});

Deno.test("staticFiles() gives null for a missing file or method, so a router falls through", async () => {
  const dir = await makeSiteFixture();
  try {
    const files = staticFiles(`${dir}/static`, { onSecurityEvent() {} });
    const info = { remoteAddr: LOOPBACK, completed: Promise.resolve() };
    assert.equal(await files(new Request("http://localhost/nope.html"), info), null);
    assert.equal(await files(new Request("http://localhost/index.html", { method: "POST" }), info), null);
    assert.equal((await files(new Request("http://localhost/index.html"), info))?.status, 200);
    assert.equal((await files(new Request("http://localhost/.env"), info))?.status, 404);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serveStatic() keeps one cache entry per file; distinct spellings never collide", async () => {
  const site = await startSite({ cacheRevalidateMs: 0 }); // the change below must be seen at once
  try {
    await Deno.writeTextFile(`${site.dir}/static/%41.txt`, "literal percent\n");
    await Deno.writeTextFile(`${site.dir}/static/A.txt`, "letter A\n");
    for (let i = 0; i < 2; i++) {
      assert.equal(dec.decode((await get(site, "/%2541.txt")).body), "literal percent\n");
      assert.equal(dec.decode((await get(site, "/%41.txt")).body), "letter A\n");
      assert.equal(dec.decode((await get(site, "/A.txt")).body), "letter A\n");
      assert.equal(dec.decode((await get(site, "/images/..%2fA.txt")).body), "letter A\n");
    }
    // A change seen through one spelling is seen through all.
    await Deno.writeTextFile(`${site.dir}/static/A.txt`, "letter A, changed\n");
    assert.equal(dec.decode((await get(site, "/%41.txt")).body), "letter A, changed\n");
    assert.equal(dec.decode((await get(site, "/A.txt")).body), "letter A, changed\n");
  } finally {
    await site.close();
  }
});

// ------------------------------------------------------------------------------------------ preconditions

Deno.test("serveStatic() evaluates preconditions in RFC 9110 §13.2.2 order", async () => {
  const site = await startSite();
  try {
    const first = await get(site, "/page.txt");
    const etag = first.headers.get("etag")!;
    const lm = first.headers.get("last-modified")!;
    const past = "Mon, 01 Jan 2001 00:00:00 GMT";
    const future = "Fri, 01 Jan 2100 00:00:00 GMT";
    const table: [string, Record<string, string>, number][] = [
      ["no preconditions", {}, 200],
      ["If-Match matches", { "if-match": etag }, 200],
      ["If-Match *", { "if-match": "*" }, 200],
      ["If-Match in a list", { "if-match": `"nope", ${etag}` }, 200],
      ["If-Match differs", { "if-match": '"nope"' }, 412],
      ["If-Match uses strong comparison: W/ never matches", { "if-match": `W/${etag}` }, 412],
      ["If-Match wins over If-None-Match", { "if-match": '"nope"', "if-none-match": etag }, 412],
      [
        "If-Match present: If-Unmodified-Since ignored",
        { "if-match": etag, "if-unmodified-since": past },
        200,
      ],
      ["If-Unmodified-Since past", { "if-unmodified-since": past }, 412],
      ["If-Unmodified-Since = Last-Modified", { "if-unmodified-since": lm }, 200],
      [
        "If-Unmodified-Since before If-None-Match",
        { "if-unmodified-since": past, "if-none-match": etag },
        412,
      ],
      ["If-Unmodified-Since invalid date ignored", { "if-unmodified-since": "yesterday" }, 200],
      ["If-None-Match matches", { "if-none-match": etag }, 304],
      ["If-None-Match weak comparison", { "if-none-match": `W/${etag}` }, 304],
      ["If-None-Match *", { "if-none-match": "*" }, 304],
      ["If-None-Match differs", { "if-none-match": '"nope"' }, 200],
      ["If-None-Match present: If-Modified-Since ignored", {
        "if-none-match": '"nope"',
        "if-modified-since": future,
      }, 200],
      ["If-None-Match match beats an old If-Modified-Since", {
        "if-none-match": etag,
        "if-modified-since": past,
      }, 304],
      ["If-Modified-Since = Last-Modified", { "if-modified-since": lm }, 304],
      ["If-Modified-Since future", { "if-modified-since": future }, 304],
      ["If-Modified-Since past", { "if-modified-since": past }, 200],
      ["If-Modified-Since garbage ignored", { "if-modified-since": "not a date" }, 200],
      ["preconditions before Range: 304", { "if-none-match": etag, "range": "bytes=0-1" }, 304],
      ["preconditions before Range: 412", { "if-match": '"nope"', "range": "bytes=0-1" }, 412],
      ["If-Match passes, then Range", { "if-match": etag, "range": "bytes=0-1" }, 206],
    ];
    for (const [name, headers, status] of table) {
      const res = await get(site, "/page.txt", headers);
      assert.equal(res.status, status, name);
      if (status === 304) {
        assert.equal(res.body.length, 0, name);
        assert.equal(res.headers.get("etag"), etag, name);
        assert.equal(res.headers.get("cache-control"), "public, max-age=600", name);
      }
    }
    // HEAD evaluates the same preconditions.
    assert.equal((await get(site, "/page.txt", { "if-none-match": etag }, "HEAD")).status, 304);
  } finally {
    await site.close();
  }
});

// ----------------------------------------------------------------------------------------------- ranges

for (
  const [label, options] of [["cached", {}], ["streamed from disk", { cacheMaxFileBytes: 100 }]] as const
) {
  Deno.test(`serveStatic() serves single ranges at the edges (${label})`, async () => {
    const site = await startSite({ ...options, chunkBytes: 333 });
    try {
      const data = await Deno.readFile(`${site.dir}/static/data.bin`);
      const n = data.length;
      const ok: [string, number, number][] = [
        ["bytes=0-0", 0, 0], // first byte
        [`bytes=${n - 1}-${n - 1}`, n - 1, n - 1], // last byte
        [`bytes=${n - 1}-`, n - 1, n - 1],
        ["bytes=-1", n - 1, n - 1], // suffix of one
        ["bytes=-10", n - 10, n - 1],
        [`bytes=-${n + 500}`, 0, n - 1], // suffix longer than the file: all of it
        [`bytes=10-${n + 1000}`, 10, n - 1], // past the end: clipped
        ["bytes=0-", 0, n - 1],
        ["bytes=500-1500", 500, 1500],
        ["BYTES = 1-2", 1, 2],
      ];
      for (const [range, start, end] of ok) {
        const res = await get(site, "/data.bin", { range });
        assert.equal(res.status, 206, range);
        assert.equal(res.headers.get("content-range"), `bytes ${start}-${end}/${n}`, range);
        assert.equal(res.headers.get("content-length"), String(end - start + 1), range);
        assert.deepEqual(res.body, data.subarray(start, end + 1), range);
      }
      for (const range of [`bytes=${n}-`, `bytes=${n + 10}-${n + 20}`, "bytes=-0"]) {
        const res = await get(site, "/data.bin", { range });
        assert.equal(res.status, 416, range);
        assert.equal(res.headers.get("content-range"), `bytes */${n}`, range);
      }
      // Several ranges, bad syntax and other units: the whole file with 200.
      for (const range of ["bytes=0-0,5-6", "bytes=5-2", "items=0-1", "bytes=a-b", "bytes=-", "bytes 0-1"]) {
        const res = await get(site, "/data.bin", { range });
        assert.equal(res.status, 200, range);
        assert.deepEqual(res.body, data, range);
      }
      const empty = await get(site, "/empty.txt", { range: "bytes=0-" });
      assert.equal(empty.status, 416);
      assert.equal(empty.headers.get("content-range"), "bytes */0");
      // If-Range: a matching strong ETag or the exact date keeps the range; anything else sends it all.
      const first = await get(site, "/data.bin");
      const etag = first.headers.get("etag")!;
      const lm = first.headers.get("last-modified")!;
      const ifRange: [string, number][] = [
        [etag, 206],
        ['"stale"', 200],
        [`W/${etag}`, 200],
        [lm, 206],
        ["Mon, 01 Jan 2001 00:00:00 GMT", 200],
      ];
      for (const [value, status] of ifRange) {
        const res = await get(site, "/data.bin", { range: "bytes=0-9", "if-range": value });
        assert.equal(res.status, status, `If-Range ${value}`);
        assert.equal(res.body.length, status === 206 ? 10 : n, `If-Range ${value}`);
      }
    } finally {
      await site.close();
    }
  });
}

// ---------------------------------------------------------------------------------------- compression

Deno.test("serveStatic() negotiates gzip and brotli, honours q=0, and never compresses a range", async () => {
  const site = await startSite();
  try {
    const css = CSS_4K;
    for (const [accept, encoding] of ENCODING_CASES) {
      const res = await get(site, "/big.css", accept === null ? {} : { "accept-encoding": accept });
      assert.equal(res.status, 200, String(accept));
      assert.equal(res.headers.get("content-encoding"), encoding, String(accept));
      assert.equal(res.headers.get("vary"), "Accept-Encoding", String(accept));
      const body = encoding === "gzip"
        ? gunzipSync(res.body)
        : encoding === "br"
        ? brotliDecompressSync(res.body)
        : res.body;
      assert.equal(dec.decode(body), css, String(accept));
      if (encoding) assert.ok(res.body.length < css.length / 4, `${accept}: not compressed`);
    }
    // Distinct representations carry distinct strong ETags.
    const etags = new Set<string>();
    for (const a of ["gzip", "br", "identity"]) {
      etags.add((await get(site, "/big.css", { "accept-encoding": a })).headers.get("etag")!);
    }
    assert.equal(etags.size, 3);
    const gzEtag = (await get(site, "/big.css", { "accept-encoding": "gzip" })).headers.get("etag")!;
    assert.equal(
      (await get(site, "/big.css", { "accept-encoding": "gzip", "if-none-match": gzEtag })).status,
      304,
    );
    // A range is over the identity bytes, even when gzip is accepted.
    const ranged = await get(site, "/big.css", { "accept-encoding": "gzip, br", range: "bytes=0-9" });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get("content-encoding"), null);
    assert.equal(dec.decode(ranged.body), css.slice(0, 10));
    // Under 1 KiB: not worth it. Not compressible (random bytes, octet-stream): never, and no Vary.
    const small = await get(site, "/small.css", { "accept-encoding": "gzip" });
    assert.equal(small.headers.get("content-encoding"), null);
    const bin = await get(site, "/data.bin", { "accept-encoding": "gzip" });
    assert.equal(bin.headers.get("content-encoding"), null);
    assert.equal(bin.headers.get("vary"), null);
  } finally {
    await site.close();
  }
});

Deno.test("serveStatic() streams gzip for a large compressible file it does not cache", async () => {
  const site = await startSite({ cacheMaxFileBytes: 1000 });
  try {
    const res = await get(site, "/big.css", { "accept-encoding": "gzip" });
    assert.equal(res.headers.get("content-encoding"), "gzip");
    assert.equal(dec.decode(gunzipSync(res.body)), CSS_4K);
    const br = await get(site, "/big.css", { "accept-encoding": "br" });
    assert.equal(br.headers.get("content-encoding"), null); // brotli only when cached or precompressed
    assert.equal(dec.decode(br.body), CSS_4K);
  } finally {
    await site.close();
  }
});

Deno.test("serveStatic() serves precompressed .br/.gz siblings, never ones leaving the root", async () => {
  const site = await startSite({ compress: false });
  try {
    const s = `${site.dir}/static`;
    const js = "export const x = 1;\n".repeat(10);
    await Deno.writeTextFile(`${s}/lib.js`, js);
    await Deno.writeFile(`${s}/lib.js.br`, brotliCompress(js));
    await Deno.writeFile(`${s}/lib.js.gz`, gzipBytes(js));
    const br = await get(site, "/lib.js", { "accept-encoding": "gzip, br" });
    assert.equal(br.headers.get("content-encoding"), "br");
    assert.equal(br.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(dec.decode(brotliDecompressSync(br.body)), js);
    const gz = await get(site, "/lib.js", { "accept-encoding": "gzip" });
    assert.equal(gz.headers.get("content-encoding"), "gzip");
    assert.equal(dec.decode(gunzipSync(gz.body)), js);
    const plain = await get(site, "/lib.js");
    assert.equal(plain.headers.get("content-encoding"), null);
    assert.equal(plain.headers.get("vary"), "Accept-Encoding");
    // A sibling symlinked out of the root is ignored.
    await Deno.writeTextFile(`${s}/evil.js`, js);
    await Deno.writeFile(`${site.dir}/evil.js.gz`, gzipBytes(SECRET_MARKER));
    await Deno.symlink(`${site.dir}/evil.js.gz`, `${s}/evil.js.gz`);
    const evil = await get(site, "/evil.js", { "accept-encoding": "gzip" });
    assert.equal(evil.headers.get("content-encoding"), null);
    assert.equal(dec.decode(evil.body), js);
  } finally {
    await site.close();
  }
});

function gzipBytes(text: string): Uint8Array {
  return gzipSync(new TextEncoder().encode(text));
}
function brotliCompress(text: string): Uint8Array {
  return brotliCompressSync(new TextEncoder().encode(text));
}

// ---------------------------------------------------------------------------------------------- caching

Deno.test("serveStatic() notices a changed file: same size new mtime, and a replaced inode", async () => {
  // Checked on every request here; the default window is shown in the next test.
  const site = await startSite({ cacheRevalidateMs: 0 });
  try {
    const path = `${site.dir}/static/page.txt`;
    assert.equal(dec.decode((await get(site, "/page.txt")).body), "plain text\n");
    // Same size, different content and mtime.
    await Deno.writeTextFile(path, "PLAIN TEXT\n");
    await Deno.utime(path, new Date(), new Date(Date.now() + 5000));
    assert.equal(dec.decode((await get(site, "/page.txt")).body), "PLAIN TEXT\n");
    // Replaced by rename with the very same size and mtime: the inode tells.
    const st = await Deno.stat(path);
    await Deno.writeTextFile(`${path}.tmp`, "third one\n\n");
    await Deno.utime(`${path}.tmp`, st.atime!, st.mtime!);
    await Deno.rename(`${path}.tmp`, path);
    assert.equal(dec.decode((await get(site, "/page.txt")).body), "third one\n\n");
    // Deleted: gone at once.
    await Deno.remove(path);
    assert.equal((await get(site, "/page.txt")).status, 404);
    // A file swapped for a symlink out of the root after it was cached is refused.
    await Deno.writeTextFile(`${site.dir}/static/swap.txt`, "inside\n");
    assert.equal((await get(site, "/swap.txt")).status, 200);
    await Deno.remove(`${site.dir}/static/swap.txt`);
    await Deno.symlink(`${site.dir}/secret.txt`, `${site.dir}/static/swap.txt`);
    const swapped = await get(site, "/swap.txt");
    assert.equal(swapped.status, 404);
    assert.ok(!dec.decode(swapped.raw).includes(SECRET_MARKER));
  } finally {
    await site.close();
  }
});

Deno.test("serveStatic() trusts a cached file for cacheRevalidateMs, then notices the change", async () => {
  const site = await startSite({ cacheRevalidateMs: 400 });
  try {
    const path = `${site.dir}/static/page.txt`;
    assert.equal(dec.decode((await get(site, "/page.txt")).body), "plain text\n");
    await Deno.writeTextFile(path, "NEW CONTENT\n");
    assert.equal(dec.decode((await get(site, "/page.txt")).body), "plain text\n", "within the window");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(dec.decode((await get(site, "/page.txt")).body), "NEW CONTENT\n", "after the window");
    await Deno.remove(path);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await get(site, "/page.txt")).status, 404, "a deleted file is gone after the window");
  } finally {
    await site.close();
  }
});

Deno.test("serveStatic() stays correct when the cache budget is smaller than the files", async () => {
  const site = await startSite({ cacheMaxBytes: 3000, cacheMaxEntries: 2 });
  try {
    const data = await Deno.readFile(`${site.dir}/static/data.bin`);
    for (let i = 0; i < 3; i++) {
      for (const t of ["/data.bin", "/big.css", "/small.css", "/index.html"]) {
        const res = await get(site, t, { "accept-encoding": "gzip" });
        assert.equal(res.status, 200, t);
      }
      assert.deepEqual((await get(site, "/data.bin")).body, data);
    }
  } finally {
    await site.close();
  }
});

// ---------------------------------------------------------------------------------------------- memory

/** GET `path` and read the response at about `bytesPerSecond`, counting body bytes (no curl needed). */
async function slowDownload(port: number, path: string, bytesPerSecond: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(requestText(path)));
  const buf = new Uint8Array(64 * 1024);
  let head = "";
  let headDone = false;
  let bodyBytes = 0;
  let received = 0;
  const started = performance.now();
  while (true) {
    const n = await conn.read(buf);
    if (n === null) break;
    received += n;
    if (headDone) bodyBytes += n;
    else {
      head += new TextDecoder("latin1").decode(buf.subarray(0, n));
      const end = head.indexOf("\r\n\r\n");
      if (end >= 0) {
        headDone = true;
        bodyBytes = head.length - (end + 4);
      }
    }
    const ahead = received / bytesPerSecond * 1000 - (performance.now() - started);
    if (ahead > 5) await new Promise((r) => setTimeout(r, ahead));
  }
  conn.close();
  return { status: Number(head.split(" ")[1]), bodyBytes };
}

Deno.test("large files stream with backpressure: stalled/slow clients never make it read whole", async () => {
  const { startProcess, startTaskFlags } = await import("../fixtures/static_fixture.ts");
  const dir = await makeSiteFixture();
  const size = 96 * 1024 * 1024;
  {
    const f = await Deno.open(`${dir}/static/big.bin`, { write: true, create: true });
    const chunk = noise(1024 * 1024);
    for (let i = 0; i < size / chunk.length; i++) await f.write(chunk);
    f.close();
  }
  const main = new URL("../../app/main.ts", import.meta.url).pathname;
  const server = await startProcess(dir, await startTaskFlags(), main, ["--port", "0"]);
  // The server's resident memory in MiB, via cat: Deno wants --allow-all to read /proc itself, and a slim
  // CI image may have no ps.
  const rss = async () => {
    const { stdout } = await new Deno.Command("cat", {
      args: [`/proc/${server.pid}/status`],
      stdout: "piped",
    })
      .output();
    return Number(/VmRSS:\s+(\d+)/.exec(dec.decode(stdout))?.[1] ?? NaN) / 1024;
  };
  const stalled: Deno.Conn[] = [];
  try {
    await rawRequest(server.port, requestText("/index.html"));
    const base = await rss();
    // Three clients ask for 96 MiB and read nothing: only socket buffers and a chunk or two may fill.
    for (let i = 0; i < 3; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(new TextEncoder().encode(requestText("/big.bin")));
      stalled.push(conn);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const stalledGrowth = (await rss()) - base;
    // Measured ~15 MiB (site start-up included); an eager stream measured 281 MiB.
    assert.ok(stalledGrowth < 48, `stalled clients grew the server by ${stalledGrowth.toFixed(1)} MiB`);
    for (const c of stalled.splice(0)) c.close();

    // Three slow readers (48 MB/s each). Reading the file whole would add 96 MiB per client; streaming
    // holds a chunk or two each, plus spent chunks the GC has not yet collected: V8 collects once external
    // memory has grown by about 64 MiB, so ~70 MiB is measured; the bound is the 100 MiB.
    let peak = await rss();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rss());
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const outs = await Promise.all(
      Array.from({ length: 3 }, () => slowDownload(server.port, "/big.bin", 48e6)),
    );
    sampling = false;
    await sampler;
    for (const o of outs) assert.deepEqual(o, { status: 200, bodyBytes: size });
    assert.ok(
      peak - base < 100,
      `server RSS grew by ${(peak - base).toFixed(1)} MiB (base ${base.toFixed(1)})`,
    );
  } finally {
    for (const c of stalled) c.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
