// The repository's nginx.conf in front of Pier's WebSocket echo server: its /live location passes the
// upgrade on, over TLS, with permessage-deflate agreed end to end. The client is Node's ws package; the
// server runs in its own process with --allow-net only. nginx is a CI dependency: this test never skips.
import assert from "node:assert/strict";
import WsClient from "ws";
import { freePort, makeCert } from "../fixtures/prod_fixture.ts";
import { NGINX_CONF, nginxConfFor, runNginx } from "../fixtures/nginx_fixture.ts";
import { startEchoServer } from "../fixtures/websocket_server_process.ts";

/** The part of the `ws` client used here (ws ships no types). */
interface Ws {
  readonly extensions: string;
  send(data: string): void;
  close(code?: number): void;
  terminate(): void;
  on(event: "message", listener: (data: { toString(): string }) => void): void;
  once(event: "open", listener: () => void): void;
  once(event: "error", listener: (error: Error) => void): void;
  once(event: "close", listener: (code: number) => void): void;
}
const WsConstructor = WsClient as unknown as new (url: string, options?: { ca?: string }) => Ws;

Deno.test({
  name: "nginx: the repository's nginx.conf proxies WebSockets at /live (TLS, deflate, echo, close)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pier-nginx-ws-" });
    await Deno.chmod(dir, 0o755); // nginx's workers run as www-data when the test runs as root
    const cert = await makeCert(`${dir}/certs`);
    await Deno.mkdir(`${dir}/static`);
    const server = await startEchoServer();
    const httpsPort = freePort();
    const conf = nginxConfFor(await Deno.readTextFile(NGINX_CONF), {
      https: httpsPort,
      http: freePort(),
      app: server.port,
      certDir: `${dir}/certs`,
      staticDir: `${dir}/static`,
      prefix: `${dir}/nginx`,
    });
    let nginx: Awaited<ReturnType<typeof runNginx>> | null = null;
    let ws: Ws | null = null;
    try {
      await Deno.mkdir(`${dir}/nginx`);
      await Deno.chmod(`${dir}/nginx`, 0o755);
      nginx = await runNginx(`${dir}/nginx`, conf, httpsPort);
      ws = new WsConstructor(`wss://localhost:${httpsPort}/live`, { ca: cert.pem });
      const messages: string[] = [];
      let wake: (() => void) | null = null;
      ws.on("message", (data) => {
        messages.push(data.toString());
        wake?.();
      });
      const next = async () => {
        while (messages.length === 0) await new Promise<void>((r) => wake = r);
        return messages.shift()!;
      };
      const socket = ws;
      await new Promise<void>((resolve, reject) => {
        socket.once("open", resolve);
        socket.once("error", reject);
      });
      assert.match(ws.extensions, /^permessage-deflate/, "the extension is agreed through nginx");
      ws.send("through nginx");
      assert.equal(await next(), "through nginx");
      const big = "proxied and compressed ".repeat(10_000);
      ws.send(big);
      assert.equal(await next(), big);
      const closed = new Promise<number>((r) => socket.once("close", r));
      ws.close(1000);
      assert.equal(await closed, 1000);
      assert.doesNotMatch(await nginx.errorLog(), /\[(error|crit|alert|emerg)\]/);
    } finally {
      ws?.terminate();
      await nginx?.stop();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
