// `--workers N`: N server Workers on one port (SO_REUSEPORT) over one database Worker. The real site with
// two Workers keeps one visitor's count across connections that land on either Worker (one shared store);
// the supervisor restarts a Worker that crashes, and a Worker cannot read the code once it serves. The
// start task's own flags cannot start Workers (the code is outside its read scope): the site then refuses an
// explicit --workers 2 with a message naming the flags.
import assert from "node:assert/strict";
import { MAIN, makeFullSiteFixture, REPO } from "../fixtures/site_fixture.ts";
import { startProcess, startTaskFlags } from "../fixtures/static_fixture.ts";

const CODE = ["app", "server", "mod.ts"].map((p) => new URL(p, REPO).pathname).join(",");
/** The flags docs/deploy.md gives for several cores: the start task's, plus the code and two unstable APIs. */
const MULTI_FLAGS = [
  "--unstable-net",
  "--unstable-worker-options",
  "--allow-net",
  `--allow-read=static,templates,data,certs,${CODE}`,
  "--allow-write=data",
];

/** GET on a fresh connection each time, so the kernel may hand it to either Worker. */
async function freshGet(url: string, headers: HeadersInit = {}): Promise<Response> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const res = await fetch(url, { client, headers });
    const body = await res.arrayBuffer();
    return new Response(body, { status: res.status, headers: res.headers });
  } finally {
    client.close();
  }
}

Deno.test({
  name: "site --workers 2: one store for both Workers (a visitor's count goes on across connections)",
  sanitizeResources: false,
  async fn() {
    const dir = await makeFullSiteFixture();
    const site = await startProcess(dir, MULTI_FLAGS, MAIN, ["--port", "0", "--workers", "2"]);
    try {
      assert.match(site.output(), /2 server Workers share the port/);
      const base = `http://127.0.0.1:${site.port}`;
      const first = await freshGet(`${base}/`);
      const cookie = (first.headers.get("set-cookie") ?? "").split(";")[0];
      assert.match(await first.text(), /visit-count">1</);
      for (let n = 2; n <= 8; n++) {
        const res = await freshGet(`${base}/`, { cookie });
        assert.match(await res.text(), new RegExp(`visit-count">${n}<`));
      }
      assert.equal((await freshGet(`${base}/healthz`)).status, 200);
      const traversal = await freshGet(`${base}/..%2fapp%2fmain.ts`);
      assert.notEqual(traversal.status, 200);
    } finally {
      const status = await site.stop();
      assert.equal(status.code, 0, site.output());
      assert.match(site.output(), /Shutting down/);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "site --workers: a crashed Worker is restarted, and a Worker cannot read the code it was loaded from",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pier-workers-" });
    const fixture = new URL("../fixtures/workers_main.ts", import.meta.url).pathname;
    const flags = MULTI_FLAGS.map((f) =>
      f.startsWith("--allow-read=") ? `--allow-read=${dir},${CODE},${new URL("tests", REPO).pathname}` : f
    ).map((f) => f === "--allow-write=data" ? `--allow-write=${dir}` : f);
    const pool = await startProcess(dir, flags, fixture, [dir]);
    try {
      const base = `http://127.0.0.1:${pool.port}`;
      assert.equal(await (await freshGet(`${base}/read-code`)).text(), "denied: NotCapable\n");
      assert.equal(await (await freshGet(`${base}/crash`)).text(), "crashing\n");
      // The supervisor waits 500 ms, then starts a new Worker; meanwhile the other Worker serves.
      const deadline = Date.now() + 10_000;
      while (!/restarted/.test(pool.output()) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(pool.output(), /server Worker \d crashed: .*crash requested/);
      assert.match(pool.output(), /server Worker \d restarted/);
      // Both Workers answer again (many fresh connections reach both), and the new one is walled too.
      const names = new Set<string>();
      for (let i = 0; i < 40 && names.size < 2; i++) names.add(await (await freshGet(`${base}/`)).text());
      assert.equal(names.size, 2, `only ${[...names]} answered`);
      for (let i = 0; i < 6; i++) {
        assert.equal(await (await freshGet(`${base}/read-code`)).text(), "denied: NotCapable\n");
      }
    } finally {
      const status = await pool.stop();
      assert.equal(status.code, 0, pool.output());
      assert.match(pool.output(), /stopped after 1 restarts/);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "site --workers 2 under the start task's own flags: refused with a message naming the flags needed",
  sanitizeResources: false,
  async fn() {
    const dir = await makeFullSiteFixture();
    try {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...await startTaskFlags(), MAIN, "--port", "0", "--workers", "2"],
        cwd: dir,
        stdout: "null",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      assert.equal(code, 2);
      assert.match(
        new TextDecoder().decode(stderr),
        /--unstable-net --unstable-worker-options --allow-read=/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
