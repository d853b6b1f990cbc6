// Command-line flags of the site (`deno task start`) and of `deno task messages`. It owns parsing and
// validation only: it must never touch the disk or the network, so a bad flag fails before anything starts.

/** The site's configuration, from its flags. */
export interface SiteConfig {
  /** Address to listen on. Default 127.0.0.1: only this machine (nginx in front) reaches it. */
  host: string;
  /** Port; 0 picks a free one. Default 8000. */
  port: number;
  /** PEM certificate file: with `key`, serve HTTPS on the same port. */
  cert: string | null;
  /** PEM private key file for `cert`. */
  key: string | null;
  /** Largest uploaded file, in bytes. Default {@link DEFAULT_MAX_UPLOAD}. */
  maxUploadBytes: number;
  /** Folder for the database and uploads. Default `data` (the start task may write there and nowhere else). */
  dataDir: string;
  /**
   * `--database postgres://...`: PostgreSQL instead of SQLite in `dataDir`. Null: the `DATABASE_URL`
   * variable decides (app/database.ts), and without it SQLite.
   */
  database: string | null;
  /** `--database-pool N`: PostgreSQL connections per instance. Default: app/postgres_store.ts's 10. */
  databasePool: number | null;
  /**
   * `--uploads DIR`: where uploaded files go, a volume every instance shares. Null: `dataDir/uploads`.
   * Outside `data/` the start task's permissions must be widened to it (main.ts says how).
   */
  uploadDir: string | null;
  /** No access log. */
  quiet: boolean;
  /** Development mode: templates reload when edited, a missing template value throws. */
  dev: boolean;
  /**
   * Idle keep-alive time, in ms. Default {@link DEFAULT_IDLE_TIMEOUT}: above nginx's upstream
   * `keepalive_timeout 60s` in nginx.conf, so nginx, not the app, closes an idle upstream connection.
   */
  idleTimeoutMs: number;
  /** A plain-HTTP port answering every request with a 308 to HTTPS (with `--cert`). Default: none. */
  httpRedirectPort: number | null;
  /** Peers whose `X-Forwarded-For`/`-Proto` are believed (`--trusted-proxy`, repeatable). Default: loopback. */
  trustedProxies: string[] | null;
  /**
   * Server instances (`--workers N`, or `auto` for the number of cores), each a Worker on the shared port.
   * Default 1: Workers need flags the start task does not give (see docs/deploy.md), and Deno exits rather
   * than throws when an unstable API is used without its flag, so the site cannot probe for them.
   */
  workers: number;
}

/**
 * Where uploaded files go: `--uploads DIR`, else `uploads` in the data folder.
 *
 * @param config The parsed flags.
 * @returns The folder.
 *
 * @example
 * ```ts
 * import { parseSiteArgs, uploadDirOf } from "./cli.ts";
 * console.log(uploadDirOf(parseSiteArgs([]))); // "data/uploads"
 * ```
 */
export function uploadDirOf(config: SiteConfig): string {
  return config.uploadDir ?? `${config.dataDir}/uploads`;
}

/** 75 s: nginx's upstream keepalive_timeout (60 s) plus a margin, see nginx.conf. */
export const DEFAULT_IDLE_TIMEOUT = "75s";

/** The longest `--idle-timeout`: an hour. Longer holds sockets for nothing. */
const MAX_IDLE_TIMEOUT_MS = 3_600_000;

/**
 * Parse a duration such as `75s`, `500ms`, `2m` or `75` (seconds) into milliseconds.
 *
 * @param text The duration.
 * @returns Milliseconds, a positive integer.
 * @throws {TypeError} When the text is not a duration.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./cli.ts";
 * console.log(parseDuration("75s")); // 75000
 * ```
 */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/i.exec(text.trim());
  if (!m) throw new TypeError(`Not a duration: ${JSON.stringify(text)} (expected a number and ms, s or m)`);
  const unit = { ms: 1, s: 1000, m: 60_000 }[(m[2] ?? "s").toLowerCase() as "ms" | "s" | "m"];
  const ms = Math.floor(Number(m[1]) * unit);
  if (!(ms > 0)) throw new TypeError(`A duration must be above zero: ${JSON.stringify(text)}`);
  return ms;
}

function parsePort(flag: string, value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new TypeError(`Bad ${flag}: ${JSON.stringify(value)}`);
  return port;
}

/** 25 MB, the default: photos and documents, not video. */
export const DEFAULT_MAX_UPLOAD = "25MB";

/**
 * The largest `--max-upload` accepted: 4 GiB. The engine counts body bytes in doubles and the disk is the
 * real bound, but a typo such as `300GB` should fail loudly rather than allow a body that size.
 */
export const MAX_UPLOAD_CEILING: number = 4 * 1024 ** 3;

/**
 * Size units. `MB` means MiB (2^20), as in nginx's `client_max_body_size 25m`, so the value written in
 * nginx.conf and the one given here mean the same number of bytes.
 */
const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * Parse a size such as `25MB`, `300MB`, `512k`, `1.5GB` or `1048576` into bytes (binary units, see above).
 *
 * @param text The size.
 * @returns The number of bytes, a positive integer.
 * @throws {TypeError} When the text is not a size or the unit is unknown.
 *
 * @example
 * ```ts
 * import { parseSize } from "./cli.ts";
 * console.log(parseSize("25MB")); // 26214400
 * ```
 */
export function parseSize(text: string): number {
  const m = SIZE_RE.exec(text.trim());
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new TypeError(`Not a size: ${JSON.stringify(text)} (expected a number and a unit, like 25MB)`);
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!(bytes > 0)) throw new TypeError(`A size must be above zero: ${JSON.stringify(text)}`);
  return bytes;
}

/** The largest `--database-pool` (app/postgres_store.ts's MAX_POOL_SIZE; not imported, this file touches nothing). */
const MAX_DATABASE_POOL = 100;

/**
 * Check a `--database` value's shape (a PostgreSQL URL), so a typo fails before anything starts.
 *
 * @param value The flag's value.
 * @returns The URL, as given.
 * @throws {TypeError} When it is not a `postgres://` or `postgresql://` URL.
 *
 * @example
 * ```ts
 * import { parseDatabaseUrl } from "./cli.ts";
 * console.log(parseDatabaseUrl("postgres://pier:pw@127.0.0.1:5432/pier")); // the same URL
 * ```
 */
export function parseDatabaseUrl(value: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    // reported below, without echoing the value: it may hold a password
  }
  if (!url || (url.protocol !== "postgres:" && url.protocol !== "postgresql:")) {
    throw new TypeError("--database takes a PostgreSQL URL: postgres://USER:PASSWORD@HOST:PORT/DATABASE");
  }
  return value;
}

/** Flags that take a value, and flags that do not. */
const VALUE_FLAGS = new Set([
  "--host",
  "--port",
  "--cert",
  "--key",
  "--max-upload",
  "--data",
  "--idle-timeout",
  "--http-redirect-port",
  "--trusted-proxy",
  "--workers",
  "--database",
  "--database-pool",
  "--uploads",
]);
const BOOLEAN_FLAGS = new Set(["--quiet", "-q", "--dev"]);

/**
 * Split `--flag value` and `--flag=value` forms into pairs, refusing unknown flags (a typo such as
 * `--max-uplaod 300MB` must not silently run with the default).
 */
function pairs(
  args: readonly string[],
  valueFlags: Set<string>,
  booleanFlags: Set<string>,
): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const eq = args[i].indexOf("=");
    const flag = eq < 0 ? args[i] : args[i].slice(0, eq);
    if (booleanFlags.has(flag)) {
      if (eq >= 0) throw new TypeError(`${flag} takes no value`);
      out.push([flag, ""]);
    } else if (valueFlags.has(flag)) {
      const value = eq >= 0 ? args[i].slice(eq + 1) : args[++i];
      if (value === undefined || value === "") throw new TypeError(`${flag} needs a value`);
      out.push([flag, value]);
    } else {
      throw new TypeError(`Unknown flag ${JSON.stringify(args[i])}`);
    }
  }
  return out;
}

/**
 * Parse the site's flags: `--host`, `--port`, `--cert FILE --key FILE`, `--max-upload SIZE`, `--data DIR`,
 * `--quiet`, `--dev`, `--idle-timeout 75s`, `--http-redirect-port N`, `--trusted-proxy ADDR[,ADDR]`, `--workers N|auto`,
 * `--database URL`, `--database-pool N`, `--uploads DIR`.
 *
 * @param args The arguments (`Deno.args`).
 * @returns The configuration, defaults filled in.
 * @throws {TypeError} On an unknown flag, a missing or bad value, or `--cert` without `--key`.
 *
 * @example
 * ```ts
 * import { parseSiteArgs } from "./cli.ts";
 * const config = parseSiteArgs(["--port", "8080", "--max-upload=300MB"]);
 * console.log(config.port, config.maxUploadBytes); // 8080 314572800
 * ```
 */
export function parseSiteArgs(args: readonly string[]): SiteConfig {
  const config: SiteConfig = {
    host: "127.0.0.1",
    port: 8000,
    cert: null,
    key: null,
    maxUploadBytes: parseSize(DEFAULT_MAX_UPLOAD),
    dataDir: "data",
    database: null,
    databasePool: null,
    uploadDir: null,
    quiet: false,
    dev: false,
    idleTimeoutMs: parseDuration(DEFAULT_IDLE_TIMEOUT),
    httpRedirectPort: null,
    trustedProxies: null,
    workers: 1,
  };
  for (const [flag, value] of pairs(args, VALUE_FLAGS, BOOLEAN_FLAGS)) {
    switch (flag) {
      case "--host":
        config.host = value;
        break;
      case "--port":
        config.port = parsePort(flag, value);
        break;
      case "--http-redirect-port":
        config.httpRedirectPort = parsePort(flag, value);
        break;
      case "--idle-timeout": {
        const ms = parseDuration(value);
        if (ms > MAX_IDLE_TIMEOUT_MS) throw new TypeError(`--idle-timeout ${value} is over an hour`);
        config.idleTimeoutMs = ms;
        break;
      }
      case "--workers": {
        const n = value === "auto"
          ? navigator.hardwareConcurrency
          : /^\d{1,3}$/.test(value)
          ? Number(value)
          : NaN;
        if (!(n >= 1 && n <= 256)) throw new TypeError(`Bad --workers: ${JSON.stringify(value)} (1 to 256)`);
        config.workers = n;
        break;
      }
      case "--trusted-proxy":
        // Repeatable; the first one replaces the loopback default rather than adding to it.
        (config.trustedProxies ??= []).push(...value.split(",").map((a) => a.trim()).filter(Boolean));
        break;
      case "--cert":
        config.cert = value;
        break;
      case "--key":
        config.key = value;
        break;
      case "--max-upload": {
        const bytes = parseSize(value);
        if (bytes > MAX_UPLOAD_CEILING) {
          throw new TypeError(`--max-upload ${value} is over the ceiling of ${MAX_UPLOAD_CEILING} bytes`);
        }
        config.maxUploadBytes = bytes;
        break;
      }
      case "--data":
        config.dataDir = value.replace(/\/+$/, "") || "/";
        break;
      case "--database":
        config.database = parseDatabaseUrl(value);
        break;
      case "--database-pool": {
        const n = /^\d{1,3}$/.test(value) ? Number(value) : NaN;
        if (!(n >= 1 && n <= MAX_DATABASE_POOL)) {
          throw new TypeError(`Bad --database-pool: ${JSON.stringify(value)} (1 to ${MAX_DATABASE_POOL})`);
        }
        config.databasePool = n;
        break;
      }
      case "--uploads":
        config.uploadDir = value.replace(/\/+$/, "") || "/";
        break;
      case "--quiet":
      case "-q":
        config.quiet = true;
        break;
      case "--dev":
        config.dev = true;
        break;
    }
  }
  if ((config.cert === null) !== (config.key === null)) {
    throw new TypeError("--cert and --key go together: give both for HTTPS, or neither");
  }
  if (config.httpRedirectPort !== null && config.cert === null) {
    throw new TypeError("--http-redirect-port redirects to HTTPS: it needs --cert and --key");
  }
  return config;
}

/** Options of `deno task messages`. */
export interface MessagesConfig {
  /** One JSON object per line instead of the readable listing. */
  json: boolean;
  /** Folder holding `site.db`. Default `data`. */
  dataDir: string;
  /** `--database postgres://...`: read PostgreSQL instead (null or absent: `DATABASE_URL`, else SQLite). */
  database?: string | null;
  /** The most messages to print, newest first. Default: all (up to 1,000,000). */
  limit: number;
}

/** `deno task messages` prints at most this many: more than a person reads, less than memory allows. */
export const MESSAGES_MAX_LIMIT = 1_000_000;

/**
 * Parse the flags of `deno task messages`: `--json`, `--data DIR`, `--limit N`, `--database URL`.
 *
 * @param args The arguments.
 * @returns The options.
 * @throws {TypeError} On an unknown flag or a bad value.
 *
 * @example
 * ```ts
 * import { parseMessagesArgs } from "./cli.ts";
 * console.log(parseMessagesArgs(["--json"]).json); // true
 * ```
 */
export function parseMessagesArgs(args: readonly string[]): MessagesConfig {
  const config: MessagesConfig = { json: false, dataDir: "data", database: null, limit: MESSAGES_MAX_LIMIT };
  for (
    const [flag, value] of pairs(args, new Set(["--data", "--limit", "--database"]), new Set(["--json"]))
  ) {
    if (flag === "--json") config.json = true;
    else if (flag === "--database") config.database = parseDatabaseUrl(value);
    else if (flag === "--data") config.dataDir = value.replace(/\/+$/, "") || "/";
    else {
      const n = /^\d+$/.test(value) ? Number(value) : NaN;
      if (!(n >= 1 && n <= MESSAGES_MAX_LIMIT)) throw new TypeError(`Bad --limit: ${JSON.stringify(value)}`);
      config.limit = n;
    }
  }
  return config;
}
