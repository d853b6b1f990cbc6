// The database side of the site's store: every SQL statement runs here, in a Worker, so no query ever blocks
// the event loop that serves requests. It owns the schema and its migrations; it must never reach for
// anything outside the one database file it was told to open.
//
// This module is not loaded as the Worker's script. Loading a module file in a Worker needs read permission
// on it (app/), and the start task grants none there: that would let a path-jail bug read the source. So
// `storeWorkerSource()` turns `storeWorkerMain` into text, and store.ts starts the Worker from a Blob URL.
// The function therefore must not use anything from its module scope: only its parameter and globals.
import type { DatabaseSync } from "node:sqlite";
import type { NewMessage, NewUpload } from "./store_ops.ts"; // types only: erased, so the Worker source stays self-contained

/** A request from store.ts to the Worker. `op` names a method of the protocol below. */
export interface StoreRequest {
  /** Matches the reply to its call. */
  id: number;
  /** The operation. */
  op: StoreOp;
  /** Its arguments (structured-cloned). */
  args: unknown[];
}

/** The Worker's answer to one {@link StoreRequest}. */
export type StoreReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { name: string; message: string; code: string } };

/** What the Worker can do. */
export type StoreOp =
  | "open"
  | "close"
  | "sessionGet"
  | "sessionSet"
  | "sessionDestroy"
  | "sessionPrune"
  | "addMessage"
  | "listMessages"
  | "addUpload"
  | "listUploads"
  | "countVisit"
  | "visitCount"
  | "schemaVersion";

/**
 * The Worker's body: answer {@link StoreRequest}s in arrival order, one at a time (SQLite is synchronous,
 * so a request runs to completion before the next message is read).
 *
 * Schema migrations are the SQLite texts of app/migrations.ts, passed to "open": entry i moves the schema from
 * version i to i + 1, in one transaction with the `PRAGMA user_version` bump, so a crash mid-migration leaves
 * the old version intact.
 *
 * @param Database The `DatabaseSync` class of `node:sqlite` (passed in: this function has no imports).
 *
 * @example
 * ```ts
 * import { storeWorkerMain } from "./store_worker.ts";
 * console.log(typeof storeWorkerMain); // "function": run only inside a Worker, via storeWorkerSource()
 * ```
 */
export function storeWorkerMain(Database: typeof DatabaseSync): void {
  // The schema steps (app/migrations.ts, the SQLite text of each), given by store.ts at "open": this
  // function reaches nothing outside itself (see the note at the top).
  let steps: readonly string[] = [];

  type Row = Record<string, unknown>;
  const scope = self as unknown as {
    onmessage: ((event: MessageEvent) => void) | null;
    postMessage(message: unknown): void;
  };
  let db: InstanceType<typeof DatabaseSync> | null = null;

  const need = (): InstanceType<typeof DatabaseSync> => {
    if (!db) throw Object.assign(new Error("The database is not open"), { code: "NOT_OPEN" });
    return db;
  };

  const migrate = (d: InstanceType<typeof DatabaseSync>): void => {
    const versionOf = () => Number((d.prepare("PRAGMA user_version").get() as Row).user_version);
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

  const ops: Record<string, (...args: never[]) => unknown> = {
    open(path: string, busyTimeoutMs: number, maxBytes: number, migrations: string[]) {
      if (db) return null;
      steps = migrations;
      const d = new Database(path);
      try {
        // WAL: the server's writes never wait for a reader (`deno task messages`), nor readers for it.
        // synchronous=FULL: a commit is on disk before the answer, so "acknowledged" survives a crash
        // of the machine, not only of the process (in WAL mode NORMAL would already survive SIGKILL).
        // The lock wait first: switching a new file to WAL takes a lock another opener may hold.
        d.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
        d.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;`);
        migrate(d);
        // The size cap: past it a write fails with "database or disk is full" (a 503), as a full disk would.
        const pageSize = Number((d.prepare("PRAGMA page_size").get() as Row).page_size);
        d.exec(`PRAGMA max_page_count = ${Math.max(1, Math.floor(maxBytes / pageSize))}`);
      } catch (err) {
        d.close();
        throw err;
      }
      db = d;
      return null;
    },
    close() {
      db?.close();
      db = null;
      return null;
    },
    schemaVersion() {
      return Number((need().prepare("PRAGMA user_version").get() as Row).user_version);
    },
    sessionGet(id: string) {
      const r = need().prepare(
        "SELECT created_at, last_seen_at, expires_at, data FROM sessions WHERE id = ?",
      ).get(id) as Row | undefined;
      return r; // mapped by sessionFromRow in store.ts
    },
    sessionSet(
      id: string,
      data: { values: Record<string, unknown>; createdAt: number; lastSeenAt: number },
      expiresAt: number,
    ) {
      // visit_count is never written here: countVisit owns it (an increment in the database), and a session
      // saved after a page must not put back a count read before another request incremented it.
      need().prepare(
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
      return null;
    },
    countVisit(id: string, createdAt: number, expiresAt: number) {
      // One statement: the row is created at 1 or incremented where it is, so two requests can never both
      // read 4 and write 5. The new row's other columns are placeholders the session save then replaces.
      const r = need().prepare(
        `INSERT INTO sessions (id, created_at, last_seen_at, expires_at, visit_count, data)
         VALUES (?, ?, ?, ?, 1, '{}')
         ON CONFLICT (id) DO UPDATE SET visit_count = sessions.visit_count + 1
         RETURNING visit_count`,
      ).get(id, Math.floor(createdAt), Math.floor(createdAt), Math.floor(expiresAt)) as Row;
      return Number(r.visit_count);
    },
    visitCount(id: string) {
      const r = need().prepare("SELECT visit_count FROM sessions WHERE id = ?").get(id) as Row | undefined;
      return r ? Number(r.visit_count) : 0;
    },
    sessionDestroy(id: string) {
      need().prepare("DELETE FROM sessions WHERE id = ?").run(id);
      return null;
    },
    sessionPrune(now: number) {
      return Number(
        need().prepare("DELETE FROM sessions WHERE expires_at <= ?").run(Math.floor(now)).changes,
      );
    },
    addMessage(m: NewMessage) {
      // One statement is one transaction: when run() returns, the row is committed (and, with
      // synchronous=FULL, on disk), so the caller may acknowledge it.
      const r = need().prepare(
        `INSERT INTO messages (created_at, name, email, message, client_addr, session_id)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(Date.now(), m.name, m.email, m.message, m.clientAddr, m.sessionId);
      return Number(r.lastInsertRowid);
    },
    listMessages(limit: number) {
      return (need().prepare(
        "SELECT * FROM messages ORDER BY created_at DESC, id DESC LIMIT ?",
      ).all(limit) as Row[]); // mapped by messageFromRow in store.ts
    },
    addUpload(u: NewUpload) {
      const r = need().prepare(
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
    listUploads(limit: number) {
      return (need().prepare(
        "SELECT * FROM uploads ORDER BY created_at DESC, id DESC LIMIT ?",
      ).all(limit) as Row[]); // mapped by uploadFromRow in store.ts
    },
  };

  scope.onmessage = (event: MessageEvent) => {
    const { id, op, args } = event.data as { id: number; op: string; args: never[] };
    try {
      const fn = ops[op];
      if (!fn) throw Object.assign(new Error(`Unknown store operation ${op}`), { code: "BAD_OP" });
      scope.postMessage({ id, ok: true, value: fn(...args) });
    } catch (err) {
      const e = err as { name?: string; message?: string; code?: string };
      // Deno's node:sqlite errors carry only `code: "ERR_SQLITE_ERROR"` and SQLite's text as the message.
      const code = String(e.code ?? "ERROR");
      scope.postMessage({
        id,
        ok: false,
        error: { name: String(e.name ?? "Error"), message: String(e.message ?? err), code },
      });
    }
  };
}

/**
 * The Worker's script as module source text: `node:sqlite` imported statically, then
 * {@link storeWorkerMain} called with it. Start it from a Blob URL (see the note at the top).
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
  return `import { DatabaseSync } from "node:sqlite";\n(${storeWorkerMain.toString()})(DatabaseSync);\n`;
}
