// The store suite, run against both stores (SQLite in a temporary file, PostgreSQL in a fresh database on
// PIER_TEST_POSTGRES_URL's server): schema and migrations, messages and uploads newest first, the session
// store contract, visit counts under concurrency, and failures that must become a StoreError, never a crash
// or a hang. Cases about SQLite's file (lock, corruption, size cap) and its Worker come after, SQLite only.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { MIGRATIONS } from "../../app/migrations.ts";
import { driverOptions, PostgresStore, STATEMENT_TIMEOUT_MARGIN_MS } from "../../app/postgres_store.ts";
import { type NewMessage, type NewUpload, Store, type StoreBackend, StoreError } from "../../app/store.ts";
import { storeWorkerSource } from "../../app/store_worker.ts";
import { freshDatabase, postgresAdminUrl, switchableProxy } from "../fixtures/postgres.ts";

type Row = Record<string, unknown>;

/** One empty database of one kind, and stores over it. */
interface Harness {
  /** A new store over the database (each its own Worker or pool, like another instance). */
  store(options?: { busyTimeoutMs?: number; callTimeoutMs?: number }): StoreBackend;
  /** Raw SQL on the same database, outside any store. */
  query(sql: string): Promise<Row[]>;
  /** Set the schema version as newer code would have left it. */
  setVersion(version: number): Promise<void>;
  cleanup(): Promise<void>;
}

interface Backend {
  name: "SQLite" | "PostgreSQL";
  ignore: boolean;
  open(): Promise<Harness>;
}

async function sqliteHarness(): Promise<Harness> {
  const dir = await Deno.makeTempDir({ prefix: "pier-store-" });
  const stores: StoreBackend[] = [];
  const query = (sql: string) => {
    const db = new DatabaseSync(`${dir}/site.db`);
    try {
      return Promise.resolve((db.prepare(sql).all() as Row[]).map((r) => ({ ...r })));
    } finally {
      db.close();
    }
  };
  return {
    store(options = {}) {
      const store = new Store(`${dir}/site.db`, options);
      stores.push(store);
      return store;
    },
    query,
    async setVersion(version) {
      await query(`PRAGMA user_version = ${version}`);
    },
    async cleanup() {
      for (const store of stores) await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function postgresHarness(): Promise<Harness> {
  const db = await freshDatabase();
  if (!db) throw new Error("unreachable: the PostgreSQL cases are ignored without a server");
  const stores: StoreBackend[] = [];
  const sql = postgres(db.url, driverOptions(db.url, 1, 30_000, 5));
  return {
    store(options = {}) {
      const store = new PostgresStore(db.url, { callTimeoutMs: options.callTimeoutMs });
      stores.push(store);
      return store;
    },
    query: async (text) => [...await sql.unsafe(text)].map((r) => ({ ...r })),
    async setVersion(version) {
      await sql`UPDATE pier_schema SET version = ${version}`;
    },
    async cleanup() {
      for (const store of stores) await store.close();
      await sql.end();
      await db.drop();
    },
  };
}

const BACKENDS: Backend[] = [
  { name: "SQLite", ignore: false, open: sqliteHarness },
  // Without a server the PostgreSQL cases show as ignored (after one SKIPPED line); in CI that throws instead.
  { name: "PostgreSQL", ignore: postgresAdminUrl() === null, open: postgresHarness },
];

/** Register one test per backend. */
function bothStores(title: string, fn: (h: Harness, backend: Backend["name"]) => Promise<void>): void {
  for (const backend of BACKENDS) {
    Deno.test({
      name: `${backend.name}: ${title}`,
      ignore: backend.ignore,
      async fn() {
        const h = await backend.open();
        try {
          await fn(h, backend.name);
        } finally {
          await h.cleanup();
        }
      },
    });
  }
}

const message = (n: number): NewMessage => ({
  name: `Sender ${n}`,
  email: `s${n}@example.com`,
  message: `Message ${n}`,
  clientAddr: "127.0.0.1",
  sessionId: null,
});

/** The columns of a table, in either database. */
async function columns(h: Harness, backend: Backend["name"], table: string): Promise<string[]> {
  const rows = backend === "SQLite" ? await h.query(`PRAGMA table_info(${table})`) : await h.query(
    `SELECT column_name AS name FROM information_schema.columns WHERE table_name = '${table}'`,
  );
  return rows.map((r) => String(r.name)).sort();
}

bothStores(
  "the schema reaches the newest version, with the same tables and columns",
  async (h, backend) => {
    const store = h.store();
    assert.equal(await store.schemaVersion(), MIGRATIONS.length);
    assert.deepEqual(await columns(h, backend, "sessions"), [
      "created_at",
      "data",
      "expires_at",
      "id",
      "last_seen_at",
      "visit_count",
    ]);
    assert.deepEqual(await columns(h, backend, "messages"), [
      "client_addr",
      "created_at",
      "email",
      "id",
      "message",
      "name",
      "session_id",
    ]);
    assert.deepEqual(await columns(h, backend, "uploads"), [
      "client_addr",
      "content_type",
      "created_at",
      "description",
      "id",
      "original_name",
      "session_id",
      "sha256",
      "size",
      "stored_name",
    ]);
    assert.deepEqual(await columns(h, backend, "posts"), ["at", "client_addr"]);
    assert.deepEqual(await columns(h, backend, "site_secrets"), ["name", "value"]);
    if (backend === "SQLite") {
      assert.deepEqual(await h.query("PRAGMA journal_mode"), [{ journal_mode: "wal" }]);
    }
  },
);

bothStores("a database from a newer version of the code is refused instead of guessed at", async (h) => {
  const first = h.store();
  await first.addMessage(message(1));
  await first.close();
  await h.setVersion(99);
  await assert.rejects(h.store().ready(), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, "SCHEMA_TOO_NEW");
    assert.match(err.message, /version 99 is newer than this code/);
    return true;
  });
});

bothStores("migrations are idempotent: reopening keeps the version and the data", async (h) => {
  const first = h.store();
  await first.addMessage(message(1));
  await first.close();
  for (let i = 0; i < 2; i++) {
    const again = h.store();
    assert.equal(await again.schemaVersion(), MIGRATIONS.length);
    assert.deepEqual((await again.listMessages()).map((m) => m.name), ["Sender 1"]);
    await again.close();
  }
});

bothStores("three stores opening the same fresh database at once migrate it once", async (h) => {
  const stores = [
    h.store({ busyTimeoutMs: 5000 }),
    h.store({ busyTimeoutMs: 5000 }),
    h.store({ busyTimeoutMs: 5000 }),
  ];
  await Promise.all(stores.map((s) => s.ready()));
  for (const s of stores) assert.equal(await s.schemaVersion(), MIGRATIONS.length);
  await Promise.all(stores.map((s, i) => s.addMessage(message(i))));
  assert.equal((await stores[0].listMessages()).length, 3);
});

bothStores("messages list newest first, with a limit, and concurrent writes stay apart", async (h) => {
  const store = h.store();
  const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => store.addMessage(message(i))));
  assert.equal(new Set(ids).size, 50);
  const all = await store.listMessages();
  assert.equal(all.length, 50);
  // Newest first: created_at descending, then id descending within the same millisecond.
  for (let i = 1; i < all.length; i++) {
    assert.ok(
      all[i - 1].createdAt > all[i].createdAt ||
        (all[i - 1].createdAt === all[i].createdAt && all[i - 1].id > all[i].id),
    );
  }
  // Each id is the one its write returned.
  assert.deepEqual(all.map((m) => m.id).sort((a, b) => a - b), [...ids].sort((a, b) => a - b));
  // Concurrent writes may commit in any order (a pool runs them side by side); sequential ones in theirs.
  for (const n of [50, 51, 52]) await store.addMessage(message(n));
  assert.deepEqual((await store.listMessages(3)).map((m) => m.name), ["Sender 52", "Sender 51", "Sender 50"]);
});

bothStores("text is kept exactly: quotes, NUL-free Unicode, CRLF, SQL-looking input", async (h) => {
  const store = h.store();
  const tricky = {
    ...message(0),
    name: "Robert'); DROP TABLE messages;--",
    message: 'Line 1\r\nLine 2 — ünïcödé 🚢 "quoted" $1 ${x}',
    sessionId: "5b0c6c84-3b7e-4a4f-8c43-2f1f7e7b9a10",
  };
  await store.addMessage(tricky);
  const [m] = await store.listMessages();
  assert.deepEqual({ ...m, id: 0, createdAt: 0 }, { ...tricky, id: 0, createdAt: 0 });
  assert.ok(Math.abs(m.createdAt - Date.now()) < 60_000);
});

bothStores("uploads are recorded and listed newest first; a stored name is unique", async (h) => {
  const store = h.store();
  const base: Omit<NewUpload, "storedName"> = {
    originalName: "cv.pdf",
    size: 5 * 1024 ** 3, // past 32 bits: sizes are 64-bit in both databases
    contentType: "application/pdf",
    sha256: "ab".repeat(32),
    description: "My CV",
    clientAddr: "203.0.113.9",
    sessionId: "5b0c6c84-3b7e-4a4f-8c43-2f1f7e7b9a10",
  };
  await store.addUpload({ ...base, storedName: "a" });
  await store.addUpload({ ...base, storedName: "b", originalName: "second.txt", sessionId: null });
  const uploads = await store.listUploads();
  assert.deepEqual(uploads.map((u) => u.storedName), ["b", "a"]);
  assert.deepEqual({ ...uploads[1], id: 0, createdAt: 0 }, { ...base, storedName: "a", id: 0, createdAt: 0 });
  assert.equal(uploads[0].sessionId, null);
  assert.equal((await store.listUploads(1)).length, 1);
  // A second record for the same file is an error, not a silent duplicate.
  await assert.rejects(store.addUpload({ ...base, storedName: "a" }), StoreError);
});

bothStores(
  "calls at once are each answered on their own: one failing leaves the others committed",
  async (h) => {
    // On SQLite, calls made while another is with the Worker go as one batch, one transaction (group commit):
    // each runs in its own savepoint, so a failure rolls back that call only.
    const store = h.store();
    const upload = (storedName: string): NewUpload => ({
      storedName,
      originalName: "a.txt",
      size: 1,
      contentType: "text/plain",
      sha256: "",
      description: "",
      clientAddr: "127.0.0.1",
      sessionId: null,
    });
    await store.addUpload(upload("taken"));
    const settled = await Promise.allSettled([
      ...Array.from({ length: 30 }, (_, i) => store.addMessage(message(i))),
      store.addUpload(upload("taken")), // a duplicate stored name: this one fails
      ...Array.from({ length: 30 }, (_, i) => store.countVisit(`visitor-${i % 3}`, 1, 2)),
    ]);
    const failed = settled.filter((r) => r.status === "rejected");
    assert.equal(failed.length, 1);
    assert.ok((failed[0] as PromiseRejectedResult).reason instanceof StoreError);
    assert.equal((await store.listMessages(100)).length, 30);
    assert.deepEqual((await store.listUploads()).map((u) => u.storedName), ["taken"]);
    assert.deepEqual(
      await Promise.all([0, 1, 2].map((i) => store.visitCount(`visitor-${i}`))),
      [10, 10, 10],
    );
  },
);

bothStores(
  "sessions fulfil the SessionStore contract; saving one never touches its visit count",
  async (h) => {
    const store = h.store();
    const s = store.sessions;
    assert.equal(await s.get("missing"), undefined);
    const data = { values: { theme: "dark", n: 4 }, createdAt: 1000, lastSeenAt: 2000 };
    await s.set("id-1", data, 9000);
    assert.deepEqual(await s.get("id-1"), { data, expiresAt: 9000 });
    assert.equal(await store.countVisit("id-1", 1, 2), 1);
    assert.equal(await store.countVisit("id-1", 1, 2), 2);
    // A save after the visits (with values as an older request read them) keeps the count the database holds.
    await s.set("id-1", { ...data, values: { theme: "light" }, lastSeenAt: 3000 }, 9500);
    assert.deepEqual(await s.get("id-1"), {
      data: { values: { theme: "light" }, createdAt: 1000, lastSeenAt: 3000 },
      expiresAt: 9500,
    });
    assert.equal(await store.visitCount("id-1"), 2);
    await s.set("id-2", { values: {}, createdAt: 0, lastSeenAt: 0 }, 100);
    const rows = await h.query("SELECT id, visit_count, created_at, last_seen_at FROM sessions ORDER BY id");
    assert.deepEqual(
      rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, k === "id" ? v : Number(v)]))),
      [
        { id: "id-1", visit_count: 2, created_at: 1000, last_seen_at: 3000 },
        { id: "id-2", visit_count: 0, created_at: 0, last_seen_at: 0 },
      ],
    );
    assert.equal(await s.prune!(100), 1);
    assert.equal(await s.get("id-2"), undefined);
    await s.destroy("id-1");
    await s.destroy("never-existed");
    assert.equal(await s.get("id-1"), undefined);
    assert.equal(await store.visitCount("id-1"), 0);
  },
);

bothStores("countVisit creates the row at 1, and a HEAD's visitCount counts nothing", async (h) => {
  const store = h.store();
  const id = crypto.randomUUID();
  assert.equal(await store.visitCount(id), 0);
  assert.equal(await store.countVisit(id, 5000, 7000), 1);
  assert.equal(await store.visitCount(id), 1);
  assert.equal(await store.visitCount(id), 1);
  // The new row is a session the middleware can load (its values empty until the session save).
  assert.deepEqual(await store.sessions.get(id), {
    data: { values: {}, createdAt: 5000, lastSeenAt: 5000 },
    expiresAt: 7000,
  });
});

bothStores(
  "countVisit adds the visits made before the row existed, once: a first visit in a cookie",
  async (h) => {
    const store = h.store();
    const id = crypto.randomUUID();
    assert.equal(
      await store.countVisit(id, 5000, 7000, 1),
      2,
      "the second visit makes the row, counting both",
    );
    assert.equal(
      await store.countVisit(id, 5000, 7000, 1),
      3,
      "a replayed first-visit cookie counts once more",
    );
    assert.equal(await store.visitCount(id), 3);
  },
);

bothStores(
  "the post log counts a client's posts in a window and forgets what left every window",
  async (h) => {
    const store = h.store();
    assert.deepEqual(await store.postsSince("a", 0), { count: 0, oldest: null });
    await store.recordPost("a", 1000, 0);
    await store.recordPost("a", 2000, 0);
    await store.recordPost("b", 2500, 0);
    assert.deepEqual(await store.postsSince("a", 0), { count: 2, oldest: 1000 });
    assert.deepEqual(await store.postsSince("a", 1500), { count: 1, oldest: 2000 });
    assert.deepEqual(await store.postsSince("b", 0), { count: 1, oldest: 2500 });
    // A record forgets every client's posts before its cut-off: the log never outgrows one window.
    await store.recordPost("c", 9000, 2200);
    assert.deepEqual(await store.postsSince("a", 0), { count: 0, oldest: null });
    assert.deepEqual(await store.postsSince("b", 0), { count: 1, oldest: 2500 });
    assert.deepEqual(await h.query("SELECT count(*) AS n FROM posts").then((r) => Number(r[0].n)), 2);
  },
);

bothStores("the site's secret is made once and is the same for every store on the database", async (h) => {
  const a = h.store();
  const b = h.store();
  const [first, second] = await Promise.all([a.siteSecret(), b.siteSecret()]);
  assert.equal(first, second);
  assert.equal(atob(first).length, 32);
  assert.equal(await a.siteSecret(), first);
});

bothStores("200 concurrent visits through two separate stores count exactly 200", async (h) => {
  // Two stores are two instances (two Workers on one file, or two pools on one server): the increment
  // happens in the database, so none is lost however the requests interleave.
  const a = h.store({ busyTimeoutMs: 10_000, callTimeoutMs: 30_000 });
  const b = h.store({ busyTimeoutMs: 10_000, callTimeoutMs: 30_000 });
  await Promise.all([a.ready(), b.ready()]);
  const id = crypto.randomUUID();
  const counts = await Promise.all(
    Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).countVisit(id, Date.now(), Date.now() + 60_000)),
  );
  // Every visit got its own number: 1 to 200, each once.
  assert.deepEqual(counts.sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i + 1));
  assert.equal(await a.visitCount(id), 200);
  assert.equal(await b.visitCount(id), 200);
});

bothStores(
  "a closed store rejects calls with CLOSED; closing twice is fine; the data outlives it",
  async (h) => {
    const store = h.store();
    await store.addMessage(message(1));
    await store.close();
    await store.close();
    await assert.rejects(
      store.listMessages(),
      (err: unknown) => err instanceof StoreError && err.code === "CLOSED",
    );
    assert.equal((await h.store().listMessages()).length, 1);
  },
);

// --- PostgreSQL only: a database that is down, a statement that hangs ------------------------------------

const pgIgnore = postgresAdminUrl() === null;

Deno.test({
  name:
    "PostgreSQL: a database that is down gives a StoreError at once, not a hang; the pool reconnects when it is back",
  ignore: pgIgnore,
  async fn() {
    const db = (await freshDatabase())!;
    const proxy = switchableProxy(new URL(db.url));
    const via = new URL(db.url);
    via.hostname = "127.0.0.1";
    via.port = String(proxy.port);
    const store = new PostgresStore(via.href, { connectTimeoutS: 2, callTimeoutMs: 5000 });
    try {
      // Down from the start (nothing listens): refused, quickly.
      let started = Date.now();
      await assert.rejects(store.ready(), (err: unknown) => {
        assert.ok(err instanceof StoreError, String(err));
        assert.equal(err.code, "ECONNREFUSED");
        return true;
      });
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      // Up: migrated and working, without a new store.
      proxy.up();
      assert.ok(await store.addMessage(message(1)) > 0);
      // Down again, with pooled connections open: they break, and calls fail as StoreErrors.
      proxy.down();
      started = Date.now();
      await assert.rejects(store.listMessages(), StoreError);
      assert.ok(Date.now() - started < 6000, `took ${Date.now() - started} ms`);
      // Back: the pool reconnects by itself.
      proxy.up();
      let names: string[] = [];
      for (let i = 0; i < 20 && names.length === 0; i++) {
        names = await store.listMessages().then((ms) => ms.map((m) => m.name), () => []);
        if (names.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(names, ["Sender 1"]);
    } finally {
      await store.close();
      proxy.down();
      await db.drop();
    }
  },
});

Deno.test({
  name: "PostgreSQL: a statement stuck behind a lock fails with TIMEOUT within the call timeout, then works",
  ignore: pgIgnore,
  async fn() {
    const db = (await freshDatabase())!;
    const store = new PostgresStore(db.url, { callTimeoutMs: 300 });
    const locker = postgres(db.url, driverOptions(db.url, 1, 30_000, 5));
    try {
      await store.ready();
      const holding = locker.begin(async (tx) => {
        await tx`LOCK TABLE messages IN ACCESS EXCLUSIVE MODE`;
        const started = Date.now();
        await assert.rejects(store.addMessage(message(1)), (err: unknown) => {
          assert.ok(err instanceof StoreError);
          assert.equal(err.code, "TIMEOUT");
          return true;
        });
        assert.ok(Date.now() - started < 2000);
        // Past the server-side statement_timeout too, so the stuck insert is cancelled rather than landing.
        await new Promise((r) => setTimeout(r, 300 + STATEMENT_TIMEOUT_MARGIN_MS + 500));
      });
      await holding;
      await store.addMessage(message(2));
      assert.deepEqual((await store.listMessages()).map((m) => m.name), ["Sender 2"]);
    } finally {
      await store.close();
      await locker.end();
      await db.drop();
    }
  },
});

Deno.test("driverOptions() reads the connection from the URL and leaves no PG* variable to the driver", () => {
  const o = driverOptions(
    "postgresql://pi%40er:p%3Ass@db.internal/site?sslmode=require",
    7,
    1000,
    3,
  ) as Record<
    string,
    unknown
  >;
  assert.equal(o.user, "pi@er");
  assert.equal((o.pass as () => string)(), "p:ss");
  assert.equal(o.database, "site");
  assert.equal(o.port, 5432);
  assert.equal(o.max, 7);
  assert.equal(o.connect_timeout, 3);
  assert.equal(o.target_session_attrs, "read-write");
  // sslmode is in the URL, so TLS is left to it.
  assert.ok(!("ssl" in o));
  assert.equal(driverOptions("postgres://u@h/db", 1, 1, 1).ssl, false);
  assert.equal(driverOptions("postgres://u@h", 1, 1, 1).database, "u");
  assert.throws(() => driverOptions("postgres://h/db", 1, 1, 1), /names no user/);
  assert.throws(() => driverOptions("mysql://u@h/db", 1, 1, 1), /Not a PostgreSQL URL/);
});

// --- SQLite only: the file and its Worker -------------------------------------------------------------------

async function withStore(
  fn: (store: Store, dir: string) => Promise<void>,
  busyTimeoutMs?: number,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pier-store-" });
  const store = new Store(`${dir}/site.db`, { busyTimeoutMs });
  try {
    await fn(store, dir);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Store turns a corrupt file into a StoreError, and opens the file once it is replaced", async () => {
  await withStore(async (store, dir) => {
    await Deno.writeTextFile(`${dir}/site.db`, "not a database at all\n".repeat(500));
    await assert.rejects(store.addMessage(message(1)), (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.match(err.message, /not a database/);
      return true;
    });
    await Deno.remove(`${dir}/site.db`);
    assert.ok(await store.addMessage(message(2)) > 0);
  });
});

Deno.test("Store gives up on a lock after its busy timeout with a StoreError, then works again", async () => {
  await withStore(async (store, dir) => {
    await store.ready();
    const locker = new DatabaseSync(`${dir}/site.db`);
    locker.exec("BEGIN EXCLUSIVE");
    const started = Date.now();
    try {
      await assert.rejects(store.addMessage(message(1)), (err: unknown) => {
        assert.ok(err instanceof StoreError);
        assert.match(err.message, /locked/);
        return true;
      });
      // Readers are not blocked by the writer in WAL mode.
      assert.deepEqual(await store.listMessages(), []);
    } finally {
      locker.exec("ROLLBACK");
      locker.close();
    }
    assert.ok(Date.now() - started < 5000);
    await store.addMessage(message(2));
    assert.equal((await store.listMessages()).length, 1);
  }, 100);
});

Deno.test("Store answers the event loop while a slow query runs in its Worker", async () => {
  await withStore(async (store) => {
    await store.ready();
    // 500 commits (each synced to disk) keep the Worker busy; timers on this thread must still fire meanwhile.
    const writes = Promise.all(Array.from({ length: 500 }, (_, i) => store.addMessage(message(i))));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await writes;
    clearInterval(timer);
    assert.ok(ticks > 0, "the event loop never ran while the Worker wrote");
  });
});

Deno.test("the Worker source is self-contained: one import of node:sqlite, then the function", () => {
  const source = storeWorkerSource();
  assert.match(source, /^import \{ DatabaseSync \} from "node:sqlite";\n\(function storeWorkerMain\(/);
  // Any other import would need read permission on app/ inside the Worker, which the start task denies.
  assert.equal(source.match(/\bimport\b/g)?.length, 1);
});

Deno.test("a Worker that does not answer in time is replaced: the call fails with TIMEOUT, the next one works", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier-store-" });
  // A busy timeout longer than the call timeout: the Worker sits in SQLite's wait while the call gives up.
  const store = new Store(`${dir}/site.db`, { busyTimeoutMs: 1500, callTimeoutMs: 200 });
  try {
    await store.ready();
    const locker = new DatabaseSync(`${dir}/site.db`);
    locker.exec("BEGIN EXCLUSIVE");
    try {
      await assert.rejects(
        store.addMessage(message(1)),
        (err: unknown) => err instanceof StoreError && err.code === "TIMEOUT",
      );
      // Terminating a Worker cannot interrupt SQLite's native wait: hold the lock past the busy timeout so
      // the old Worker's insert fails rather than lands (a timed-out write may still complete; see docs).
      await new Promise((r) => setTimeout(r, 1600));
    } finally {
      locker.exec("ROLLBACK");
      locker.close();
    }
    await store.addMessage(message(2));
    assert.deepEqual((await store.listMessages()).map((m) => m.name), ["Sender 2"]);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a full database (the size cap, as a full disk) fails writes with a StoreError; reads go on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier-store-" });
  const store = new Store(`${dir}/site.db`, { maxDatabaseBytes: 64 * 1024 });
  try {
    let failure: unknown = null;
    for (let i = 0; i < 100 && failure === null; i++) {
      await store.addMessage({ ...message(i), message: "x".repeat(4000) }).catch((err) => failure = err);
    }
    assert.ok(failure instanceof StoreError, String(failure));
    assert.match(failure.message, /database or disk is full/);
    const stored = await store.listMessages();
    assert.ok(stored.length > 0 && stored.length < 100);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
