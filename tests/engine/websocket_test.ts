// WebSocket through serve() with Deno's own WebSocket client: the handshake, text and binary echo, the close
// handshake from either side, and the handshake's refusals.
import assert from "node:assert/strict";
import { serve, upgradeWebSocket, upgradeWebSocketStream } from "../../mod.ts";

function echoServer(options: Parameters<typeof upgradeWebSocket>[1] = {}) {
  const closes: CloseEvent[] = [];
  const server = serve({ port: 0, onListen() {} }, (request) => {
    const { socket, response } = upgradeWebSocket(request, options);
    socket.onmessage = (e) => socket.send(e.data);
    socket.onclose = (e) => closes.push(e);
    return response;
  });
  return { server, closes, url: `ws://127.0.0.1:${server.addr.port}/` };
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (e) => reject(new Error(`client error: ${(e as ErrorEvent).message}`));
  });
}

function closed(ws: WebSocket): Promise<CloseEvent> {
  return new Promise((resolve) => ws.addEventListener("close", (e) => resolve(e as CloseEvent)));
}

Deno.test("upgradeWebSocket() echoes text and binary to Deno's WebSocket client, and closes cleanly", async () => {
  const { server, closes, url } = echoServer();
  try {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    await opened(ws);
    const got: unknown[] = [];
    const all = new Promise<void>((resolve) => {
      ws.onmessage = (e) => {
        got.push(e.data);
        if (got.length === 4) resolve();
      };
    });
    ws.send("hello");
    ws.send(new Uint8Array([1, 2, 3]));
    ws.send("é".repeat(40_000)); // two-byte characters, 80,000 bytes: a 64-bit length
    ws.send(new Uint8Array(200_000).fill(7));
    await all;
    assert.equal(got[0], "hello");
    assert.deepEqual(new Uint8Array(got[1] as ArrayBuffer), new Uint8Array([1, 2, 3]));
    assert.equal(got[2], "é".repeat(40_000));
    assert.deepEqual(new Uint8Array(got[3] as ArrayBuffer), new Uint8Array(200_000).fill(7));
    const done = closed(ws);
    ws.close(4000, "bye");
    const event = await done;
    assert.equal(event.code, 4000);
    assert.equal(event.wasClean, true);
    while (closes.length === 0) await new Promise((r) => setTimeout(r, 10));
    assert.equal(closes[0].code, 4000);
    assert.equal(closes[0].reason, "bye");
    assert.equal(closes[0].wasClean, true);
  } finally {
    await server.shutdown();
  }
});

/** A raw TCP client: the handshake with `headers`, then whatever the test reads and writes. */
async function rawHandshake(port: number, extra = "", version = "13") {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: ${version}\r\n${extra}\r\n`,
  ));
  return conn;
}

/** Read from `conn` until `done(bytes)` or EOF or `ms`; everything read. */
async function readUntil(conn: Deno.Conn, done: (b: Uint8Array) => boolean, ms = 5000): Promise<Uint8Array> {
  let all = new Uint8Array(0);
  const deadline = Date.now() + ms;
  const buf = new Uint8Array(65536);
  while (!done(all) && Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"t">((r) => timer = setTimeout(() => r("t"), deadline - Date.now())),
    ]);
    clearTimeout(timer);
    if (n === "t" || n === null) break;
    const next = new Uint8Array(all.length + n);
    next.set(all);
    next.set(buf.subarray(0, n), all.length);
    all = next;
  }
  return all;
}

const headEnd = (b: Uint8Array) => new TextDecoder().decode(b).indexOf("\r\n\r\n");

Deno.test("a handler without try/catch answers 426 with Sec-WebSocket-Version: 13 to another version", async () => {
  const { server } = echoServer();
  try {
    const conn = await rawHandshake(server.addr.port, "", "8");
    const bytes = await readUntil(conn, (b) => headEnd(b) >= 0);
    conn.close();
    const head = new TextDecoder().decode(bytes);
    assert.match(head, /^HTTP\/1\.1 426 /);
    assert.match(head, /\r\nsec-websocket-version: 13\r\n/i);
  } finally {
    await server.shutdown();
  }
});

Deno.test("idleTimeout: a silent client is pinged, then closed with 1001 when it does not answer", async () => {
  const { server, closes } = echoServer({ idleTimeout: 1 });
  try {
    const conn = await rawHandshake(server.addr.port);
    const started = Date.now();
    // The 101, then a ping (0x89, empty) about a second later, then a close frame with 1001.
    const bytes = await readUntil(conn, (b) => {
      const at = headEnd(b);
      return at >= 0 && b.length >= at + 4 + 2 + 4 && b[at + 6] === 0x88;
    }, 6000);
    conn.close();
    const at = headEnd(bytes) + 4;
    assert.deepEqual([...bytes.subarray(at, at + 2)], [0x89, 0x00], "a ping");
    assert.equal(bytes[at + 2], 0x88, "then a close frame");
    assert.equal(bytes[at + 4] << 8 | bytes[at + 5], 1001);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1500 && elapsed < 4500, `closed after ${elapsed} ms`);
    while (closes.length === 0) await new Promise((r) => setTimeout(r, 10));
    assert.equal(closes[0].code, 1001);
    assert.equal(closes[0].wasClean, false);
  } finally {
    await server.shutdown();
  }
});

Deno.test("Deno's WebSocket answers pings: an idle socket that answers stays open past idleTimeout", async () => {
  const { server, url } = echoServer({ idleTimeout: 1 });
  try {
    const ws = new WebSocket(url);
    await opened(ws);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(ws.readyState, WebSocket.OPEN);
    const echoed = new Promise((r) => ws.onmessage = (e) => r(e.data));
    ws.send("still here");
    assert.equal(await echoed, "still here");
    const done = closed(ws);
    ws.close(1000);
    await done;
  } finally {
    await server.shutdown();
  }
});

Deno.test("upgradeWebSocketStream: write() waits for the socket, so a client that never reads holds it back", async () => {
  let resolved = 0;
  let total = 0;
  const server = serve({ port: 0, onListen() {} }, (request) => {
    const { stream, response } = upgradeWebSocketStream(request, { compress: false });
    stream.opened.then(async ({ writable }) => {
      const writer = writable.getWriter();
      const message = new Uint8Array(64 * 1024);
      for (let i = 0; i < 10_000; i++) {
        total++;
        await writer.write(message);
        resolved++;
      }
    }).catch(() => {});
    return response;
  });
  try {
    const conn = await rawHandshake(server.addr.port);
    await readUntil(conn, (b) => headEnd(b) >= 0);
    await new Promise((r) => setTimeout(r, 1000));
    const first = resolved;
    await new Promise((r) => setTimeout(r, 500));
    // The socket buffers hold a few megabytes at most: the writes stopped there, one waits.
    assert.ok(first < 200, `${first} writes of 64 KiB resolved for a client that reads nothing`);
    assert.equal(resolved, first, "no progress while the client does not read");
    assert.equal(total, resolved + 1);
    conn.close();
  } finally {
    await server.shutdown();
  }
});
