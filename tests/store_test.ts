// The store on a temporary database: schema and migrations, messages and uploads newest first, the session
// store contract, concurrency through the one Worker, and failures (corrupt file, lock, closed store) that
// must become a StoreError, never a crash or a hang.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type NewMessage, Store, StoreError } from "../app/store.ts";
import { storeWorkerSource } from "../app/store_worker.ts";

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

const message = (n: number): NewMessage => ({
  name: `Sender ${n}`,
  email: `s${n}@example.com`,
  message: `Message ${n}`,
  clientAddr: "127.0.0.1",
  sessionId: null,
});

Deno.test("Store creates the schema at version 1 in WAL mode, with the three tables", async () => {
  await withStore(async (store, dir) => {
    assert.equal(await store.schemaVersion(), 1);
    const db = new DatabaseSync(`${dir}/site.db`);
    const mode = db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
      name: string;
    }[]).map((r) => r.name);
    const columns = (table: string) =>
      (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((r) => r.name);
    const sessionColumns = columns("sessions");
    const messageColumns = columns("messages");
    const uploadColumns = columns("uploads");
    db.close();
    assert.equal(mode.journal_mode, "wal");
    assert.deepEqual(tables.filter((t) => !t.startsWith("sqlite_")), ["messages", "sessions", "uploads"]);
    for (const c of ["id", "created_at", "last_seen_at", "visit_count"]) {
      assert.ok(sessionColumns.includes(c), c);
    }
    for (const c of ["created_at", "client_addr", "session_id", "name", "email", "message"]) {
      assert.ok(messageColumns.includes(c), c);
    }
    for (const c of ["stored_name", "original_name", "size", "content_type", "sha256"]) {
      assert.ok(uploadColumns.includes(c), c);
    }
  });
});

Deno.test("Store refuses a database from a newer version of the code instead of guessing", async () => {
  await withStore(async (store, dir) => {
    const db = new DatabaseSync(`${dir}/site.db`);
    db.exec("PRAGMA user_version = 99");
    db.close();
    await assert.rejects(
      store.ready(),
      (err: unknown) => err instanceof StoreError && /newer than this code/.test(err.message),
    );
  });
});

Deno.test("Store lists messages newest first, with a limit, and keeps concurrent writes apart", async () => {
  await withStore(async (store) => {
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
    assert.equal(all[0].name, "Sender 49");
    assert.deepEqual((await store.listMessages(3)).map((m) => m.name), [
      "Sender 49",
      "Sender 48",
      "Sender 47",
    ]);
  });
});

Deno.test("Store keeps text exactly: quotes, NUL-free Unicode, CRLF, SQL-looking input", async () => {
  await withStore(async (store) => {
    const tricky = {
      ...message(0),
      name: "Robert'); DROP TABLE messages;--",
      message: 'Line 1\r\nLine 2 — ünïcödé 🚢 "quoted"',
    };
    await store.addMessage(tricky);
    const [m] = await store.listMessages();
    assert.equal(m.name, tricky.name);
    assert.equal(m.message, tricky.message);
  });
});

Deno.test("Store records uploads and lists them newest first", async () => {
  await withStore(async (store) => {
    const base = {
      originalName: "cv.pdf",
      size: 1234,
      contentType: "application/pdf",
      sha256: "ab".repeat(32),
      description: "My CV",
      clientAddr: "203.0.113.9",
      sessionId: "5b0c6c84-3b7e-4a4f-8c43-2f1f7e7b9a10",
    };
    await store.addUpload({ ...base, storedName: "a" });
    await store.addUpload({ ...base, storedName: "b", originalName: "second.txt" });
    const uploads = await store.listUploads();
    assert.deepEqual(uploads.map((u) => u.storedName), ["b", "a"]);
    assert.equal(uploads[1].sha256, base.sha256);
    assert.equal(uploads[1].sessionId, base.sessionId);
    // The stored name is unique: a second record for the same file is an error, not a silent duplicate.
    await assert.rejects(store.addUpload({ ...base, storedName: "a" }), StoreError);
  });
});

Deno.test("Store.sessions fulfils the SessionStore contract and fills the visit_count column", async () => {
  await withStore(async (store, dir) => {
    const s = store.sessions;
    assert.equal(await s.get("missing"), undefined);
    const data = { values: { visits: 4, theme: "dark" }, createdAt: 1000, lastSeenAt: 2000 };
    await s.set("id-1", data, 9000);
    assert.deepEqual(await s.get("id-1"), { data, expiresAt: 9000 });
    await s.set("id-1", { ...data, values: { visits: 5 } }, 9500);
    assert.deepEqual((await s.get("id-1"))?.data.values, { visits: 5 });
    await s.set("id-2", { values: {}, createdAt: 0, lastSeenAt: 0 }, 100);
    const db = new DatabaseSync(`${dir}/site.db`);
    const rows = db.prepare("SELECT id, visit_count, created_at, last_seen_at FROM sessions ORDER BY id")
      .all();
    db.close();
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      { id: "id-1", visit_count: 5, created_at: 1000, last_seen_at: 2000 },
      { id: "id-2", visit_count: 0, created_at: 0, last_seen_at: 0 },
    ]);
    assert.equal(await s.prune!(100), 1);
    assert.equal(await s.get("id-2"), undefined);
    await s.destroy("id-1");
    await s.destroy("never-existed");
    assert.equal(await s.get("id-1"), undefined);
  });
});

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

Deno.test("a closed Store rejects calls with CLOSED; closing twice is fine", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier-store-" });
  try {
    const store = new Store(`${dir}/site.db`);
    await store.addMessage(message(1));
    await store.close();
    await store.close();
    await assert.rejects(
      store.listMessages(),
      (err: unknown) => err instanceof StoreError && err.code === "CLOSED",
    );
    // The data outlived the Worker.
    const again = new Store(`${dir}/site.db`);
    assert.equal((await again.listMessages()).length, 1);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
