// Which store the site and `deno task messages` use: PostgreSQL when `--database URL` or `DATABASE_URL` names
// one (the flag wins), else the embedded SQLite file in the data folder. It owns that choice only; it must
// never print a database password.
import { PostgresStore } from "./postgres_store.ts";
import { Store, type StoreBackend } from "./store.ts";
import type { DatabaseSystem } from "./traced_store.ts";

/** The environment variable naming a PostgreSQL database when `--database` is not given. */
export const DATABASE_URL_VAR = "DATABASE_URL";

/**
 * The PostgreSQL URL to use: the flag's, else `DATABASE_URL`'s (when this process may read it; the tasks
 * grant `--allow-env=DATABASE_URL,PGAPPNAME`), else null for SQLite. An empty variable counts as unset.
 *
 * @param flag `--database`'s value, or null.
 * @returns The URL, or null.
 *
 * @example
 * ```ts
 * import { databaseUrl } from "./database.ts";
 * console.log(databaseUrl("postgres://pier:pw@127.0.0.1/pier")); // the flag wins
 * ```
 */
export function databaseUrl(flag: string | null): string | null {
  if (flag !== null) return flag;
  const permitted =
    Deno.permissions.querySync({ name: "env", variable: DATABASE_URL_VAR }).state === "granted";
  if (!permitted) return null;
  const value = Deno.env.get(DATABASE_URL_VAR) ?? "";
  return value === "" ? null : value;
}

/** What {@link openStore} needs. */
export interface OpenStoreOptions {
  /** A PostgreSQL URL, or null for SQLite (see {@link databaseUrl}). */
  database: string | null;
  /** The data folder, where SQLite keeps `site.db`. */
  dataDir: string;
  /** PostgreSQL pool size; null for the default. */
  poolSize?: number | null;
}

/**
 * Make the store (nothing connects or opens until its first call or `ready()`).
 *
 * @param options The URL or the data folder.
 * @returns The store and a description for the log, password hidden.
 * @throws {TypeError} When the PostgreSQL URL is malformed.
 *
 * @example
 * ```ts
 * import { openStore } from "./database.ts";
 * const dir = await Deno.makeTempDir();
 * const { store, description } = openStore({ database: null, dataDir: dir });
 * console.log(description); // "SQLite <dir>/site.db"
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openStore(options: OpenStoreOptions): { store: StoreBackend; description: string } {
  if (options.database === null) {
    const path = `${options.dataDir}/site.db`;
    return { store: new Store(path), description: `SQLite ${path}` };
  }
  const store = new PostgresStore(options.database, { poolSize: options.poolSize ?? undefined });
  return { store, description: `PostgreSQL ${store.location}` };
}

/**
 * Which database a store reaches, for its spans (`db.system.name`).
 *
 * @param store A store made by {@link openStore}.
 * @returns "postgresql" or "sqlite".
 *
 * @example
 * ```ts
 * import { databaseSystem, openStore } from "./database.ts";
 * const dir = await Deno.makeTempDir();
 * const { store } = openStore({ database: null, dataDir: dir });
 * console.log(databaseSystem(store)); // "sqlite"
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function databaseSystem(store: StoreBackend): DatabaseSystem {
  return store instanceof PostgresStore ? "postgresql" : "sqlite";
}
