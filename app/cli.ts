// Command-line flags of the site (`deno task start`) and of `deno task messages`: one table per command, read
// by both the parser and `--help`. It owns parsing, validation and the help text only: it must never touch the
// disk or the network, so a bad flag fails before anything starts.
import { DEFAULT_RATE_LIMIT, parseRateLimit, type RateLimit } from "./rate_limit.ts";

/** The site's configuration, from its flags. */
export interface SiteConfig {
  /** Address to listen on. Default 127.0.0.1: only this machine (nginx in front) reaches it. */
  host: string;
  /**
   * `--unix PATH`: listen on this Unix socket instead of `host` and `port` (nginx's `server unix:PATH`).
   * The start task may write /run/pier/pier.sock only; another path needs its permissions widened.
   */
  unix: string | null;
  /** `--max-connections N`: the engine's connection cap. Null: 90 % of the file limit (server/serve.ts). */
  maxConnections: number | null;
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
  /**
   * The post limit per client address (`--rate-limit N/WINDOW`), or null for none (`--rate-limit off`).
   * Default 20 per 10 minutes (app/rate_limit.ts).
   */
  rateLimit: RateLimit | null;
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

/** 25 MB, the issue's default: photos and documents, not video. */
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

/**
 * One command-line flag, as the parser reads it and `--help` shows it. The parser knows no flag that is not in
 * a table of these, so the help cannot miss one; adding a flag is adding an entry.
 */
export interface Flag<Config> {
  /** How it is written: the long form first, then any short one (`["--quiet", "-q"]`). */
  names: readonly string[];
  /** The value's name in the help (`N`, `FILE`), or null for a switch that takes no value. */
  value: string | null;
  /** The default, as the help shows it: a value the flag accepts, or a few words when there is none. */
  default: string;
  /** What it does, in one line. */
  meaning: string;
  /** Read the value into the configuration (`""` for a switch). Throws a TypeError on a bad value. */
  set(config: Config, value: string, flag: string): void;
}

/** `--data` and `--uploads` values: a trailing slash dropped, `/` kept. */
function folder(value: string): string {
  return value.replace(/\/+$/, "") || "/";
}

/**
 * The flags of `deno task start`, in the order `--help` lists them. Checks that need several flags (`--cert`
 * with `--key`) come after, in {@link parseSiteArgs}.
 */
export const SITE_FLAGS: readonly Flag<SiteConfig>[] = [
  {
    names: ["--host"],
    value: "ADDR",
    default: "127.0.0.1",
    meaning: "Address to listen on; the default reaches this machine only (nginx in front)",
    set: (config, value) => config.host = value,
  },
  {
    names: ["--port"],
    value: "N",
    default: "8000",
    meaning: "Port to listen on; 0 picks a free one",
    set: (config, value, flag) => config.port = parsePort(flag, value),
  },
  {
    names: ["--cert"],
    value: "FILE",
    default: "none (plain HTTP)",
    meaning: "PEM certificate: with --key, HTTPS on the same port (keep both in certs/)",
    set: (config, value) => config.cert = value,
  },
  {
    names: ["--key"],
    value: "FILE",
    default: "none",
    meaning: "PEM private key of --cert",
    set: (config, value) => config.key = value,
  },
  {
    names: ["--http-redirect-port"],
    value: "N",
    default: "none",
    meaning: "With --cert: a plain-HTTP port answering every request with a 308 to HTTPS",
    set: (config, value, flag) => config.httpRedirectPort = parsePort(flag, value),
  },
  {
    names: ["--max-upload"],
    value: "SIZE",
    default: DEFAULT_MAX_UPLOAD,
    meaning: "Largest uploaded file; binary units as in nginx (25MB is 25 MiB); at most 4GB",
    set(config, value) {
      const bytes = parseSize(value);
      if (bytes > MAX_UPLOAD_CEILING) {
        throw new TypeError(`--max-upload ${value} is over the ceiling of ${MAX_UPLOAD_CEILING} bytes`);
      }
      config.maxUploadBytes = bytes;
    },
  },
  {
    names: ["--data"],
    value: "DIR",
    default: "data",
    meaning: "Folder for site.db and uploads/ (the start task may write data/ only)",
    set: (config, value) => config.dataDir = folder(value),
  },
  {
    names: ["--uploads"],
    value: "DIR",
    default: "uploads/ in the --data folder",
    meaning: "Folder for uploaded files, one all instances share (outside data/: docs/site.md)",
    set: (config, value) => config.uploadDir = folder(value),
  },
  {
    names: ["--database"],
    value: "URL",
    default: "DATABASE_URL if set, else SQLite in the --data folder",
    meaning: "PostgreSQL instead of SQLite: postgres://USER:PASSWORD@HOST:PORT/DB",
    set: (config, value) => config.database = parseDatabaseUrl(value),
  },
  {
    names: ["--database-pool"],
    value: "N",
    default: "10",
    meaning: `PostgreSQL connections per instance, 1 to ${MAX_DATABASE_POOL}`,
    set(config, value) {
      const n = /^\d{1,3}$/.test(value) ? Number(value) : NaN;
      if (!(n >= 1 && n <= MAX_DATABASE_POOL)) {
        throw new TypeError(`Bad --database-pool: ${JSON.stringify(value)} (1 to ${MAX_DATABASE_POOL})`);
      }
      config.databasePool = n;
    },
  },
  {
    names: ["--idle-timeout"],
    value: "DURATION",
    default: DEFAULT_IDLE_TIMEOUT,
    meaning: "How long an idle keep-alive connection stays open (500ms, 75s, 2m), up to 1 hour",
    set(config, value) {
      const ms = parseDuration(value);
      if (ms > MAX_IDLE_TIMEOUT_MS) throw new TypeError(`--idle-timeout ${value} is over an hour`);
      config.idleTimeoutMs = ms;
    },
  },
  {
    names: ["--unix"],
    value: "PATH",
    default: "none (TCP)",
    meaning:
      "Listen on this Unix socket instead of --host/--port (the start task allows /run/pier/pier.sock)",
    set(config, value) {
      if (value === "" || value.includes("\0")) throw new TypeError(`Bad --unix: ${JSON.stringify(value)}`);
      config.unix = value;
    },
  },
  {
    names: ["--max-connections"],
    value: "N",
    default: "90% of the file limit",
    meaning: "Connections held at most; at the cap the longest idle one is closed for a new one",
    set(config, value) {
      const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
      if (!(n >= 1)) throw new TypeError(`Bad --max-connections: ${JSON.stringify(value)} (1 or more)`);
      config.maxConnections = n;
    },
  },
  {
    names: ["--trusted-proxy"],
    value: "ADDR[,ADDR]",
    default: "loopback",
    meaning: "Peers whose X-Forwarded-For/-Proto are believed (repeatable; replaces loopback)",
    // Repeatable; the first one replaces the loopback default rather than adding to it.
    set: (config, value) =>
      (config.trustedProxies ??= []).push(...value.split(",").map((a) => a.trim()).filter(Boolean)),
  },
  {
    names: ["--rate-limit"],
    value: "N/WINDOW",
    default: "20/10m",
    meaning: "Accepted posts (contact and uploads) per client address per window, then 429; or off",
    set: (config, value) => config.rateLimit = parseRateLimit(value),
  },
  {
    names: ["--workers"],
    value: "N|auto",
    default: "1",
    meaning: "Server Workers on the port, auto for one per core (needs flags: docs/deploy.md)",
    set(config, value) {
      const n = value === "auto"
        ? navigator.hardwareConcurrency
        : /^\d{1,3}$/.test(value)
        ? Number(value)
        : NaN;
      if (!(n >= 1 && n <= 256)) throw new TypeError(`Bad --workers: ${JSON.stringify(value)} (1 to 256)`);
      config.workers = n;
    },
  },
  {
    names: ["--quiet", "-q"],
    value: null,
    default: "off",
    meaning: "No access log",
    set: (config) => config.quiet = true,
  },
  {
    names: ["--dev"],
    value: null,
    default: "off",
    meaning: "Development: templates reload when edited, a missing template value throws",
    set: (config) => config.dev = true,
  },
];

/** The flags that ask for the help instead of running. Any of them anywhere wins over every other flag. */
export const HELP_FLAGS: readonly string[] = ["--help", "-h"];

/**
 * Whether the arguments ask for the help (`--help` or `-h`, anywhere).
 *
 * @param args The arguments (`Deno.args`).
 * @returns True when the help should be printed instead of running.
 *
 * @example
 * ```ts
 * import { helpRequested } from "./cli.ts";
 * console.log(helpRequested(["--port", "80", "--help"])); // true
 * ```
 */
export function helpRequested(args: readonly string[]): boolean {
  return args.some((arg) => HELP_FLAGS.includes(arg));
}

/** A flag as the usage and the help write it: `--port N`, `--quiet, -q`. */
function spelled<Config>(flag: Flag<Config>): string {
  return flag.names.join(", ") + (flag.value === null ? "" : ` ${flag.value}`);
}

/**
 * The one-line usage of a command: every flag in brackets, from its table.
 *
 * @param command The command, e.g. `deno task start`.
 * @param flags Its flag table.
 * @returns The line, starting with `usage:`.
 *
 * @example
 * ```ts
 * import { SITE_FLAGS, usageLine } from "./cli.ts";
 * console.log(usageLine("deno task start", SITE_FLAGS)); // "usage: deno task start [--host ADDR] ..."
 * ```
 */
export function usageLine<Config>(command: string, flags: readonly Flag<Config>[]): string {
  const each = flags.map((flag) => `[${flag.names[0]}${flag.value === null ? "" : ` ${flag.value}`}]`);
  return `usage: ${command} ${each.join(" ")}`;
}

/**
 * The help of a command: what it does, then every flag of its table with its default and meaning, then
 * `--help` itself.
 *
 * @param command The command, e.g. `deno task start`.
 * @param summary What it does, one or two lines.
 * @param flags Its flag table.
 * @returns The text (no newline at the end: `console.log` adds it).
 *
 * @example
 * ```ts
 * import { helpText, MESSAGES_FLAGS } from "./cli.ts";
 * console.log(helpText("deno task messages", "Print the contact messages.", MESSAGES_FLAGS));
 * ```
 */
export function helpText<Config>(command: string, summary: string, flags: readonly Flag<Config>[]): string {
  const rows = flags.map((flag) => [spelled(flag), flag.meaning, `Default: ${flag.default}`]);
  rows.push([HELP_FLAGS.join(", "), "Print this help and exit"]);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  // The default on a line of its own, under the meaning: a terminal's 100 columns hold both that way.
  const lines = rows.flatMap(([left, ...right]) =>
    right.map((text, i) => `  ${(i ? "" : left).padEnd(width)}${text}`)
  );
  return `usage: ${command} [flags]\n\n${summary}\n\nflags:\n${lines.join("\n")}`;
}

/**
 * The help of `deno task start`, from {@link SITE_FLAGS}.
 *
 * @returns The text `deno task start --help` prints.
 *
 * @example
 * ```ts
 * import { siteHelp } from "./cli.ts";
 * console.log(siteHelp());
 * ```
 */
export function siteHelp(): string {
  return helpText(
    "deno task start",
    "Serve the portfolio site (docs/site.md) on Pier: http://127.0.0.1:8000 unless told otherwise.",
    SITE_FLAGS,
  );
}

/**
 * Split `--flag value` and `--flag=value` forms and hand each to its table entry, refusing unknown flags (a
 * typo such as `--max-uplaod 300MB` must not silently run with the default).
 */
function readFlags<Config>(args: readonly string[], flags: readonly Flag<Config>[], config: Config): void {
  const byName = new Map(flags.flatMap((flag) => flag.names.map((name) => [name, flag] as const)));
  for (let i = 0; i < args.length; i++) {
    const eq = args[i].indexOf("=");
    const name = eq < 0 ? args[i] : args[i].slice(0, eq);
    const flag = byName.get(name);
    if (flag === undefined) throw new TypeError(`Unknown flag ${JSON.stringify(args[i])}`);
    if (flag.value === null) {
      if (eq >= 0) throw new TypeError(`${name} takes no value`);
      flag.set(config, "", name);
    } else {
      const value = eq >= 0 ? args[i].slice(eq + 1) : args[++i];
      if (value === undefined || value === "") throw new TypeError(`${name} needs a value`);
      flag.set(config, value, name);
    }
  }
}

/**
 * Parse the site's flags ({@link SITE_FLAGS}; `deno task start --help` lists them).
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
    unix: null,
    maxConnections: null,
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
    rateLimit: DEFAULT_RATE_LIMIT,
    workers: 1,
  };
  readFlags(args, SITE_FLAGS, config);
  if ((config.cert === null) !== (config.key === null)) {
    throw new TypeError("--cert and --key go together: give both for HTTPS, or neither");
  }
  if (config.httpRedirectPort !== null && config.cert === null) {
    throw new TypeError("--http-redirect-port redirects to HTTPS: it needs --cert and --key");
  }
  if (config.unix !== null && config.cert !== null) {
    throw new TypeError("--unix serves plain HTTP to a proxy on this machine: no --cert and --key with it");
  }
  if (config.unix !== null && config.workers > 1) {
    throw new TypeError(
      "--unix is one listener: --workers share a TCP port (SO_REUSEPORT), not a socket file",
    );
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

/** The flags of `deno task messages`, in the order `--help` lists them. */
export const MESSAGES_FLAGS: readonly Flag<MessagesConfig>[] = [
  {
    names: ["--json"],
    value: null,
    default: "off",
    meaning: "One JSON object per line instead of the readable listing",
    set: (config) => config.json = true,
  },
  {
    names: ["--limit"],
    value: "N",
    default: String(MESSAGES_MAX_LIMIT),
    meaning: "The most messages to print, newest first",
    set(config, value) {
      const n = /^\d+$/.test(value) ? Number(value) : NaN;
      if (!(n >= 1 && n <= MESSAGES_MAX_LIMIT)) throw new TypeError(`Bad --limit: ${JSON.stringify(value)}`);
      config.limit = n;
    },
  },
  {
    names: ["--data"],
    value: "DIR",
    default: "data",
    meaning: "Folder holding the site's site.db",
    set: (config, value) => config.dataDir = folder(value),
  },
  {
    names: ["--database"],
    value: "URL",
    default: "DATABASE_URL if set, else SQLite in the --data folder",
    meaning: "Read PostgreSQL instead of SQLite: postgres://USER:PASSWORD@HOST:PORT/DB",
    set: (config, value) => config.database = parseDatabaseUrl(value),
  },
];

/**
 * The help of `deno task messages`, from {@link MESSAGES_FLAGS}.
 *
 * @returns The text `deno task messages --help` prints.
 *
 * @example
 * ```ts
 * import { messagesHelp } from "./cli.ts";
 * console.log(messagesHelp());
 * ```
 */
export function messagesHelp(): string {
  return helpText(
    "deno task messages",
    "Print the site's contact messages, newest first, from its database.",
    MESSAGES_FLAGS,
  );
}

/**
 * Parse the flags of `deno task messages` ({@link MESSAGES_FLAGS}; `deno task messages --help` lists them).
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
  readFlags(args, MESSAGES_FLAGS, config);
  return config;
}
