// node:http on Node.js itself (when `node` is installed), beside Deno's compatibility layer; with
// `--cert FILE --key FILE` (PEM), node:https instead. `node node_hello.mjs [port] [--cert FILE --key FILE]`.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";

const args = process.argv.slice(2);
const flag = (name) => args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
const cert = flag("--cert"), key = flag("--key");
const answer = (_req, res) => {
  res.writeHead(200, { "content-type": "text/plain;charset=UTF-8" });
  res.end("Hello, World!");
};
const server = cert && key
  ? createTlsServer({ cert: readFileSync(cert), key: readFileSync(key) }, answer)
  : createServer(answer);
server.keepAliveTimeout = 10 * 60 * 1000;
const port = args[0]?.startsWith("--") ? 0 : Number(args[0] ?? 0);
server.listen(port, "127.0.0.1", () => console.log(`ready ${server.address().port}`));
