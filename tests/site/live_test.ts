// The site's /live route over real sockets (app/live.ts, served by Pier): Deno's WebSocket client sees the
// count of open sockets as it changes; and the route is no door: a client that sends anything is closed with
// 1008, a handshake from another origin gets 403, one address holds at most MAX_SOCKETS_PER_ADDRESS sockets,
// only the number is ever sent, and a page without JavaScript carries the line hidden. Chromium, nginx and
// several instances: live_browser_test.ts.
import assert from "node:assert/strict";
import { createSite } from "../../app/site.ts";
import { Store } from "../../app/store.ts";
import { MAX_SOCKETS_PER_ADDRESS } from "../../app/live.ts";
import { ReaderCount } from "../../app/readers.ts";
import { serve } from "../../mod.ts";

const REPO = new URL("../../", import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(10);
  }
  return true;
}

/** The site served by Pier on a free port, over a temporary SQLite database. */
async function withSite(fn: (port: number, readers: ReaderCount) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pier-live-" });
  const store = new Store(`${dir}/site.db`);
  const readers = new ReaderCount();
  const site = createSite({
    store,
    uploadDir: dir,
    maxUploadBytes: 1024,
    staticDir: new URL("static", REPO).pathname,
    templatesDir: new URL("templates", REPO).pathname,
    accessLog: null,
    readers,
  });
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, site.fetch);
  try {
    await fn(server.addr.port, readers);
  } finally {
    await server.shutdown();
    await readers.close();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A client socket that records every message and its close. */
function reader(port: number) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/live`);
  const state = {
    socket,
    messages: [] as string[],
    closed: null as CloseEvent | null,
    errored: false,
    get last() {
      return state.messages.at(-1);
    },
  };
  socket.onmessage = (e) => state.messages.push(e.data);
  socket.onerror = () => state.errored = true;
  socket.onclose = (e) => state.closed = e;
  return state;
}

Deno.test("/live: each socket is a reader; every socket hears the count when one arrives or leaves", async () => {
  await withSite(async (port, readers) => {
    const a = reader(port);
    assert.ok(await until(() => a.last === "1"), `first reader sees ${a.last}`);
    const b = reader(port);
    const c = reader(port);
    assert.ok(await until(() => [a, b, c].every((r) => r.last === "3")), [a, b, c].map((r) => r.last).join());
    const t0 = performance.now();
    c.socket.close();
    assert.ok(await until(() => a.last === "2" && b.last === "2", 2000));
    console.log(`a departure reached the other sockets in ${Math.round(performance.now() - t0)} ms`);
    assert.equal(readers.total, 2);
    // Only numbers, nothing else, ever.
    for (const message of [...a.messages, ...b.messages]) assert.match(message, /^[1-9][0-9]*$/);
    a.socket.close();
    b.socket.close();
    assert.ok(await until(() => readers.total === 0));
  });
});

Deno.test("/live: a client that sends anything is closed with 1008 and no longer counted", async () => {
  await withSite(async (port, readers) => {
    const quiet = reader(port);
    const talker = reader(port);
    assert.ok(await until(() => quiet.last === "2"));
    talker.socket.send("let me in");
    assert.ok(await until(() => talker.closed !== null));
    assert.equal(talker.closed!.code, 1008);
    assert.ok(await until(() => quiet.last === "1"));
    assert.equal(readers.total, 1);
    // A large message is refused by the frame parser before it is held: 1009.
    const big = reader(port);
    assert.ok(await until(() => big.last === "2"));
    big.socket.send("x".repeat(64 * 1024));
    assert.ok(await until(() => big.closed !== null));
    assert.equal(big.closed!.code, 1009);
    quiet.socket.close();
    assert.ok(await until(() => readers.total === 0));
  });
});

/** Send a raw handshake and return the status line and headers. */
async function handshake(port: number, headers: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET /live HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${headers}\r\n`,
      ),
    );
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

Deno.test("/live: a handshake from another site is refused (403); the site's own origin opens", async () => {
  await withSite(async (port, readers) => {
    const foreign = await handshake(port, "Origin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\n");
    assert.match(foreign, /^HTTP\/1\.1 403 /);
    const foreignOld = await handshake(port, "Origin: https://evil.example\r\n");
    assert.match(foreignOld, /^HTTP\/1\.1 403 /, "without Fetch Metadata, Origin against Host");
    const own = await handshake(port, `Origin: http://127.0.0.1:${port}\r\nSec-Fetch-Site: same-origin\r\n`);
    assert.match(own, /^HTTP\/1\.1 101 /);
    await sleep(50);
    assert.equal(readers.total, 0, "the sockets above are gone");
    // Not a handshake at all: the page's address, asked as a page.
    const res = await fetch(`http://127.0.0.1:${port}/live`);
    assert.equal(res.status, 426);
    await res.body?.cancel();
  });
});

Deno.test(`/live: one address holds at most ${MAX_SOCKETS_PER_ADDRESS} sockets; the next is refused with 429`, async () => {
  await withSite(async (port, readers) => {
    const sockets = Array.from({ length: MAX_SOCKETS_PER_ADDRESS }, () => reader(port));
    assert.ok(await until(() => sockets.every((s) => s.last === String(MAX_SOCKETS_PER_ADDRESS))));
    const refused = await handshake(port, "");
    assert.match(refused, /^HTTP\/1\.1 429 /);
    const extra = reader(port);
    assert.ok(await until(() => extra.closed !== null));
    assert.equal(extra.messages.length, 0);
    assert.equal(readers.total, MAX_SOCKETS_PER_ADDRESS);
    // One leaves: there is room again.
    sockets[0].socket.close();
    assert.ok(await until(() => readers.total === MAX_SOCKETS_PER_ADDRESS - 1));
    const again = reader(port);
    assert.ok(await until(() => again.last === String(MAX_SOCKETS_PER_ADDRESS)));
    for (const s of [...sockets, again]) s.socket.close();
    assert.ok(await until(() => readers.total === 0));
  });
});

Deno.test("/live: the home page carries the line hidden, the number empty, and the script as a file", async () => {
  await withSite(async (port) => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    const html = await res.text();
    assert.match(html, /<p class="readers" id="readers" hidden>/);
    assert.match(html, /<strong class="readers-count" id="readers-now"><\/strong>/);
    assert.match(html, /<script src="\/live\.js" defer><\/script>/);
    assert.doesNotMatch(html, /<script>(?!<)/, "no inline script: the CSP would refuse it");
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.doesNotMatch(csp, /unsafe-inline/);
    const script = await fetch(`http://127.0.0.1:${port}/live.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get("content-type") ?? "", /javascript/);
    assert.match(await script.text(), /\/live`\)/);
  });
});
