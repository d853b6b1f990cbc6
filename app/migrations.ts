// The site's schema, as versioned migrations for both databases: entry i moves the schema from version i to
// i + 1, with the same tables, columns and meaning in SQLite and PostgreSQL. It owns the SQL text only; the
// stores run it (one transaction per version). Released entries are never edited: append a new one.

/** One schema step, written once per dialect. */
export interface Migration {
  /** The version this step produces (1 for the first). */
  version: number;
  /** What it does, for people reading the history. */
  description: string;
  /** The step for SQLite (app/store_worker.ts runs it with `exec`). */
  sqlite: string;
  /** The step for PostgreSQL (app/postgres_store.ts runs it as one simple query). */
  postgres: string;
}

/**
 * Every schema step, oldest first. Times are milliseconds since the epoch in 64-bit integers in both
 * dialects (SQLite's INTEGER, PostgreSQL's BIGINT), so a row means the same thing in either; ids are
 * increasing integers (SQLite's AUTOINCREMENT, PostgreSQL's identity).
 *
 * @example
 * ```ts
 * import { MIGRATIONS } from "./migrations.ts";
 * console.log(MIGRATIONS.length, MIGRATIONS.at(-1)!.version); // the newest version both stores reach
 * ```
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "sessions (the SessionStore, with the visit count), contact messages, uploads",
    // Exactly the text released as version 1 before PostgreSQL existed: existing data/site.db files have it.
    sqlite: `CREATE TABLE sessions (
       id TEXT PRIMARY KEY,
       created_at INTEGER NOT NULL,
       last_seen_at INTEGER NOT NULL,
       expires_at INTEGER NOT NULL,
       visit_count INTEGER NOT NULL DEFAULT 0,
       data TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX sessions_expires_at ON sessions (expires_at);
     CREATE TABLE messages (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       created_at INTEGER NOT NULL,
       name TEXT NOT NULL,
       email TEXT NOT NULL,
       message TEXT NOT NULL,
       client_addr TEXT NOT NULL,
       session_id TEXT
     );
     CREATE INDEX messages_created_at ON messages (created_at);
     CREATE TABLE uploads (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       created_at INTEGER NOT NULL,
       stored_name TEXT NOT NULL UNIQUE,
       original_name TEXT NOT NULL,
       size INTEGER NOT NULL,
       content_type TEXT NOT NULL,
       sha256 TEXT NOT NULL,
       description TEXT NOT NULL,
       client_addr TEXT NOT NULL,
       session_id TEXT
     );
     CREATE INDEX uploads_created_at ON uploads (created_at);`,
    postgres: `CREATE TABLE sessions (
       id TEXT PRIMARY KEY,
       created_at BIGINT NOT NULL,
       last_seen_at BIGINT NOT NULL,
       expires_at BIGINT NOT NULL,
       visit_count INTEGER NOT NULL DEFAULT 0,
       data TEXT NOT NULL
     );
     CREATE INDEX sessions_expires_at ON sessions (expires_at);
     CREATE TABLE messages (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       created_at BIGINT NOT NULL,
       name TEXT NOT NULL,
       email TEXT NOT NULL,
       message TEXT NOT NULL,
       client_addr TEXT NOT NULL,
       session_id TEXT
     );
     CREATE INDEX messages_created_at ON messages (created_at);
     CREATE TABLE uploads (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       created_at BIGINT NOT NULL,
       stored_name TEXT NOT NULL UNIQUE,
       original_name TEXT NOT NULL,
       size BIGINT NOT NULL,
       content_type TEXT NOT NULL,
       sha256 TEXT NOT NULL,
       description TEXT NOT NULL,
       client_addr TEXT NOT NULL,
       session_id TEXT
     );
     CREATE INDEX uploads_created_at ON uploads (created_at);`,
  },
  {
    version: 2,
    description: "posts (the per-client post limit's log) and site_secrets (the first-visit cookie's key)",
    sqlite: `CREATE TABLE posts (client_addr TEXT NOT NULL, at INTEGER NOT NULL);
     CREATE INDEX posts_client_at ON posts (client_addr, at);
     CREATE INDEX posts_at ON posts (at);
     CREATE TABLE site_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
    postgres: `CREATE TABLE posts (client_addr TEXT NOT NULL, at BIGINT NOT NULL);
     CREATE INDEX posts_client_at ON posts (client_addr, at);
     CREATE INDEX posts_at ON posts (at);
     CREATE TABLE site_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  },
];
