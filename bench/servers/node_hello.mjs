// node:http on Node.js itself (when `node` is installed), beside Deno's compatibility layer.
import { createServer } from "node:http";
const server = createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain;charset=UTF-8" });
  res.end("Hello, World!");
});
server.keepAliveTimeout = 10 * 60 * 1000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => console.log(`ready ${server.address().port}`));
