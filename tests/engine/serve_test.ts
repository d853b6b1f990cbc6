// The connection loop and serve() over real sockets on 127.0.0.1: keep-alive, pipelining, framing of
// answers, 100-continue, timeouts, errors, backpressure, shutdown, and running a Deno.serve handler as is.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { Connection, type ConnectionHost } from "../../server/conn.ts";
import { fastPathFailure, fastPathsActive, setFastPaths } from "../../server/_fast.ts";
import type { Handler } from "../../server/types.ts";
import { concatBytes } from "../../server/_bytes.ts";
import { keepAliveLines } from "../../server/writer.ts";
import { captureErrors, logLines } from "../fixtures/console.ts";
import { exchange, start, statuses } from "../fixtures/raw_http.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const GET = (path = "/", extra = "") => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "serve() keeps the connection alive and answers pipelined requests in order",
  ...opts,
  async fn() {
    const s = start((req) => new Response(new URL(req.url).pathname));
    try {
      const { text, closed } = await exchange(s.addr.port, [GET("/a") + GET("/b") + GET("/c")]);
      assert.deepEqual(statuses(text), [200, 200, 200]);
      assert.ok(text.indexOf("\r\n\r\n/a") < text.indexOf("\r\n\r\n/b"));
      assert.ok(text.indexOf("\r\n\r\n/b") < text.indexOf("\r\n\r\n/c"));
      assert.equal(closed, false, "HTTP/1.1 persists by default");
      assert.match(text, /^date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r$/m);
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test("a pipelined batch is answered with a single write", async () => {
  // A fake socket: the whole batch arrives in one read; count the writes that answer it.
  const batch = enc.encode(GET("/1") + GET("/2") + GET("/3") + GET("/4"));
  let reads = 0;
  const writes: number[] = [];
  const fake = {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    read(buf: Uint8Array) {
      if (reads++ > 0) return Promise.resolve(null);
      buf.set(batch);
      return Promise.resolve(batch.length);
    },
    write(b: Uint8Array) {
      writes.push(b.length);
      return Promise.resolve(b.length);
    },
    close() {},
  } as unknown as Deno.Conn;
  const host: ConnectionHost = {
    handler: () => new Response("x"),
    parserLimits: {},
    scheme: "http",
    defaultHost: "t:1",
    headerTimeoutMs: 20000,
    idleTimeoutMs: 5000,
    bodyTimeoutMs: 30000,
    writeTimeoutMs: 30000,
    maxDrainBytes: 262144,
    maxRequestsPerConnection: Infinity,
    keepAlive: keepAliveLines(4),
    methods: new Set(["GET"]),
    now: Date.now(),
    dateLine: "date: Tue, 24 Nov 2026 00:00:00 GMT\r\n",
    closing: false,
    onHandlerError: () => new Response("", { status: 500 }),
    onRefused() {},
    log() {},
    release() {},
    adopt() {},
  };
  await new Connection(fake, host).run();
  assert.equal(writes.length, 1, `four answers in ${writes.length} writes`);
});

Deno.test({
  name: "Connection: close is honoured and stops the pipeline; HTTP/1.0 closes unless keep-alive",
  ...opts,
  async fn() {
    const s = start(() => new Response("ok"));
    try {
      let r = await exchange(s.addr.port, [GET("/", "Connection: close\r\n") + GET("/second")]);
      assert.deepEqual(statuses(r.text), [200]);
      assert.ok(r.closed);
      assert.match(r.text, /^connection: close\r$/m);
      r = await exchange(s.addr.port, ["GET / HTTP/1.0\r\n\r\n"]);
      assert.deepEqual(statuses(r.text), [200]);
      assert.ok(r.closed);
      r = await exchange(s.addr.port, ["GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"]);
      assert.match(r.text, /^connection: keep-alive\r$/m);
      assert.equal(r.closed, false);
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "HEAD gets GET's headers without a body; 204 and 304 carry no body",
  ...opts,
  async fn() {
    const s = start((req) => {
      const p = new URL(req.url).pathname;
      if (p === "/204") return new Response(null, { status: 204 });
      if (p === "/304") return new Response(null, { status: 304, headers: { etag: '"x"' } });
      if (p === "/stream") return new Response(ReadableStream.from([enc.encode("abc")]));
      if (p === "/declared") return new Response(null, { headers: { "content-length": "42" } });
      return new Response("hello world");
    });
    try {
      let r = await exchange(s.addr.port, [`HEAD / HTTP/1.1\r\nHost: t\r\n\r\n` + GET("/")]);
      assert.deepEqual(statuses(r.text, [0]), [200, 200]);
      assert.equal(r.text.split("content-length: 11\r\n").length, 3, "both answers say 11 bytes");
      assert.equal(r.text.split("hello world").length, 2, "only the GET has a body");
      r = await exchange(s.addr.port, [GET("/204") + GET("/304") + GET("/")]);
      assert.deepEqual(statuses(r.text), [204, 304, 200]);
      assert.doesNotMatch(
        r.text.slice(0, r.text.indexOf("HTTP/1.1 200")),
        /content-length|transfer-encoding/,
      );
      r = await exchange(s.addr.port, [`HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n` + GET("/")]);
      assert.deepEqual(statuses(r.text, [0]), [200, 200]);
      assert.ok(!r.text.includes("abc"), "a HEAD answer never carries the stream");
      // A HEAD answer built without a body keeps the length the handler declared (static files do this).
      r = await exchange(s.addr.port, [`HEAD /declared HTTP/1.1\r\nHost: t\r\n\r\n`]);
      assert.match(r.text, /\r\ncontent-length: 42\r\n/);
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "a body of unknown length is chunked for HTTP/1.1 and close-delimited for HTTP/1.0",
  ...opts,
  async fn() {
    const s = start(() =>
      new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(enc.encode("first,"));
            await new Promise((r) => setTimeout(r, 20));
            c.enqueue(enc.encode("second"));
            c.close();
          },
        }),
      )
    );
    try {
      let r = await exchange(s.addr.port, [GET()]);
      assert.match(r.text, /^transfer-encoding: chunked\r$/m);
      assert.ok(r.text.endsWith("\r\n\r\n6\r\nfirst,\r\n6\r\nsecond\r\n0\r\n\r\n"), JSON.stringify(r.text));
      r = await exchange(s.addr.port, ["GET / HTTP/1.0\r\n\r\n"]);
      assert.doesNotMatch(r.text, /transfer-encoding/);
      assert.ok(r.text.endsWith("\r\n\r\nfirst,second"));
      assert.ok(r.closed);
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "a stream shorter than its declared Content-Length closes the connection instead of a bad frame",
  ...opts,
  async fn() {
    const logged = logLines(
      await captureErrors(async () => {
        const s = start(() =>
          new Response(ReadableStream.from([enc.encode("abc")]), { headers: { "content-length": "10" } })
        );
        try {
          const r = await exchange(s.addr.port, [GET() + GET()]);
          assert.deepEqual(statuses(r.text), [200]);
          assert.ok(r.closed);
        } finally {
          await s.shutdown();
        }
      }),
    );
    assert.ok(logged.some((l) => l.includes("3 of 10 declared bytes")));
  },
});

Deno.test({
  name: "a handler that throws gives a 500 without the error text, and the log says why",
  ...opts,
  async fn() {
    const logged = logLines(
      await captureErrors(async () => {
        const s = start((req) => {
          if (req.url.endsWith("/not-a-response")) return "oops" as unknown as Response;
          throw new Error("secret internal detail");
        });
        try {
          const r = await exchange(s.addr.port, [GET("/x") + GET("/not-a-response") + GET("/y")]);
          assert.deepEqual(statuses(r.text), [500, 500, 500]);
          assert.ok(!r.text.includes("secret internal detail"));
          assert.equal(r.closed, false, "a handler error is not a protocol error: the connection stays");
        } finally {
          await s.shutdown();
        }
      }),
    );
    assert.ok(logged.some((l) => l.includes("secret internal detail")));
    assert.ok(logged.some((l) => l.includes("did not return a Response")));
  },
});

Deno.test({
  name: "100 Continue is sent only when the handler reads the body; 413 comes before it",
  ...opts,
  async fn() {
    const s = start(async (req) => {
      if (new URL(req.url).pathname === "/read") return new Response(`read ${(await req.text()).length}`);
      return new Response("not reading", { status: 403 });
    }, { maxBodyBytes: 100 });
    try {
      const head = (path: string, n: number) =>
        `POST ${path} HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: ${n}\r\n\r\n`;
      // The handler reads: 100 first, then (after the body) the answer.
      let r = await exchange(s.addr.port, [head("/read", 5), "hello"], { gapMs: 150 });
      assert.deepEqual(statuses(r.text), [100, 200]);
      assert.ok(r.text.endsWith("read 5"));
      // The handler answers without reading: no 100, and the connection closes (the body may still come).
      r = await exchange(s.addr.port, [head("/other", 5)]);
      assert.deepEqual(statuses(r.text), [403]);
      assert.ok(r.closed);
      // Over the limit: 413 at once, never a 100.
      r = await exchange(s.addr.port, [head("/read", 101)]);
      assert.deepEqual(statuses(r.text), [413]);
      assert.ok(r.closed);
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "an unread body is drained so the next request on the connection is read correctly",
  ...opts,
  async fn() {
    const s = start((req) => new Response(`${req.method} ${new URL(req.url).pathname}`));
    try {
      const smuggle = GET("/smuggled");
      const r = await exchange(s.addr.port, [
        `POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: ${smuggle.length}\r\n\r\n${smuggle}` +
        `POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n` + GET("/c"),
      ]);
      assert.deepEqual(statuses(r.text), [200, 200, 200]);
      assert.ok(r.text.includes("POST /a") && r.text.includes("POST /b") && r.text.includes("GET /c"));
      assert.ok(!r.text.includes("/smuggled"), "the body was never parsed as a request");
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "request bodies reach the handler: Content-Length, chunked, and large ones in pieces",
  ...opts,
  async fn() {
    const s = start(async (req) => {
      const b = new Uint8Array(await req.arrayBuffer());
      let sum = 0;
      for (const x of b) sum = (sum + x) % 65521;
      return new Response(`${b.length}:${sum}`);
    }, { maxBodyBytes: 8 * 1024 * 1024 });
    try {
      const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
      let sum = 0;
      for (const x of big) sum = (sum + x) % 65521;
      const res = await fetch(`http://127.0.0.1:${s.addr.port}/`, { method: "POST", body: big });
      assert.equal(await res.text(), `${big.length}:${sum}`);
      const r = await exchange(s.addr.port, [
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n",
        "3;ext=1\r\nyou\r\n0\r\nTrailer-Field: x\r\n\r\n",
      ], { gapMs: 50 });
      const expected = [..."hiyou"].reduce((a, c) => (a + c.charCodeAt(0)) % 65521, 0);
      assert.ok(r.text.endsWith(`5:${expected}`), r.text);
    } finally {
      await s.shutdown();
    }
  },
});

/** Read a body into one 1000-byte buffer, again and again (a BYOB reader); its bytes and the reads it took. */
async function readInto(body: ReadableStream<Uint8Array>): Promise<{ bytes: Uint8Array; reads: number }> {
  const reader = body.getReader({ mode: "byob" });
  const chunks: Uint8Array[] = [];
  let buffer = new Uint8Array(1000);
  let reads = 0;
  for (;;) {
    const { done, value } = await reader.read(buffer);
    if (done) break;
    reads++;
    assert.equal(value.buffer.byteLength, 1000, "the bytes arrive in the reader's own buffer");
    chunks.push(value.slice());
    buffer = new Uint8Array(value.buffer);
  }
  return { bytes: concatBytes(chunks), reads };
}

Deno.test({
  name: "a request body is a byte stream: a BYOB reader gets it in its own buffer, others get owned chunks",
  ...opts,
  async fn() {
    const check = (b: Uint8Array) => `${b.length}:${b.reduce((a, x) => (a + x) % 65521, 0)}`;
    for (const fast of [true, false]) {
      setFastPaths(fast);
      const s = start(async (req) => {
        const path = new URL(req.url).pathname;
        if (path === "/byob") {
          const { bytes, reads } = await readInto(req.body!);
          return new Response(`${check(bytes)} in ${reads} reads`);
        }
        // A clone tees the byte stream; a default reader's chunks are its own to keep.
        const copy = req.clone();
        const reader = req.body!.getReader();
        const kept: Uint8Array[] = [];
        for (let r = await reader.read(); !r.done; r = await reader.read()) kept.push(r.value);
        const other = new Uint8Array(await copy.arrayBuffer());
        assert.deepEqual(concatBytes(kept), other);
        return new Response(check(concatBytes(kept)));
      }, { maxBodyBytes: 8 * 1024 * 1024 });
      try {
        const big = new Uint8Array(300 * 1024).map((_, i) => i % 251);
        for (const path of ["/byob", "/default"]) {
          const res = await fetch(`http://127.0.0.1:${s.addr.port}${path}`, { method: "POST", body: big });
          const [got, reads] = (await res.text()).split(" in ");
          assert.equal(got, check(big), `${path}, fast paths ${fast}`);
          // 1000 bytes at most per read: what of the parser's buffer does not fit waits for the next read.
          if (path === "/byob") assert.ok(parseInt(reads) >= Math.ceil(big.length / 1000), reads);
          const r = await exchange(s.addr.port, [
            `POST ${path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n`,
            "3\r\nyou\r\n0\r\n\r\n",
          ], { gapMs: 50 });
          const small = check(enc.encode("hiyou"));
          assert.ok(r.text.endsWith(path === "/byob" ? `${small} in 2 reads` : small), r.text);
        }
      } finally {
        setFastPaths(true);
        await s.shutdown();
      }
    }
  },
});

Deno.test({
  name:
    "timeouts: an unfinished head gets 408 and a close; an idle connection is closed; a stalled body is dropped",
  ...opts,
  async fn() {
    const s = start(async (req) => new Response(await req.text()), {
      headerTimeoutMs: 700,
      idleTimeoutMs: 700,
      bodyTimeoutMs: 700,
    });
    try {
      const t0 = Date.now();
      let r = await exchange(s.addr.port, ["GET / HTTP/1.1\r\nHost: t\r\n"], { quietMs: 3000 });
      assert.deepEqual(statuses(r.text), [408]);
      assert.ok(r.closed);
      assert.ok(Date.now() - t0 < 2500, "closed within the bound plus one tick");
      r = await exchange(s.addr.port, [GET()], { quietMs: 3000 });
      assert.deepEqual(statuses(r.text), [200]);
      assert.ok(r.closed, "idle keep-alive connection closed");
      r = await exchange(s.addr.port, ["POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"], {
        quietMs: 3000,
      });
      assert.ok(r.closed, "stalled body dropped");
      assert.deepEqual(statuses(r.text), [], "no answer to a request that never finished");
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "a slow reader never makes the server buffer a large streamed response (backpressure)",
  ...opts,
  async fn() {
    let produced = 0;
    const CHUNK = 64 * 1024;
    const TOTAL = 256 * 1024 * 1024;
    const s = start(() =>
      new Response(
        new ReadableStream({
          pull(c) {
            if (produced >= TOTAL) return c.close();
            produced += CHUNK;
            c.enqueue(new Uint8Array(CHUNK));
          },
        }, { highWaterMark: 0 }),
      )
    );
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.addr.port });
      await conn.write(enc.encode(GET()));
      const buf = new Uint8Array(1024);
      await conn.read(buf); // read a little, then stop reading
      await new Promise((r) => setTimeout(r, 800));
      // Socket buffers on both sides hold a few MiB at most; the rest must not have been produced.
      assert.ok(produced < 32 * 1024 * 1024, `produced ${produced} bytes for a reader that stopped`);
      conn.close();
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "graceful shutdown finishes an in-flight response, closes idle connections, refuses new ones",
  ...opts,
  async fn() {
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    let started!: () => void;
    const inFlight = new Promise<void>((r) => started = r);
    const s = start(async (req) => {
      if (new URL(req.url).pathname === "/slow") {
        started();
        await gate;
        return new Response("finished");
      }
      return new Response("quick");
    });
    const port = s.addr.port;
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    await idle.write(enc.encode(GET()));
    const buf = new Uint8Array(4096);
    await idle.read(buf);
    const slow = exchange(port, [GET("/slow")], { quietMs: 3000 });
    await inFlight;
    const done = s.shutdown();
    assert.equal(await idle.read(buf), null, "the idle connection is closed at once");
    idle.close();
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }), "no new connections");
    release();
    const r = await slow;
    assert.ok(r.text.endsWith("finished"));
    assert.match(r.text, /^connection: close\r$/m);
    assert.ok(r.closed);
    await done;
    await s.finished;
  },
});

Deno.test({
  name: "a client that disconnects mid-request or mid-response is not an error, and aborts request.signal",
  ...opts,
  async fn() {
    const logged: string[] = [];
    const originals = [console.error, console.warn];
    console.error = console.warn = (...a: unknown[]) => logged.push(a.map(String).join(" "));
    let aborted!: () => void;
    const wasAborted = new Promise<void>((r) => aborted = r);
    const s = start(async (req) => {
      const p = new URL(req.url).pathname;
      if (p === "/wait") {
        req.signal.addEventListener("abort", () => aborted());
        await wasAborted;
        return new Response("too late");
      }
      if (p === "/body") return new Response(await req.text());
      return new Response(new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(65536)) }));
    });
    try {
      for (
        const raw of [
          GET("/wait"),
          "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc",
          GET("/big"),
        ]
      ) {
        const c = await Deno.connect({ hostname: "127.0.0.1", port: s.addr.port });
        await c.write(enc.encode(raw));
        if (raw.includes("/big")) await c.read(new Uint8Array(4096));
        await new Promise((r) => setTimeout(r, 100));
        c.close();
      }
      await wasAborted;
      await new Promise((r) => setTimeout(r, 300));
      const ok = await fetch(`http://127.0.0.1:${s.addr.port}/body`, { method: "POST", body: "still up" });
      assert.equal(await ok.text(), "still up");
      assert.deepEqual(logged, []);
    } finally {
      [console.error, console.warn] = originals;
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "a Hono app's fetch runs on Pier unchanged",
  ...opts,
  async fn() {
    const app = new Hono();
    app.get("/hello/:name", (c) => c.text(`Hello, ${c.req.param("name")}!`));
    app.post("/echo", async (c) => c.json({ got: await c.req.json(), ua: c.req.header("user-agent") }));
    app.get("/redirect", (c) => c.redirect("/hello/there", 303));
    const s = start(app.fetch);
    try {
      const base = `http://127.0.0.1:${s.addr.port}`;
      let res = await fetch(`${base}/hello/pier`);
      assert.equal(await res.text(), "Hello, pier!");
      res = await fetch(`${base}/echo`, {
        method: "POST",
        body: JSON.stringify({ a: 1 }),
        headers: { "content-type": "application/json", "user-agent": "test-agent" },
      });
      assert.deepEqual(await res.json(), { got: { a: 1 }, ua: "test-agent" });
      res = await fetch(`${base}/redirect`, { redirect: "manual" });
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("location"), "/hello/there");
      await res.body?.cancel();
      res = await fetch(`${base}/missing`);
      assert.equal(res.status, 404);
      await res.body?.cancel();
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "without Deno's internals (public API only) the engine behaves the same",
  ...opts,
  async fn() {
    assert.ok(fastPathsActive(), "on the pinned Deno the fast paths are found and pass their self-test");
    assert.equal(await fastPathFailure(), null, "including its body read and request.signal");
    setFastPaths(false);
    const s = start(async (req) => {
      const body = req.method === "POST" ? await req.text() : "";
      return new Response(`${req.method} ${new URL(req.url).pathname} ${req.headers.get("x-a")} ${body}`);
    });
    try {
      const r = await exchange(s.addr.port, [
        GET("/p", "X-A: 1\r\n") + "POST /q HTTP/1.1\r\nHost: t\r\nX-A: 2\r\nContent-Length: 2\r\n\r\nhi" +
        `HEAD /r HTTP/1.1\r\nHost: t\r\n\r\n`,
      ]);
      assert.deepEqual(statuses(r.text, [2]), [200, 200, 200]);
      assert.ok(r.text.includes("GET /p 1 ") && r.text.includes("POST /q 2 hi"));
      assert.match(
        r.text,
        /content-length: 13\r\nkeep-alive: timeout=\d+\r\n\r\n$/,
        "HEAD gets the length GET's body would have",
      );
    } finally {
      setFastPaths(true);
      await s.shutdown();
    }
  },
});

Deno.test("on a Deno whose internals differ, serve() says so once at startup, naming the Deno version", async () => {
  // Headers that misreport one field make the fast paths' self-test fail, as a changed Deno would.
  const root = new URL("../..", import.meta.url).pathname;
  const script = `
    const get = Headers.prototype.get;
    Headers.prototype.get = function (name) { return name === "x-test" ? "no" : get.call(this, name); };
    const { serve } = await import("${root}mod.ts");
    const a = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => new Response(req.method));
    const b = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("b"));
    const res = await fetch("http://127.0.0.1:" + a.addr.port + "/", { method: "POST", body: "x" });
    console.log(await res.text());
    await a.shutdown();
    await b.shutdown();
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-prompt", "--config", `${root}deno.json`, "--allow-net=127.0.0.1", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = dec.decode(out.stderr);
  assert.equal(out.code, 0, err);
  assert.equal(dec.decode(out.stdout).trim(), "POST", "it still answers, through the public API");
  const warnings = err.split("\n").filter((l) => l.startsWith("pier: running on the public API only"));
  assert.equal(warnings.length, 1, err);
  assert.ok(warnings[0].includes(`Deno ${Deno.version.deno}`), warnings[0]);
  assert.match(warnings[0], /did not behave as the public API says/);
});

Deno.test({
  name: "a Response is sent once: returning the same object again is a 500 on Pier as on Deno.serve",
  ...opts,
  async fn() {
    const run = async (listen: (h: Handler) => { port: number; stop: () => Promise<void> }) => {
      const made = { text: new Response("once"), json: Response.json({ a: 1 }) };
      const { port, stop } = listen((req) => new URL(req.url).pathname === "/json" ? made.json : made.text);
      const got: string[] = [];
      try {
        for (const path of ["/text", "/text", "/json", "/json"]) {
          const r = await fetch(`http://127.0.0.1:${port}${path}`);
          got.push(`${r.status} ${r.status === 200 ? await r.text() : (await r.body?.cancel(), "")}`.trim());
        }
      } finally {
        await stop();
      }
      assert.ok(made.text.bodyUsed && made.json.bodyUsed, "both bodies are used once sent");
      return got;
    };
    const expected = ["200 once", "500", '200 {"a":1}', "500"];
    assert.deepEqual(
      await run((h) => {
        const d = Deno.serve({
          hostname: "127.0.0.1",
          port: 0,
          onListen() {},
          onError: () => new Response(null, { status: 500 }),
        }, h);
        return { port: d.addr.port, stop: () => d.shutdown() };
      }),
      expected,
      "Deno.serve",
    );
    const pier = (h: Handler) => {
      const s = start(h, { onError: () => new Response(null, { status: 500 }) });
      return { port: s.addr.port, stop: () => s.shutdown() };
    };
    // Pier answers a used body with a 500 of its own and says why in the log.
    const logged = logLines(
      await captureErrors(async () => {
        assert.deepEqual(await run(pier), expected, "Pier");
        setFastPaths(false);
        try {
          assert.deepEqual(await run(pier), expected, "Pier without the fast paths");
        } finally {
          setFastPaths(true);
        }
      }),
    );
    assert.equal(
      logged.filter((l) => l.includes("response body is not readable")).length,
      4,
      logged.join("\n"),
    );
  },
});

Deno.test({
  name: "header values are sent as ISO-8859-1 bytes, one byte per character",
  ...opts,
  async fn() {
    const s = start(() => new Response("x", { headers: { "x-name": "caf\u00e9" } }));
    try {
      const r = await exchange(s.addr.port, [GET()]);
      assert.ok(r.text.includes("x-name: caf\u00e9\r\n"), "0xE9 on the wire, not UTF-8's C3 A9");
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "string bodies: ASCII and UTF-8 get the right Content-Length, with plain or ISO-8859-1 heads",
  ...opts,
  async fn() {
    // Short ASCII answers take a one-call encoding path; anything else must fall back to byte-exact framing.
    const bodies: Record<string, [string, HeadersInit]> = {
      "/ascii": ["plain ascii", {}],
      "/utf8": ["h\u00e9llo \u2713 \u{1F600}", {}],
      "/latin1-head": ["plain", { "x-name": "caf\u00e9" }],
      "/both": ["\u00e9\u00e9", { "x-name": "caf\u00e9" }],
      "/long-utf8": ["\u00e9".repeat(5000), {}],
      // The plain path (200, a Content-Type at most): copied chars, the encoder, and its fallbacks.
      "/empty": ["", {}],
      "/nine": ["123456789", {}],
      "/ten": ["1234567890", {}],
      "/ascii-mid": ["x".repeat(100), {}],
      "/utf8-mid": ["\u00e9".repeat(100), {}],
      "/ascii-4096": ["y".repeat(4096), {}],
      "/ascii-4097": ["z".repeat(4097), {}],
      "/json": ['{"a":1}', { "content-type": "application/json" }],
      "/no-type": ["bare", {}],
    };
    const types: Record<string, string> = { "/json": "application/json" };
    const s = start((req) => {
      const path = new URL(req.url).pathname;
      const [body, headers] = bodies[path];
      const res = new Response(body, { headers });
      if (path === "/no-type") res.headers.delete("content-type");
      return res;
    });
    try {
      for (const [path, [body, headers]] of Object.entries(bodies)) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.addr.port });
        await conn.write(
          new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`),
        );
        const chunks: Uint8Array[] = [];
        const buf = new Uint8Array(65536);
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          chunks.push(buf.slice(0, n));
        }
        conn.close();
        const all = concatBytes(chunks);
        const split = all.findIndex((_, i) =>
          all[i] === 13 && all[i + 1] === 10 && all[i + 2] === 13 && all[i + 3] === 10
        );
        const head = String.fromCharCode(...all.subarray(0, split + 2));
        const expected = new TextEncoder().encode(body);
        assert.match(head, new RegExp(`content-length: ${expected.length}\r\n`), path);
        assert.deepEqual(all.subarray(split + 4), expected, `${path}: body bytes are UTF-8`);
        if ("x-name" in headers) assert.ok(head.includes("x-name: caf\u00e9"), `${path}: 0xE9 in the head`);
        const type = head.match(/^content-type: (.*)\r$/im)?.[1];
        if (path === "/no-type") assert.equal(type, undefined, `${path}: no Content-Type`);
        else assert.equal(type, types[path] ?? "text/plain;charset=UTF-8", `${path}: Content-Type`);
        assert.match(head, /^HTTP\/1\.1 200 OK\r\n/, path);
        assert.match(head, /^date: .+ GMT\r$/m, path);
        assert.match(head, /^connection: close\r$/m, path);
      }
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "info.completed resolves once the answer is written: fixed, streamed, pipelined, or the client left",
  ...opts,
  async fn() {
    const completions: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const s = start((req, info) => {
      const path = new URL(req.url).pathname;
      info.completed.then(() => completions.push(path));
      if (path === "/stream" || path === "/endless") {
        // The stream's first chunk goes out before it ends: completed must wait for the end.
        const body = new ReadableStream<Uint8Array>({
          async start(c) {
            c.enqueue(new TextEncoder().encode("first "));
            if (path === "/endless") return; // never ends: only the client leaving finishes it
            await gate;
            c.enqueue(new TextEncoder().encode("last"));
            c.close();
          },
        });
        return new Response(body);
      }
      return new Response(`ok ${path}`);
    });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.addr.port });
    try {
      const enc = new TextEncoder();
      const buf = new Uint8Array(4096);
      let seen = "";
      const readUntil = async (text: string) => {
        while (!seen.includes(text)) {
          const n = await conn.read(buf);
          if (n === null) throw new Error(`EOF before ${text}`);
          seen += new TextDecoder().decode(buf.subarray(0, n));
        }
      };
      await conn.write(enc.encode("GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n"));
      await readUntil("ok /b");
      await conn.write(enc.encode("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
      await readUntil("first ");
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(completions, ["/a", "/b"], "a stream half sent is not complete");
      release();
      await readUntil("last");
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(completions, ["/a", "/b", "/stream"]);
      // A stream that never ends: when its client leaves, the connection closes and completed resolves.
      await conn.write(enc.encode("GET /endless HTTP/1.1\r\nHost: t\r\n\r\n"));
      seen = "";
      await readUntil("first ");
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(completions, ["/a", "/b", "/stream"]);
      conn.close();
      for (let i = 0; i < 100 && completions.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(completions, ["/a", "/b", "/stream", "/endless"]);
    } finally {
      // A failed assertion must not leave a stream waiting: shutdown waits for answers in flight.
      release();
      try {
        conn.close();
      } catch { /* closed above */ }
      await s.shutdown();
    }
  },
});

Deno.test("importing mod.ts needs no permission, and serve() needs only --allow-net", async () => {
  const root = new URL("../..", import.meta.url).pathname;
  const script = `
    import { serve } from "${root}mod.ts";
    const s = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("ok"));
    const res = await fetch("http://127.0.0.1:" + s.addr.port + "/");
    console.log(await res.text());
    await s.shutdown();
  `;
  const importOnly = `import * as pier from "${root}mod.ts"; console.log(typeof pier.serve);`;
  const run = async (code: string, flags: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-prompt", "--config", `${root}deno.json`, ...flags, code],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, out: dec.decode(out.stdout).trim(), err: dec.decode(out.stderr) };
  };
  const a = await run(importOnly, []);
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, "function");
  const b = await run(script, ["--allow-net=127.0.0.1"]);
  assert.equal(b.code, 0, b.err);
  assert.equal(b.out, "ok");
  assert.doesNotMatch(b.err, /public API only/, "on the pinned Deno no fast-path warning");
});

Deno.test({
  name: "onRefused hears of every answer given without the handler, with the request line when known",
  ...opts,
  async fn() {
    const refusals: string[] = [];
    const s = start(() => new Response("ok"), {
      headerTimeoutMs: 600,
      methods: ["GET"],
      onRefused: (r) =>
        refusals.push(
          `${r.status} ${r.method ?? "-"} ${r.target ?? "-"} ${(r.remoteAddr as Deno.NetAddr).hostname}`,
        ),
    });
    try {
      await exchange(s.addr.port, ["GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n"]);
      await exchange(s.addr.port, [`FOO /x HTTP/1.1\r\nHost: t\r\n\r\n` + GET("/fine")]);
      await exchange(s.addr.port, ["GET /slow HTTP/1.1\r\n"], { quietMs: 2500 });
      assert.deepEqual(refusals, ["400 - - 127.0.0.1", "501 FOO /x 127.0.0.1", "408 - - 127.0.0.1"]);
    } finally {
      await s.shutdown();
    }
  },
});
