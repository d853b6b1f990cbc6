// The site entry: parse --host/--port and the other flags (app/cli.ts), open the store (a database Worker),
// serve the site (app/site.ts) over HTTP or HTTPS, and stop gracefully on SIGINT/SIGTERM: in-flight requests
// finish, then the database closes. It must run with the start task's scoped permissions and need no more.
import { serve } from "../mod.ts";
import { parseSiteArgs, type SiteConfig } from "./cli.ts";
import { createSite, UPLOAD_SLACK_BYTES } from "./site.ts";
import { Store } from "./store.ts";

let config: SiteConfig;
try {
  config = parseSiteArgs(Deno.args);
} catch (err) {
  console.error(`pier site: ${(err as Error).message}`);
  console.error(
    "usage: deno task start [--host H] [--port P] [--cert FILE --key FILE] [--max-upload 25MB] " +
      "[--data DIR] [--quiet] [--dev]",
  );
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

const uploadDir = `${config.dataDir}/uploads`;
try {
  await Deno.mkdir(uploadDir, { recursive: true });
} catch (err) {
  console.error(`pier site: cannot create ${uploadDir}: ${(err as Error).message}`);
  Deno.exit(2);
}

const store = new Store(`${config.dataDir}/site.db`);
// Open now to report a broken database at startup; the site still serves, with 503 pages where it needs it.
store.ready().catch((err) => console.warn(`[store] database not available at startup: ${err.message}`));

const site = createSite({
  store,
  uploadDir,
  maxUploadBytes: config.maxUploadBytes,
  accessLog: config.quiet ? null : console.log,
  dev: config.dev,
});

const server = serve({
  hostname: config.host,
  port: config.port,
  ...tls,
  // The engine's body cap must let the largest upload through; the site's own limits stop the rest.
  maxBodyBytes: config.maxUploadBytes + UPLOAD_SLACK_BYTES,
  onListen(addr) {
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    console.log(`Listening on ${config.cert ? "https" : "http"}://${host}:${addr.port}/`);
  },
}, site.fetch);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  console.log("Shutting down");
  server.shutdown();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await server.finished;
Deno.removeSignalListener("SIGINT", stop);
Deno.removeSignalListener("SIGTERM", stop);
// Every request has been answered, so no write is in flight: close the database (checkpointing the WAL).
await store.close();
