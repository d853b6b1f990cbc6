// Graceful shutdown of the real site (issues 6 and 7): SIGTERM while a 64 MiB static download is in flight.
// The download completes byte-exact, a new connection is refused meanwhile, and the process exits soon after
// the download ends. Also GET /healthz: tiny, no session, no log noise beyond its access line.
import assert from "node:assert/strict";
import { makeFullSiteFixture, spawnSite } from "../fixtures/site_fixture.ts";

const SIZE = 64 * 1024 * 1024;
/** Byte i of the download: position-dependent, so a lost, repeated or reordered chunk is caught. */
const byteAt = (i: number) => (i * 31 + (i >>> 16)) & 0xff;

Deno.test({
  name: "site: SIGTERM mid-download finishes the 64 MiB download byte-exact, refuses new connections, exits",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await makeFullSiteFixture();
    const big = new Uint8Array(SIZE);
    for (let i = 0; i < SIZE; i++) big[i] = byteAt(i);
    await Deno.writeFile(`${dir}/static/big.bin`, big);
    const site = await spawnSite(dir);
    let exited: Promise<Deno.CommandStatus> | null = null;
    try {
      const response = await fetch(`http://127.0.0.1:${site.port}/big.bin`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-length"), String(SIZE));
      const reader = response.body!.getReader();
      let got = 0;
      let mismatch = -1;
      const readSome = async (until: number) => {
        while (got < until) {
          const { value, done } = await reader.read();
          if (done) break;
          for (let j = 0; j < value.length && mismatch < 0; j++) {
            if (value[j] !== byteAt(got + j)) mismatch = got + j;
          }
          got += value.length;
        }
      };
      await readSome(1024 * 1024);
      assert.ok(got < SIZE / 2, "the download must still be in flight when the signal arrives");

      exited = site.kill("SIGTERM");
      const signalledAt = Date.now();
      // The listener closes at once: within 2 s a new connection is refused while the download goes on.
      let refused = false;
      while (!refused && Date.now() - signalledAt < 2000) {
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: site.port });
          conn.close();
          await new Promise((r) => setTimeout(r, 50));
        } catch (err) {
          assert.ok(err instanceof Deno.errors.ConnectionRefused, String(err));
          refused = true;
        }
      }
      assert.ok(refused, "new connections were still accepted 2 s after SIGTERM");
      assert.ok(got < SIZE, "the download finished before the refusal was checked");

      await readSome(Infinity);
      const endedAt = Date.now();
      assert.equal(got, SIZE);
      assert.equal(mismatch, -1, `byte ${mismatch} differs`);

      const status = await Promise.race([
        exited,
        new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
      ]);
      assert.ok(status, "the site had not exited 10 s after the download ended");
      assert.equal(status.code, 0, site.output());
      assert.ok(Date.now() - endedAt < 10_000);
      assert.match(site.output(), /Shutting down/);
      assert.match(site.output(), / GET \/big\.bin 200 67108864 /);
    } finally {
      await (exited ?? site.kill("SIGTERM"));
      await site.kill("SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "site: GET /healthz answers 200 ok with no session cookie and no-store; HEAD too",
  sanitizeResources: false,
  async fn() {
    const dir = await makeFullSiteFixture();
    const site = await spawnSite(dir);
    try {
      const res = await fetch(`http://127.0.0.1:${site.port}/healthz`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "ok\n");
      assert.equal(res.headers.get("set-cookie"), null);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const head = await fetch(`http://127.0.0.1:${site.port}/healthz`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("set-cookie"), null);
    } finally {
      assert.ok((await site.kill("SIGTERM")).success);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
