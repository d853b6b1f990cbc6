// Clients that vanish mid-head, mid-body, mid-upload and mid-download: the server releases what the request
// held (its connection, the handler's body read, temporary files, the response stream and its open file),
// logs nothing, and serves the next client. Deno's op and resource sanitizers stay on for every test.
import assert from "node:assert/strict";
import { serve } from "../../server/serve.ts";
import { parseMultipart } from "../../server/body.ts";
import { serveStatic } from "../../server/static.ts";
import type { Handler } from "../../server/types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with true when `cond()` holds, polling; false after `ms`. */
async function waitFor(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await cond()) return true;
    await sleep(10);
  }
  return await cond();
}

/** Reject after `ms`, naming what did not happen. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
    ),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Run `fn` against a fresh server, with console.error and console.warn captured. Afterwards a normal
 * request must still be served, nothing may have been logged, and shutdown must finish promptly: a
 * connection the server never released would hold it (its head or body timer is 20-30 s by default).
 */
async function withServer(handler: Handler, fn: (port: number) => Promise<void>): Promise<void> {
  const logged: string[] = [];
  const origError = console.error, origWarn = console.warn;
  console.error = console.warn = (...a: unknown[]) => logged.push(a.map(String).join(" "));
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req, info) => {
    if (new URL(req.url).pathname === "/health") return new Response("up\n");
    return handler(req, info);
  });
  let failure: unknown = null;
  try {
    await fn(server.addr.port);
    const reply = await roundTrip(
      server.addr.port,
      "GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert.match(reply, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nup\n$/, "the server serves the next client");
  } catch (e) {
    failure = e;
  }
  try {
    await within(server.shutdown(), 2000, "shutdown (a connection was not released)");
  } catch (e) {
    failure ??= e; // the first failure is the one that explains the rest
  } finally {
    console.error = origError;
    console.warn = origWarn;
  }
  if (failure !== null) throw failure;
  assert.deepEqual(logged, [], "a client going away is routine: nothing is logged");
}

/** Send `raw`, read until the server closes. */
async function roundTrip(port: number, raw: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(enc.encode(raw));
    let text = "";
    const buf = new Uint8Array(4096);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += dec.decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

/** Connect, send `bytes`, let the server take them in, and hang up. */
async function sendAndVanish(port: number, bytes: Uint8Array | string, settleMs = 50): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(typeof bytes === "string" ? enc.encode(bytes) : bytes);
  await sleep(settleMs);
  conn.close();
}

/**
 * A handler that reads the whole body and records how that went; with `waitAbortMs`, it then waits that
 * long for request.signal to abort (the server knows the client is gone once the body read failed).
 */
function bodyReader(waitAbortMs = 0) {
  const outcomes: { error: string | null; aborted: boolean }[] = [];
  const handler: Handler = async (req) => {
    let error: string | null = null;
    try {
      await req.arrayBuffer();
    } catch (e) {
      error = (e as Error).name;
    }
    if (waitAbortMs > 0) await waitFor(() => req.signal.aborted, waitAbortMs);
    outcomes.push({ error, aborted: req.signal.aborted });
    return new Response("read\n");
  };
  return { outcomes, handler };
}

const CL_HEAD = "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n";
const CHUNKED_HEAD = "POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
const CL_CUTS = [CL_HEAD, CL_HEAD + "x".repeat(30000)];
const CHUNKED_CUTS = [
  CHUNKED_HEAD,
  CHUNKED_HEAD + "4000\r\n" + "y".repeat(5000), // inside chunk data
  CHUNKED_HEAD + "10\r\n0123456789abcdef\r\n1f", // inside a chunk-size line
  CHUNKED_HEAD + "10\r\n0123456789abcdef\r\n0\r\nTrailer: x", // inside the trailers
];

Deno.test("a client that vanishes mid-head is released at once, and nothing is logged", async () => {
  let calls = 0;
  await withServer(() => {
    calls++;
    return new Response("never\n");
  }, async (port) => {
    for (
      const partial of [
        "G",
        "GET /mid-request-line",
        "GET /a HTTP/1.1\r",
        "GET /a HTTP/1.1\r\nHost: a\r\nX-Half: va",
        "GET /a HTTP/1.1\r\nHost: a\r\n\r",
        // A complete request, then half of a pipelined second one.
        "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHo",
      ]
    ) await sendAndVanish(port, partial);
  });
  assert.equal(calls, 1, "only the complete request reached the handler");
});

for (const [framing, cuts] of [["Content-Length", CL_CUTS], ["chunked", CHUNKED_CUTS]] as const) {
  Deno.test(`a client that vanishes mid-body (${framing}) fails the handler's body read, quietly`, async () => {
    const { outcomes, handler } = bodyReader();
    await withServer(handler, async (port) => {
      for (const cut of cuts) await sendAndVanish(port, cut);
      assert.ok(await waitFor(() => outcomes.length === cuts.length, 2000), "every handler finished");
    });
    assert.deepEqual(outcomes.map((o) => o.error), cuts.map(() => "ClientGone"));
  });

  Deno.test({
    name: `a client that vanishes mid-body (${framing}) aborts request.signal while the handler still runs`,
    async fn() {
      const { outcomes, handler } = bodyReader(1000);
      await withServer(handler, async (port) => {
        for (const cut of cuts) await sendAndVanish(port, cut);
        assert.ok(await waitFor(() => outcomes.length === cuts.length, 5000), "every handler finished");
      });
      assert.deepEqual(outcomes, cuts.map(() => ({ error: "ClientGone", aborted: true })));
    },
  });
}

Deno.test("a client that vanishes mid-body while the handler ignores the body leaves nothing behind", async () => {
  let calls = 0;
  await withServer(() => {
    calls++;
    return new Response("not reading\n");
  }, async (port) => {
    await sendAndVanish(
      port,
      "POST /ignored HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + "z".repeat(1000),
    );
    await sendAndVanish(
      port,
      "POST /ignored HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nab",
    );
  });
  assert.equal(calls, 2);
});

// --- uploads ------------------------------------------------------------------------------------------

const BOUNDARY = "----PierDisconnect";

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names;
}

for (const framing of ["content-length", "chunked"] as const) {
  Deno.test(`a client that vanishes mid-upload (${framing}) leaves no temporary file`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "pier_disconnect_upload_" });
    const results: string[] = [];
    try {
      await withServer(async (req) => {
        try {
          const r = await parseMultipart(req.body!, BOUNDARY, { uploadDir: dir });
          results.push(`parsed ${r.files.length} files`);
        } catch (e) {
          results.push(`${(e as Error).name} ${(e as { status?: number }).status}`);
        }
        return new Response("done\n");
      }, async (port) => {
        const partBody = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n` +
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n` +
          `Content-Type: application/octet-stream\r\n\r\n` + "F".repeat(256 * 1024);
        const head =
          `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n`;
        const raw = framing === "chunked"
          ? `${head}Transfer-Encoding: chunked\r\n\r\n${partBody.length.toString(16)}\r\n${partBody}\r\n`
          : `${head}Content-Length: ${partBody.length + 10 * 1024 * 1024}\r\n\r\n${partBody}`;
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await conn.write(enc.encode(raw));
          // Hang up only once the file is being written: mid-upload, not before it.
          assert.ok(
            await waitFor(async () => (await listDir(dir)).length > 0, 2000),
            "the upload started a file",
          );
        } finally {
          conn.close();
        }
        assert.ok(await waitFor(() => results.length === 1, 2000), "the handler finished");
      });
      assert.deepEqual(results, ["HttpError 400"], "the cut-short body is a 400 inside the handler");
      assert.deepEqual(await listDir(dir), [], "no partial file stays on disk");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

// --- downloads ----------------------------------------------------------------------------------------

/**
 * Descriptors of this process open on `path`, counted by `find` over /proc/PID/fd (Deno itself needs
 * --allow-all to read /proc/self/fd). Linux only, as CI is.
 */
async function openDescriptors(path: string): Promise<number> {
  const { code, stdout, stderr } = await new Deno.Command("find", {
    args: [`/proc/${Deno.pid}/fd`, "-lname", path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  // find may warn about the descriptor it used for its own listing vanishing; that is not ours.
  const err = dec.decode(stderr).split("\n").filter((l) => l !== "" && !/No such file/.test(l));
  assert.ok(code === 0 || err.length === 0, `find failed: ${err.join("; ")}`);
  return dec.decode(stdout).split("\n").filter((l) => l !== "").length;
}

/** A big file streamed from disk by a response body whose cancel closes it, as a static file server does. */
function fileStreamer(path: string) {
  const state = { opened: 0, cancelled: 0, closed: 0, aborted: 0, pulls: 0 };
  const handler: Handler = async (req) => {
    const file = await Deno.open(path, { read: true });
    state.opened++;
    req.signal.addEventListener("abort", () => state.aborted++);
    const close = () => {
      file.close();
      state.closed++;
    };
    const size = (await file.stat()).size;
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          state.pulls++;
          const buf = new Uint8Array(64 * 1024);
          const n = await file.read(buf);
          if (n === null) {
            close();
            controller.close();
          } else controller.enqueue(buf.subarray(0, n));
        },
        cancel() {
          state.cancelled++;
          close();
        },
      }, { highWaterMark: 0 }),
      { headers: { "content-length": String(size), "content-type": "application/octet-stream" } },
    );
  };
  return { state, handler };
}

Deno.test("a client that vanishes mid-download gets the response stream cancelled and its file closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier_disconnect_download_" });
  const path = await Deno.realPath(dir) + "/big.bin";
  await Deno.writeFile(path, new Uint8Array(32 * 1024 * 1024).fill(0x61));
  const { state, handler } = fileStreamer(path);
  try {
    await withServer(handler, async (port) => {
      // One client reads 256 KiB then hangs up; the other never reads at all.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(enc.encode("GET /big HTTP/1.1\r\nHost: a\r\n\r\n"));
      let got = 0;
      const buf = new Uint8Array(64 * 1024);
      while (got < 256 * 1024) {
        const n = await conn.read(buf);
        assert.ok(n !== null);
        got += n;
      }
      // At least 1: Deno dups the descriptor for each read in flight on its blocking pool.
      assert.ok(await openDescriptors(path) >= 1, "the file is open while it streams");
      conn.close();
      assert.ok(await waitFor(() => state.cancelled === 1, 3000), "the stream was cancelled");
      await sendAndVanish(port, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", 200);
      assert.ok(await waitFor(() => state.cancelled === 2, 3000), "the second stream was cancelled");
    });
    assert.equal(state.opened, 2);
    assert.equal(state.closed, 2, "every file the handlers opened was closed");
    assert.ok(
      await waitFor(async () => await openDescriptors(path) === 0, 1000),
      "no descriptor stays open on the file",
    );
    assert.equal(state.aborted, 2, "request.signal was aborted for both");
    assert.ok(state.pulls < 400, `the server stopped pulling (${state.pulls} pulls of 64 KiB)`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a client that vanishes while the response stream is idle gets it cancelled promptly",
  async fn() {
    const state = { cancelled: 0, aborted: 0 };
    await withServer((req) => {
      req.signal.addEventListener("abort", () => state.aborted++);
      // An event stream that sends one event, then waits for news that never comes (as SSE does).
      return new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(enc.encode("data: hello\n\n"));
          },
          cancel() {
            state.cancelled++;
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }, async (port) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(enc.encode("GET /events HTTP/1.1\r\nHost: a\r\n\r\n"));
      const buf = new Uint8Array(4096);
      let text = "";
      while (!text.includes("data: hello")) text += dec.decode(buf.subarray(0, (await conn.read(buf)) ?? 0));
      conn.close();
      assert.ok(await waitFor(() => state.cancelled === 1, 2000), "the idle stream was cancelled");
      assert.equal(state.aborted, 1, "request.signal was aborted");
    });
  },
});

Deno.test({
  name: "a client that vanishes while the handler is still working gets request.signal aborted",
  async fn() {
    let aborted = false;
    let release!: () => void;
    const released = new Promise<void>((r) => release = r);
    await withServer(async (req) => {
      req.signal.addEventListener("abort", () => {
        aborted = true;
        release();
      });
      // A slow handler (a long query, say) that gives up when the client does, or after 3 s.
      await Promise.race([released, sleep(3000)]);
      return new Response("late\n");
    }, async (port) => {
      await sendAndVanish(port, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
      assert.ok(await waitFor(() => aborted, 2000), "request.signal aborted within 2 s of the hang-up");
    });
  },
});

Deno.test("a client that vanishes during a large in-memory answer, or a deep pipeline it never reads, is quiet", async () => {
  const big = new Uint8Array(8 * 1024 * 1024).fill(0x62);
  let served = 0;
  await withServer((req) => {
    served++;
    return new URL(req.url).pathname === "/big" ? new Response(big) : new Response("small answer\n");
  }, async (port) => {
    await sendAndVanish(port, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", 100);
    await sendAndVanish(port, "GET /small HTTP/1.1\r\nHost: a\r\n\r\n".repeat(2000), 100);
    assert.ok(await waitFor(() => served >= 2, 2000), "the server answered both before they hung up");
  });
});

Deno.test("a client that vanishes mid-download of a static file (serveStatic) leaves the file closed", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "pier_disconnect_static_" }));
  const path = `${dir}/movie.bin`;
  // Larger than the static cache takes (256 KiB per file by default), so it streams from disk.
  await Deno.writeFile(path, new Uint8Array(16 * 1024 * 1024).fill(0x6d));
  try {
    await withServer(serveStatic(dir), async (port) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(enc.encode("GET /movie.bin HTTP/1.1\r\nHost: a\r\n\r\n"));
      const buf = new Uint8Array(64 * 1024);
      let got = "";
      while (!got.includes("\r\n\r\n")) got += dec.decode(buf.subarray(0, (await conn.read(buf)) ?? 0));
      assert.match(got, /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 16777216\r\n/i);
      assert.ok(await openDescriptors(path) >= 1, "the file is open while it streams");
      conn.close();
      // Sanitizers would also catch the file left open at the end of the test.
      assert.ok(await waitFor(async () => await openDescriptors(path) === 0, 3000), "the file was closed");
      await sendAndVanish(port, "GET /movie.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=1000-\r\n\r\n", 100);
      assert.ok(
        await waitFor(async () => await openDescriptors(path) === 0, 3000),
        "the ranged file was closed",
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a client that vanishes around a 100 Continue (before it, or after it without the body) is quiet", async () => {
  const { outcomes, handler } = bodyReader();
  await withServer(handler, async (port) => {
    const head = "POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n";
    // Gone before the handler asks for the body (so before any 100 could be sent).
    await sendAndVanish(port, head, 0);
    // Gone right after reading the 100 Continue, without sending a byte of body.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(enc.encode(head));
    const buf = new Uint8Array(1024);
    let text = "";
    while (!text.includes("\r\n\r\n")) text += dec.decode(buf.subarray(0, (await conn.read(buf)) ?? 0));
    assert.equal(text, "HTTP/1.1 100 Continue\r\n\r\n");
    conn.close();
    assert.ok(await waitFor(() => outcomes.length === 2, 2000), "both handlers finished");
  });
  assert.deepEqual(outcomes.map((o) => o.error), ["ClientGone", "ClientGone"]);
});
