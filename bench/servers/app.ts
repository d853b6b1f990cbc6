// The servers of `deno task bench`, one app per process: `hello` (a fixed plaintext answer), `routed` (the
// Router page of routed.ts) or `static <root>` (serveStatic on a folder), on `pier`, `deno` (Deno.serve)
// or `node` (node:http, Deno's Node compatibility layer), or `pier-public` (Pier without its fast paths), or
// `floor` (hello and static: canned bytes on Deno.listen, the platform's floor). The app code is the same on every server.
// `--cert FILE --key FILE` (PEM) serve HTTPS instead, on `pier` and `deno`. Prints "ready <port>" once
// listening on 127.0.0.1.
import { createServer } from "node:http";
import { type Handler, serve, serveStatic } from "../../mod.ts";
import { setFastPaths } from "../../server/_fast.ts";
import { nodeListener } from "./node_adapter.ts";
import { routedApp } from "./routed.ts";

const flag = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
// The flags come after the words.
const firstFlag = Deno.args.findIndex((a) => a.startsWith("--"));
const [kind, app, root, data] = firstFlag < 0 ? Deno.args : Deno.args.slice(0, firstFlag);
const USAGE =
  "usage: app.ts pier|pier-public|deno|node|floor hello|routed|static <root> [--cert FILE --key FILE]" +
  "\n       app.ts pier site <root> <data>";
const certFile = flag("--cert"), keyFile = flag("--key");
// Read here so the server sees the PEM text, as serve() and Deno.serve take it.
const tls = certFile && keyFile
  ? { cert: await Deno.readTextFile(certFile), key: await Deno.readTextFile(keyFile) }
  : undefined;
if (tls && kind !== "pier" && kind !== "deno") {
  console.error(`app.ts: --cert and --key are for pier and deno only\n${USAGE}`);
  Deno.exit(2);
}
const BODY = "Hello, World!";

/**
 * The portfolio site (app/site.ts) serving `root` as its static folder, with the repository's templates, a
 * store in `data`, and its buffered access log on, written to `data/access.log` (as nginx writes its own).
 */
async function siteOver(root: string, data: string): Promise<Handler> {
  const { createSite } = await import("../../app/site.ts");
  const { Store } = await import("../../app/store.ts");
  const { BufferedLog } = await import("../../app/access_log.ts");
  const file = await Deno.open(`${data}/access.log`, { write: true, create: true, append: true });
  const encoder = new TextEncoder();
  const log = new BufferedLog((text) => {
    const bytes = encoder.encode(text);
    for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
  });
  const site = createSite({
    store: new Store(`${data}/site.db`),
    uploadDir: data,
    maxUploadBytes: 1024 * 1024,
    staticDir: root,
    templatesDir: new URL("../../templates", import.meta.url).pathname,
    accessLog: log.line,
  });
  return site.fetch;
}
const ready = (p: number) => console.log(`ready ${p}`);

/**
 * The floor's accept and read loop: Deno.listen on 127.0.0.1, each connection's reads (the buffer and the
 * count read into it) handed to the reader `onConnection` makes for it (so it may keep state across reads), the connection closed when its client
 * leaves.
 */
function floorListen(
  onConnection: () => (conn: Deno.Conn, buf: Uint8Array, n: number) => Promise<void>,
): void {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  ready((listener.addr as Deno.NetAddr).port);
  const answer = async (conn: Deno.Conn) => {
    const onRead = onConnection();
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        await onRead(conn, buf, n); // no subarray: the floor allocates nothing per read
      }
    } catch { /* the client left */ }
    try {
      conn.close();
    } catch { /* closed */ }
  };
  (async () => {
    for await (const conn of listener) answer(conn);
  })();
}

/** Write all of `bytes`, however many writes it takes. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}
// Connections are held open as long as clients want: the memory benchmark holds 10,000 of them.
const IDLE_MS = 10 * 60 * 1000;

let handler: Handler;
if (app === "hello") handler = () => new Response(BODY);
else if (app === "routed") handler = routedApp().fetch;
else if (app === "static" && root) handler = serveStatic(root);
else if (app === "site" && root && data && kind === "pier") handler = await siteOver(root, data);
else {
  console.error(USAGE);
  Deno.exit(2);
}

if (kind === "floor" && app === "static" && root) {
  // The floor for a file: Deno.listen answering each request with the named file's bytes, its head and body
  // joined once at start into one buffer and sent in one write, reading no file and parsing only the target
  // of the request line. What any engine on Deno.Conn pays to send that many bytes, before HTTP work.
  const date = new Date().toUTCString();
  const canned = new Map<string, Uint8Array>();
  for (const entry of Deno.readDirSync(root)) {
    if (!entry.isFile) continue;
    const body = Deno.readFileSync(`${root}/${entry.name}`);
    const head = new TextEncoder().encode(
      `HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ndate: ${date}\r\ncontent-length: ${body.length}\r\n\r\n`,
    );
    const joined = new Uint8Array(head.length + body.length);
    joined.set(head);
    joined.set(body, head.length);
    canned.set(`/${entry.name}`, joined);
  }
  const notFound = new TextEncoder().encode("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
  const decoder = new TextDecoder();
  floorListen(() => async (conn, buf, n) => {
    // One head per read (wrk without pipelining): its target is the request line's second word.
    const line = decoder.decode(buf.subarray(0, Math.min(n, 256)));
    const target = line.slice(line.indexOf(" ") + 1, line.indexOf(" ", line.indexOf(" ") + 1));
    await writeAll(conn, canned.get(target) ?? notFound);
  });
} else if (kind === "floor" && app === "hello") {
  // The floor of the platform, not a server: Deno.listen answering every request head it sees (counted by
  // its blank line, so pipelining works) with the same canned bytes, parsing nothing. What any HTTP/1.1
  // engine written on Deno.Conn pays before it does any work of its own.
  const date = new Date().toUTCString();
  const canned = new TextEncoder().encode(
    `HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\ndate: ${date}\r\ncontent-length: ${BODY.length}\r\n\r\n${BODY}`,
  );
  floorListen(() => {
    let tail = 0; // bytes of "\r\n\r\n" matched at the end of the previous read
    return async (conn, buf, n) => {
      let heads = 0;
      for (let i = 0; i < n; i++) {
        const b = buf[i];
        tail = b === (tail % 2 === 0 ? 13 : 10) ? tail + 1 : b === 13 ? 1 : 0;
        if (tail === 4) {
          heads++;
          tail = 0;
        }
      }
      if (heads === 1) await conn.write(canned);
      else if (heads > 1) {
        const out = new Uint8Array(canned.length * heads);
        for (let h = 0; h < heads; h++) out.set(canned, h * canned.length);
        await writeAll(conn, out);
      }
    };
  });
} else if (kind === "pier" || kind === "pier-public") {
  // pier-public: the engine with its Deno fast paths (server/_fast.ts) off, public Request/Response only.
  if (kind === "pier-public") setFastPaths(false);
  serve(
    { hostname: "127.0.0.1", port: 0, idleTimeoutMs: IDLE_MS, onListen: (a) => ready(a.port), ...tls },
    handler,
  );
} else if (kind === "deno") {
  Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: (a) => ready(a.port), ...tls }, handler);
} else if (kind === "node") {
  // hello answers natively, as node:http code would; the others need the Request/Response adapter.
  const server = createServer(
    app === "hello"
      ? (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain;charset=UTF-8" });
        res.end(BODY);
      }
      : nodeListener(handler),
  );
  server.keepAliveTimeout = IDLE_MS;
  server.listen(0, "127.0.0.1", () => ready((server.address() as { port: number }).port));
} else {
  console.error(USAGE);
  Deno.exit(2);
}
