// Pier's WebSocket server (tests/fixtures/websocket_echo_server.ts, its own process with --allow-net only)
// driven by clients nobody here wrote: Node's `ws` package (run under Deno, which has the permissions it
// needs), Debian's python3-websockets, Chromium (through playwright-core), also over TLS. CI installs all
// of them (.ci/run), so none of these tests skips.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
// ws ships no types: the part of its API used here is typed below.
import WsClient from "ws";
import { launchChromium } from "../fixtures/chromium.ts"; // playwright-core behind its guard
import type { Browser } from "playwright-core";
import { makeCert } from "../fixtures/prod_fixture.ts";
import { type EchoServerProcess, startEchoServer } from "../fixtures/websocket_server_process.ts";

/** Debian's python3, which has python3-websockets (a python3 earlier on PATH may not). */
const PYTHON = "/usr/bin/python3";
/** The greeting /greet sends first: 102,400 bytes that compress to under 1 KB. */
const GREETING = "welcome ".repeat(12_800);

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The part of the `ws` client these tests use. */
interface Ws {
  readonly extensions: string;
  readonly protocol: string;
  send(data: string | Uint8Array): void;
  ping(data: string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: "message", listener: (data: Buffer, binary: boolean) => void): void;
  once(event: "open", listener: () => void): void;
  once(event: "error", listener: (error: Error) => void): void;
  once(event: "close", listener: (code: number, reason: Buffer) => void): void;
  once(event: "pong", listener: (data: Buffer) => void): void;
}
type WsOptions = { ca?: string; perMessageDeflate?: boolean };
const WsConstructor = WsClient as unknown as new (
  url: string,
  protocols?: string[],
  options?: WsOptions,
) => Ws;

/** Open a `ws` client and collect what it sees. */
function wsClient(url: string, options: WsOptions = {}, protocols?: string[]) {
  const ws = new WsConstructor(url, protocols, options);
  const messages: { data: Buffer; binary: boolean }[] = [];
  let wake: (() => void) | null = null;
  ws.on("message", (data, binary) => {
    messages.push({ data, binary });
    wake?.();
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }))
  );
  const next = async () => {
    while (messages.length === 0) await new Promise<void>((r) => wake = r);
    return messages.shift()!;
  };
  return { ws, opened, closed, next };
}

/** Bytes the `ws` client has read from its socket so far (its TCP socket's counter). */
function bytesRead(ws: Ws): number {
  return (ws as unknown as { _socket: { bytesRead: number } })._socket.bytesRead;
}

async function withServer(
  fn: (server: EchoServerProcess) => Promise<void>,
  tls?: { certPath: string; keyPath: string },
) {
  const server = await startEchoServer(tls);
  try {
    await fn(server);
  } finally {
    const code = await server.stop();
    assert.equal(code, 0, `the server did not shut down cleanly:\n${server.output()}`);
  }
}

Deno.test({
  name: "ws (npm): echo, permessage-deflate agreed and used both ways, ping, subprotocol, close codes",
  ...opts,
  async fn() {
    await withServer(async (server) => {
      const base = `ws://127.0.0.1:${server.port}`;
      // The greeting is compressed: far fewer bytes on the wire than its 102,400.
      const c = wsClient(`${base}/greet`);
      await c.opened;
      assert.match(c.ws.extensions, /^permessage-deflate/);
      const greeting = await c.next();
      assert.equal(greeting.data.toString(), GREETING);
      assert.ok(bytesRead(c.ws) < 5_000, `${bytesRead(c.ws)} bytes read for a 102,400-byte greeting`);
      // Text, binary (ws compresses what it sends too: the server inflates it), a large one, a ping.
      c.ws.send("hello");
      assert.deepEqual(await c.next(), { data: Buffer.from("hello"), binary: false });
      c.ws.send(new Uint8Array([0, 1, 254, 255]));
      assert.deepEqual(await c.next(), { data: Buffer.from([0, 1, 254, 255]), binary: true });
      const big = "κόσμε ".repeat(100_000);
      c.ws.send(big);
      assert.equal((await c.next()).data.toString(), big);
      const pong = new Promise<Buffer>((r) => c.ws.once("pong", r));
      c.ws.ping("are you there");
      assert.equal((await pong).toString(), "are you there");
      c.ws.close(4001, "done");
      assert.equal((await c.closed).code, 4001);

      // A subprotocol the server speaks is agreed; compression refused where the server says so.
      const chat = wsClient(`${base}/chat`, {}, ["chat.v1", "chat.v2"]);
      await chat.opened;
      assert.equal(chat.ws.protocol, "chat.v2");
      chat.ws.close(1000);
      await chat.closed;
      const plain = wsClient(`${base}/plain`);
      await plain.opened;
      assert.equal(plain.ws.extensions, "");
      plain.ws.send("x".repeat(10_000));
      assert.equal((await plain.next()).data.length, 10_000);
      assert.ok(bytesRead(plain.ws) > 10_000, "uncompressed without the extension");
      plain.ws.close(1000);
      await plain.closed;

      // The stream form echoes too.
      const stream = wsClient(`${base}/stream`, { perMessageDeflate: false });
      await stream.opened;
      for (let i = 0; i < 50; i++) stream.ws.send(`message ${i}`);
      for (let i = 0; i < 50; i++) assert.equal((await stream.next()).data.toString(), `message ${i}`);
      stream.ws.close(1000);
      assert.equal((await stream.closed).code, 1000);
    });
  },
});

Deno.test({
  name: "ws (npm): a graceful server shutdown closes every open socket with 1001",
  ...opts,
  async fn() {
    const server = await startEchoServer();
    const clients = [1, 2, 3].map(() => wsClient(`ws://127.0.0.1:${server.port}/echo`));
    try {
      for (const c of clients) await c.opened;
      const code = await server.stop();
      assert.equal(code, 0);
      for (const c of clients) assert.equal((await c.closed).code, 1001);
    } finally {
      for (const c of clients) c.ws.terminate();
      await server.stop();
    }
  },
});

Deno.test({
  name: "ws (npm) over TLS: wss:// with the handshake, compression and echo",
  ...opts,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pier-wss-" });
    try {
      const cert = await makeCert(dir);
      await withServer(async (server) => {
        const c = wsClient(`wss://localhost:${server.port}/greet`, { ca: cert.pem });
        await c.opened;
        assert.match(c.ws.extensions, /permessage-deflate/);
        assert.equal((await c.next()).data.toString(), GREETING);
        c.ws.send("over TLS");
        assert.equal((await c.next()).data.toString(), "over TLS");
        c.ws.close(1000);
        assert.equal((await c.closed).code, 1000);
      }, cert);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The python3-websockets client: everything it saw, as JSON. */
const PYTHON_CLIENT = `
import asyncio, json, sys
import websockets

async def main(url):
    out = {}
    async with websockets.connect(url, subprotocols=["chat.v1", "chat.v2"], max_size=None) as ws:
        out["subprotocol"] = ws.subprotocol
        out["extensions"] = [e.name for e in ws.extensions]
        await ws.send("hello")
        out["text"] = await ws.recv()
        await ws.send(b"\\x00\\x01\\xfe\\xff")
        out["binary"] = list(await ws.recv())
        big = "κόσμε " * 50000
        await ws.send(big)
        out["big"] = (await ws.recv()) == big
        pong = await ws.ping(b"pp")
        await asyncio.wait_for(pong, 5)
        out["pong"] = True
        await ws.close(4002, "done")
        out["close_code"] = ws.close_code
    print(json.dumps(out))

asyncio.run(main(sys.argv[1]))
`;

Deno.test({
  name: "python3-websockets: echo, subprotocol, permessage-deflate, ping and close",
  ...opts,
  async fn() {
    await withServer(async (server) => {
      const out = await new Deno.Command(PYTHON, {
        args: ["-c", PYTHON_CLIENT, `ws://127.0.0.1:${server.port}/chat`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const seen = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.deepEqual(seen, {
        subprotocol: "chat.v2",
        extensions: ["permessage-deflate"],
        text: "hello",
        binary: [0, 1, 254, 255],
        big: true,
        pong: true,
        close_code: 4002,
      });
    });
  },
});

/** What the page's script reports. */
interface PageResult {
  extensions: string;
  protocol: string;
  greeting: number;
  echo: string;
  binary: number[];
  closeCode: number;
}

Deno.test({
  name: "Chromium: permessage-deflate agreed, echo of text and binary; a cross-origin page is refused",
  ...opts,
  async fn() {
    await withServer(async (server) => {
      let browser: Browser | null = null;
      try {
        browser = await launchChromium();
        const page = await browser.newPage();
        page.setDefaultTimeout(15_000);
        // A page of the server's own origin opens a socket to it.
        await page.goto(`http://127.0.0.1:${server.port}/`);
        const result = await page.evaluate(async (url: string) => {
          const W = (globalThis as unknown as { WebSocket: typeof WebSocket }).WebSocket;
          // A subprotocol first: Chromium fails a socket whose server does not echo one it asked for.
          const chat = new W(url.replace("/greet", "/chat"), ["chat.v1", "chat.v2"]);
          const protocol = await new Promise<string>((resolve, reject) => {
            chat.onopen = () => resolve(chat.protocol);
            chat.onerror = reject;
          });
          chat.close(1000);
          const ws = new W(url);
          ws.binaryType = "arraybuffer";
          const queue: unknown[] = [];
          let wake: (() => void) | null = null;
          ws.onmessage = (e: MessageEvent) => {
            queue.push(e.data);
            wake?.();
          };
          const next = async () => {
            while (queue.length === 0) await new Promise<void>((r) => wake = r);
            return queue.shift();
          };
          await new Promise((resolve, reject) => {
            ws.onopen = resolve;
            ws.onerror = reject;
          });
          const greeting = (await next()) as string;
          ws.send("from the browser");
          const echo = (await next()) as string;
          ws.send(new Uint8Array([9, 8, 7]));
          const binary = [...new Uint8Array((await next()) as ArrayBuffer)];
          const closed = new Promise<number>((r) => ws.onclose = (e: CloseEvent) => r(e.code));
          ws.close(1000);
          return {
            extensions: ws.extensions,
            protocol,
            greeting: greeting.length,
            echo,
            binary,
            closeCode: await closed,
          };
        }, `ws://127.0.0.1:${server.port}/greet`) as PageResult;
        assert.match(result.extensions, /^permessage-deflate/);
        assert.equal(result.protocol, "chat.v2");
        assert.equal(result.greeting, GREETING.length);
        assert.equal(result.echo, "from the browser");
        assert.deepEqual(result.binary, [9, 8, 7]);
        assert.equal(result.closeCode, 1000);

        // The same socket from a page of another origin (localhost is not 127.0.0.1): refused (403), which
        // the browser reports as a failed connection.
        await page.goto(`http://localhost:${server.port}/`);
        const refused = await page.evaluate(async (url: string) => {
          const W = (globalThis as unknown as { WebSocket: typeof WebSocket }).WebSocket;
          const ws = new W(url);
          return await new Promise<string>((resolve) => {
            ws.onopen = () => resolve("opened");
            ws.onclose = (e: CloseEvent) => resolve(`closed ${e.code}`);
          });
        }, `ws://127.0.0.1:${server.port}/echo`);
        assert.equal(refused, "closed 1006");
      } finally {
        await browser?.close();
      }
    });
  },
});
