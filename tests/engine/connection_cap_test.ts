// The connection cap (maxConnections), with a low cap and real sockets: at the cap the connection idle the
// longest makes room, connections serving a request are never closed for it, a flood of idle connections
// leaves the server answering, nothing leaks, and all is as before once the flood ends.
import assert from "node:assert/strict";
import { answers, RawConnection, start } from "../fixtures/raw_http.ts";
import { captureErrors, logLines } from "../fixtures/console.ts";
import { runDenoScript } from "../fixtures/deno_script.ts";
import { upgradeWebSocket } from "../../server/websocket.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * This process's open resources (the test's sockets and the server's alike), from Deno's resource table:
 * /proc/self/fd would need all permissions.
 */
function openFiles(): number {
  // deno-lint-ignore no-explicit-any
  const core = (Deno as any)[(Deno as any).internal].core;
  return Object.keys(core.resources()).length;
}

/** Send one request on `c` and wait for its answer (the n-th on that connection). */
async function ask(c: RawConnection, n = 1): Promise<void> {
  await c.send(GET("/"));
  await c.waitFor((text) => answers(text).length >= n, 3000);
}

/** Wait until the server has closed `c`: its read sees the end (or a reset). */
async function closedByServer(c: RawConnection): Promise<boolean> {
  try {
    await c.waitFor((_, closed) => closed, 2000);
    return true;
  } catch {
    return c.closed;
  }
}

/** What fileLimit() and defaultMaxConnections() answer in a process run with `permissions`. */
async function limitsUnder(permissions: string[]): Promise<{ limit: number | null; cap: number }> {
  const serveTs = new URL("../../server/serve.ts", import.meta.url).href;
  const script = `import { defaultMaxConnections, fileLimit } from "${serveTs}";
    console.log(JSON.stringify({ limit: fileLimit(), cap: defaultMaxConnections() }));`;
  const { code, stdout, stderr } = await runDenoScript(permissions, script);
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout);
}

Deno.test("the default cap is 90 % of the file limit under -A, of 65,536 when scoped permissions hide it", async () => {
  // Deno raises its soft limit to the hard one at start: the hard limit is what a Deno process has.
  const sh = await new Deno.Command("sh", { args: ["-c", "ulimit -Hn"], stdout: "piped" }).output();
  const hard = Number(new TextDecoder().decode(sh.stdout).trim());
  const all = await limitsUnder(["-A"]);
  assert.equal(all.limit, hard);
  assert.equal(all.cap, Math.floor(hard * 0.9));
  // The site's case: read access (even to /proc/self/limits itself) is not enough in Deno 2.9, and
  // nothing prompts.
  for (const flags of [["--allow-read"], ["--allow-read=/proc/self/limits"], []]) {
    assert.deepEqual(await limitsUnder(flags), { limit: null, cap: 58_982 }, flags.join(" "));
  }
});

Deno.test({
  name: "at the cap, the connection idle the longest is closed first, and busy ones never",
  ...opts,
  async fn() {
    const s = start(() => new Response("ok"), { maxConnections: 4 });
    const conns: RawConnection[] = [];
    try {
      const logged = await captureErrors(async () => {
        const open = async () => {
          const c = await RawConnection.open(s.addr.port);
          conns.push(c);
          await sleep(50); // accepted, in this order
          return c;
        };
        const [a, b, c, d] = [await open(), await open(), await open(), await open()];
        // Idle times are kept on the server's coarse clock (a 500 ms tick): let one pass.
        await sleep(600);
        await ask(b); // b was busy, and is idle again: now the newest idle one
        const e = await open(); // the cap: a (idle the longest) makes room
        assert.ok(await closedByServer(a), "a, idle the longest, was closed");
        await ask(e); // e is served
        const f = await open(); // c is now the longest idle (b was refreshed, e served after)
        assert.ok(await closedByServer(c), "c was closed next");
        for (const x of [b, d, f]) assert.ok(!x.closed, "the others stay");
        await ask(b, 2);
        await ask(f);
      });
      assert.ok(logLines(logged).some((l) => l.includes("closing the longest idle")), "said in the log");
    } finally {
      await Promise.all(conns.map((c) => c.close()));
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "at the cap with every connection serving a request, new ones are turned away and the others finish",
  ...opts,
  async fn() {
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const s = start(async () => {
      await gate;
      return new Response("done");
    }, { maxConnections: 3 });
    const busy: RawConnection[] = [];
    try {
      const logged = await captureErrors(async () => {
        for (let i = 0; i < 3; i++) {
          const c = await RawConnection.open(s.addr.port);
          busy.push(c);
          await c.send(GET("/slow"));
        }
        await sleep(100);
        const late = await RawConnection.open(s.addr.port);
        busy.push(late);
        await late.send(GET("/late")).catch(() => {});
        assert.ok(await closedByServer(late), "turned away");
        assert.equal(late.text, "", "unanswered");
        release();
        for (const c of busy.slice(0, 3)) {
          await c.waitFor((text) => answers(text).length === 1 && answers(text)[0].body === "done", 3000);
        }
      });
      assert.ok(logLines(logged).some((l) => l.includes("none idle")), "the cap is said in the log");
    } finally {
      release();
      await Promise.all(busy.map((c) => c.close()));
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "a flood of idle connections: the server keeps answering, nothing leaks, and it recovers",
  ...opts,
  async fn() {
    const cap = 8;
    const before = openFiles();
    const s = start(() => new Response("ok"), { maxConnections: cap });
    const flood: RawConnection[] = [];
    try {
      const logged = await captureErrors(async () => {
        // A keep-alive client that asks now and then through the flood. Its connection may be the longest
        // idle and closed: then it opens another, as a pooling client does, and that one always gets in.
        let client = await RawConnection.open(s.addr.port);
        flood.push(client);
        let asked = 0;
        for (let i = 0; i < 200; i++) {
          flood.push(await RawConnection.open(s.addr.port));
          if (i % 20 !== 0) continue;
          if (client.closed) flood.push(client = await RawConnection.open(s.addr.port));
          const seen = answers(client.text).length;
          await client.send(GET("/"));
          await client.waitFor((text) => answers(text).length > seen, 3000);
          asked++;
        }
        assert.equal(asked, 10);
      });
      assert.equal(logLines(logged).length, 1, "the cap is said once a minute, not once a connection");
      await sleep(200);
      const open = flood.filter((c) => !c.closed).length;
      assert.ok(open <= cap, `at most the cap stays open: ${open}`);
      // The flood ends.
      await Promise.all(flood.map((c) => c.close()));
      flood.length = 0;
      await sleep(200);
      // Recovered: a full cap of keep-alive clients, each answered twice.
      const again: RawConnection[] = [];
      for (let i = 0; i < cap; i++) again.push(await RawConnection.open(s.addr.port));
      flood.push(...again);
      for (const c of again) await ask(c);
      for (const c of again) await ask(c, 2);
      assert.ok(again.every((c) => !c.closed), "none closed: under the cap");
    } finally {
      await Promise.all(flood.map((c) => c.close()));
      await s.shutdown();
    }
    await sleep(100);
    assert.ok(openFiles() <= before + 1, `no descriptor left behind: ${before} before, ${openFiles()} after`);
  },
});

Deno.test({
  name: "WebSockets count toward the cap and are never closed for room",
  ...opts,
  async fn() {
    const s = start((req) => {
      if (req.headers.get("upgrade") !== "websocket") return new Response("ok");
      const { socket, response } = upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(e.data);
      return response;
    }, { maxConnections: 2 });
    const sockets: WebSocket[] = [];
    const conns: RawConnection[] = [];
    try {
      await captureErrors(async () => {
        for (let i = 0; i < 2; i++) {
          const ws = new WebSocket(`ws://127.0.0.1:${s.addr.port}/`);
          sockets.push(ws);
          await new Promise((resolve, reject) => {
            ws.onopen = resolve;
            ws.onerror = reject;
          });
        }
        // Two WebSockets hold the two places: a new connection is turned away, unanswered.
        const late = await RawConnection.open(s.addr.port);
        conns.push(late);
        await late.send(GET("/")).catch(() => {});
        assert.ok(await closedByServer(late), "turned away at the cap");
        assert.equal(late.text, "", "unanswered");
        // Both WebSockets are still open and answer.
        for (const ws of sockets) {
          assert.equal(ws.readyState, WebSocket.OPEN);
          const echoed = new Promise((resolve) => ws.onmessage = (e) => resolve(e.data));
          ws.send("still here");
          assert.equal(await echoed, "still here");
        }
        // One WebSocket closes: its place is free again.
        const closed = new Promise((resolve) => sockets[0].onclose = resolve);
        sockets[0].close(1000);
        await closed;
        await sleep(100);
        const next = await RawConnection.open(s.addr.port);
        conns.push(next);
        await ask(next);
      });
    } finally {
      for (const ws of sockets) if (ws.readyState !== WebSocket.CLOSED) ws.close();
      await Promise.all(conns.map((c) => c.close()));
      await s.shutdown();
    }
  },
});
