// Slowloris: 400 connections dribble a request head one byte every 2 s. The head timeout must close each
// within its bound (408, then close), while a normal keep-alive client meanwhile keeps a p99 under 100 ms.
import assert from "node:assert/strict";
import { serve } from "../../server/serve.ts";

const SLOW = 400;
const DRIBBLE_MS = 2000;
// The default head timeout is 20 s; 4 s exercises the same mechanism (a deadline set at the head's first
// byte, checked by the server's sweeper) and lets the test end in about 10 s.
const HEADER_TIMEOUT_MS = 4000;
/** The server checks deadlines on a 500 ms tick (serve.ts TICK_MS), and its clock is as coarse. */
const TICK_MS = 500;
/** Room for a busy 2-core machine to schedule the sweeper and our reads. */
const SLACK_MS = 1500;
const NORMAL_REQUESTS = 200;
const NORMAL_GAP_MS = 20;

const enc = new TextEncoder();
const dec = new TextDecoder();
// Longer than 4 s of dribbling can ever complete: the head never ends by itself.
const SLOW_HEAD = enc.encode(
  "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + "s".repeat(64) + "\r\n\r\n",
);

interface Slow {
  conn: Deno.TcpConn;
  firstByteAt: number;
  closedAt: number;
  reply: string;
  sent: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

/** Capture console.error and console.warn until `restore()`: timeouts are routine and must log nothing. */
function captureLogs(): { logged: string[]; restore: () => void } {
  const logged: string[] = [];
  const origError = console.error, origWarn = console.warn;
  console.error = console.warn = (...a: unknown[]) => logged.push(a.map(String).join(" "));
  return {
    logged,
    restore() {
      console.error = origError;
      console.warn = origWarn;
    },
  };
}

Deno.test("400 slowloris connections are closed by the head timeout while a normal client's p99 stays < 100 ms", async () => {
  const logged: string[] = [];
  const origError = console.error, origWarn = console.warn;
  console.error = console.warn = (...a: unknown[]) => logged.push(a.map(String).join(" "));
  const server = serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    headerTimeoutMs: HEADER_TIMEOUT_MS,
    idleTimeoutMs: 30_000, // longer than the test: only the head timeout may close the slow clients
  }, () => new Response("ok\n"));
  const port = server.addr.port;
  const slows: Slow[] = [];
  let normal: Deno.TcpConn | undefined;
  try {
    // Connect all, then send each its first byte: that starts its head timer.
    for (let i = 0; i < SLOW; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, SLOW - i) }, () => Deno.connect({ hostname: "127.0.0.1", port })),
      );
      for (const conn of batch) slows.push({ conn, firstByteAt: 0, closedAt: 0, reply: "", sent: 0 });
    }
    const readers = slows.map(async (s) => {
      const buf = new Uint8Array(1024);
      for (;;) {
        let n: number | null;
        try {
          n = await s.conn.read(buf);
        } catch {
          n = null; // a reset is a close too
        }
        if (n === null) break;
        s.reply += dec.decode(buf.subarray(0, n));
      }
      s.closedAt = performance.now();
    });
    const dribble = async (s: Slow) => {
      if (s.closedAt !== 0 || s.sent >= SLOW_HEAD.length) return;
      try {
        await s.conn.write(SLOW_HEAD.subarray(s.sent, s.sent + 1));
        if (s.sent++ === 0) s.firstByteAt = performance.now();
      } catch { /* closed by the server: the reader records it */ }
    };
    // First bytes spread over one dribble period (5 ms apart), so the close times sample every phase of
    // the server's sweeper tick; then each connection sends a byte every 2 s from its own start.
    const started = performance.now();
    const due = slows.map((_, k) => started + k * (DRIBBLE_MS / SLOW));
    let dribbling = true;
    const dribbler = (async () => {
      while (dribbling) {
        const now = performance.now();
        const writes: Promise<void>[] = [];
        slows.forEach((s, k) => {
          if (due[k] <= now) {
            due[k] += DRIBBLE_MS;
            writes.push(dribble(s));
          }
        });
        await Promise.all(writes);
        await sleep(5);
      }
    })();

    // Meanwhile a normal client on one keep-alive connection, across the moment the timeouts fire.
    await sleep(1000);
    normal = await Deno.connect({ hostname: "127.0.0.1", port });
    const latencies: number[] = [];
    const buf = new Uint8Array(4096);
    const req = enc.encode("GET /normal HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    for (let i = 0; i < NORMAL_REQUESTS; i++) {
      const t = performance.now();
      await normal.write(req);
      let text = "";
      while (!/\r\n\r\nok\n$/.test(text)) {
        const n = await normal.read(buf);
        assert.ok(n !== null, "the normal client's connection stays open");
        text += dec.decode(buf.subarray(0, n));
      }
      latencies.push(performance.now() - t);
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
      await sleep(NORMAL_GAP_MS);
    }
    const normalEnded = performance.now() - started;

    let giveUp: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(readers),
      new Promise((r) => giveUp = setTimeout(r, HEADER_TIMEOUT_MS + TICK_MS + SLACK_MS + 2000)),
    ]);
    clearTimeout(giveUp);
    dribbling = false;
    await dribbler;

    const open = slows.filter((s) => s.closedAt === 0).length;
    assert.equal(open, 0, `${open} slow connections still open well past the head timeout`);
    const after = slows.map((s) => s.closedAt - s.firstByteAt).sort((a, b) => a - b);
    const with408 = slows.filter((s) => /^HTTP\/1\.1 408 Request Timeout\r\n/.test(s.reply)).length;
    const other = slows.filter((s) => s.reply !== "" && !/^HTTP\/1\.1 408 /.test(s.reply));
    latencies.sort((a, b) => a - b);
    const p50 = percentile(latencies, 0.5), p99 = percentile(latencies, 0.99);
    console.log(
      `slow clients: ${SLOW} closed ${Math.round(after[0])}..${
        Math.round(after[after.length - 1])
      } ms after ` +
        `their first byte (median ${
          Math.round(percentile(after, 0.5))
        }; head timeout ${HEADER_TIMEOUT_MS}); ` +
        `${with408} got a 408; normal client: ${NORMAL_REQUESTS} requests over ${
          Math.round(normalEnded)
        } ms, ` +
        `p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${
          latencies[latencies.length - 1].toFixed(2)
        } ms`,
    );
    assert.deepEqual(other.map((s) => s.reply.slice(0, 40)), [], "a slow client gets nothing but a 408");
    // The server's clock may lag by a tick when it sets the deadline, so the earliest close is one tick early.
    assert.ok(after[0] >= HEADER_TIMEOUT_MS - TICK_MS - 50, `closed too early: ${after[0]} ms`);
    assert.ok(
      after[after.length - 1] <= HEADER_TIMEOUT_MS + TICK_MS + SLACK_MS,
      `closed too late: ${after[after.length - 1]} ms`,
    );
    assert.ok(with408 >= SLOW * 0.9, `only ${with408} of ${SLOW} slow clients saw the 408`);
    assert.ok(p99 < 100, `the normal client's p99 is ${p99} ms`);
    assert.deepEqual(logged, [], "timeouts are routine: nothing is logged");
  } finally {
    console.error = origError;
    console.warn = origWarn;
    for (const s of slows) {
      try {
        s.conn.close();
      } catch { /* closed */ }
    }
    try {
      normal?.close();
    } catch { /* closed */ }
    await server.shutdown();
  }
});

Deno.test("a client that dribbles its body is dropped by the body timeout, and the handler's read fails", async () => {
  const logs = captureLogs();
  const outcomes: string[] = [];
  const server = serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, bodyTimeoutMs: 1000 },
    async (req) => {
      try {
        await req.arrayBuffer();
        outcomes.push("read");
      } catch (e) {
        outcomes.push((e as Error).name);
      }
      return new Response("done\n");
    },
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    const t0 = performance.now();
    await conn.write(enc.encode("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc"));
    // Silence after 3 bytes: no progress for longer than the body timeout.
    const buf = new Uint8Array(1024);
    let text = "";
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += dec.decode(buf.subarray(0, n));
    }
    const closedAfter = performance.now() - t0;
    console.log(`slow body: closed ${Math.round(closedAfter)} ms after the last byte (body timeout 1000 ms)`);
    assert.ok(
      closedAfter >= 1000 - TICK_MS - 50 && closedAfter <= 1000 + TICK_MS + SLACK_MS,
      `${closedAfter} ms`,
    );
    assert.equal(text, "", "no answer to a request whose body never came");
    assert.deepEqual(outcomes, ["ClientGone"]);
  } finally {
    conn.close();
    await server.shutdown();
    logs.restore();
  }
  assert.deepEqual(logs.logged, [], "nothing is logged");
});

Deno.test("a client that stops reading a streamed answer is dropped by the write timeout, and the stream cancelled", async () => {
  const logs = captureLogs();
  let cancelled = false, pulls = 0;
  const server = serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, writeTimeoutMs: 1000 },
    () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            pulls++;
            controller.enqueue(new Uint8Array(64 * 1024).fill(0x63));
          },
          cancel() {
            cancelled = true;
          },
        }, { highWaterMark: 0 }),
      ),
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await conn.write(enc.encode("GET /endless HTTP/1.1\r\nHost: a\r\n\r\n"));
    const buf = new Uint8Array(1024);
    assert.ok((await conn.read(buf)) !== null, "the answer starts");
    // Then never read again: the socket buffers fill, the server's write stalls.
    const t0 = performance.now();
    while (!cancelled && performance.now() - t0 < 10_000) await sleep(50);
    const after = performance.now() - t0;
    console.log(
      `slow reader: stream cancelled ${
        Math.round(after)
      } ms after the client stopped reading (${pulls} pulls)`,
    );
    assert.ok(cancelled, "the stream was cancelled");
    // Filling the socket buffers takes a moment before the write stalls and the timer starts.
    assert.ok(after <= 1000 + TICK_MS + SLACK_MS + 1000, `${after} ms`);
  } finally {
    conn.close();
    await server.shutdown();
    logs.restore();
  }
  assert.deepEqual(logs.logged, [], "nothing is logged");
});
