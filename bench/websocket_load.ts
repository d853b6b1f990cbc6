// The load client of the `ws-*` benchmark rows, in its own process (pinned to the other core): C connections
// to 127.0.0.1, each keeping W messages of N bytes in flight (masked frames built once), for S seconds;
// echoes are counted from their frame heads, their payloads skipped unread. With --deflate it offers
// permessage-deflate and, once agreed, sends each message compressed (RSV1, compressed once up front).
// Prints one JSON line: messages echoed, seconds, and bytes written and read (on the wire, frames and all).
//   deno run --allow-net=127.0.0.1 bench/websocket_load.ts PORT BYTES CONNECTIONS WINDOW SECONDS [--deflate]
import zlib from "node:zlib";

const [port, size, connections, window, seconds] = Deno.args.slice(0, 5).map(Number);
const deflate = Deno.args.includes("--deflate");
const KEY = [0x11, 0x22, 0x33, 0x44];

/** The message: compressible text (records of JSON), as a chat or a feed sends. */
function message(n: number): Uint8Array {
  let text = "";
  for (let i = 0; text.length < n; i++) {
    text += JSON.stringify({
      id: i,
      user: `reader-${i % 97}`,
      text: "a message like many others",
      at: 1700000000 + i,
    });
  }
  return new TextEncoder().encode(text.slice(0, n));
}

function frame(payload: Uint8Array, rsv1: boolean): Uint8Array {
  const n = payload.length;
  const head = [0x81 | (rsv1 ? 0x40 : 0)];
  if (n < 126) head.push(0x80 | n);
  else if (n <= 0xffff) head.push(0x80 | 126, n >> 8, n & 0xff);
  else head.push(0x80 | 127, 0, 0, 0, 0, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  head.push(...KEY);
  const out = new Uint8Array(head.length + n);
  out.set(head);
  for (let i = 0; i < n; i++) out[head.length + i] = payload[i] ^ KEY[i & 3];
  return out;
}

const plain = message(size);
const compressed = (() => {
  const out = zlib.deflateRawSync(plain, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return new Uint8Array(out.subarray(0, out.length - 4));
})();

let echoed = 0;
let written = 0;
let read = 0;
let running = true;

async function connection(): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const offer = deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n" : "";
  await conn.write(new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${offer}\r\n`,
  ));
  const buf = new Uint8Array(1 << 20);
  let have = 0;
  let headEnd = -1;
  while (headEnd < 0) {
    const n = await conn.read(buf.subarray(have));
    if (n === null) throw new Error("closed during the handshake");
    have += n;
    headEnd = new TextDecoder().decode(buf.subarray(0, have)).indexOf("\r\n\r\n");
  }
  const head = new TextDecoder().decode(buf.subarray(0, headEnd));
  if (!head.startsWith("HTTP/1.1 101")) throw new Error(`handshake: ${head.split("\r\n")[0]}`);
  const agreed = /permessage-deflate/i.test(head);
  const one = agreed ? frame(compressed, true) : frame(plain, false);
  const batch = (k: number) => {
    const out = new Uint8Array(one.length * k);
    for (let i = 0; i < k; i++) out.set(one, i * one.length);
    return out;
  };
  const batches = new Map<number, Uint8Array>();
  const send = async (k: number) => {
    let b = batches.get(k);
    if (b === undefined) batches.set(k, b = batch(k));
    written += b.length;
    for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off));
  };
  // What is left of the frame being skipped, and what of its head has arrived.
  let skip = 0;
  const pending = new Uint8Array(16);
  let pendingLength = 0;
  let start = headEnd + 4;
  await send(window);
  for (;;) {
    let done = 0;
    let i = start;
    while (i < have) {
      if (skip > 0) {
        const n = Math.min(skip, have - i);
        skip -= n;
        i += n;
        if (skip === 0) done++;
        continue;
      }
      pending[pendingLength++] = buf[i++];
      if (pendingLength < 2) continue;
      const len7 = pending[1] & 0x7f;
      const headLength = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
      if (pendingLength < headLength) continue;
      const len = len7 === 126
        ? pending[2] << 8 | pending[3]
        : len7 === 127
        ? (pending[6] << 24 | pending[7] << 16 | pending[8] << 8 | pending[9]) >>> 0
        : len7;
      pendingLength = 0;
      if ((pending[0] & 0x0f) === 8) return conn.close(); // the server closed
      if (len === 0) done++;
      else skip = len;
    }
    echoed += done;
    if (!running) break;
    if (done > 0) await send(done);
    const n = await conn.read(buf);
    if (n === null) break;
    read += n;
    have = n;
    start = 0;
  }
  try {
    conn.close();
  } catch { /* closed */ }
}

const started = performance.now();
const all = Array.from({ length: connections }, () => connection().catch((e) => console.error(`${e}`)));
await new Promise((r) => setTimeout(r, seconds * 1000));
running = false;
const elapsed = (performance.now() - started) / 1000;
const counted = echoed;
const result = { messages: counted, seconds: elapsed, written, read };
console.log(JSON.stringify(result));
await Promise.race([Promise.all(all), new Promise((r) => setTimeout(r, 1000))]);
Deno.exit(0);
