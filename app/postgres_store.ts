// The site's storage in PostgreSQL, for several Pier instances sharing one database (`--database URL`). It
// owns a bounded connection pool (npm:postgres) and the schema's migrations in that database; it must never
// report a write as done before PostgreSQL committed it, and never let a driver error escape as anything but a
// StoreError (the site answers those with 503). Network I/O does not block the event loop, so unlike SQLite it
// needs no Worker.
import postgres from "postgres";
import type { SessionData, SessionStore, StoredSession } from "../mod.ts";
import { type Migration, MIGRATIONS } from "./migrations.ts";
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_LIST_LIMIT, type StoreBackend, StoreError } from "./store.ts";
import {
  type Message,
  messageFromRow,
  type NewMessage,
  type NewUpload,
  sessionFromRow,
  type Upload,
  uploadFromRow,
} from "./store_ops.ts";

/**
 * Connections per instance: 10. The site's statements are single-row and take a millisecond or two, so ten
 * in flight serve far more requests than one instance receives; and PostgreSQL's default `max_connections`
 * is 100, which three instances at 10 each (plus `deno task messages`, psql and backups) stay well under.
 * `--database-pool N` changes it.
 */
export const DEFAULT_POOL_SIZE = 10;

/** The largest `--database-pool`: beyond this, connections cost the server more than they serve. */
export const MAX_POOL_SIZE = 100;

/**
 * Seconds to wait for a connection to open: 5. A database that is down or unreachable should become a 503
 * page within seconds, not after the driver's default 30 s, while a slow network still gets through.
 */
export const DEFAULT_CONNECT_TIMEOUT_S = 5;

/**
 * A pooled connection unused this long is closed (seconds): 60. Idle instances then hold no connections
 * the database could give to busy ones; a reconnect costs a few milliseconds.
 */
const IDLE_TIMEOUT_S = 60;

/**
 * The advisory lock every instance takes before migrating (one 64-bit key, any fixed value unique to Pier):
 * three instances starting at once migrate one after the other, and the later ones find nothing to do.
 */
export const MIGRATION_LOCK_KEY = 0x5069_6572_0001n; // "Pier" and a 1

/**
 * PostgreSQL cancels a statement this long after the store stopped waiting for it (its `statement_timeout` is
 * the call timeout plus this): the caller always sees our `TIMEOUT` first, never a race with the server's own
 * cancellation, and a stuck statement still does not run on after that.
 */
export const STATEMENT_TIMEOUT_MARGIN_MS = 1_000;

/** Options for {@link PostgresStore}. */
export interface PostgresStoreOptions {
  /** Connections in the pool. See {@link DEFAULT_POOL_SIZE}. */
  poolSize?: number;
  /**
   * A call with no answer in this long fails with `TIMEOUT` (ms), and PostgreSQL cancels the statement
   * {@link STATEMENT_TIMEOUT_MARGIN_MS} later. Default: the SQLite store's, {@link DEFAULT_CALL_TIMEOUT_MS}.
   */
  callTimeoutMs?: number;
  /** See {@link DEFAULT_CONNECT_TIMEOUT_S}. */
  connectTimeoutS?: number;
  /** The schema steps; tests pass a longer list to play a newer version. Default: app/migrations.ts. */
  migrations?: readonly Migration[];
}

/** The URL parameters postgres.js reads itself; everything else about the connection is given explicitly. */
const URL_OPTIONS = ["ssl", "sslmode", "sslrootcert", "sslnegotiation", "target_session_attrs"];

/**
 * The driver's options, every one given so that postgres.js reads no `PG*` environment variable it would
 * otherwise fall back on (each read is a Deno permission). It still reads `PGAPPNAME` unconditionally, which is
 * why the tasks grant `--allow-env=DATABASE_URL,PGAPPNAME` and no more; the URL says everything else
 * (`?sslmode=require`, `?target_session_attrs=...` are honoured).
 *
 * @param url A `postgres://` or `postgresql://` URL with a user name.
 * @param max Pool size.
 * @param statementTimeoutMs The server-side statement timeout.
 * @param connectTimeoutS Connection timeout.
 * @returns The options for `postgres(url, options)`.
 * @throws {TypeError} When the URL is not a PostgreSQL URL or names no user.
 *
 * @example
 * ```ts
 * import { driverOptions } from "./postgres_store.ts";
 * console.log(driverOptions("postgres://pier:pw@db.internal/site", 10, 10_000, 5).database); // "site"
 * ```
 */
export function driverOptions(
  url: string,
  max: number,
  statementTimeoutMs: number,
  connectTimeoutS: number,
): postgres.Options<Record<string, postgres.PostgresType>> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError("Not a database URL (expected postgres://USER:PASSWORD@HOST:PORT/DATABASE)");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new TypeError(`Not a PostgreSQL URL: it starts with ${parsed.protocol} instead of postgres://`);
  }
  const user = decodeURIComponent(parsed.username);
  if (user === "") throw new TypeError("The database URL names no user (postgres://USER:PASSWORD@HOST/DB)");
  const password = decodeURIComponent(parsed.password);
  const inUrl = (name: string) => parsed.searchParams.has(name);
  const options: postgres.Options<Record<string, postgres.PostgresType>> & { max_pipeline: number } = {
    max,
    user,
    // A function is never "empty", so the driver does not fall back on PGPASSWORD when the URL has none.
    pass: () => password,
    database: decodeURIComponent(parsed.pathname.slice(1)) || user,
    port: Number(parsed.port) || 5432,
    ...(parsed.hostname === "" ? { host: "localhost" } : {}),
    idle_timeout: IDLE_TIMEOUT_S,
    connect_timeout: connectTimeoutS,
    // The driver's own defaults, restated so that it reads no PG* variable for them.
    max_lifetime: 60 * (30 + Math.random() * 30),
    max_pipeline: 100,
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 20),
    keep_alive: 60,
    prepare: true,
    debug: false,
    // Array types are fetched for array parameters; the site sends none, so one query per connection saved.
    fetch_types: false,
    publications: "alltables",
    // A writer belongs on the primary: a read-only standby is skipped (and no PGTARGETSESSIONATTRS read).
    target_session_attrs: inUrl("target_session_attrs")
      ? parsed.searchParams.get("target_session_attrs") as "read-write"
      : "read-write",
    // IF NOT EXISTS and similar notices are not for the site's log.
    onnotice: () => {},
    connection: {
      application_name: "pier",
      // PostgreSQL gives up on a statement the client has stopped waiting for.
      statement_timeout: statementTimeoutMs,
    },
  };
  // TLS settings come from the URL when it has them (the driver reads them there); otherwise off, as the
  // driver's default, without consulting PGSSLMODE.
  if (!URL_OPTIONS.slice(0, 4).some(inUrl)) {
    Object.assign(options, { ssl: false, sslnegotiation: null });
  }
  return options;
}

/** A driver error as a StoreError: PostgreSQL's SQLSTATE (`23505`) or the driver's code (`ECONNREFUSED`). */
function storeError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { message?: string; code?: string; name?: string };
  const code = typeof e?.code === "string" && e.code !== "" ? e.code : String(e?.name ?? "ERROR");
  return new StoreError(String(e?.message ?? err), code);
}

type Sql = postgres.Sql;

/**
 * The site's store in PostgreSQL: the same operations, schema versions and promises as the SQLite
 * {@link import("./store.ts").Store}. Nothing connects until the first call; the schema is migrated then (and
 * again after a failure), so a server started while the database is down serves its static pages, answers
 * the database pages with 503, and recovers when the database is back: the pool reconnects by itself.
 *
 * "Acknowledged means committed": every write is one statement in autocommit mode, and its promise resolves
 * when PostgreSQL reported it complete, which, with `synchronous_commit` at its default `on`, is after the
 * commit reached the write-ahead log on disk. (A server configured with `synchronous_commit = off` trades that
 * away for the whole cluster; do not run the site on one.)
 *
 * @example
 * ```ts ignore
 * import { PostgresStore } from "./postgres_store.ts";
 * const store = new PostgresStore("postgres://pier:pier@127.0.0.1:5432/pier");
 * await store.addMessage({ name: "Ada", email: "ada@example.com", message: "Hi", clientAddr: "127.0.0.1", sessionId: null });
 * console.log((await store.listMessages(1))[0].name); // "Ada"
 * await store.close();
 * ```
 */
export class PostgresStore implements StoreBackend {
  /** Sessions in this database, for the framework's `sessions()` middleware. */
  readonly sessions: SessionStore;
  /** Where the database is, with the password hidden (for logs). */
  readonly location: string;
  #sql: Sql;
  readonly #url: string;
  readonly #connectTimeoutS: number;
  /** The listening connections open ({@link PostgresStore.listen}), each one's stop: closed with the store. */
  readonly #listeners = new Set<() => Promise<void>>();
  #callTimeoutMs: number;
  #migrations: readonly Migration[];
  #migrated: Promise<void> | null = null;
  #closed = false;

  /**
   * Prepare a pool for the database at `url` (nothing connects yet).
   *
   * @param url `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, with `?sslmode=require` and the like.
   * @param options Pool size, timeouts, migrations.
   * @throws {TypeError} When the URL is not a PostgreSQL URL or names no user.
   */
  constructor(url: string, options: PostgresStoreOptions = {}) {
    this.#callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.#url = url;
    this.#connectTimeoutS = options.connectTimeoutS ?? DEFAULT_CONNECT_TIMEOUT_S;
    this.#migrations = options.migrations ?? MIGRATIONS;
    const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
    if (!(Number.isSafeInteger(poolSize) && poolSize >= 1 && poolSize <= MAX_POOL_SIZE)) {
      throw new TypeError(`Bad pool size ${poolSize} (1 to ${MAX_POOL_SIZE})`);
    }
    this.#sql = postgres(
      url,
      driverOptions(
        url,
        poolSize,
        this.#callTimeoutMs + STATEMENT_TIMEOUT_MARGIN_MS,
        this.#connectTimeoutS,
      ),
    );
    const shown = new URL(url);
    if (shown.password !== "") shown.password = "***";
    this.location = shown.href;
    this.sessions = {
      get: (id: string) => this.#run((sql) => this.#sessionGet(sql, id)),
      set: (id: string, data: SessionData, expiresAt: number) =>
        this.#run(async (sql) => {
          // visit_count is never written here: countVisit owns it (see the SQLite store).
          await sql`INSERT INTO sessions (id, created_at, last_seen_at, expires_at, visit_count, data)
            VALUES (${id}, ${Math.floor(data.createdAt)}, ${Math.floor(data.lastSeenAt)},
              ${Math.floor(expiresAt)}, 0, ${JSON.stringify(data.values)})
            ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at,
              last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at, data = excluded.data`;
        }),
      destroy: (id: string) =>
        this.#run(async (sql) => {
          await sql`DELETE FROM sessions WHERE id = ${id}`;
        }),
      prune: (now: number) =>
        this.#run(async (sql) =>
          (await sql`DELETE FROM sessions WHERE expires_at <= ${Math.floor(now)}`).count
        ),
    };
  }

  /**
   * Connect and migrate now, to report a problem at startup.
   *
   * @returns When the schema is current.
   * @throws {StoreError} When the database cannot be reached or its schema is newer than this code.
   */
  async ready(): Promise<void> {
    await this.#run(() => Promise.resolve());
  }

  /**
   * The schema version, from the `pier_schema` table.
   *
   * @returns The version number.
   */
  schemaVersion(): Promise<number> {
    return this.#run(async (sql) => Number((await sql`SELECT version FROM pier_schema`)[0].version));
  }

  /**
   * Store a contact message. Resolves once committed (see the class notes).
   *
   * @param m The message and where it came from.
   * @returns The new message's id.
   * @throws {StoreError} When the database fails.
   */
  addMessage(m: NewMessage): Promise<number> {
    return this.#run(async (sql) =>
      Number(
        (await sql`INSERT INTO messages (created_at, name, email, message, client_addr, session_id)
          VALUES (${Date.now()}, ${m.name}, ${m.email}, ${m.message}, ${m.clientAddr}, ${m.sessionId})
          RETURNING id`)[0].id,
      )
    );
  }

  /**
   * Contact messages, newest first.
   *
   * @param limit The most to return.
   * @returns The messages.
   */
  listMessages(limit: number = DEFAULT_LIST_LIMIT): Promise<Message[]> {
    return this.#run(async (sql) =>
      (await sql`SELECT * FROM messages ORDER BY created_at DESC, id DESC LIMIT ${limit}`).map(messageFromRow)
    );
  }

  /**
   * Record an upload. Resolves once committed.
   *
   * @param u The file's metadata.
   * @returns The new upload's id.
   * @throws {StoreError} When the database fails (a `stored_name` already recorded included: `23505`).
   */
  addUpload(u: NewUpload): Promise<number> {
    return this.#run(async (sql) =>
      Number(
        (await sql`INSERT INTO uploads (created_at, stored_name, original_name, size, content_type, sha256,
            description, client_addr, session_id)
          VALUES (${Date.now()}, ${u.storedName}, ${u.originalName}, ${u.size}, ${u.contentType}, ${u.sha256},
            ${u.description}, ${u.clientAddr}, ${u.sessionId})
          RETURNING id`)[0].id,
      )
    );
  }

  /**
   * Uploads, newest first.
   *
   * @param limit The most to return.
   * @returns The uploads.
   */
  listUploads(limit: number = DEFAULT_LIST_LIMIT): Promise<Upload[]> {
    return this.#run(async (sql) =>
      (await sql`SELECT * FROM uploads ORDER BY created_at DESC, id DESC LIMIT ${limit}`).map(uploadFromRow)
    );
  }

  /**
   * Count one visit in one upsert: concurrent visits on any number of instances each add exactly one
   * (the conflicting insert waits for the row lock, then increments the committed value).
   *
   * @param sessionId The session id.
   * @param createdAt The session's start, for a row that does not exist yet.
   * @param expiresAt Its expiry, for a row that does not exist yet.
   * @param priorVisits Visits made before the row existed (a first visit carried in a signed cookie).
   * @returns The count, this visit included.
   */
  countVisit(sessionId: string, createdAt: number, expiresAt: number, priorVisits = 0): Promise<number> {
    const created = Math.floor(createdAt), expires = Math.floor(expiresAt);
    const initial = 1 + Math.max(0, Math.floor(priorVisits));
    return this.#run(async (sql) =>
      Number(
        (await sql`INSERT INTO sessions (id, created_at, last_seen_at, expires_at, visit_count, data)
          VALUES (${sessionId}, ${created}, ${created}, ${expires}, ${initial}, '{}')
          ON CONFLICT (id) DO UPDATE SET visit_count = sessions.visit_count + 1
          RETURNING visit_count`)[0].visit_count,
      )
    );
  }

  /**
   * The posts recorded for a client since a time, for the post limit (app/rate_limit.ts).
   *
   * @param clientAddr The client's address.
   * @param since The earliest time counted (ms).
   * @returns How many, and the oldest one's time.
   */
  postsSince(clientAddr: string, since: number): Promise<{ count: number; oldest: number | null }> {
    return this.#run(async (sql) => {
      const [row] = await sql`SELECT count(*) AS n, min(at) AS oldest FROM posts
        WHERE client_addr = ${clientAddr} AND at >= ${Math.floor(since)}`;
      return { count: Number(row.n), oldest: row.oldest === null ? null : Number(row.oldest) };
    });
  }

  /**
   * Record an accepted post, and forget every client's posts that left the window (the log stays bounded).
   *
   * @param clientAddr The client's address.
   * @param at When (ms).
   * @param forgetBefore Posts before this (ms) are deleted.
   */
  recordPost(clientAddr: string, at: number, forgetBefore: number): Promise<void> {
    return this.#run(async (sql) => {
      await sql`DELETE FROM posts WHERE at < ${Math.floor(forgetBefore)}`;
      await sql`INSERT INTO posts (client_addr, at) VALUES (${clientAddr}, ${Math.floor(at)})`;
    });
  }

  /**
   * The site's secret, made by whichever instance asks first (the insert that loses the race does nothing).
   *
   * @returns 32 random bytes, base64.
   */
  siteSecret(): Promise<string> {
    const fresh = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
    return this.#run(async (sql) => {
      await sql`INSERT INTO site_secrets (name, value) VALUES ('first-visit', ${fresh})
        ON CONFLICT (name) DO NOTHING`;
      const [row] = await sql`SELECT value FROM site_secrets WHERE name = 'first-visit'`;
      return String(row.value);
    });
  }

  /**
   * The visits counted for a session so far.
   *
   * @param sessionId The session id.
   * @returns The count, 0 for an unknown session.
   */
  visitCount(sessionId: string): Promise<number> {
    return this.#run(async (sql) => {
      const rows = await sql`SELECT visit_count FROM sessions WHERE id = ${sessionId}`;
      return rows.length === 0 ? 0 : Number(rows[0].visit_count);
    });
  }

  /**
   * Send a notification (`pg_notify`), for the live reader count's bus (app/readers.ts): every session
   * listening on `channel`, this instance's included, receives `payload` once the statement commits.
   *
   * @param channel The channel.
   * @param payload The text (PostgreSQL's limit is 8000 bytes).
   * @returns When sent.
   * @throws {StoreError} When the database fails.
   */
  notify(channel: string, payload: string): Promise<void> {
    return this.#run(async (sql) => {
      await sql.notify(channel, payload);
    });
  }

  /**
   * Listen on `channel` over a connection of its own, outside the pool (a pooled one may be closed when idle
   * or handed to another query). The connection is not reopened by itself: when it closes, `onLost` says so,
   * and the caller listens again (notifications sent meanwhile are lost, so it asks again then). The driver's
   * own `listen()` is not used: when its automatic re-listen runs while the database is down, it keeps the
   * failure and every later listen on that channel fails too.
   *
   * @param channel The channel.
   * @param onNotify Called with each notification's payload.
   * @param onLost Called if the connection closes before the returned function is called.
   * @returns Once listening: a function that stops and closes the connection.
   * @throws {StoreError} When the database cannot be reached.
   */
  async listen(
    channel: string,
    onNotify: (payload: string) => void,
    onLost: () => void,
  ): Promise<() => Promise<void>> {
    if (this.#closed) throw new StoreError("The store is closed", "CLOSED");
    let stopped = false;
    const options = {
      ...driverOptions(
        this.#url,
        1,
        this.#callTimeoutMs + STATEMENT_TIMEOUT_MARGIN_MS,
        this.#connectTimeoutS,
      ),
      // A listening connection is idle by nature: never closed for it, nor for its age.
      idle_timeout: undefined,
      max_lifetime: null,
      onnotify: (from: string, payload: string) => {
        if (from === channel) onNotify(payload);
      },
      onclose: () => {
        if (!stopped) onLost();
      },
    };
    const sql = postgres(this.#url, options);
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      this.#listeners.delete(stop);
      await sql.end({ timeout: 1 }).catch(() => {});
    };
    this.#listeners.add(stop);
    try {
      await sql`LISTEN ${sql(channel)}`;
    } catch (err) {
      await stop();
      throw storeError(err);
    }
    return stop;
  }

  /**
   * Close the pool: queries in flight finish (up to 5 s), then every connection ends.
   *
   * @returns When the connections are closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#listeners].map((stop) => stop()));
    try {
      await this.#sql.end({ timeout: 5 });
    } catch (err) {
      console.warn(`[store] closing ${this.location}: ${(err as Error).message}`);
    }
  }

  async #sessionGet(sql: Sql, id: string): Promise<StoredSession | undefined> {
    const rows = await sql`SELECT created_at, last_seen_at, expires_at, data FROM sessions WHERE id = ${id}`;
    return rows.length === 0 ? undefined : sessionFromRow(rows[0]);
  }

  /** Migrate if needed, then run `fn` within the call timeout; every failure becomes a StoreError. */
  async #run<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError("The store is closed", "CLOSED");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const work = (async () => {
      if (!this.#migrated) {
        const migrating = this.#migrate();
        this.#migrated = migrating;
        // A failed migration (database down, lock timeout) is tried again by the next call.
        migrating.catch(() => {
          if (this.#migrated === migrating) this.#migrated = null;
        });
      }
      await this.#migrated;
      return await fn(this.#sql);
    })();
    try {
      return await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new StoreError(`No answer from PostgreSQL in ${this.#callTimeoutMs} ms`, "TIMEOUT")),
            this.#callTimeoutMs,
          );
        }),
      ]);
    } catch (err) {
      // A call that timed out may still complete in the database (as with SQLite): the visitor saw a 503
      // and may send again, so a duplicate is possible, a loss is not. Its late failure is not reported twice.
      work.catch(() => {});
      throw storeError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Bring the schema to the newest version, one transaction per version, each under a transaction-scoped
   * advisory lock: instances starting at once take turns, and each re-reads the version after the lock, so
   * a step is applied exactly once. The version lives in `pier_schema` (one row).
   */
  async #migrate(): Promise<void> {
    const newest = this.#migrations.length;
    for (;;) {
      const done = await this.#sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY.toString()}::bigint)`;
        // Under the lock: two instances creating the table at once would otherwise collide.
        await tx`CREATE TABLE IF NOT EXISTS pier_schema (
          only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
          version INTEGER NOT NULL)`;
        await tx`INSERT INTO pier_schema (only_row, version) VALUES (TRUE, 0) ON CONFLICT DO NOTHING`;
        const version = Number((await tx`SELECT version FROM pier_schema`)[0].version);
        if (version > newest) {
          throw new StoreError(
            `Database schema version ${version} is newer than this code (${newest})`,
            "SCHEMA_TOO_NEW",
          );
        }
        if (version === newest) return true;
        await tx.unsafe(this.#migrations[version].postgres);
        await tx`UPDATE pier_schema SET version = ${version + 1}`;
        return version + 1 === newest;
      });
      if (done) return;
    }
  }
}
