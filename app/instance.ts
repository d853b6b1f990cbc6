// One server instance of the site: createSite() over a store, served by serve() with the site's options. The
// single-process start (app/main.ts) and each `--workers` Worker (app/server_worker.ts) run exactly this, so
// both behave the same. It owns no signals and no store lifetime.
import { peerAddress, type PierServer, type Refusal, serve, UNIX_PEER } from "../mod.ts";
import { type SiteConfig, uploadDirOf } from "./cli.ts";
import { BufferedLog } from "./access_log.ts";
import type { ReaderCount } from "./readers.ts";
import { createSite, type SiteStore, UPLOAD_SLACK_BYTES } from "./site.ts";
import { type DatabaseSystem, tracedStore } from "./traced_store.ts";

/**
 * Where static/ and templates/ are: the working directory's, as the start task runs, or, in the single
 * executable of `deno task compile`, the copies embedded with `--include`, found beside this module.
 *
 * @param name `static` or `templates`.
 * @returns The folder.
 */
export function assetDir(name: "static" | "templates"): string {
  return Deno.build.standalone ? new URL(`../${name}`, import.meta.url).pathname : name;
}

/** What an instance needs besides its config. */
export interface InstanceOptions {
  /** The store, or a relay to it. */
  store: SiteStore;
  /** The database behind it, for the store's spans when OpenTelemetry is on. */
  database: DatabaseSystem;
  /** PEM texts, read by the main thread. */
  tls: { cert?: string; key?: string };
  /** The port to listen on (the first Worker's real port when the config said 0). */
  port: number;
  /** Share the port with the other Workers (SO_REUSEPORT). */
  reusePort: boolean;
  /** Called once listening (on a Unix socket with `--unix`). */
  onListen(addr: Deno.NetAddr | Deno.UnixAddr): void;
  /** The live reader count, with its bus (the caller closes it after the server). Default: this instance's alone. */
  readers?: ReaderCount;
}

/**
 * Serve the site for `config`.
 *
 * @param config The parsed flags.
 * @param options Store, TLS, port and listen callback.
 * @returns The running server.
 */
export function startInstance(config: SiteConfig, options: InstanceOptions): PierServer<Deno.Addr> {
  // One buffered access log for the site's answers and the engine's refusals: written every quarter second
  // and when the server has finished (a graceful stop loses no line).
  const log = config.quiet ? null : new BufferedLog();
  const site = createSite({
    // With OTEL_DENO=true each database call is a child span of its request's; else the store as it is.
    store: tracedStore(options.store, options.database),
    uploadDir: uploadDirOf(config),
    maxUploadBytes: config.maxUploadBytes,
    accessLog: log?.line ?? null,
    dev: config.dev,
    staticDir: assetDir("static"),
    templatesDir: assetDir("templates"),
    // On a Unix socket the peer is the proxy (only a process that may write the socket file connects), so
    // it stays trusted when --trusted-proxy replaced the defaults.
    trustedProxies: config.trustedProxies === null
      ? undefined
      : config.unix !== null
      ? [...config.trustedProxies, UNIX_PEER]
      : config.trustedProxies,
    rateLimit: config.rateLimit,
    readers: options.readers,
  });
  const common = {
    // The engine's body cap must let the largest upload through; the site's own limits stop the rest.
    maxBodyBytes: config.maxUploadBytes + UPLOAD_SLACK_BYTES,
    // Above nginx's upstream keepalive_timeout (nginx.conf), so nginx closes idle upstream connections first.
    idleTimeoutMs: config.idleTimeoutMs,
    maxConnections: config.maxConnections ?? undefined,
    // Requests the engine refuses on its own (malformed, over a limit, unknown method, head timeout) get
    // an access-log line too, in the same shape, with the reason after it.
    onRefused: log === null ? undefined : (r: Refusal) =>
      log.line(
        `${new Date().toISOString()} ${peerAddress(r.remoteAddr)} ${r.method ?? "-"} ${
          r.target === null ? "-" : r.target.split("?", 1)[0]
        } ${r.status} - 0.0ms refused: ${r.reason}`,
      ),
  };
  const server: PierServer<Deno.Addr> = config.unix !== null
    ? serve({ ...common, path: config.unix, onListen: options.onListen }, site.fetch)
    : serve({
      ...common,
      hostname: config.host,
      port: options.port,
      ...options.tls,
      reusePort: options.reusePort,
      onListen: options.onListen,
    }, site.fetch);
  server.finished.then(() => log?.close());
  return server;
}
