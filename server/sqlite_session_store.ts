// Sessions in a SQLite file. It owns one database file and the Worker that runs every statement on it, so no
// query or fsync ever blocks the event loop; it must never run SQL on the main thread, nor open another file.
// Its Worker starts from a Blob URL (as the site's store does): it needs no read permission on this source.

/**
 * Sessions in a SQLite file (`@pier/pier/sqlite-session`), for one process whose sessions should outlive a
 * restart: {@link SqliteSessionStore}. `sessions()` without a store keeps them in memory; pass this one to
 * keep them on disk.
 *
 * @example
 * ```ts ignore
 * import { sessions } from "@pier/pier";
 * import { SqliteSessionStore } from "@pier/pier/sqlite-session";
 * const store = new SqliteSessionStore("data/sessions.db");
 * const middleware = sessions({ store });
 * // at shutdown:
 * await store.close();
 * ```
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type { SessionData, SessionStore, StoredSession } from "./session.ts";

/** How long SQLite waits for another connection's lock (`PRAGMA busy_timeout`): 5 s, in ms. */
export const DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 5_000;
/** A call the Worker has not answered in 10 s fails, and the Worker is replaced: later than a lock wait. */
export const DEFAULT_SQLITE_CALL_TIMEOUT_MS = 10_000;

/** Options for {@link SqliteSessionStore}. */
export interface SqliteSessionStoreOptions {
  /** How long SQLite waits for another connection's lock, in ms. Default 5 s. */
  busyTimeoutMs?: number;
  /**
   * A call with no answer in this long fails, and the Worker, stuck, is replaced by a new one. In ms; default
   * {@link DEFAULT_SQLITE_CALL_TIMEOUT_MS}.
   */
  callTimeoutMs?: number;
}

/** The operations the Worker answers, in the order it reads them. */
type Op = "open" | "get" | "set" | "destroy" | "prune" | "close";

/** A call as it travels to the Worker. */
interface Call {
  id: number;
  op: Op;
  args: unknown[];
}

/** The Worker's answer to one {@link Call}: the value, or the error's message and code. */
type Reply = { id: number; ok: true; value: unknown } | {
  id: number;
  ok: false;
  message: string;
  code: string;
};

/** What the Worker's body needs of its own scope. */
interface WorkerScope {
  onmessage: ((event: MessageEvent<Call>) => void) | null;
  postMessage(message: Reply): void;
}

/** The id of the "open" every new Worker reads first; calls count from 1, so no caller waits on it. */
const OPEN_ID = 0;

/**
 * The Worker's body, turned into text for it (so it must use nothing from this module's scope: only its
 * parameters and globals). It answers calls one at a time, in arrival order: SQLite is synchronous here, and
 * a call runs to completion before the next message is read. When opening failed, every later call answers
 * with that failure.
 */
function sessionWorkerMain(Database: typeof DatabaseSync, scope: WorkerScope): void {
  type Statement = ReturnType<InstanceType<typeof DatabaseSync>["prepare"]>;
  let db: InstanceType<typeof DatabaseSync> | null = null;
  let statements: { get: Statement; set: Statement; destroy: Statement; prune: Statement } | null = null;
  let failure: unknown = null;
  const need = () => {
    if (failure) throw failure;
    if (!statements) throw Object.assign(new Error("The database is closed"), { code: "CLOSED" });
    return statements;
  };
  const ops: Record<Op, (...args: never[]) => unknown> = {
    open(path: string, busyTimeoutMs: number) {
      try {
        const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
        if (path !== ":memory:" && slash > 0) Deno.mkdirSync(path.slice(0, slash), { recursive: true });
        db = new Database(path);
        // The lock wait first: switching a new file to WAL takes a lock another opener may hold. WAL:
        // readers and the writer do not wait for each other. NORMAL sync is safe with WAL (no corruption; at
        // worst the last commits are lost on power failure, acceptable for sessions).
        db.exec(`
          PRAGMA busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))};
          PRAGMA journal_mode = WAL;
          PRAGMA synchronous = NORMAL;
          CREATE TABLE IF NOT EXISTS sessions (
            id TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            expires_at INTEGER NOT NULL
          ) WITHOUT ROWID;
          CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
        `);
        // Prepared once: a statement prepared per call is native memory V8 cannot see (the site's store
        // grew by hundreds of MB under load that way).
        statements = {
          get: db.prepare("SELECT data, expires_at FROM sessions WHERE id = ?"),
          set: db.prepare(
            "INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?) " +
              "ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
          ),
          destroy: db.prepare("DELETE FROM sessions WHERE id = ?"),
          prune: db.prepare("DELETE FROM sessions WHERE expires_at <= ?"),
        };
      } catch (err) {
        failure = err;
        throw err;
      }
    },
    get(id: string) {
      const row = need().get.get(id) as { data: string; expires_at: number } | undefined;
      return row && { data: JSON.parse(row.data), expiresAt: Number(row.expires_at) };
    },
    set(id: string, json: string, expiresAt: number) {
      need().set.run(id, json, Math.floor(expiresAt));
    },
    destroy(id: string) {
      need().destroy.run(id);
    },
    prune(now: number) {
      return Number(need().prune.run(Math.floor(now)).changes);
    },
    close() {
      db?.close();
      db = null;
      statements = null;
    },
  };
  scope.onmessage = (event) => {
    const { id, op, args } = event.data;
    try {
      scope.postMessage({ id, ok: true, value: Reflect.apply(ops[op], ops, args) });
    } catch (err) {
      const code = typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
        ? err.code
        : "ERROR";
      scope.postMessage({ id, ok: false, message: err instanceof Error ? err.message : String(err), code });
    }
  };
}

/** The Worker's whole program: one import, and the body as text. */
function workerSource(): string {
  return `import { DatabaseSync } from "node:sqlite";\n(${sessionWorkerMain})(DatabaseSync, self);\n`;
}

interface Pending {
  op: Op;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * A {@link SessionStore} in a SQLite file (`node:sqlite`, built into Deno), every statement run in a Worker
 * so that no query or commit blocks the event loop. WAL mode; the table (`sessions`: id, JSON data, expiry)
 * and the file's folder are created when missing.
 *
 * For one process: a file on one machine is no store for several instances (give those the database they
 * share, as the site does). The process needs `--allow-read` and `--allow-write` on the file and its folder,
 * and no read permission on Pier's source. The Worker starts with the first call; a call it leaves
 * unanswered for `callTimeoutMs` fails and the Worker is replaced. A running Worker keeps the process alive:
 * {@link SqliteSessionStore.close} it at shutdown.
 *
 * @example
 * ```ts
 * import { SqliteSessionStore } from "./sqlite_session_store.ts";
 * const store = new SqliteSessionStore(":memory:");
 * await store.set("id", { values: { user: "ada" }, createdAt: 0, lastSeenAt: 0 }, Date.now() + 60_000);
 * console.log((await store.get("id"))?.data.values.user); // "ada"
 * await store.close();
 * ```
 */
export class SqliteSessionStore implements SessionStore {
  #path: string;
  #busyTimeoutMs: number;
  #callTimeoutMs: number;
  #url: string | null = null;
  #worker: Worker | null = null;
  #pending = new Map<number, Pending>();
  #nextId = OPEN_ID + 1;
  #closed = false;

  /**
   * A store over the database at `path`. Nothing is opened yet: the Worker starts, and opens the file, with
   * the first call.
   *
   * @param path A file path, or `:memory:` (a database that lasts as long as the Worker).
   * @param options Lock wait and call timeout.
   * @throws {TypeError} When the path is empty.
   *
   * @example
   * ```ts
   * import { SqliteSessionStore } from "./sqlite_session_store.ts";
   * const store = new SqliteSessionStore("data/sessions.db", { busyTimeoutMs: 1_000 });
   * await store.close(); // never opened: nothing to do
   * ```
   */
  constructor(path: string, options: SqliteSessionStoreOptions = {}) {
    if (typeof path !== "string" || path === "") {
      throw new TypeError(`SqliteSessionStore: bad path ${JSON.stringify(path)}`);
    }
    this.#path = path;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_SQLITE_BUSY_TIMEOUT_MS;
    this.#callTimeoutMs = options.callTimeoutMs ?? DEFAULT_SQLITE_CALL_TIMEOUT_MS;
  }

  /**
   * The session with this id.
   *
   * @param id The session id.
   * @returns The stored session, or undefined.
   *
   * @example
   * ```ts
   * import { SqliteSessionStore } from "./sqlite_session_store.ts";
   * const store = new SqliteSessionStore(":memory:");
   * console.log(await store.get("nope")); // undefined
   * await store.close();
   * ```
   */
  async get(id: string): Promise<StoredSession | undefined> {
    // The Worker's answer to "get", as its body returns it.
    return await this.#call("get", [id]) as StoredSession | undefined;
  }

  /**
   * Create or replace a session.
   *
   * @param id The session id.
   * @param data The session data (JSON-serialisable).
   * @param expiresAt When it may be forgotten, in ms since the epoch.
   * @returns When stored (committed).
   *
   * @example
   * ```ts
   * import { SqliteSessionStore } from "./sqlite_session_store.ts";
   * const store = new SqliteSessionStore(":memory:");
   * await store.set("id", { values: {}, createdAt: 0, lastSeenAt: 0 }, 1);
   * await store.close();
   * ```
   */
  async set(id: string, data: SessionData, expiresAt: number): Promise<void> {
    // Serialised here, so a value JSON cannot carry fails in the caller, as with the memory store.
    await this.#call("set", [id, JSON.stringify(data), expiresAt]);
  }

  /**
   * Forget a session.
   *
   * @param id The session id.
   * @returns When forgotten.
   *
   * @example
   * ```ts
   * import { SqliteSessionStore } from "./sqlite_session_store.ts";
   * const store = new SqliteSessionStore(":memory:");
   * await store.destroy("id");
   * await store.close();
   * ```
   */
  async destroy(id: string): Promise<void> {
    await this.#call("destroy", [id]);
  }

  /**
   * Forget every session expired at `now`.
   *
   * @param now The current time, in ms since the epoch.
   * @returns How many sessions were removed.
   *
   * @example
   * ```ts
   * import { SqliteSessionStore } from "./sqlite_session_store.ts";
   * const store = new SqliteSessionStore(":memory:");
   * console.log(await store.prune(Date.now())); // 0
   * await store.close();
   * ```
   */
  async prune(now: number): Promise<number> {
    return await this.#call("prune", [now]) as number;
  }

  /**
   * Close the database and stop the Worker; later calls fail. Calls already made are answered first.
   *
   * @returns When the database is closed.
   *
   * @example
   * ```ts
   * import { SqliteSessionStore } from "./sqlite_session_store.ts";
   * const store = new SqliteSessionStore(":memory:");
   * await store.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#worker) await this.#call("close", []);
    } finally {
      this.#closed = true;
      this.#stop(new Error("SqliteSessionStore: closed"));
      if (this.#url) URL.revokeObjectURL(this.#url);
      this.#url = null;
    }
  }

  #call(op: Op, args: unknown[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error(`SqliteSessionStore ${op}: the store is closed`));
    const worker = this.#worker ?? this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // No answer: the Worker is stuck. Replace it; every call in flight fails, none is left hanging.
        this.#stop(
          new Error(`SqliteSessionStore ${op}: no answer from its Worker in ${this.#callTimeoutMs} ms`),
        );
      }, this.#callTimeoutMs);
      this.#pending.set(id, { op, resolve, reject, timer });
      worker.postMessage({ id, op, args } satisfies Call);
    });
  }

  #start(): Worker {
    this.#url ??= URL.createObjectURL(new Blob([workerSource()], { type: "text/javascript" }));
    const worker = new Worker(this.#url, { type: "module", name: "pier-sqlite-sessions" });
    worker.onmessage = (event: MessageEvent<Reply>) => {
      const reply = event.data;
      const pending = this.#pending.get(reply.id);
      if (!pending) return; // the open, or a call that timed out already
      this.#pending.delete(reply.id);
      clearTimeout(pending.timer);
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(new Error(`SqliteSessionStore ${pending.op}: ${reply.message} (${reply.code})`));
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault(); // a Worker's uncaught error must not take the server down with it
      this.#stop(new Error(`SqliteSessionStore: its Worker failed: ${event.message}`));
    };
    // The first message every Worker reads, so the database is open before any call that follows.
    worker.postMessage({ id: OPEN_ID, op: "open", args: [this.#path, this.#busyTimeoutMs] } satisfies Call);
    this.#worker = worker;
    return worker;
  }

  /** Stop the Worker, failing every call in flight with `reason`; the next call starts a new one. */
  #stop(reason: Error): void {
    this.#worker?.terminate();
    this.#worker = null;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(reason);
    }
    this.#pending.clear();
  }
}
