// Keep-Alive hints and the cap on requests per connection: raw sockets see every byte, and Node's
// http.Agent (a pooling client nobody here wrote) shows that the hint makes a real client drop an idle
// connection before the server closes it.
import assert from "node:assert/strict";
import { keepAliveHintSeconds } from "../../server/serve.ts";
import { answers, exchange, start } from "../fixtures/raw_http.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

Deno.test("keepAliveHintSeconds() keeps a margin below the idle timeout, whole seconds, none under 1 s", () => {
  const cases: [number, number][] = [
    [75_000, 73], // the site's default: 75 s less 1.5 s
    [5_000, 3], // serve()'s default
    [3_500, 2],
    [2_499, 0], // less than a second left: no field
    [0, 0], // no idle timeout: nothing to announce
    [Infinity, 0],
  ];
  for (const [idle, want] of cases) assert.equal(keepAliveHintSeconds(idle), want, `idle ${idle} ms`);
});

Deno.test({
  name: "keep-alive answers say keep-alive: timeout=N, on every path; answers that close never do",
  ...opts,
  async fn() {
    const s = start((req) => {
      const path = new URL(req.url).pathname;
      if (path === "/plain") return new Response("plain");
      if (path === "/headers") {
        return new Response("h", { headers: { "x-a": "1", "keep-alive": "timeout=99" } });
      }
      if (path === "/bye") return new Response("bye", { headers: { connection: "close" } });
      return new Response(new Blob(["blob"]));
    }, { idleTimeoutMs: 10_000 });
    try {
      const hint = "\r\nkeep-alive: timeout=8";
      const r = await exchange(s.addr.port, [
        GET("/plain") + GET("/headers") + GET("/blob") + "HEAD /plain HTTP/1.1\r\nHost: t\r\n\r\n" +
        "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n" + GET("/bye"),
      ]);
      const a = answers(r.text, [3]);
      assert.deepEqual(a.map((x) => x.status), [200, 200, 200, 200, 204, 200]);
      for (const x of a.slice(0, 5)) {
        assert.ok(x.head.includes(hint), `hint in ${JSON.stringify(x.head)}`);
        assert.equal(x.head.split("keep-alive:").length, 2, "once: the handler's own field is dropped");
      }
      assert.ok(!a[5].head.includes("keep-alive"), "the answer that closes has no hint");
      assert.ok(a[5].head.includes("connection: close"));
      assert.ok(r.closed);

      // The client asks to close, or speaks HTTP/1.0 without keep-alive: no hint.
      for (const req of [GET("/plain", "Connection: close\r\n"), "GET /plain HTTP/1.0\r\n\r\n"]) {
        const c = await exchange(s.addr.port, [req]);
        assert.ok(c.closed && !c.text.toLowerCase().includes("keep-alive"), JSON.stringify(c.text));
      }
      // HTTP/1.0 with keep-alive: both lines (RFC 9112 §9.3: a 1.0 client needs the connection option).
      const ten = await exchange(s.addr.port, ["GET /plain HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"]);
      assert.match(ten.text, /connection: keep-alive\r\nkeep-alive: timeout=8\r\n/);
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "an idle timeout too short for a margin sends no Keep-Alive field",
  ...opts,
  async fn() {
    const s = start(() => new Response("x"), { idleTimeoutMs: 2_000 });
    try {
      const r = await exchange(s.addr.port, [GET("/")]);
      assert.equal(answers(r.text)[0].status, 200);
      assert.ok(!r.text.includes("keep-alive"), r.text);
    } finally {
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "maxRequestsPerConnection: the last allowed answer says connection: close, later requests wait",
  ...opts,
  async fn() {
    let served = 0;
    const s = start(() => new Response(`n${++served}`), { maxRequestsPerConnection: 3 });
    try {
      // Five pipelined requests: three answered, the third closing; the other two are never read.
      const r = await exchange(s.addr.port, [GET("/") + GET("/") + GET("/") + GET("/") + GET("/")]);
      const a = answers(r.text);
      assert.deepEqual(a.map((x) => x.body), ["n1", "n2", "n3"]);
      assert.ok(a[1].head.includes("keep-alive: timeout="));
      assert.ok(a[2].head.includes("connection: close") && !a[2].head.includes("keep-alive"));
      assert.ok(r.closed);
      assert.equal(served, 3);
      // A new connection starts a new count.
      const again = await exchange(s.addr.port, [GET("/")]);
      assert.equal(answers(again.text)[0].body, "n4");
      assert.ok(!again.closed);
    } finally {
      await s.shutdown();
    }
  },
});

/**
 * Node's http.Agent (keepAlive, its own 60 s idle timeout) asks three times, waiting `gaps` ms before the
 * second and the third; answers the server-side peer port of each answer and the Keep-Alive field it read.
 */
async function nodeClient(
  port: number,
  gaps: [number, number],
): Promise<{ ports: number[]; hint: string; deno?: string }> {
  const script = `
    const http = require("node:http");
    const agent = new http.Agent({ keepAlive: true, timeout: 60000 });
    const get = () => new Promise((resolve, reject) => {
      http.get({ host: "127.0.0.1", port: ${port}, path: "/", agent }, (res) => {
        let body = "";
        res.on("data", (d) => body += d);
        res.on("end", () => resolve({ port: Number(body), hint: res.headers["keep-alive"] }));
      }).on("error", reject);
    });
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    (async () => {
      const a = await get();
      await sleep(${gaps[0]});
      const b = await get();
      await sleep(${gaps[1]});
      const c = await get();
      console.log(JSON.stringify({ ports: [a.port, b.port, c.port], hint: a.hint, deno: process.versions.deno }));
      agent.destroy();
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const out = await new Deno.Command("node", { args: ["-e", script], stdout: "piped", stderr: "piped" })
    .output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(result.deno, undefined, "the real Node.js, not Deno standing in for it");
  return result;
}

Deno.test({
  name: "Node's http.Agent reads the hint: it drops an idle connection before Pier would close it",
  ...opts,
  async fn() {
    const handler = (_req: Request, info: Deno.ServeHandlerInfo) =>
      new Response(String((info.remoteAddr as Deno.NetAddr).port));
    // Idle 3.5 s: the hint says 2 s; Node keeps a pooled socket 1 s less than the hint (1 s).
    const short = start(handler, { idleTimeoutMs: 3_500 });
    // Idle 60 s: the hint says 58 s, so the same wait keeps the connection.
    const long = start(handler, { idleTimeoutMs: 60_000 });
    try {
      const [a, b] = await Promise.all([
        nodeClient(short.addr.port, [200, 1_500]),
        nodeClient(long.addr.port, [200, 1_500]),
      ]);
      assert.equal(a.hint, "timeout=2");
      assert.equal(a.ports[0], a.ports[1], "reused within the hint");
      assert.notEqual(a.ports[1], a.ports[2], "dropped by the client once the hint (less its buffer) passed");
      assert.equal(b.hint, "timeout=58");
      assert.deepEqual(
        [b.ports[1], b.ports[2]],
        [b.ports[0], b.ports[0]],
        "the same wait under a longer hint",
      );
    } finally {
      await Promise.all([short.shutdown(), long.shutdown()]);
    }
  },
});
