// The site's storage: the interface every store answers (StoreBackend, from the operations table in
// app/store_ops.ts), and its embedded default, one SQLite database behind an async API. It owns the database
// Worker (start, restart after a crash or a timeout, stop); it must never run SQL on the event loop, and
// never report a write as done before the Worker answered that it committed. PostgreSQL: postgres_store.ts.
import type { SessionStore } from "../mod.ts";
import { Caller, type Remote, remote } from "./_rpc.ts";
import { MIGRATIONS } from "./migrations.ts";
import { type SessionOpName, STORE_OP_NAMES, type StoreOps } from "./store_ops.ts";
import { type BatchCall, type BatchResult, type SqliteWorkerOps, storeWorkerSource } from "./store_worker.ts";

/**
 * How long SQLite waits for a lock held by another connection (`deno task messages`, a backup) before it
 * gives up with "database is locked": long enough for any reader's snapshot, short enough that a visitor
 * gets a 503 page rather than a hung request.
 */
export const DEFAULT_BUSY_TIMEOUT_MS = 2_000;

/**
 * A call that gets no answer in this long fails (the Worker is stuck or gone): a few times the busy
 * timeout, so a slow but healthy write still completes.
 */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/**
 * The largest the database may grow, 1 GiB: thousands of times what a résumé site's messages and sessions
 * need, so reaching it means a flood of posts, which then fills this file and not the disk the uploads and the
 * system share. Past it, writes fail like a full disk (503) while reads go on.
 */
export const DEFAULT_MAX_DATABASE_BYTES: number = 1024 ** 3;

/** `listMessages` and `listUploads` return at most this many rows unless asked otherwise. */
export const DEFAULT_LIST_LIMIT = 1000;

/**
 * A database failure: locked, disk full, corrupt file, Worker crashed or timed out, PostgreSQL down or
 * refusing. The site answers it with a 503 page; the message says what the database said ("database is
 * locked", "connect ECONNREFUSED 127.0.0.1:5432"), and `code` is `node:sqlite`'s (`ERR_SQLITE_ERROR`),
 * PostgreSQL's SQLSTATE (`23505`), the PostgreSQL driver's (`ECONNREFUSED`, `CONNECT_TIMEOUT`,
 * `CONNECTION_CLOSED`) or ours (`TIMEOUT`, `WORKER_DIED`, `CLOSED`, `SCHEMA_TOO_NEW`).
 *
 * @example
 * ```ts
 * import { StoreError } from "./store.ts";
 * const err = new StoreError("database is locked", "ERR_SQLITE_ERROR");
 * console.log(err.code); // "ERR_SQLITE_ERROR"
 * ```
 */
export class StoreError extends Error {
  /** Machine-readable reason. */
  readonly code: string;

  /**
   * Create a store failure.
   *
   * @param message What happened (for the log; never shown to visitors).
   * @param code The reason code.
   *
   * @example
   * ```ts
   * import { StoreError } from "./store.ts";
   * const err = new StoreError("No answer from the database Worker in 10000 ms", "TIMEOUT");
   * console.log(err.name); // "StoreError"
   * ```
   */
  constructor(message: string, code: string) {
    super(message);
    this.name = "StoreError";
    this.code = code;
  }
}

export type { Message, NewMessage, NewUpload, Upload } from "./store_ops.ts";

/**
 * The operations of the table (app/store_ops.ts) as a store answers them, each returning a promise; the
 * session ones as `sessions`, the framework's `SessionStore`. Everything a store answers but `ready` and
 * `close`, so an operation added to the table appears here by itself.
 *
 * @example
 * ```ts
 * import type { StoreCalls } from "./store.ts";
 * const count = (store: StoreCalls) => store.visitCount("4f1c"); // Promise<number>
 * console.log(typeof count);
 * ```
 */
export type StoreCalls = Omit<Remote<StoreOps>, SessionOpName> & {
  /** Sessions, for the framework's `sessions()` middleware. Saving one never changes its visit count. */
  readonly sessions: SessionStore;
};

/**
 * Every operation of the table as a call through `send`, in a store's shape: the session operations as
 * `sessions`, the others as methods. The SQLite Store (calls to its Worker) and a server Worker's relay
 * (calls to the main thread) are both this, so an operation added to the table needs nothing here.
 *
 * @param send Makes one call: the operation's name and its arguments.
 * @returns The calls.
 *
 * @example
 * ```ts
 * import { callsThrough } from "./store.ts";
 * const calls = callsThrough((op) => Promise.resolve(op === "visitCount" ? 3 : undefined));
 * console.log(await calls.visitCount("4f1c")); // 3
 * ```
 */
export function callsThrough(send: (op: keyof StoreOps, args: unknown[]) => Promise<unknown>): StoreCalls {
  const { sessionGet, sessionSet, sessionDestroy, sessionPrune, ...methods } = remote<StoreOps>(
    STORE_OP_NAMES,
    send,
  );
  return {
    ...methods,
    sessions: { get: sessionGet, set: sessionSet, destroy: sessionDestroy, prune: sessionPrune },
  };
}

/**
 * The most calls one batch carries: a batch holds the Worker for its whole length, so a very deep queue goes in
 * several, and a slow call (a long list) delays at most this many others.
 */
const MAX_BATCH_CALLS = 64;

/** Options for {@link Store}. */
export interface StoreOptions {
  /** See {@link DEFAULT_BUSY_TIMEOUT_MS}. */
  busyTimeoutMs?: number;
  /** See {@link DEFAULT_CALL_TIMEOUT_MS}. */
  callTimeoutMs?: number;
  /** See {@link DEFAULT_MAX_DATABASE_BYTES}. */
  maxDatabaseBytes?: number;
}

/**
 * What the site keeps, whichever database keeps it: {@link Store} (SQLite, the default) and `PostgresStore`
 * (app/postgres_store.ts) both answer it. Every method is async and settles only when the database answered:
 * a resolved write is committed. Every database failure is a {@link StoreError}.
 *
 * @example
 * ```ts
 * import { Store, type StoreBackend } from "./store.ts";
 * const dir = await Deno.makeTempDir();
 * const store: StoreBackend = new Store(`${dir}/site.db`);
 * console.log(await store.countVisit(crypto.randomUUID(), Date.now(), Date.now() + 60_000)); // 1
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface StoreBackend extends StoreCalls {
  /** Open and migrate now, to report a problem at startup (it would happen on first use anyway). */
  ready(): Promise<void>;
  /** Finish with the database. Calls after this fail with `CLOSED`. */
  close(): Promise<void>;
}

/** The table's operations, answered by the database Worker (see the class). */
export interface Store extends StoreCalls {}

/**
 * The site's database, run in a Worker. Every method is async and settles only when the Worker answered:
 * a resolved `addMessage` means the row is committed. The database opens on first use and again after a
 * failure, so a server started with a broken or locked file still serves its static pages and answers
 * the database ones with 503 until the file is fixed. A crashed or stuck Worker is replaced on the next call.
 *
 * @example
 * ```ts
 * import { Store } from "./store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = new Store(`${dir}/site.db`);
 * await store.addMessage({ name: "Ada", email: "ada@example.com", message: "Hi", clientAddr: "127.0.0.1", sessionId: null });
 * console.log((await store.listMessages())[0].name); // "Ada"
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class Store implements StoreBackend {
  /** The database file. */
  readonly path: string;
  #busyTimeoutMs: number;
  #callTimeoutMs: number;
  #maxDatabaseBytes: number;
  #worker: Worker | null = null;
  #caller: Caller<SqliteWorkerOps> | null = null;
  #url: string | null = null;
  #opened: Promise<unknown> | null = null;
  #closed = false;
  /** Calls waiting for the one with the Worker to come back (see #call). */
  readonly #waiting: {
    op: keyof StoreOps;
    args: unknown[];
    resolve: (value: unknown) => void;
    reject: (reason: unknown) => void;
  }[] = [];
  /** A call or batch is with the Worker. */
  #sending = false;

  /**
   * Prepare a store for the database at `path` (its folder must exist). Nothing starts until the first call.
   *
   * @param path The database file.
   * @param options Lock and call timeouts, size cap.
   */
  constructor(path: string, options: StoreOptions = {}) {
    this.path = path;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    this.#callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.#maxDatabaseBytes = options.maxDatabaseBytes ?? DEFAULT_MAX_DATABASE_BYTES;
    // Every operation of the table, each a call to the Worker (its types come from the interface above).
    Object.assign(this, callsThrough((op, args) => this.#call(op, args)));
  }

  /**
   * Open the database now (it would open on first use anyway), to report a problem at startup.
   *
   * @returns When the database is open and migrated.
   * @throws {StoreError} When it cannot be opened.
   */
  async ready(): Promise<void> {
    await this.#call("schemaVersion", []);
  }

  /**
   * Close the database (checkpointing the WAL) and stop the Worker. Calls after this fail with `CLOSED`.
   *
   * @returns When the Worker is gone.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#caller) {
      try {
        await this.#caller.call("close", []);
      } catch (err) {
        console.warn(`[store] closing ${this.path}: ${err instanceof Error ? err.message : err}`);
      }
    }
    this.#closed = true;
    this.#stopWorker(new StoreError("The store is closed", "CLOSED"));
  }

  async #call(op: keyof StoreOps, args: unknown[]): Promise<unknown> {
    if (this.#closed) throw new StoreError("The store is closed", "CLOSED");
    if (!this.#opened) {
      const opening = this.#ensureCaller().call("open", [{
        path: this.path,
        busyTimeoutMs: this.#busyTimeoutMs,
        maxDatabaseBytes: this.#maxDatabaseBytes,
        migrations: MIGRATIONS.map((m) => m.sqlite),
        listLimit: DEFAULT_LIST_LIMIT,
      }]);
      this.#opened = opening;
      // A failed open is retried by the next call: the file may have been fixed, the lock released.
      opening.catch(() => {
        if (this.#opened === opening) this.#opened = null;
      });
    }
    await this.#opened;
    // Group commit: a call made while another is with the Worker waits for it, and then all that waited go
    // as one batch, in one transaction and one fsync (synchronous=FULL costs an fsync per commit). Under load
    // a batch holds about as many calls as requests are in flight; alone, a call goes as it is.
    return await new Promise((resolve, reject) => {
      this.#waiting.push({ op, args, resolve, reject });
      if (!this.#sending) this.#send();
    });
  }

  /** Send what waits, one call or one batch at a time, until nothing waits. */
  async #send(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#waiting.length > 0) {
        const calls = this.#waiting.splice(0, MAX_BATCH_CALLS);
        let caller: Caller<SqliteWorkerOps>;
        try {
          caller = this.#ensureCaller();
        } catch (err) {
          for (const call of calls) call.reject(err);
          continue;
        }
        if (calls.length === 1) {
          const [call] = calls;
          await caller.call(call.op, call.args).then(call.resolve, call.reject);
          continue;
        }
        try {
          const batch: BatchCall[] = calls.map(({ op, args }) => ({ op, args }));
          // The Worker's answer to "batch", as SqliteWorkerOps says (data across threads is typed by the table).
          const results = await caller.call("batch", [batch]) as BatchResult[];
          results.forEach((result, i) => {
            if (result.ok) calls[i].resolve(result.value);
            else calls[i].reject(new StoreError(result.message, result.code));
          });
        } catch (err) {
          // The batch failed as a whole (the commit, a lock, the Worker): none of its calls happened.
          for (const call of calls) call.reject(err);
        }
      }
    } finally {
      this.#sending = false;
    }
  }

  #ensureCaller(): Caller<SqliteWorkerOps> {
    if (this.#caller) return this.#caller;
    this.#url ??= URL.createObjectURL(new Blob([storeWorkerSource()], { type: "text/javascript" }));
    const worker = new Worker(this.#url, { type: "module", name: "pier-store" });
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault(); // a Worker's uncaught error must not take the server down with it
      this.#stopWorker(new StoreError(`The database Worker failed: ${event.message}`, "WORKER_DIED"));
    };
    this.#worker = worker;
    this.#caller = new Caller(worker, {
      peer: "the database Worker",
      timeoutMs: this.#callTimeoutMs,
      error: (message, code) => new StoreError(message, code),
      // No answer: the Worker is stuck. Replace it; every call in flight fails, none is left hanging.
      onTimeout: (error) => this.#stopWorker(error),
    });
    return this.#caller;
  }

  #stopWorker(reason: Error): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#caller?.failAll(reason);
    this.#caller = null;
    this.#opened = null;
    if (this.#closed && this.#url) {
      URL.revokeObjectURL(this.#url);
      this.#url = null;
    }
  }
}
