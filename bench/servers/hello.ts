// The same hello-world answer on three servers, for `deno task bench`: `pier`, `deno` (Deno.serve) or
// `node` (node:http, Deno's Node compatibility layer). Prints "ready <port>" once listening.
import { createServer } from "node:http";
import { serve } from "../../mod.ts";

const [kind, portArg = "0"] = Deno.args;
const port = Number(portArg);
const BODY = "Hello, World!";
const ready = (p: number) => console.log(`ready ${p}`);
// Connections are held open as long as clients want: the memory benchmark holds 10,000 of them.
const IDLE_MS = 10 * 60 * 1000;

if (kind === "pier") {
  serve(
    { hostname: "127.0.0.1", port, idleTimeoutMs: IDLE_MS, onListen: (a) => ready(a.port) },
    () => new Response(BODY),
  );
} else if (kind === "deno") {
  Deno.serve({ hostname: "127.0.0.1", port, onListen: (a) => ready(a.port) }, () => new Response(BODY));
} else if (kind === "node") {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain;charset=UTF-8" });
    res.end(BODY);
  });
  server.keepAliveTimeout = IDLE_MS;
  server.listen(port, "127.0.0.1", () => ready((server.address() as { port: number }).port));
} else {
  console.error(`usage: hello.ts pier|deno|node [port]`);
  Deno.exit(2);
}
