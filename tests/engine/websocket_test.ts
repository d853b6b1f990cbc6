// WebSocket through serve() with Deno's own WebSocket client: the handshake, text and binary echo, the close
// handshake from either side, and the handshake's refusals.
import assert from "node:assert/strict";
import { serve, upgradeWebSocket } from "../../mod.ts";

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
