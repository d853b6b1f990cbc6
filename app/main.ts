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
      "[--data DIR] [--quiet] [--dev] [--idle-timeout 75s] [--http-redirect-port N] [--trusted-proxy ADDR]",
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
  trustedProxies: config.trustedProxies ?? undefined,
});

const server = serve({
  hostname: config.host,
  port: config.port,
  ...tls,
  // The engine's body cap must let the largest upload through; the site's own limits stop the rest.
  maxBodyBytes: config.maxUploadBytes + UPLOAD_SLACK_BYTES,
  // Above nginx's upstream keepalive_timeout (nginx.conf), so nginx closes idle upstream connections first.
  idleTimeoutMs: config.idleTimeoutMs,
  onListen(addr) {
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    console.log(`Listening on ${config.cert ? "https" : "http"}://${host}:${addr.port}/`);
  },
}, site.fetch);

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
  url.port = server.addr.port === 443 ? "" : String(server.addr.port);
  return new Response(null, { status: 308, headers: { location: url.href, "content-length": "0" } });
});

let stopping = false;
const stop = () => {
  if (stopping) {
    // A second signal: the operator does not want to wait for slow downloads.
    console.log("Second signal: exiting now");
    Deno.exit(1);
  }
  stopping = true;
  console.log("Shutting down");
  redirect?.shutdown();
  server.shutdown();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await Promise.all([server.finished, redirect?.finished]);
Deno.removeSignalListener("SIGINT", stop);
Deno.removeSignalListener("SIGTERM", stop);
// Every request has been answered, so no write is in flight: close the database (checkpointing the WAL).
await store.close();
