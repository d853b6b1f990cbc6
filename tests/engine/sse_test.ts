// sse() on Pier's engine over real sockets: the head and framing a client sees, each event on the wire before
// the next is made (no buffering anywhere), Last-Event-ID, Deno's fetch reading the stream, and the two ways
// a client goes: one that leaves (the handler is told at once) and one that stops reading (send() waits, the
// memory it holds is bounded, and the write timeout drops it). Chromium and nginx: sse_browser_test.ts.
import assert from "node:assert/strict";
import { serve } from "../../server/serve.ts";
import { type EventStream, sse } from "../../server/sse.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
/** The server checks deadlines on a 500 ms tick (serve.ts TICK_MS). */
const TICK_MS = 500;
/** Room for a busy 2-core machine. */
const SLACK_MS = 1500;

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

/** A raw client: send a request head, then read the answer as text until `until` holds. */
class RawClient {
  readonly #conn: Deno.TcpConn;
  #buf = new Uint8Array(64 * 1024);
  text = "";
  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }
  static async open(port: number, head: string): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(enc.encode(head));
    return new RawClient(conn);
  }
  async readUntil(until: (text: string) => boolean, ms = 5000): Promise<string> {
    const end = performance.now() + ms;
    while (!until(this.text)) {
      if (performance.now() > end) throw new Error(`not read within ${ms} ms; so far: ${this.text}`);
      const n = await this.#conn.read(this.#buf);
      if (n === null) break;
      this.text += dec.decode(this.#buf.subarray(0, n), { stream: true });
    }
    return this.text;
  }
  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

/** Run `fn` against a Pier server answering every request with sse(request, handler). */
async function withEvents(
  handler: (stream: EventStream, request: Request) => unknown,
  fn: (port: number) => Promise<void>,
  serveOptions: { writeTimeoutMs?: number } = {},
): Promise<void> {
  const server = serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, ...serveOptions },
    (request) => sse(request, (stream) => handler(stream, request)),
  );
  try {
    await fn(server.addr.port);
  } finally {
    await server.shutdown();
  }
}

Deno.test("sse on Pier: a chunked text/event-stream whose every event is on the wire before the next is made", async () => {
  let next!: () => void;
  const handlerDone = Promise.withResolvers<void>();
  await withEvents(async (stream) => {
    for (let i = 1; i <= 3; i++) {
      await new Promise<void>((r) => next = r);
      await stream.send({ event: "step", id: i, data: `step ${i}\nsecond line` });
    }
    handlerDone.resolve();
  }, async (port) => {
    const client = await RawClient.open(port, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n");
    try {
      // The head goes out at once, before any event: the browser's EventSource opens.
      const head = await client.readUntil((t) => t.includes("\r\n\r\n"));
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(head, /\r\ncontent-type: text\/event-stream\r\n/);
      assert.match(head, /\r\ncache-control: no-store\r\n/);
      assert.match(head, /\r\ntransfer-encoding: chunked\r\n/);
      assert.doesNotMatch(head, /content-length|content-encoding/i);
      for (let i = 1; i <= 3; i++) {
        next();
        // Nothing else is sent until the test reads this event: it was written on its own.
        await client.readUntil((t) => t.includes(`data: step ${i}\ndata: second line\n\n`));
      }
      await within(handlerDone.promise, 2000, "the handler finished");
      // The handler returned: the chunked body ends, and the connection stays for another request.
      await client.readUntil((t) => t.endsWith("0\r\n\r\n"));
    } finally {
      client.close();
    }
  });
});

Deno.test("sse on Pier: Last-Event-ID reaches the handler, which resumes after it", async () => {
  await withEvents(async (stream) => {
    const from = Number(stream.lastEventId ?? 0);
    for (let id = from + 1; id <= from + 2; id++) await stream.send({ id, data: String(id) });
  }, async (port) => {
    const client = await RawClient.open(port, "GET /events HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 41\r\n\r\n");
    try {
      // (A stream this short ends before the writer has to wait: it may go out with a Content-Length.)
      const text = await client.readUntil((t) => t.includes("data: 43\n\n"));
      assert.match(text, /id: 42\ndata: 42\n\n/);
      assert.match(text, /id: 43\ndata: 43\n\n/);
      assert.doesNotMatch(text, /id: 41\n/);
    } finally {
      client.close();
    }
  });
});

Deno.test("sse on Pier: Deno's fetch reads the events as they come", async () => {
  let next!: () => void;
  await withEvents(async (stream) => {
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((r) => next = r);
      await stream.send({ data: `n${i}` });
    }
  }, async (port) => {
    const response = await fetch(`http://127.0.0.1:${port}/events`, {
      headers: { accept: "text/event-stream" },
    });
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    for (let i = 0; i < 3; i++) {
      next();
      while (!text.includes(`data: n${i}\n\n`)) text += (await reader.read()).value ?? "";
    }
    assert.equal((await reader.read()).done, true);
  });
});

Deno.test("sse on Pier: a client that leaves ends the stream at once, even while it is idle", async () => {
  const ended = Promise.withResolvers<number>();
  let leftAt = 0;
  await withEvents(async (stream) => {
    await stream.send({ data: "hello" });
    // Idle until the client goes: the heartbeat is 15 s away, so only the engine can tell.
    await stream.finished;
    ended.resolve(performance.now() - leftAt);
  }, async (port) => {
    const client = await RawClient.open(port, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n");
    await client.readUntil((t) => t.includes("data: hello\n\n"));
    leftAt = performance.now();
    client.close();
    const after = await within(ended.promise, 2000, "the stream ended");
    console.log(`the stream ended ${after.toFixed(1)} ms after the client left`);
  });
});

Deno.test("sse on Pier: a client that stops reading makes send() wait, holds bounded memory, and is dropped by the write timeout", async () => {
  const WRITE_TIMEOUT_MS = 1000;
  const EVENT = "e".repeat(16 * 1024);
  const state = { accepted: 0, lastAcceptedAt: 0, endedAt: 0, reason: undefined as unknown };
  const ended = Promise.withResolvers<void>();
  await withEvents(async (stream) => {
    // As fast as the client allows: each send() resolves once the queue has room.
    while (await stream.send({ data: EVENT })) {
      state.accepted += EVENT.length;
      state.lastAcceptedAt = performance.now();
    }
    state.endedAt = performance.now();
    state.reason = stream.signal.reason;
    ended.resolve();
  }, async (port) => {
    const client = await RawClient.open(port, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n");
    try {
      await client.readUntil((t) => t.includes("data: eee"));
      // Then never read again: the socket buffers fill, the server's write stalls, send() waits.
      await within(ended.promise, 15_000, "the stalled client was dropped");
    } finally {
      client.close();
    }
  }, { writeTimeoutMs: WRITE_TIMEOUT_MS });
  const stalledFor = state.endedAt - state.lastAcceptedAt;
  const mib = state.accepted / 1024 / 1024;
  console.log(
    `stalled client: ${mib.toFixed(1)} MiB accepted before send() waited, ` +
      `dropped ${Math.round(stalledFor)} ms after the last accepted send`,
  );
  // What the kernel's socket buffers hold on loopback (a few MiB each way) and the stream's 1 MiB cap: the
  // handler cannot get further ahead of a client that reads nothing.
  assert.ok(mib < 64, `${mib} MiB accepted`);
  assert.ok(stalledFor >= WRITE_TIMEOUT_MS - TICK_MS, `dropped too early: ${stalledFor} ms`);
  assert.ok(stalledFor <= WRITE_TIMEOUT_MS + TICK_MS + SLACK_MS, `dropped too late: ${stalledFor} ms`);
  // The engine's write timeout closed the connection (it acts before the stream's own 30 s one).
  assert.equal((state.reason as Error).name, "AbortError", String(state.reason));
});

Deno.test("sse on Deno.serve: the helper's own write timeout drops a client that stops reading", async () => {
  const WRITE_TIMEOUT_MS = 1000;
  const EVENT = "e".repeat(16 * 1024);
  const state = { accepted: 0, lastAcceptedAt: 0, endedAt: 0, reason: undefined as unknown };
  const ended = Promise.withResolvers<void>();
  // Deno.serve has no write timeout of its own: only the stream's can tell that the client stopped.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      sse(request, async (stream) => {
        while (await stream.send({ data: EVENT })) {
          state.accepted += EVENT.length;
          state.lastAcceptedAt = performance.now();
        }
        state.endedAt = performance.now();
        state.reason = stream.signal.reason;
        ended.resolve();
      }, { writeTimeoutMs: WRITE_TIMEOUT_MS }),
  );
  const client = await RawClient.open(server.addr.port, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n");
  try {
    await client.readUntil((t) => t.includes("data: eee"));
    await within(ended.promise, 15_000, "the stalled client was dropped");
  } finally {
    client.close();
    await server.shutdown();
  }
  const stalledFor = state.endedAt - state.lastAcceptedAt;
  const mib = state.accepted / 1024 / 1024;
  console.log(`Deno.serve: ${mib.toFixed(1)} MiB accepted, dropped ${Math.round(stalledFor)} ms after`);
  assert.ok(mib < 64, `${mib} MiB accepted`);
  assert.match(String(state.reason), /nothing taken for 1000 ms/);
  assert.ok(stalledFor >= WRITE_TIMEOUT_MS - 50, `dropped too early: ${stalledFor} ms`);
  assert.ok(stalledFor <= WRITE_TIMEOUT_MS + SLACK_MS, `dropped too late: ${stalledFor} ms`);
});
