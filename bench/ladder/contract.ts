// Ladder step 2: step 1 plus what the handler contract costs: a Request built the way Pier builds it, the
// handler called, its Response's static body read, a head and body serialized. Still nothing parsed.
import { makeRequest, markBodyUsed, staticBody } from "../../server/_fast.ts";
const date = `date: ${new Date().toUTCString()}\r\n`;
const encoder = new TextEncoder();
const handler = (_req: Request) => new Response("Hello, World!");
const out = new Uint8Array(16384);
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(`ready ${(listener.addr as Deno.NetAddr).port}`);
for await (const conn of listener) {
  (async () => {
    const buf = new Uint8Array(4096);
    try {
      while ((await conn.read(buf)) !== null) {
        const res = handler(makeRequest("GET", "http://127.0.0.1/", ["host", "127.0.0.1"], null));
        const fixed = staticBody(res)!;
        markBodyUsed(res);
        const body = fixed.body as string;
        const head = `HTTP/1.1 200 OK\r\ncontent-type: ${fixed.contentType}\r\n${date}`;
        const n = encoder.encodeInto(`${head}content-length: ${body.length}\r\n\r\n${body}`, out).written;
        await conn.write(out.subarray(0, n));
      }
    } catch { /* the client left */ }
    try {
      conn.close();
    } catch { /* closed */ }
  })();
}
