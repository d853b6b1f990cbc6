// The listener: accept connections (TCP or TLS), run one Connection each within the connection cap, keep the
// coarse clock that every timeout and the Date header read, and shut down gracefully. It owns the options and
// their defaults; it must never need more than --allow-net (the file limit is read only where already allowed).
import { Connection, type ConnectionHost, ConnState, Deadline, type Refusal } from "./conn.ts";
import { DEFAULT_PARSER_LIMITS, type ParserLimits } from "./http1.ts";
import type { Handler } from "./types.ts";
import { fastPathFailure } from "./_fast.ts";
import { telemetryEnabled } from "./otel.ts";
import { instrument } from "./telemetry.ts";
import type { Tunnel } from "./_upgrade.ts";
import { type KeepAliveLines, keepAliveLines } from "./writer.ts";

/**
 * Options for {@link serve}. Every field has a safe default; `{}` is a valid configuration.
 *
 * @example
 * ```ts
 * import type { ServeOptions } from "./serve.ts";
 * const options: ServeOptions = { hostname: "127.0.0.1", port: 0, idleTimeoutMs: 10_000 };
 * ```
 */
export interface ServeOptions extends Partial<ParserLimits> {
  /** Address to listen on. Default "127.0.0.1": reachable from this machine only until you say otherwise. */
  hostname?: string;
  /** Port; 0 picks a free one. Default 8000, as Deno.serve. */
  port?: number;
  /** PEM certificate chain: with `key`, serve HTTPS (HTTP/1.1 over TLS). */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /**
   * Share the port with other listeners (Linux SO_REUSEPORT), for one server per core. Default false. On
   * Deno 2.9 it needs `--unstable-net`.
   */
  reusePort?: boolean;
  /** Aborting it starts a graceful shutdown. */
  signal?: AbortSignal;
  /** Called once listening. Default: prints the URL, as Deno.serve does. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Not for TCP: see {@link ServeUnixOptions}. */
  path?: undefined;
  /** Turns a handler's thrown error into a response. Default: log it, answer 500 without its text. */
  onError?: (error: unknown, request: Request) => Response | Promise<Response>;
  /**
   * Told of every answer the server gives without calling the handler (malformed requests, limits,
   * unknown methods, head timeouts), so an access log can include them. Default: nothing is logged, since
   * hostile input is routine.
   */
  onRefused?: (refusal: Refusal) => void;
  /** The whole request head must arrive within this long of its first byte (then 408). Default 20 s. */
  headerTimeoutMs?: number;
  /**
   * A keep-alive connection with no request for this long is closed. Default 5 s. Keep-alive answers say
   * `keep-alive: timeout=N`, N this less {@link KEEP_ALIVE_MARGIN_MS} in whole seconds, so that a pooling
   * client or proxy drops an idle connection before the server does (none under 1 s: no field).
   */
  idleTimeoutMs?: number;
  /** A request body that makes no progress for this long is dropped. Default 30 s. */
  bodyTimeoutMs?: number;
  /** A response write that makes no progress for this long is dropped. Default 30 s. */
  writeTimeoutMs?: number;
  /** Unread request body the server discards to keep a connection; more and it closes. Default 256 KiB. */
  maxDrainBytes?: number;
  /**
   * Requests one connection carries at most, as nginx's `keepalive_requests`: the last answer says
   * `connection: close`. Default: no cap (0 or Infinity also mean none).
   */
  maxRequestsPerConnection?: number;
  /**
   * Connections held at most. At the cap a new connection closes the one idle the longest (between
   * requests, or accepted and silent); when none is idle it is closed at once, unanswered: connections
   * serving a request, and WebSockets (which count), are never closed for room. Default
   * {@link defaultMaxConnections}: 90 % of the process's file limit, when it can be read.
   */
  maxConnections?: number;
  /**
   * Methods passed to the handler; others get 501 (RFC 9110 §9.1). Default: every valid method token (up
   * to 32 bytes), as Deno.serve does, so WebDAV and QUERY handlers run. CONNECT always gets 501: an origin
   * server opens no tunnels.
   */
  methods?: readonly string[];
}

/**
 * Options for {@link serve} on a Unix socket, as Deno.serve's `path`: the same, without the TCP and TLS
 * ones. Behind a proxy on the same machine this needs no port, and the socket file's permissions decide
 * who may connect.
 *
 * Listening needs `--allow-read` and `--allow-write` on `path`. A file already there makes it fail
 * (AddrInUse): call {@link removeStaleSocket} first to remove one that no server answers on. Deno removes
 * the file when the listener closes, at shutdown.
 *
 * @example
 * ```ts
 * import type { ServeUnixOptions } from "./serve.ts";
 * const options: ServeUnixOptions = { path: "/run/pier/pier.sock", idleTimeoutMs: 75_000 };
 * ```
 */
export interface ServeUnixOptions
  extends Omit<ServeOptions, "hostname" | "port" | "cert" | "key" | "reusePort" | "onListen" | "path"> {
  /** The socket file's path. */
  path: string;
  /** Called once listening. Default: prints `Listening on unix:PATH`. */
  onListen?: (addr: Deno.UnixAddr) => void;
}

/**
 * A running server, as returned by {@link serve}.
 *
 * @example
 * ```ts ignore
 * const server = serve({ port: 0 }, () => new Response("hi"));
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 */
export interface PierServer<Addr extends Deno.Addr = Deno.NetAddr> {
  /** The address the server listens on (with the real port when 0 was asked for), or its Unix socket. */
  readonly addr: Addr;
  /** Resolves when the server has shut down and every connection has closed. */
  readonly finished: Promise<void>;
  /** Stop accepting, finish in-flight responses, close idle connections; resolves with `finished`. */
  shutdown(): Promise<void>;
  /** The connection cap in force ({@link ServeOptions.maxConnections}). */
  readonly maxConnections: number;
  /** Let the process exit while the server runs (as Deno.serve's `unref`). */
  unref(): void;
  /** Undo {@link PierServer.unref}. */
  ref(): void;
}

/** How often the clock ticks and timeouts are checked: timeouts are exact to within this. */
const TICK_MS = 500;
/** After EMFILE and friends, wait before accepting again rather than spin. */
const ACCEPT_BACKOFF_MS = 100;
/**
 * What the `keep-alive: timeout=N` hint keeps below the idle timeout. An idle connection is closed when a
 * tick finds its deadline past, and its deadline is set on the coarse clock, so the close comes up to one
 * tick early; the other second covers the answer's trip to the client and the request's trip back, and a
 * client's own timers. (Node's http.Agent takes a second more off the hint itself.)
 */
export const KEEP_ALIVE_MARGIN_MS: number = TICK_MS + 1_000;

/** The share of the file limit the connection cap takes: the rest is for files, the database, the log. */
const CONNECTIONS_SHARE_OF_FILE_LIMIT = 0.9;
/**
 * The file limit assumed when it cannot be read (Deno 2.9 reads `/proc/self/limits` only with all
 * permissions): 65,536. Deno raises its soft limit to the hard one at start, and the usual hard limits are
 * far above 1024, the soft limit a shell shows (systemd's 524,288, Docker's 1,048,576), so 1024 would cap
 * a server at 921 connections it could hold. Where the hard limit is lower than this, accept's EMFILE is
 * survived as before; `maxConnections` sets the cap from the real limit.
 */
const ASSUMED_FILE_LIMIT = 65_536;
/** The cap is said in the log at most this often while it holds connections back. */
const CAP_LOG_INTERVAL_MS = 60_000;
/**
 * At the cap, the share of it closed at once among the longest idle connections (at least one): a flood of
 * new connections then costs one scan of the connections per this share of the cap, not one per accept.
 */
const CAP_EVICTION_SHARE = 1 / 64;

/**
 * The process's limit on open files (RLIMIT_NOFILE's soft value), from `/proc/self/limits` on Linux.
 * Deno 2.9 has no call for it, and reads a process's files under /proc only with all permissions
 * (`--allow-read=/proc/self/limits` is not enough: "Requires all access"). So: under `-A` the real limit;
 * with scoped permissions (the site's), or elsewhere than Linux, null. Never prompts: the permission is
 * queried first, and a refusal is caught.
 *
 * @returns The limit, or null when it cannot be read.
 *
 * @example
 * ```ts
 * import { fileLimit } from "./serve.ts";
 * console.log(fileLimit()); // 1048576 under -A, null with scoped permissions
 * ```
 */
export function fileLimit(): number | null {
  const path = "/proc/self/limits";
  if (Deno.build.os !== "linux") return null;
  try {
    // Deno wants all access for /proc/<pid>/ files; asking for read first keeps a prompt away.
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return null;
    const line = Deno.readTextFileSync(path).split("\n").find((l) => l.startsWith("Max open files"));
    const soft = line === undefined
      ? NaN
      : Number(line.slice("Max open files".length).trim().split(/\s+/)[0]);
    return Number.isSafeInteger(soft) && soft > 0 ? soft : null; // "unlimited" is no number
  } catch {
    return null;
  }
}

/**
 * The default connection cap: 90 % of {@link fileLimit} (the rest is for the files, the database and the
 * log a server opens while serving), or of 65,536 when the limit cannot be read.
 *
 * @returns The number of connections.
 *
 * @example
 * ```ts
 * import { defaultMaxConnections } from "./serve.ts";
 * console.log(defaultMaxConnections()); // 943718 with a limit of 1048576
 * ```
 */
export function defaultMaxConnections(): number {
  return Math.floor((fileLimit() ?? ASSUMED_FILE_LIMIT) * CONNECTIONS_SHARE_OF_FILE_LIMIT);
}

/**
 * The `timeout` a keep-alive answer announces for an idle timeout: whole seconds, {@link
 * KEEP_ALIVE_MARGIN_MS} below it; 0 (no hint) when that leaves less than a second or there is no timeout.
 *
 * @param idleTimeoutMs The server's idle timeout.
 * @returns Seconds to announce, or 0.
 *
 * @example
 * ```ts
 * import { keepAliveHintSeconds } from "./serve.ts";
 * console.log(keepAliveHintSeconds(75_000)); // 73
 * ```
 */
export function keepAliveHintSeconds(idleTimeoutMs: number): number {
  if (!(idleTimeoutMs > 0) || !Number.isFinite(idleTimeoutMs)) return 0;
  return Math.max(0, Math.floor((idleTimeoutMs - KEEP_ALIVE_MARGIN_MS) / 1000));
}

/**
 * The defaults of {@link ServeOptions}, each with its reason.
 *
 * @example
 * ```ts
 * import { SERVE_DEFAULTS } from "./serve.ts";
 * console.log(SERVE_DEFAULTS.idleTimeoutMs); // 5000
 * ```
 */
export const SERVE_DEFAULTS: Readonly<{
  hostname: string;
  port: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  bodyTimeoutMs: number;
  writeTimeoutMs: number;
  maxDrainBytes: number;
}> = Object.freeze({
  hostname: "127.0.0.1",
  port: 8000,
  /** Go's advice for ReadHeaderTimeout, and the slowloris bound. */
  headerTimeoutMs: 20_000,
  /** Browsers reopen cheaply; idle sockets cost memory. Behind nginx, raise it above its keepalive_timeout. */
  idleTimeoutMs: 5_000,
  /** A stalled upload holds a connection and a file; 30 s of silence is not a slow network. */
  bodyTimeoutMs: 30_000,
  /** Same reasoning for a client that stops reading. */
  writeTimeoutMs: 30_000,
  /** Go's limit for discarding an unread body before reusing the connection. */
  maxDrainBytes: 256 * 1024,
});

function defaultOnError(error: unknown): Response {
  console.error("pier: handler failed:", error);
  return new Response("Internal Server Error\n", {
    status: 500,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** Whether the fast-path warning was given: once per process, at the first server's start. */
let warnedSlow = false;
/**
 * Say once, at startup, when Pier runs on the public API only because this Deno's internals differ from
 * what it knows: it then answers about 0.4x as many requests per second, and nothing else would tell.
 */
function warnIfSlow(): void {
  if (warnedSlow) return;
  warnedSlow = true;
  fastPathFailure().then((problem) => {
    if (problem === null) return;
    console.warn(
      `pier: running on the public API only, about 0.4x as fast, on Deno ${Deno.version.deno}: ${problem}. ` +
        "Pier's fast paths were made for Deno 2.9; please report this with the Deno version.",
    );
  });
}

/**
 * Remove a Unix socket file that no server answers on (left by a process that was killed), so that a new
 * server can listen there. A socket a server answers on is left alone and reported; a file that is not a
 * socket is never removed.
 *
 * @param path The socket file's path.
 * @returns True when a stale socket was removed, false when there was no file.
 * @throws {Deno.errors.AddrInUse} When a server answers on it.
 * @throws {Deno.errors.AlreadyExists} When the path is not a socket.
 *
 * @example
 * ```ts ignore
 * import { removeStaleSocket, serve } from "./serve.ts";
 * await removeStaleSocket("/run/pier/pier.sock");
 * serve({ path: "/run/pier/pier.sock" }, () => new Response("hi"));
 * ```
 */
export async function removeStaleSocket(path: string): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  if (!info.isSocket) throw new Deno.errors.AlreadyExists(`${path} exists and is not a socket`);
  let live: Deno.Conn;
  try {
    live = await Deno.connect({ transport: "unix", path });
  } catch (e) {
    // Nobody listens: the file outlived its server.
    if (!(e instanceof Deno.errors.ConnectionRefused)) throw e;
    await Deno.remove(path);
    return true;
  }
  live.close();
  throw new Deno.errors.AddrInUse(`a server answers on ${path}`);
}

function defaultOnListen(addr: Deno.NetAddr, https: boolean): void {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  console.log(`Listening on ${https ? "https" : "http"}://${host}:${addr.port}/`);
}

class Server implements ConnectionHost, PierServer<Deno.NetAddr | Deno.UnixAddr> {
  readonly handler: Handler;
  readonly parserLimits: Partial<ParserLimits>;
  readonly scheme: "http" | "https";
  readonly defaultHost: string;
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly maxDrainBytes: number;
  readonly maxRequestsPerConnection: number;
  readonly keepAlive: KeepAliveLines;
  readonly maxConnections: number;
  readonly methods: ReadonlySet<string> | null;
  readonly addr: Deno.NetAddr | Deno.UnixAddr;
  readonly finished: Promise<void>;
  now = Date.now();
  dateLine = "";
  closing = false;
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Connection>();
  /** Connections taken over after a 101 (WebSockets): ticked, shut down and waited for like the others. */
  readonly #tunnels = new Set<Tunnel>();
  /** When the cap was last said in the log (on the coarse clock). */
  #capLoggedAt = -Infinity;
  readonly #onError: (error: unknown, request: Request) => Response | Promise<Response>;
  readonly #onRefused: ((refusal: Refusal) => void) | undefined;
  #ticker: number;
  #resolveFinished!: () => void;
  #acceptDone: Promise<void>;
  #refed = true;

  constructor(options: ServeOptions | ServeUnixOptions, handler: Handler) {
    const limits: Partial<ParserLimits> = {};
    for (const k of Object.keys(DEFAULT_PARSER_LIMITS) as (keyof ParserLimits)[]) {
      if (options[k] !== undefined) limits[k] = options[k];
    }
    this.parserLimits = limits;
    this.headerTimeoutMs = options.headerTimeoutMs ?? SERVE_DEFAULTS.headerTimeoutMs;
    this.idleTimeoutMs = options.idleTimeoutMs ?? SERVE_DEFAULTS.idleTimeoutMs;
    this.bodyTimeoutMs = options.bodyTimeoutMs ?? SERVE_DEFAULTS.bodyTimeoutMs;
    this.writeTimeoutMs = options.writeTimeoutMs ?? SERVE_DEFAULTS.writeTimeoutMs;
    this.maxDrainBytes = options.maxDrainBytes ?? SERVE_DEFAULTS.maxDrainBytes;
    const maxRequests = options.maxRequestsPerConnection ?? 0;
    this.maxRequestsPerConnection = maxRequests > 0 ? maxRequests : Infinity;
    this.keepAlive = keepAliveLines(keepAliveHintSeconds(this.idleTimeoutMs));
    const maxConnections = options.maxConnections ?? defaultMaxConnections();
    if (!(maxConnections >= 1)) {
      throw new RangeError(`serve(): maxConnections must be 1 or more, not ${maxConnections}`);
    }
    this.maxConnections = maxConnections;
    this.methods = options.methods === undefined ? null : new Set(options.methods);
    this.#onRefused = options.onRefused;

    let onListen: () => void;
    if (options.path !== undefined) {
      const unix = options as ServeUnixOptions;
      if ("cert" in unix || "key" in unix) {
        throw new TypeError("serve(): a Unix socket is served without TLS");
      }
      this.#listener = Deno.listen({ transport: "unix", path: unix.path });
      this.scheme = "http";
      const addr = this.addr = this.#listener.addr as Deno.UnixAddr;
      // For HTTP/1.0 requests without Host: a Unix socket has no host:port of its own.
      this.defaultHost = "localhost";
      onListen = () => (unix.onListen ?? ((a) => console.log(`Listening on unix:${a.path}`)))(addr);
    } else {
      const tcp = options as ServeOptions;
      const hostname = tcp.hostname ?? SERVE_DEFAULTS.hostname;
      const port = tcp.port ?? SERVE_DEFAULTS.port;
      const tls = tcp.cert !== undefined || tcp.key !== undefined;
      if (tls && (tcp.cert === undefined || tcp.key === undefined)) {
        throw new TypeError("serve(): cert and key must be given together");
      }
      this.#listener = tls
        ? Deno.listenTls({ hostname, port, cert: tcp.cert!, key: tcp.key!, reusePort: tcp.reusePort })
        : Deno.listen({ hostname, port, reusePort: tcp.reusePort });
      this.scheme = tls ? "https" : "http";
      const addr = this.addr = this.#listener.addr as Deno.NetAddr;
      const h = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
      this.defaultHost = `${h}:${addr.port}`;
      onListen = () => (tcp.onListen ?? ((a: Deno.NetAddr) => defaultOnListen(a, tls)))(addr);
    }
    // OpenTelemetry (OTEL_DENO=true): decided here, once. With it off the handler is the caller's own, and
    // no request runs any telemetry code.
    const onError = options.onError ?? defaultOnError;
    const instrumented = telemetryEnabled ? instrument(handler, onError, this.scheme) : null;
    this.handler = instrumented?.handler ?? handler;
    this.#onError = instrumented?.onError ?? onError;

    this.finished = new Promise((r) => this.#resolveFinished = r);
    this.#tick();
    this.#ticker = setInterval(() => this.#tick(), TICK_MS) as unknown as number;
    if (options.signal) {
      if (options.signal.aborted) queueMicrotask(() => this.shutdown());
      else options.signal.addEventListener("abort", () => this.shutdown(), { once: true });
    }
    onListen();
    warnIfSlow();
    this.#acceptDone = this.#acceptLoop();
  }

  /** Advance the clock, refresh the Date header, and fire due timeouts. */
  #tick(): void {
    this.now = Date.now();
    // RFC 9110 §6.6.1: an origin server with a clock MUST send Date (IMF-fixdate, which toUTCString gives).
    this.dateLine = `date: ${new Date(this.now).toUTCString()}\r\n`;
    for (const c of this.#conns) {
      if (c.deadline !== 0 && c.deadline <= this.now) c.timeout();
    }
    for (const t of this.#tunnels) {
      if (t.deadline !== 0 && t.deadline <= this.now) t.timeout();
    }
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.closing || e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) {
          return;
        }
        this.log("accept failed", e);
        await new Promise((r) => setTimeout(r, ACCEPT_BACKOFF_MS));
        continue;
      }
      if (this.closing || !this.#roomFor()) {
        conn.close();
        continue;
      }
      try {
        (conn as Deno.TcpConn).setNoDelay?.(true);
      } catch { /* TLS over a closed socket: the read will tell */ }
      const c = new Connection(conn, this);
      c.deadlineKind = Deadline.Idle;
      c.deadline = this.now + this.idleTimeoutMs;
      this.#conns.add(c);
      c.run();
    }
  }

  /**
   * Whether one more connection may be held: under the cap, or at it once the connections idle the longest
   * are closed (between requests, or accepted and silent). Connections serving a request are never closed
   * for room: with none idle, the new one is turned away (closed by the caller, unanswered, which a proxy
   * takes as a failed upstream to retry). Found by a scan, only at the cap, so that serving a request costs
   * nothing for it: an idle connection's deadline is when it became idle plus the idle timeout, the same
   * for all, so the smallest deadlines are the longest idle (to a tick; ties in the order of acceptance).
   */
  #roomFor(): boolean {
    // A connection taken over after a 101 (a WebSocket) holds its socket too: it counts, and is never
    // closed for room.
    if (this.#conns.size + this.#tunnels.size < this.maxConnections) return true;
    const idle: Connection[] = [];
    for (const c of this.#conns) if (c.state === ConnState.Idle) idle.push(c);
    if (this.now - this.#capLoggedAt >= CAP_LOG_INTERVAL_MS) {
      this.#capLoggedAt = this.now;
      this.log(
        `${this.#conns.size + this.#tunnels.size} connections, the cap (maxConnections): ` +
          (idle.length === 0 ? "none idle, turning new ones away" : "closing the longest idle for new ones"),
      );
    }
    if (idle.length === 0) return false;
    idle.sort((a, b) => a.deadline - b.deadline); // stable: among equals, the first accepted first
    const batch = Math.max(1, Math.floor(this.maxConnections * CAP_EVICTION_SHARE));
    for (let i = 0; i < batch && i < idle.length; i++) idle[i].close(); // each releases itself at once
    return this.#conns.size + this.#tunnels.size < this.maxConnections;
  }

  onHandlerError(error: unknown, request: Request): Response | Promise<Response> {
    return this.#onError(error, request);
  }

  onRefused(refusal: Refusal): void {
    this.#onRefused?.(refusal);
  }

  log(message: string, error?: unknown): void {
    if (error === undefined) console.error(`pier: ${message}`);
    else console.error(`pier: ${message}:`, error);
  }

  release(conn: Connection): void {
    this.#conns.delete(conn);
    if (this.closing && this.#conns.size === 0 && this.#tunnels.size === 0) this.#finish();
  }

  adopt(tunnel: Tunnel): void {
    this.#tunnels.add(tunnel);
    tunnel.done.then(() => {
      this.#tunnels.delete(tunnel);
      if (this.closing && this.#conns.size === 0 && this.#tunnels.size === 0) this.#finish();
    });
    if (this.closing) tunnel.shutdown();
  }

  #finish(): void {
    clearInterval(this.#ticker);
    this.#acceptDone.then(() => this.#resolveFinished());
  }

  shutdown(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      try {
        this.#listener.close();
      } catch { /* already closed */ }
      // Idle connections close now; busy ones finish their response with `connection: close`; WebSockets
      // are told the server is going away (1001) and close after their close handshake.
      for (const c of this.#conns) if (c.state === ConnState.Idle) c.close();
      for (const t of this.#tunnels) t.shutdown();
      if (this.#conns.size === 0 && this.#tunnels.size === 0) this.#finish();
    }
    return this.finished;
  }

  unref(): void {
    if (!this.#refed) return;
    this.#refed = false;
    this.#listener.unref();
    Deno.unrefTimer(this.#ticker);
  }

  ref(): void {
    if (this.#refed) return;
    this.#refed = true;
    this.#listener.ref();
    Deno.refTimer(this.#ticker);
  }
}

/**
 * Serve HTTP/1.1 on a Unix socket (`path`), as Deno.serve does: for a proxy on the same machine. The
 * handler's `info.remoteAddr` is then a `Deno.UnixAddr`.
 *
 * @param options The socket's path, limits, timeouts.
 * @param handler Takes a standard `Request` and returns a `Response` (or a promise of one).
 * @returns The running server.
 *
 * @example
 * ```ts ignore
 * import { removeStaleSocket, serve } from "./serve.ts";
 * await removeStaleSocket("/run/pier/pier.sock");
 * const server = serve({ path: "/run/pier/pier.sock" }, () => new Response("hi"));
 * await server.shutdown();
 * ```
 */
export function serve(options: ServeUnixOptions, handler: Handler<Deno.UnixAddr>): PierServer<Deno.UnixAddr>;
/**
 * Serve HTTP/1.1 (or HTTPS with `cert` and `key`) with a Deno.serve-style handler.
 *
 * @param options Where to listen, limits, timeouts; all optional.
 * @param handler Takes a standard `Request` and returns a `Response` (or a promise of one).
 * @returns The running server.
 *
 * @example
 * ```ts ignore
 * import { serve } from "./serve.ts";
 * const server = serve({ hostname: "127.0.0.1", port: 0 }, (req) => new Response(`you asked ${req.url}`));
 * await server.shutdown();
 * ```
 */
export function serve(options: ServeOptions, handler: Handler<Deno.NetAddr>): PierServer<Deno.NetAddr>;
export function serve(
  options: ServeOptions | ServeUnixOptions,
  handler: Handler<Deno.NetAddr> | Handler<Deno.UnixAddr>,
): PierServer<Deno.NetAddr> | PierServer<Deno.UnixAddr> {
  if (typeof handler !== "function") throw new TypeError("serve(): handler must be a function");
  return new Server(options, handler as Handler) as PierServer<Deno.NetAddr> | PierServer<Deno.UnixAddr>;
}
