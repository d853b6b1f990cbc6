// Run a fetch-style handler (Request in, Response out) on node:http, as any such framework on node:http
// must (Hono's node-server does the same): build a Request from the IncomingMessage, write the Response
// back with backpressure. The bench's node:http rows for the routed page and the static files pay for it.
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { Handler } from "../../mod.ts";

/** Wrap `handler` as a node:http request listener. */
export function nodeListener(handler: Handler): (req: IncomingMessage, res: ServerResponse) => void {
  return async (req, res) => {
    try {
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
      }
      const method = req.method ?? "GET";
      const body = method === "GET" || method === "HEAD" ? null : Readable.toWeb(req) as ReadableStream;
      const request = new Request(`http://${req.headers.host ?? "localhost"}${req.url}`, {
        method,
        headers,
        body,
        duplex: "half",
      } as RequestInit);
      const closed = new Promise<void>((r) => res.once("close", r));
      const response = await handler(request, {
        remoteAddr: {
          transport: "tcp",
          hostname: req.socket.remoteAddress ?? "",
          port: req.socket.remotePort ?? 0,
        },
        completed: closed,
      });
      const out: Record<string, string | string[]> = {};
      response.headers.forEach((v, k) => (out[k] = v));
      const cookies = response.headers.getSetCookie();
      if (cookies.length) out["set-cookie"] = cookies;
      res.writeHead(response.status, out);
      if (!response.body || method === "HEAD") {
        await response.body?.cancel();
        res.end();
        return;
      }
      for await (const chunk of response.body) {
        if (!res.write(chunk)) await Promise.race([new Promise((r) => res.once("drain", r)), closed]);
        if (res.destroyed) return;
      }
      res.end();
    } catch {
      res.destroy();
    }
  };
}
