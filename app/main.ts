// The site entry: parse --host/--port, serve static/ (relative to the working directory) and stop
// gracefully on SIGINT/SIGTERM. It must run with the start task's scoped permissions and need no more.
import { serve, serveStatic } from "../mod.ts";

function parseArgs(args: string[]): { host: string; port: number } {
  let host = "127.0.0.1";
  let port = 8000;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    const value = inline ?? args[i + 1];
    if (flag === "--host" || flag === "--port") {
      if (value === undefined) throw new Error(`${flag} needs a value`);
      if (inline === undefined) i++;
      if (flag === "--host") host = value;
      else {
        port = Number(value);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port: ${value}`);
      }
    }
  }
  return { host, port };
}

const { host, port } = parseArgs(Deno.args);
const server = serve({
  hostname: host,
  port,
  onListen(addr) {
    const name = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    console.log(`Listening on http://${name}:${addr.port}/`);
  },
}, serveStatic("static"));

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  console.log("Shutting down");
  server.shutdown();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await server.finished;
Deno.removeSignalListener("SIGINT", stop);
Deno.removeSignalListener("SIGTERM", stop);
