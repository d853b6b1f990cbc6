// The SQLite session store beside its module: its statements run in the Worker (the event loop turns while
// one waits on a lock), a stuck Worker is replaced, a failed open is every call's answer, and it runs with
// read and write on its folder only. Persistence and the middleware end to end are session_test.ts.
import assert from "node:assert/strict";
import { runDenoScript } from "../tests/fixtures/deno_script.ts";
import { DatabaseSync } from "node:sqlite";
import { SqliteSessionStore } from "./sqlite_session_store.ts";

const DATA = { values: { user: "ada" }, createdAt: 1, lastSeenAt: 2 };

/** Run `fn` while another connection holds the database's write lock, then release it. */
async function whileLocked<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const locker = new DatabaseSync(path);
  locker.exec("PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE");
  try {
    return await fn();
  } finally {
    locker.exec("ROLLBACK");
    locker.close();
  }
}

Deno.test("SqliteSessionStore waits for a lock in its Worker while the event loop turns", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier_sqlite_session_" });
  const store = new SqliteSessionStore(`${dir}/sessions.db`, { busyTimeoutMs: 5_000 });
  try {
    await store.set("s1", DATA, Date.now() + 60_000); // opened, in WAL mode
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    let write: Promise<void> | undefined;
    try {
      await whileLocked(`${dir}/sessions.db`, async () => {
        write = store.set("s2", DATA, Date.now() + 60_000);
        await new Promise((resolve) => setTimeout(resolve, 300));
      });
      // The Worker waited on the lock for 300 ms; on the main thread the timers still fired.
      assert.ok(ticks >= 10, `only ${ticks} ticks in 300 ms`);
      await write;
    } finally {
      clearInterval(ticker);
    }
    assert.deepEqual(
      (await store.get("s2"))?.data,
      DATA,
      "the write went through once the lock was released",
    );
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteSessionStore fails a call left unanswered and replaces its stuck Worker", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier_sqlite_session_" });
  const path = `${dir}/sessions.db`;
  const store = new SqliteSessionStore(path, { busyTimeoutMs: 2_000, callTimeoutMs: 200 });
  try {
    await store.set("s1", DATA, Date.now() + 60_000);
    await whileLocked(path, async () => {
      await assert.rejects(store.set("s2", DATA, 1), /set: no answer from its Worker in 200 ms/);
    });
    // A new Worker opens the file again and answers.
    assert.deepEqual((await store.get("s1"))?.data, DATA);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteSessionStore answers every call with the failure to open, and closes after it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier_sqlite_session_" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "not a folder");
    const store = new SqliteSessionStore(`${dir}/file/sessions.db`);
    await assert.rejects(store.get("s1"), /SqliteSessionStore get: /);
    await assert.rejects(store.set("s1", DATA, 1), /SqliteSessionStore set: /);
    await store.close();
    await assert.rejects(store.get("s1"), /the store is closed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteSessionStore refuses an empty path, and in the caller what JSON cannot carry", async () => {
  assert.throws(() => new SqliteSessionStore(""), TypeError);
  const store = new SqliteSessionStore(":memory:");
  try {
    await assert.rejects(store.set("s1", { ...DATA, values: { n: 1n } }, 1), TypeError);
  } finally {
    await store.close();
  }
});

Deno.test({
  name: "SqliteSessionStore runs with read and write on its folder only, none on the source",
  permissions: { run: true, read: true, write: true },
  async fn() {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "pier_sqlite_session_" }));
    try {
      const module = new URL("./sqlite_session_store.ts", import.meta.url).href;
      const script = `
        import { SqliteSessionStore } from ${JSON.stringify(module)};
        const store = new SqliteSessionStore(${JSON.stringify(`${dir}/sessions.db`)});
        await store.set("s1", { values: { user: "ada" }, createdAt: 1, lastSeenAt: 2 }, Date.now() + 60_000);
        console.log((await store.get("s1")).data.values.user);
        await store.close();
        try {
          await Deno.readTextFile(${JSON.stringify(new URL(module).pathname)});
        } catch (err) {
          console.log(err.name);
        }
      `;
      const { code, stdout, stderr } = await runDenoScript(
        ["--no-prompt", "--quiet", "--no-config", `--allow-read=${dir}`, `--allow-write=${dir}`],
        script,
      );
      assert.equal(code, 0, stderr);
      // The store worked, and the process could not have read its source.
      assert.deepEqual(stdout.trim().split("\n"), ["ada", "NotCapable"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
