// The portfolio site as a router: the order of its middleware and its route table. The pages live in their
// own files (app/home.ts, app/contact.ts, app/upload.ts, sharing app/pages.ts); this file wires them with
// static files, sessions, the access log, /healthz, and the 404, 405 and error pages in the site's style. It
// must never show a visitor an internal error, and a database failure is a 503 the visitor can retry.
import {
  createContext,
  crossOriginProtection,
  decodePathOnce,
  DEFAULT_IDLE_TIMEOUT_MS,
  HttpError,
  type Middleware,
  Router,
  securityHeaders,
  securityHeadersFor,
  type ServeHandlerInfo,
  type SessionOptions,
  sessions,
  staticFiles,
  statusText,
  Templates,
} from "../mod.ts";
import { accessLine } from "./access_log.ts";
import { contactFlow } from "./contact.ts";
import { FirstVisits } from "./first_visit.ts";
import { homePage, readFirstVisit } from "./home.ts";
import { LIVE_PATH, liveReaders } from "./live.ts";
import { createPages, RETRY_AFTER } from "./pages.ts";
import { DEFAULT_RATE_LIMIT, PostLimiter, type RateLimit } from "./rate_limit.ts";
import { ReaderCount } from "./readers.ts";
import { type StoreBackend, StoreError } from "./store.ts";
import { uploadFlow } from "./upload.ts";

// What starting the site needs to size the engine's body limit (app/instance.ts).
export { INCOMING_DIR, UPLOAD_SLACK_BYTES } from "./upload.ts";

/** `/healthz` waits this long for the database Worker: under a proxy's usual check timeout. */
export const HEALTH_TIMEOUT_MS = 2_000;

/**
 * What the site needs of the database: a store (SQLite's `Store`, `PostgresStore`), or a relay to one in
 * another thread (app/relay.ts, used by `--workers`).
 */
export type SiteStore = Pick<
  StoreBackend,
  | "sessions"
  | "addMessage"
  | "addUpload"
  | "schemaVersion"
  | "countVisit"
  | "visitCount"
  | "postsSince"
  | "recordPost"
  | "siteSecret"
>;

/** Options for {@link createSite}. */
export interface SiteOptions {
  /** The database. */
  store: SiteStore;
  /**
   * Where uploaded files go (`data/uploads`, or a volume every instance shares). They are written into its
   * {@link INCOMING_DIR} subfolder first and renamed into it when complete.
   */
  uploadDir: string;
  /** The largest uploaded file, in bytes. */
  maxUploadBytes: number;
  /** The static folder, served at the site root. Default `static`. */
  staticDir?: string;
  /** The templates folder. Default `templates`. */
  templatesDir?: string;
  /** Access log sink, one line per request; `null` for quiet. Default `console.log`. */
  accessLog?: ((line: string) => void) | null;
  /** Development mode for templates (reload on change, missing values throw). Default false. */
  dev?: boolean;
  /** Idle time allowed between body chunks, in ms. Default: the framework's 30 s. */
  bodyTimeoutMs?: number;
  /** Session options (a test clock, timeouts); the store is always `store.sessions`. */
  sessionOptions?: Omit<SessionOptions, "store">;
  /** Peers whose `X-Forwarded-*` headers are believed. Default: the framework's, loopback only. */
  trustedProxies?: readonly string[];
  /**
   * Accepted posts (contact messages and uploads together) per client address and window; past it a post
   * gets 429 and nothing is stored. Null for no limit. Default {@link DEFAULT_RATE_LIMIT}, 20 per 10 minutes.
   */
  rateLimit?: RateLimit | null;
  /**
   * The live reader count the home page shows (app/readers.ts), shared with the other instances when its
   * bus says so. Default: this instance's alone.
   */
  readers?: ReaderCount;
}

/**
 * The framework's sessions, applied only where a page uses them, and tolerant of the database: when loading
 * the session fails, the page still runs without one (`ctx.state.storeError` says why), so a contact form
 * can show what was typed; when saving it after the page fails, the page's answer is kept and the failure
 * logged (a committed message must still be acknowledged), unless the page said its answer depends on the
 * save (`ctx.state.sessionMustSave`: a new visitor's home page, whose count goes on only with the cookie),
 * which then becomes a 503.
 */
function siteSessions(
  store: SiteStore,
  options: Omit<SessionOptions, "store">,
  adoptId: SessionOptions["adoptId"],
): Middleware {
  const inner = sessions({ ...options, store: store.sessions, adoptId });
  return async function siteSessions(request, next, ctx) {
    // Boxed: assigned inside the callback, which TypeScript's narrowing does not follow.
    const seen: { answered: Response | null; reached: boolean } = { answered: null, reached: false };
    try {
      return await inner(request, async () => {
        seen.reached = true;
        return seen.answered = await next();
      }, ctx);
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      if (seen.reached) {
        if (!seen.answered || ctx.state.sessionMustSave) {
          await seen.answered?.body?.cancel();
          throw err;
        }
        console.warn(`[store] session not saved for ${request.method} ${ctx.url.pathname}: ${err.message}`);
        return seen.answered;
      }
      console.warn(`[store] session not loaded for ${request.method} ${ctx.url.pathname}: ${err.message}`);
      ctx.state.session = undefined;
      ctx.state.storeError = err;
      return await next();
    }
  };
}

/** One access-log line per request: time, client, method, path, status, bytes, duration. */
function accessLog(write: (line: string) => void): Middleware {
  return async function accessLog(request, next, ctx) {
    const start = performance.now();
    const response = await next();
    write(accessLine(request, ctx, response, performance.now() - start));
    return response;
  };
}

/** The site as `serve()` takes it: a handler. */
export interface Site {
  /** Answer one request: a static file at once when the path names one, else the routes. */
  fetch(request: Request, info: ServeHandlerInfo): Promise<Response>;
}

/**
 * Build the site: a handler for `serve()`. A GET or HEAD of a path that no route has and that names a file
 * of the static folder is answered from the file at once (no router miss, no session, no template), with
 * the security headers and an access-log line; anything else goes to the routes, whose 404 page also
 * serves files (a miss falls through as it always did).
 *
 * @param options The store, upload folder and limit, folders, log and session options.
 * @returns The site's handler.
 *
 * @example
 * ```ts ignore
 * import { serve } from "../mod.ts";
 * import { Store } from "./store.ts";
 * import { createSite, UPLOAD_SLACK_BYTES } from "./site.ts";
 * const store = new Store("data/site.db");
 * const maxUploadBytes = 25 * 1024 * 1024;
 * const site = createSite({ store, uploadDir: "data/uploads", maxUploadBytes });
 * serve({ maxBodyBytes: maxUploadBytes + UPLOAD_SLACK_BYTES }, site.fetch);
 * ```
 */
export function createSite(options: SiteOptions): Site {
  const { store } = options;
  const clock = options.sessionOptions?.now ?? Date.now;
  const sessionIdleMs = options.sessionOptions?.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  // The first-visit cookie's signer, over the secret every instance reads from the database: made on first
  // use (a failing database then fails that page with 503, as any of its pages would).
  let signer: Promise<FirstVisits> | null = null;
  const firstVisits = () =>
    signer ??= store.siteSecret().then((secret) =>
      FirstVisits.withSecret(Uint8Array.from(atob(secret), (c) => c.charCodeAt(0)))
    ).catch((err) => {
      signer = null;
      throw err;
    });
  const rate = options.rateLimit === undefined ? DEFAULT_RATE_LIMIT : options.rateLimit;
  const limiter = rate === null ? null : new PostLimiter(store, rate, clock);
  const staticDir = options.staticDir ?? "static";
  const pages = createPages(
    new Templates(options.templatesDir ?? "templates", { dev: options.dev ?? false }),
  );
  const files = staticFiles(staticDir);
  const accessLogSink = options.accessLog === undefined ? console.log : options.accessLog;
  const home = homePage({ store, staticDir, pages, clock, sessionIdleMs, firstVisits });
  const contact = contactFlow({ store, pages, limiter, bodyTimeoutMs: options.bodyTimeoutMs });
  const upload = uploadFlow({
    store,
    pages,
    limiter,
    uploadDir: options.uploadDir,
    maxUploadBytes: options.maxUploadBytes,
    bodyTimeoutMs: options.bodyTimeoutMs,
  });

  const router = new Router({
    trustedProxies: options.trustedProxies,
    notFound: async (request, ctx) => {
      if (request.method === "GET" || request.method === "HEAD") {
        // `/%69ndex.html` names the home page too (RFC 3986 §6.2.2.2); served as a file it would show the
        // placeholder instead of the count.
        if (decodePathOnce(ctx.url.pathname) === "/index.html") return await home(request, ctx);
        const res = await files(request, ctx.info);
        if (res && res.status !== 404) return res;
        return await pages.notFound(ctx);
      }
      // Another method on a static file is a 405 (RFC 9110 §15.5.6), decided without reading the file.
      const probe = await files(new Request(request.url, { method: "HEAD" }), ctx.info);
      if (probe && probe.status < 400) {
        return await pages.render("error", {
          title: statusText(405),
          status: 405,
          message: "This address only serves a file: it can be read, not changed.",
        }, { status: 405, headers: { allow: "GET, HEAD" } });
      }
      if (probe && probe.status !== 404) return probe;
      return await pages.notFound(ctx);
    },
    methodNotAllowed: (_request, _ctx, allow) =>
      pages.render("error", {
        title: statusText(405),
        status: 405,
        message: `This page answers ${allow.filter((m) => m !== "OPTIONS").join(", ")} only.`,
      }, { status: 405, headers: { allow: allow.join(", ") } }),
    onError: async (error, request, ctx) => {
      if (error instanceof StoreError) {
        pages.unavailable(error, request, ctx);
        return await pages.render("error", {
          title: "Temporarily unavailable",
          status: 503,
          message: "The site's database is not answering right now. Please try again in a minute.",
        }, { status: 503, headers: RETRY_AFTER });
      }
      let status = 500;
      let message = "Something went wrong on our side. It has been logged; please try again later.";
      const headers = new Headers();
      if (error instanceof HttpError) {
        status = error.status;
        if (error.expose) message = error.message;
        error.headers.forEach((value, name) => headers.set(name, value));
        if (status >= 500) {
          console.error(`[site] ${status} for ${request.method} ${ctx.url.pathname}:`, error);
        }
      } else {
        console.error(`[site] unhandled failure for ${request.method} ${ctx.url.pathname}:`, error);
      }
      return await pages.render("error", { title: statusText(status), status, message }, { status, headers });
    },
  });

  // Middleware, outermost first: the log sees every answer, with the security headers on it.
  if (accessLogSink) router.use(accessLog(accessLogSink));
  router.use(securityHeaders());
  router.use(crossOriginProtection());
  // Sessions only on the pages that use them: static files and /healthz never touch the database. Exact
  // paths, since `/` as a prefix is every path; the router compares them decoded, so `/%69ndex.html` (the
  // home page too) gets its session like `/index.html`.
  const withSession = siteSessions(store, options.sessionOptions ?? {}, async (request) => {
    // A visitor back with a first-visit cookie becomes the session that cookie names (app/home.ts).
    const visit = await readFirstVisit(request, firstVisits, clock(), sessionIdleMs);
    return visit?.id;
  });
  router.use(["/", "/index.html", "/contact", "/upload"], withSession, { exact: true });

  // The route table.
  router.get("/", home);
  router.get("/index.html", home);
  router.get("/healthz", () => health(store));
  // The home page's live reader count: a WebSocket per open page (app/live.ts, static/live.js).
  const live = liveReaders(options.readers ?? new ReaderCount());
  router.get(LIVE_PATH, (request, ctx) => live.handle(request, ctx.clientAddr));
  router.get(
    "/profile/:name",
    (_request, ctx) => pages.render("profile", { title: `Hello, ${ctx.params.name}`, name: ctx.params.name }),
  );
  router.get("/contact", contact.form);
  router.post("/contact", contact.submit);
  router.get("/contact/thanks", contact.thanks);
  router.get("/upload", upload.form);
  router.post("/upload", upload.submit);
  const addSecurityHeaders = securityHeadersFor();
  /** Whether a route has this path (one whose params fail to decode counts: the router answers its 400). */
  const routed = (path: string) => {
    try {
      return router.match("GET", path) !== null;
    } catch {
      return true;
    }
  };
  const trustedProxies = { trustedProxies: options.trustedProxies };
  return {
    async fetch(request, info) {
      const method = request.method;
      if (method === "GET" || method === "HEAD") {
        const start = performance.now();
        const ctx = createContext(request, info, trustedProxies);
        const path = ctx.url.pathname;
        // Routes first (a file never shadows one), and `/%69ndex.html` is the home page, not its raw file.
        if (!routed(path) && decodePathOnce(path) !== "/index.html") {
          const found = await files(request, info);
          if (found !== null && found.status !== 404) {
            const response = addSecurityHeaders(found, ctx.secure);
            accessLogSink?.(accessLine(request, ctx, response, performance.now() - start));
            return response;
          }
          await found?.body?.cancel();
        }
      }
      return await router.fetch(request, info);
    },
  };
}

/**
 * For nginx and process managers: no session (not a session path), no database write. It asks the database
 * one read (the schema version), so a dead or stuck Worker shows as 503, not as healthy.
 */
async function health(store: SiteStore): Promise<Response> {
  const headers = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      store.schemaVersion(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new StoreError("No answer in time", "TIMEOUT")), HEALTH_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    console.warn(`[healthz] database not answering: ${(err as Error).message}`);
    return new Response("database unavailable\n", { status: 503, headers: { ...headers, ...RETRY_AFTER } });
  } finally {
    clearTimeout(timer);
  }
  return new Response("ok\n", { headers });
}
