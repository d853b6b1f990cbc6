// The site entry: parse --host/--port and the other flags (app/cli.ts), open the store (a database Worker),
// serve the site (app/site.ts) over HTTP or HTTPS, and stop gracefully on SIGINT/SIGTERM: in-flight requests
// finish, then the database closes. It must run with the start task's scoped permissions and need no more.
import { fileLimit, removeStaleSocket, serve } from "../mod.ts";
import {
  helpRequested,
  parseSiteArgs,
  SITE_FLAGS,
  type SiteConfig,
  siteHelp,
  uploadDirOf,
  usageLine,
} from "./cli.ts";
import { databaseSystem, databaseUrl, openStore } from "./database.ts";
import { startInstance } from "./instance.ts";
import { PostgresStore } from "./postgres_store.ts";
import { bridgeBuses, broadcastBus, postgresBus, ReaderCount, READERS_BROADCAST } from "./readers.ts";
import type { StoreBackend } from "./store.ts";
import { canStartWorkers, startWorkers, type WorkerPool } from "./workers.ts";

if (helpRequested(Deno.args)) {
  console.log(siteHelp());
  Deno.exit(0);
}
let config: SiteConfig;
try {
  config = parseSiteArgs(Deno.args);
} catch (err) {
  console.error(`pier site: ${(err as Error).message}`);
  console.error(`${usageLine("deno task start", SITE_FLAGS)}\n(deno task start --help says what each does)`);
  Deno.exit(2);
}

/** Read a PEM file, saying which flag named it when it cannot be read (a scope outside certs/, say). */
async function readPem(flag: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    console.error(`pier site: cannot read ${flag} ${path}: ${(err as Error).message}`);
    Deno.exit(2);
  }
}

const tls = config.cert !== null && config.key !== null
  ? { cert: await readPem("--cert", config.cert), key: await readPem("--key", config.key) }
  : {};

const uploadDir = uploadDirOf(config);
// The start task may read and write data/ only. A shared upload volume elsewhere needs both permissions
// widened to it; say exactly which, rather than fail on the first upload.
if (config.uploadDir !== null) {
  const denied = (["read", "write"] as const).filter((name) =>
    Deno.permissions.querySync({ name, path: uploadDir }).state !== "granted"
  );
  if (denied.length > 0) {
    console.error(
      `pier site: --uploads ${uploadDir} needs ${
        denied.map((d) => `--allow-${d}`).join(" and ")
      } on it, which ` +
        `the start task does not give: run deno run --allow-net --allow-env=DATABASE_URL,PGAPPNAME ` +
        `--allow-read=static,templates,data,certs,${uploadDir} --allow-write=data,${uploadDir} app/main.ts ...`,
    );
    Deno.exit(2);
  }
}
// --unix PATH: the start task may read and write /run/pier/pier.sock only (and create nothing else there).
// Another path needs both permissions widened to it: say exactly how, as for --uploads.
if (config.unix !== null) {
  const denied = (["read", "write"] as const).filter((name) =>
    Deno.permissions.querySync({ name, path: config.unix! }).state !== "granted"
  );
  if (denied.length > 0) {
    console.error(
      `pier site: --unix ${config.unix} needs ${denied.map((d) => `--allow-${d}`).join(" and ")} on it, ` +
        `which the start task gives /run/pier/pier.sock only: run deno run ... ` +
        `--allow-read=static,templates,data,certs,${config.unix} ` +
        `--allow-write=data,${config.unix} app/main.ts ... (see docs/deploy.md)`,
    );
    Deno.exit(2);
  }
  // A socket file left by a killed server is removed; one a server still answers on is not ours to take.
  try {
    if (await removeStaleSocket(config.unix)) console.log(`Removed the stale socket ${config.unix}`);
  } catch (err) {
    console.error(`pier site: cannot listen on ${config.unix}: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
try {
  await Deno.mkdir(uploadDir, { recursive: true });
} catch (err) {
  console.error(`pier site: cannot create ${uploadDir}: ${(err as Error).message}`);
  Deno.exit(2);
}

// PostgreSQL when --database or DATABASE_URL names one (several instances can share it), else SQLite in data/.
let store: StoreBackend;
try {
  const opened = openStore({
    database: databaseUrl(config.database),
    dataDir: config.dataDir,
    poolSize: config.databasePool,
  });
  store = opened.store;
  if (opened.description.startsWith("PostgreSQL")) console.log(`Database: ${opened.description}`);
} catch (err) {
  // A malformed DATABASE_URL, or an environment read the driver needs and the permissions refuse.
  console.error(`pier site: ${(err as Error).message}`);
  Deno.exit(2);
}
// Open now to report a broken database at startup; the site still serves, with 503 pages where it needs it.
store.ready().catch((err) => console.warn(`[store] database not available at startup: ${err.message}`));

// One instance in this thread, or `--workers N` server Workers sharing the port (app/workers.ts). Workers must
// load the code, which needs read access to app/, server/ and mod.ts, and Deno's --unstable-net (SO_REUSEPORT)
// and --unstable-worker-options (each Worker's own permissions). The start task grants none of these (its
// wall keeps the code unreadable), so the default is 1 and `--workers N` is checked before anything starts.
const MULTI_FLAGS = "--unstable-net --unstable-worker-options --allow-read=...,app,server,mod.ts";
// The single executable carries no Worker script (deno task compile): one instance there.
if (config.workers > 1 && (Deno.build.standalone || !canStartWorkers())) {
  console.error(
    `pier site: --workers ${config.workers} needs read access to the code to start Workers: run with ` +
      `${MULTI_FLAGS} (each Worker drops the code access before serving; see docs/deploy.md)`,
  );
  Deno.exit(2);
}
const scheme = config.cert ? "https" : "http";
const announce = (addr: Deno.NetAddr | Deno.UnixAddr | { hostname: string; port: number }) => {
  if (!("port" in addr)) {
    // nginx (running as another user) must be able to connect: the socket is open to all, and who reaches
    // it is decided by its folder's permissions (docs/deploy.md: /run/pier, mode 0750, group www-data).
    Deno.chmodSync(addr.path, 0o666);
    console.log(`Listening on unix:${addr.path}`);
    return;
  }
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  console.log(`Listening on ${scheme}://${host}:${addr.port}/`);
};

// The live reader count on the home page: shared with the other instances through PostgreSQL's
// LISTEN/NOTIFY when the site has one; SQLite means one instance, whose count is its own (app/readers.ts).
// With --workers, each Worker counts its own readers and they share them on a BroadcastChannel, which this
// thread bridges to PostgreSQL.
let readers: ReaderCount | null = null;
let stopBridge: (() => Promise<void>) | null = null;
let server: { port: number; shutdown(): Promise<void> } | null = null;
if (config.workers > 1) {
  if (store instanceof PostgresStore) {
    stopBridge = await bridgeBuses(broadcastBus(READERS_BROADCAST), postgresBus(store));
  }
  try {
    const pool: WorkerPool = await startWorkers({ count: config.workers, config, tls, store });
    console.log(`${config.workers} server Workers share the port (SO_REUSEPORT), one database Worker`);
    announce({ hostname: config.host, port: pool.port });
    server = pool;
  } catch (err) {
    console.error(`pier site: ${(err as Error).message} (needs ${MULTI_FLAGS})`);
    Deno.exit(1);
  }
}
if (server === null) {
  readers = new ReaderCount({ bus: store instanceof PostgresStore ? postgresBus(store) : null });
  const single = startInstance(config, {
    readers,
    store,
    database: databaseSystem(store),
    tls,
    port: config.port,
    reusePort: false,
    onListen: announce,
  });
  server = { port: "port" in single.addr ? single.addr.port : 0, shutdown: () => single.shutdown() };
  const limit = fileLimit();
  console.log(
    `Connections: at most ${single.maxConnections}` +
      (config.maxConnections !== null
        ? " (--max-connections)"
        : limit !== null
        ? ` (90 % of the file limit, ${limit})`
        : " (90 % of 65536, assumed: the file limit cannot be read with scoped permissions; see --max-connections)"),
  );
}
const running = server;

// The optional plain-HTTP port: every request gets a 308 to the same path on the HTTPS port (308 keeps the
// method and body, RFC 9110 §15.4.9). It reads no files and touches no session.
const redirect = config.httpRedirectPort === null ? null : serve({
  hostname: config.host,
  port: config.httpRedirectPort,
  onListen(addr) {
    console.log(`Redirecting http://${addr.hostname}:${addr.port}/ to HTTPS`);
  },
}, (request) => {
  const url = new URL(request.url);
  url.protocol = "https:";
  url.port = running.port === 443 ? "" : String(running.port);
  return new Response(null, { status: 308, headers: { location: url.href, "content-length": "0" } });
});

let stopping = false;
let finished: Promise<void> | null = null;
let signalled!: () => void;
const stopRequested = new Promise<void>((resolve) => signalled = resolve);
const stop = () => {
  if (stopping) {
    // A second signal: the operator does not want to wait for slow downloads.
    console.log("Second signal: exiting now");
    Deno.exit(1);
  }
  stopping = true;
  console.log("Shutting down");
  redirect?.shutdown();
  finished = running.shutdown();
  signalled();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
// Wait for the signal, then for every in-flight request (the pool's or the single server's).
await stopRequested;
await Promise.all([finished, redirect?.finished]);
Deno.removeSignalListener("SIGINT", stop);
Deno.removeSignalListener("SIGTERM", stop);
// Readers gone: say goodbye on the bus (the other instances drop this one's count at once), then the bridge.
await readers?.close();
await stopBridge?.();
// Every request has been answered, so no write is in flight: close the database (checkpointing SQLite's WAL,
// ending PostgreSQL's connections).
await store.close();
