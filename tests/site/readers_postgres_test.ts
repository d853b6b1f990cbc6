// The live reader count shared through a real PostgreSQL's LISTEN/NOTIFY (app/readers.ts over
// app/postgres_store.ts), as instances of `--database postgres://…` share it: counts summed both ways, a
// goodbye, a crash forgotten after the expiry, and the database going down and coming back. Runs in CI
// (PIER_TEST_POSTGRES_URL), else on a throwaway cluster, else is skipped with a notice (tests/fixtures/postgres.ts).
import assert from "node:assert/strict";
import { PostgresStore } from "../../app/postgres_store.ts";
import { postgresBus, ReaderCount, type ReaderCountOptions } from "../../app/readers.ts";
import { freshDatabase, postgresAdminUrl, switchableProxy } from "../fixtures/postgres.ts";

const ignore = postgresAdminUrl() === null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Timings a test can wait out: a heartbeat every 200 ms, forgotten after 600 ms of silence. */
const FAST: ReaderCountOptions = { heartbeatMs: 200, expiryMs: 600, publishDelayMs: 20 };

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(10);
  }
  return true;
}

/** An instance of the count on its own store, as each site process has. */
function instance(url: string, options: ReaderCountOptions = FAST) {
  const store = new PostgresStore(url, { connectTimeoutS: 2, callTimeoutMs: 3000 });
  const readers = new ReaderCount({
    ...options,
    bus: postgresBus(store, { staleMs: options.expiryMs }),
    onBusError: () => {},
  });
  return {
    store,
    readers,
    async stop() {
      await readers.close();
      await store.close();
    },
  };
}

Deno.test({
  name:
    "PostgreSQL LISTEN/NOTIFY: instances sum each other's readers; a goodbye is heard at once, a crash after the expiry",
  ignore,
  async fn() {
    const db = (await freshDatabase())!;
    const one = instance(db.url);
    const two = instance(db.url);
    const three = instance(db.url);
    try {
      const leave = one.readers.join();
      two.readers.join();
      two.readers.join();
      three.readers.join();
      const t0 = performance.now();
      assert.ok(
        await until(() => [one, two, three].every((i) => i.readers.total === 4), 5000),
        `totals ${[one, two, three].map((i) => i.readers.total)}`,
      );
      console.log(`three instances agree on 4 after ${Math.round(performance.now() - t0)} ms`);
      const t1 = performance.now();
      leave();
      assert.ok(await until(() => two.readers.total === 3 && three.readers.total === 3, 2000));
      console.log(`a departure is seen everywhere after ${Math.round(performance.now() - t1)} ms`);

      // A goodbye: forgotten at once.
      await one.stop();
      assert.ok(await until(() => two.readers.instances === 1 && three.readers.instances === 1, 1000));

      // A crash: its connections are gone without a goodbye (its store closed under it); the others keep its
      // count until the expiry, then forget it.
      await three.store.close();
      const crashed = performance.now();
      assert.equal(two.readers.total, 3);
      assert.ok(await until(() => two.readers.total === 2, 5000), `total ${two.readers.total}`);
      const after = performance.now() - crashed;
      console.log(`a crashed instance was forgotten after ${Math.round(after)} ms`);
      assert.ok(after >= (FAST.expiryMs ?? 0) - (FAST.heartbeatMs ?? 0), `too early: ${after} ms`);
    } finally {
      await one.stop();
      await two.stop();
      await three.stop();
      await db.drop();
    }
  },
});

Deno.test({
  name:
    "PostgreSQL LISTEN/NOTIFY: an instance cut off from the database is forgotten, and counted again once it is back",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const db = (await freshDatabase())!;
    const proxy = switchableProxy(new URL(db.url));
    proxy.up();
    const via = new URL(db.url);
    via.hostname = "127.0.0.1";
    via.port = String(proxy.port);
    const cut = instance(via.href);
    const steady = instance(db.url);
    try {
      cut.readers.join();
      steady.readers.join();
      steady.readers.join();
      assert.ok(await until(() => cut.readers.total === 3 && steady.readers.total === 3, 5000));
      proxy.down();
      // Each side forgets the other once nothing is heard for the expiry; each keeps its own readers.
      assert.ok(await until(() => steady.readers.total === 2 && cut.readers.total === 1, 5000));
      proxy.up();
      const back = performance.now();
      // The driver reconnects its pool; its listening connection may or may not listen again by itself
      // (not when it retried while the database was down): the bus notices the silence and listens again.
      assert.ok(
        await until(() => cut.readers.total === 3 && steady.readers.total === 3, 10_000),
        `after the database came back: ${cut.readers.total} / ${steady.readers.total}`,
      );
      console.log(`shared again ${Math.round(performance.now() - back)} ms after the database came back`);
    } finally {
      await cut.stop();
      await steady.stop();
      proxy.down();
      await db.drop();
    }
  },
});
