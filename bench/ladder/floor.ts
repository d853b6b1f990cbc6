// Ladder step 1: canned bytes on Deno.listen, one answer per read (wrk's keep-alive sends one request per
// read). Nothing parsed, nothing built: the socket ops alone.
const date = new Date().toUTCString();
const canned = new TextEncoder().encode(
  `HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\ndate: ${date}\r\ncontent-length: 13\r\n\r\nHello, World!`,
);
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(`ready ${(listener.addr as Deno.NetAddr).port}`);
for await (const conn of listener) {
  (async () => {
    const buf = new Uint8Array(4096);
    try {
      while ((await conn.read(buf)) !== null) await conn.write(canned);
    } catch { /* the client left */ }
    try {
      conn.close();
    } catch { /* closed */ }
  })();
}
