// Ladder step 3: step 2 with Pier's parser (server/http1.ts) reading the request: the head event's method,
// target, Host and headers build the Request. No timeouts, no keep-alive decision, no watch, no pooling.
import { makeRequest, markBodyUsed, staticBody } from "../../server/_fast.ts";
import { NEED_DATA, RequestParser } from "../../server/http1.ts";
const date = `date: ${new Date().toUTCString()}\r\n`;
const encoder = new TextEncoder();
const handler = (_req: Request) => new Response("Hello, World!");
const out = new Uint8Array(16384);
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(`ready ${(listener.addr as Deno.NetAddr).port}`);
for await (const conn of listener) {
  (async () => {
    const p = new RequestParser();
    try {
      for (;;) {
        const ev = p.next();
        if (ev === NEED_DATA) {
          const n = await conn.read(p.writable());
          if (n === null) break;
          p.commit(n);
          continue;
        }
        if (typeof ev !== "object" || ev.type !== "head") break;
        const h = ev.head;
        const res = handler(makeRequest(h.method, `http://${h.host}${h.target}`, h.headers, null));
        const fixed = staticBody(res)!;
        markBodyUsed(res);
        const body = fixed.body as string;
        const head = `HTTP/1.1 200 OK\r\ncontent-type: ${fixed.contentType}\r\n${date}`;
        const n = encoder.encodeInto(`${head}content-length: ${body.length}\r\n\r\n${body}`, out).written;
        await conn.write(out.subarray(0, n));
        p.next(); // end
        p.next(); // paused
        p.startNextCycle();
      }
    } catch { /* the client left */ }
    try {
      conn.close();
    } catch { /* closed */ }
  })();
}
