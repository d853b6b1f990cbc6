// The database side of the site's store: every SQL statement runs here, in a Worker, so no query ever blocks
// the event loop that serves requests. It owns the schema's migrations and the SQLite side of the operations
// table (app/store_ops.ts); it must never reach for anything outside the one database file it was told to
// open.
//
// This module is not loaded as the Worker's script. Loading a module file in a Worker needs read permission
// on it (app/), and the start task grants none there: that would let a path-jail bug read the source. So
// `storeWorkerSource()` turns `storeWorkerMain` into text, with the few functions it is given (app/_rpc.ts's
// answerCalls, the row mappings) as text beside it, and store.ts starts the Worker from a Blob URL. Those
// functions therefore must not use anything from their module scope: only their parameters and globals.
import type { DatabaseSync } from "node:sqlite";
import { answerCalls, type Endpoint } from "./_rpc.ts";
import { messageFromRow, sessionFromRow, type StoreOps, uploadFromRow } from "./store_ops.ts";

/** What the SQLite store needs to open its database, sent with the first call. */
export interface OpenSettings {
  /** The database file. */
  path: string;
  /** How long SQLite waits for another connection's lock (`PRAGMA busy_timeout`), in ms. */
  busyTimeoutMs: number;
  /** The size cap, in bytes. */
  maxDatabaseBytes: number;
  /** The SQLite text of each app/migrations.ts entry, in order. */
  migrations: readonly string[];
  /** How many rows `listMessages` and `listUploads` return when given no limit. */
  listLimit: number;
}

/** One call of a {@link SqliteWorkerOps.batch}: an operation of the table and its arguments. */
export interface BatchCall {
  /** The operation. */
  op: keyof StoreOps;
  /** Its arguments. */
  args: unknown[];
}

/** What one call of a batch came to: its value, or its error's message and code. */
export type BatchResult = { ok: true; value: unknown } | { ok: false; message: string; code: string };

/** What the Worker answers: the table, opening and closing its database, and a batch of calls. */
export interface SqliteWorkerOps extends StoreOps {
  /** Open and migrate the database (nothing when it is open already). */
  open(settings: OpenSettings): void;
  /** Close the database, checkpointing the WAL. */
  close(): void;
  /**
   * Run several calls in one transaction, each in its own savepoint (one failing leaves the others), and
   * commit once: one fsync for all of them (group commit). Each call's result, in order; when the commit
   * itself fails, the batch fails and none of them happened.
   */
  batch(calls: BatchCall[]): BatchResult[];
}

/** What the Worker's body would import but is handed instead (see the note at the top), and its `self`. */
export interface WorkerImports {
  /** The Worker's own scope, where calls arrive. */
  scope: Endpoint;
  /** app/_rpc.ts's. */
  answerCalls: typeof answerCalls;
  /** app/store_ops.ts's. */
  messageFromRow: typeof messageFromRow;
  /** app/store_ops.ts's. */
  uploadFromRow: typeof uploadFromRow;
  /** app/store_ops.ts's. */
  sessionFromRow: typeof sessionFromRow;
}

/**
 * The Worker's body: answer {@link SqliteWorkerOps} calls in arrival order, one at a time (SQLite is
 * synchronous, so a call runs to completion before the next message is read).
 *
 * Schema migrations are the SQLite texts of app/migrations.ts, passed to "open": entry i moves the schema from
 * version i to i + 1, in one transaction with the `PRAGMA user_version` bump, so a crash mid-migration leaves
 * the old version intact.
 *
 * @param Database The `DatabaseSync` class of `node:sqlite` (passed in: this function has no imports).
 * @param imports Its scope and the functions it would otherwise import.
 *
 * @example
 * ```ts
 * import { storeWorkerMain } from "./store_worker.ts";
 * console.log(typeof storeWorkerMain); // "function": run only inside a Worker, via storeWorkerSource()
 * ```
 */
export function storeWorkerMain(Database: typeof DatabaseSync, imports: WorkerImports): void {
  // These names shadow the module's on purpose: the Worker's copy of this text has only what it was handed.
  const { scope, answerCalls, messageFromRow, uploadFromRow, sessionFromRow } = imports;
  let listLimit = 0; // set by "open"
  let db: InstanceType<typeof DatabaseSync> | null = null;

  const need = (): InstanceType<typeof DatabaseSync> => {
    if (!db) throw Object.assign(new Error("The database is not open"), { code: "NOT_OPEN" });
    return db;
  };
  // Each statement is prepared once. A statement prepared per call is native memory V8 cannot see: under load
  // thousands of them waited for a collection that did not come, and the process grew by hundreds of MB.
  type Statement = ReturnType<InstanceType<typeof DatabaseSync>["prepare"]>;
  const statements = new Map<string, Statement>();
  const statement = (sql: string): Statement => {
    let prepared = statements.get(sql);
    if (prepared === undefined) statements.set(sql, prepared = need().prepare(sql));
    return prepared;
  };

  const migrate = (d: InstanceType<typeof DatabaseSync>, steps: readonly string[]): void => {
    const versionOf = () => Number(d.prepare("PRAGMA user_version").get()?.user_version);
    const tooNew = (version: number) =>
      Object.assign(
        new Error(`Database schema version ${version} is newer than this code (${steps.length})`),
        { code: "SCHEMA_TOO_NEW" },
      );
    // Current already (the usual case): no write lock taken, so opening never waits for a writer.
    const seen = versionOf();
    if (seen > steps.length) throw tooNew(seen);
    while (true) {
      d.exec("BEGIN IMMEDIATE");
      try {
        // Read again under the write lock: another process opening the same file (a second Store, `deno task
        // messages`) may have applied this step while this one waited.
        const version = versionOf();
        if (version > steps.length) throw tooNew(version);
        if (version === steps.length) {
          d.exec("COMMIT");
          return;
        }
        d.exec(steps[version]);
        d.exec(`PRAGMA user_version = ${version + 1}`);
        d.exec("COMMIT");
      } catch (err) {
        d.exec("ROLLBACK");
        throw err;
      }
    }
  };

  const ops = {
    open(given) {
      if (db) return;
      const d = new Database(given.path);
      try {
        // WAL: the server's writes never wait for a reader (`deno task messages`), nor readers for it.
        // synchronous=FULL: a commit is on disk before the answer, so "acknowledged" survives a crash
        // of the machine, not only of the process (in WAL mode NORMAL would already survive SIGKILL).
        // The lock wait first: switching a new file to WAL takes a lock another opener may hold.
        d.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(given.busyTimeoutMs))}`);
        // journal_size_limit: after a checkpoint the WAL file is cut back to 16 MiB, so a burst of writes does
        // not leave a large file behind for good.
        d.exec(
          `PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
           PRAGMA journal_size_limit = ${16 * 1024 * 1024};`,
        );
        migrate(d, given.migrations);
        // The size cap: past it a write fails with "database or disk is full" (a 503), as a full disk would.
        const pageSize = Number(d.prepare("PRAGMA page_size").get()?.page_size);
        d.exec(`PRAGMA max_page_count = ${Math.max(1, Math.floor(given.maxDatabaseBytes / pageSize))}`);
      } catch (err) {
        d.close();
        throw err;
      }
      listLimit = given.listLimit;
      db = d;
    },
    close() {
      statements.clear();
      db?.close();
      db = null;
    },
    schemaVersion() {
      return Number(statement("PRAGMA user_version").get()?.user_version);
    },
    sessionGet(id) {
      const row = statement(
        "SELECT created_at, last_seen_at, expires_at, data FROM sessions WHERE id = ?",
      )
        .get(id);
      return row && sessionFromRow(row);
    },
    sessionSet(id, data, expiresAt) {
      // visit_count is never written here: countVisit owns it (an increment in the database), and a session
      // saved after a page must not put back a count read before another request incremented it.
      statement(
        `INSERT INTO sessions (id, created_at, last_seen_at, expires_at, visit_count, data)
         VALUES (?, ?, ?, ?, 0, ?)
         ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at,
           last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at, data = excluded.data`,
      ).run(
        id,
        Math.floor(data.createdAt),
        Math.floor(data.lastSeenAt),
        Math.floor(expiresAt),
        JSON.stringify(data.values),
      );
    },
    countVisit(id, createdAt, expiresAt, priorVisits = 0) {
      // One statement: the row is created (at 1, plus visits made before it existed) or incremented where it
      // is, so two requests can never both read 4 and write 5. The new row's other columns are placeholders
      // the session save then replaces.
      const row = statement(
        `INSERT INTO sessions (id, created_at, last_seen_at, expires_at, visit_count, data)
         VALUES (?, ?, ?, ?, ?, '{}')
         ON CONFLICT (id) DO UPDATE SET visit_count = sessions.visit_count + 1
         RETURNING visit_count`,
      ).get(
        id,
        Math.floor(createdAt),
        Math.floor(createdAt),
        Math.floor(expiresAt),
        1 + Math.max(0, Math.floor(priorVisits)),
      );
      return Number(row?.visit_count);
    },
    visitCount(id) {
      const row = statement("SELECT visit_count FROM sessions WHERE id = ?").get(id);
      return row ? Number(row.visit_count) : 0;
    },
    sessionDestroy(id) {
      statement("DELETE FROM sessions WHERE id = ?").run(id);
    },
    sessionPrune(now) {
      return Number(
        statement("DELETE FROM sessions WHERE expires_at <= ?").run(Math.floor(now)).changes,
      );
    },
    addMessage(m) {
      // One statement is one transaction: when run() returns, the row is committed (and, with
      // synchronous=FULL, on disk), so the caller may acknowledge it.
      const r = statement(
        `INSERT INTO messages (created_at, name, email, message, client_addr, session_id)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(Date.now(), m.name, m.email, m.message, m.clientAddr, m.sessionId);
      return Number(r.lastInsertRowid);
    },
    listMessages(limit = listLimit) {
      return statement("SELECT * FROM messages ORDER BY created_at DESC, id DESC LIMIT ?").all(limit)
        .map(messageFromRow);
    },
    addUpload(u) {
      const r = statement(
        `INSERT INTO uploads (created_at, stored_name, original_name, size, content_type, sha256,
           description, client_addr, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        Date.now(),
        u.storedName,
        u.originalName,
        u.size,
        u.contentType,
        u.sha256,
        u.description,
        u.clientAddr,
        u.sessionId,
      );
      return Number(r.lastInsertRowid);
    },
    postsSince(clientAddr, since) {
      const row = statement(
        "SELECT count(*) AS n, min(at) AS oldest FROM posts WHERE client_addr = ? AND at >= ?",
      )
        .get(clientAddr, Math.floor(since));
      return { count: Number(row?.n ?? 0), oldest: row?.oldest == null ? null : Number(row.oldest) };
    },
    recordPost(clientAddr, at, forgetBefore) {
      // The log stays bounded: what left every client's window goes with each record (an index range).
      statement("DELETE FROM posts WHERE at < ?").run(Math.floor(forgetBefore));
      statement("INSERT INTO posts (client_addr, at) VALUES (?, ?)").run(clientAddr, Math.floor(at));
    },
    siteSecret() {
      // Made once per database, by whichever caller comes first; every later one reads the same.
      const fresh = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
      statement(
        "INSERT INTO site_secrets (name, value) VALUES ('first-visit', ?) ON CONFLICT (name) DO NOTHING",
      )
        .run(fresh);
      return String(statement("SELECT value FROM site_secrets WHERE name = 'first-visit'").get()?.value);
    },
    listUploads(limit = listLimit) {
      return statement("SELECT * FROM uploads ORDER BY created_at DESC, id DESC LIMIT ?").all(limit)
        .map(uploadFromRow);
    },
    batch(calls) {
      const d = need();
      const results: BatchResult[] = [];
      d.exec("BEGIN");
      try {
        for (const { op, args } of calls) {
          d.exec("SAVEPOINT call");
          try {
            const handler: unknown = Object.hasOwn(table, op) ? Reflect.get(table, op) : undefined;
            if (typeof handler !== "function") {
              throw Object.assign(new Error(`Unknown operation ${JSON.stringify(op)}`), { code: "BAD_OP" });
            }
            results.push({ ok: true, value: Reflect.apply(handler, table, args) });
            d.exec("RELEASE call");
          } catch (err) {
            d.exec("ROLLBACK TO call");
            d.exec("RELEASE call");
            const code =
              typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
                ? err.code
                : "ERROR";
            results.push({ ok: false, message: err instanceof Error ? err.message : String(err), code });
          }
        }
        d.exec("COMMIT");
      } catch (err) {
        if (d.isTransaction) d.exec("ROLLBACK");
        throw err;
      }
      return results;
    },
  } satisfies SqliteWorkerOps;
  // What a batch may run: the table's operations, not opening, closing or another batch.
  const { open: _open, close: _close, batch: _batch, ...table } = ops;

  answerCalls(scope, ops);
}

/**
 * The Worker's script as module source text: `node:sqlite` imported statically, then
 * {@link storeWorkerMain} called with it, the Worker's `self` and the text of the functions it would import.
 * Start it from a Blob URL (see the note at the top).
 *
 * @returns JavaScript module source.
 *
 * @example
 * ```ts
 * import { storeWorkerSource } from "./store_worker.ts";
 * const url = URL.createObjectURL(new Blob([storeWorkerSource()], { type: "text/javascript" }));
 * URL.revokeObjectURL(url);
 * ```
 */
export function storeWorkerSource(): string {
  const imports = [
    "scope: self",
    `answerCalls: ${answerCalls}`,
    `messageFromRow: ${messageFromRow}`,
    `uploadFromRow: ${uploadFromRow}`,
    `sessionFromRow: ${sessionFromRow}`,
  ].join(", ");
  return `import { DatabaseSync } from "node:sqlite";\n(${storeWorkerMain})(DatabaseSync, { ${imports} });\n`;
}
