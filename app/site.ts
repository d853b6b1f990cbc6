// The portfolio site as a router: the home page with the visitor's visit count, profile greetings, the
// contact form and uploads, static files, and 404/error pages in the site's style. It owns the pages'
// rules (validation, limits, status codes); it must never answer before a write is committed, never show a
// visitor an internal error, and never lose what a visitor typed because the database failed.
import { basename } from "node:path";
import {
  type Context,
  crossOriginProtection,
  decodePathOnce,
  DEFAULT_IDLE_TIMEOUT_MS,
  HttpError,
  type Middleware,
  parseUrlEncoded,
  readMultipart,
  Router,
  securityHeaders,
  type Session,
  type SessionOptions,
  sessions,
  staticFiles,
  statusText,
  Templates,
  type UploadedFile,
} from "../mod.ts";
import { type StoreBackend, StoreError } from "./store.ts";

/** The placeholder in static/index.html that becomes the visitor's own visit count. */
export const VISIT_COUNT_PLACEHOLDER = "{{VISIT_COUNT}}";

/** The placeholder as found: `deno fmt` writes template tags with inner spaces (`{{ VISIT_COUNT }}`). */
const VISIT_COUNT_RE = /\{\{\s*VISIT_COUNT\s*\}\}/;

/** Contact form limits, in characters: enough for a real name, address and letter; not for a dump. */
export const CONTACT_LIMITS = { name: 100, email: 254, message: 5000 } as const;

/**
 * The largest contact form body, in bytes: the three fields at their limits, percent-encoded (up to 9 bytes
 * per character for 3-byte UTF-8), rounded up. Far below the urlencoded default of 1 MiB.
 */
export const CONTACT_MAX_BODY_BYTES = 64 * 1024;

/** The longest upload description, in characters. */
export const DESCRIPTION_MAX_CHARS = 500;

/**
 * Multipart bytes allowed on top of the file itself: part headers, the boundary lines and the description
 * field. 64 KiB covers them many times over; the engine's body limit is set to upload limit + this.
 */
export const UPLOAD_SLACK_BYTES = 64 * 1024;

/** The upload form has one file input; a body with more file parts is not from it. */
const UPLOAD_MAX_FILES = 1;
/** The upload form has one text field; a few spare for browsers that add their own (`_charset_`). */
const UPLOAD_MAX_FIELDS = 8;
/** A description at its limit is at most 2 KB of UTF-8; 8 KiB leaves room and still bounds memory. */
const UPLOAD_MAX_FIELD_BYTES = 8 * 1024;

/**
 * Uploads are written into this folder inside the upload folder, then renamed into the upload folder once
 * complete: on a shared volume, another instance, a backup or a virus scanner never sees a partial file
 * under a final name, and a rename within one folder tree is atomic on one filesystem.
 */
export const INCOMING_DIR = ".incoming";

/** `/healthz` waits this long for the database Worker: under a proxy's usual check timeout. */
export const HEALTH_TIMEOUT_MS = 2_000;

/** A visitor who got a 503 may retry after this many seconds (RFC 9110 §10.2.3 Retry-After). */
const RETRY_AFTER_SECONDS = 30;

/**
 * An email shape, not a proof: one `@`, no spaces, a dotted domain. RFC 5322 allows far more, but a contact
 * form only needs to catch typos; the owner answers by hand.
 */
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@.]+(?:\.[^\s@.]+)+$/;

/** Paths whose handlers use the visitor's session. Static files never touch the database. */
const SESSION_PATHS: ReadonlySet<string> = new Set(["/", "/index.html", "/contact", "/upload"]);

/**
 * What the site needs of the database: a store (SQLite's `Store`, `PostgresStore`), or a relay to one in
 * another thread (app/relay.ts, used by `--workers`).
 */
export type SiteStore = Pick<
  StoreBackend,
  "sessions" | "addMessage" | "addUpload" | "schemaVersion" | "countVisit" | "visitCount"
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
}

/** What a visitor typed into the contact form, trimmed. */
export interface ContactInput {
  /** The `name` field. */
  name: string;
  /** The `email` field. */
  email: string;
  /** The `message` field. */
  message: string;
}

/**
 * Check a contact form: every field required, lengths within {@link CONTACT_LIMITS}, an email shape.
 *
 * @param input The trimmed fields.
 * @returns One message per invalid field; empty when the form is valid.
 *
 * @example
 * ```ts
 * import { validateContact } from "./site.ts";
 * console.log(validateContact({ name: "Ada", email: "ada@", message: "Hi" })); // { email: "..." }
 * ```
 */
export function validateContact(input: ContactInput): Partial<Record<keyof ContactInput, string>> {
  const errors: Partial<Record<keyof ContactInput, string>> = {};
  if (input.name === "") errors.name = "Please tell me your name.";
  else if (input.name.length > CONTACT_LIMITS.name) {
    errors.name = `Please keep your name under ${CONTACT_LIMITS.name} characters.`;
  }
  if (input.email === "") errors.email = "Please give an email address so I can answer.";
  else if (input.email.length > CONTACT_LIMITS.email || !EMAIL_RE.test(input.email)) {
    errors.email = "That does not look like an email address (name@example.com).";
  }
  if (input.message === "") errors.message = "Please write a message.";
  else if (input.message.length > CONTACT_LIMITS.message) {
    errors.message = `Please keep your message under ${CONTACT_LIMITS.message} characters.`;
  }
  return errors;
}

/**
 * A byte count for people: `25 MB`, `1.5 KB`, `312 bytes` (binary units, as `--max-upload` reads them).
 *
 * @param bytes The size.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./site.ts";
 * console.log(formatBytes(25 * 1024 * 1024)); // "25 MB"
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number(value.toFixed(value < 10 ? 1 : 0))} ${units[unit]}`;
}

/**
 * How long the home page's file is trusted before it is stat'ed again: as serveStatic's `cacheRevalidateMs`,
 * an edit shows within a second, and a busy page costs one stat a second rather than one per visit.
 */
const HOME_REVALIDATE_MS = 1000;

/** static/index.html, read again only when its mtime changes. */
class HomePage {
  #path: string;
  #cached: { mtime: number; parts: string[] } | null = null;
  #checkedAt = -Infinity;

  constructor(path: string) {
    this.#path = path;
  }

  /** The page split around the placeholder; null when the file is missing. */
  async parts(): Promise<string[] | null> {
    const now = performance.now();
    if (this.#cached !== null && now - this.#checkedAt < HOME_REVALIDATE_MS) return this.#cached.parts;
    let mtime: number;
    try {
      mtime = (await Deno.stat(this.#path)).mtime?.getTime() ?? 0;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
    if (this.#cached?.mtime !== mtime) {
      this.#cached = { mtime, parts: (await Deno.readTextFile(this.#path)).split(VISIT_COUNT_RE) };
    }
    this.#checkedAt = now;
    return this.#cached.parts;
  }
}

/** An HTML response with its Content-Length, so the access log and HEAD know the size. */
function htmlResponse(html: string, init: ResponseInit = {}): Response {
  const body = new TextEncoder().encode(html);
  const headers = new Headers(init.headers);
  headers.set("content-type", "text/html; charset=utf-8");
  headers.set("content-length", String(body.length));
  // Pages carry per-visitor content (counts, form values): never stored by a shared cache.
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
  return new Response(body, { ...init, headers });
}

/** The visitor's session, or undefined when the database failed to load it (see `siteSessions`). */
function sessionOf(ctx: Context): Session | undefined {
  return ctx.state.session as Session | undefined;
}

/** The session id to record with a message or upload: only a session that exists in the database. */
function sessionIdOf(ctx: Context): string | null {
  const session = sessionOf(ctx);
  return session && !session.isNew ? session.id : null;
}

/**
 * The framework's sessions, applied only where a page uses them, and tolerant of the database: when loading
 * the session fails, the page still runs without one (`ctx.state.storeError` says why), so a contact form
 * can show what was typed; when saving it after the page fails, the page's answer is kept and the failure
 * logged (a committed message must still be acknowledged), unless the page said its answer depends on the
 * save (`ctx.state.sessionMustSave`: a new visitor's home page, whose count goes on only with the cookie),
 * which then becomes a 503.
 */
function siteSessions(store: SiteStore, options: Omit<SessionOptions, "store">): Middleware {
  const inner = sessions({ ...options, store: store.sessions });
  return async function siteSessions(request, next, ctx) {
    // Decoded, so `/%69ndex.html` (the home page too) gets its session like `/index.html`.
    if (!SESSION_PATHS.has(decodePathOnce(ctx.url.pathname) ?? "")) return await next();
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
    const ms = (performance.now() - start).toFixed(1);
    const bytes = response.headers.get("content-length") ?? (response.body === null ? "0" : "-");
    // The path only: a query string may carry what a visitor typed, which has no place in a log.
    write(
      `${new Date().toISOString()} ${ctx.clientAddr} ${request.method} ${ctx.url.pathname} ` +
        `${response.status} ${bytes} ${ms}ms`,
    );
    return response;
  };
}

/**
 * Build the site: a {@link Router} whose `fetch` is the handler for `serve()`.
 *
 * @param options The store, upload folder and limit, folders, log and session options.
 * @returns The router.
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
export function createSite(options: SiteOptions): Router {
  const { store, uploadDir, maxUploadBytes } = options;
  const staticDir = options.staticDir ?? "static";
  const templates = new Templates(options.templatesDir ?? "templates", { dev: options.dev ?? false });
  const files = staticFiles(staticDir);
  const homePage = new HomePage(`${staticDir}/index.html`);
  const accessLogSink = options.accessLog === undefined ? console.log : options.accessLog;
  const incomingDir = `${uploadDir}/${INCOMING_DIR}`;
  const clock = options.sessionOptions?.now ?? Date.now;
  const sessionIdleMs = options.sessionOptions?.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const maxUploadText = formatBytes(maxUploadBytes);
  const warnedTemplates = new Set<string>();

  /** Render a template page; if the template itself is unavailable, a plain-text answer with the status. */
  const page = async (name: string, data: Record<string, unknown>, init: ResponseInit = {}) => {
    let html: string;
    try {
      html = await templates.render(name, { year: new Date().getUTCFullYear(), ...data });
    } catch (err) {
      // A missing templates/ folder (a bare static deployment) must still answer, not fail every request.
      if (!warnedTemplates.has(name)) {
        warnedTemplates.add(name);
        console.warn(`[site] template ${name} unavailable (${(err as Error).name}): answering in plain text`);
      }
      const status = init.status ?? 200;
      const headers = new Headers(init.headers);
      headers.set("content-type", "text/plain; charset=utf-8");
      return new Response(status === 200 ? "OK" : statusText(status), { ...init, headers });
    }
    return htmlResponse(html, init);
  };

  const notFoundPage = (ctx: Context) =>
    page("404", { title: "Page not found", path: ctx.url.pathname }, { status: 404 });

  const unavailable = (err: StoreError, request: Request, ctx: Context) => {
    console.warn(`[store] 503 for ${request.method} ${ctx.url.pathname}: ${err.message} (${err.code})`);
  };
  const retryAfter = { "retry-after": String(RETRY_AFTER_SECONDS) };

  const router = new Router({
    trustedProxies: options.trustedProxies,
    notFound: async (request, ctx) => {
      if (request.method === "GET" || request.method === "HEAD") {
        // `/%69ndex.html` names the home page too (RFC 3986 §6.2.2.2); served as a file it would show the
        // placeholder instead of the count.
        if (decodePathOnce(ctx.url.pathname) === "/index.html") return await home(request, ctx);
        const res = await files(request, ctx.info);
        if (res && res.status !== 404) return res;
        return await notFoundPage(ctx);
      }
      // Another method on a static file is a 405 (RFC 9110 §15.5.6), decided without reading the file.
      const probe = await files(new Request(request.url, { method: "HEAD" }), ctx.info);
      if (probe && probe.status < 400) {
        return await page("error", {
          title: statusText(405),
          status: 405,
          message: "This address only serves a file: it can be read, not changed.",
        }, { status: 405, headers: { allow: "GET, HEAD" } });
      }
      if (probe && probe.status !== 404) return probe;
      return await notFoundPage(ctx);
    },
    methodNotAllowed: (_request, _ctx, allow) =>
      page("error", {
        title: statusText(405),
        status: 405,
        message: `This page answers ${allow.filter((m) => m !== "OPTIONS").join(", ")} only.`,
      }, { status: 405, headers: { allow: allow.join(", ") } }),
    onError: async (error, request, ctx) => {
      if (error instanceof StoreError) {
        unavailable(error, request, ctx);
        return await page("error", {
          title: "Temporarily unavailable",
          status: 503,
          message: "The site's database is not answering right now. Please try again in a minute.",
        }, { status: 503, headers: retryAfter });
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
      return await page("error", { title: statusText(status), status, message }, { status, headers });
    },
  });

  if (accessLogSink) router.use(accessLog(accessLogSink));
  router.use(securityHeaders());
  router.use(crossOriginProtection());
  router.use(siteSessions(store, options.sessionOptions ?? {}));

  const home = async (request: Request, ctx: Context) => {
    const parts = await homePage.parts();
    if (!parts) return await notFoundPage(ctx);
    const session = sessionOf(ctx);
    if (!session) throw ctx.state.storeError ?? new StoreError("No session", "NO_SESSION");
    let count: number;
    if (request.method === "GET") {
      // Counted in the database, in one statement: two requests of one visitor on two instances at once
      // each add one (reading the count from the session and writing it back would lose one of them).
      // A new visitor's id is already the one the cookie will carry, so their first visit is 1.
      const now = clock();
      count = await store.countVisit(session.id, now, now + sessionIdleMs);
      if (session.isNew) {
        // A session is saved, and its cookie sent, only once it holds a value: without the cookie the
        // next visit would start again at 1, so the page must not claim this one counted (503 instead).
        session.set("firstVisitAt", now);
        ctx.state.sessionMustSave = true;
      }
    } else {
      // A HEAD is not a visit: it shows what a GET would, without counting.
      count = session.isNew ? 0 : await store.visitCount(session.id);
    }
    return htmlResponse(parts.join(String(Math.max(count, 1))));
  };
  router.get("/", home);
  router.get("/index.html", home);

  // For nginx and process managers: no session (not in SESSION_PATHS), no database write. It asks the
  // database Worker one read (the schema version), so a dead or stuck Worker shows as 503, not as healthy.
  router.get("/healthz", async () => {
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
      return new Response("database unavailable\n", { status: 503, headers: { ...headers, ...retryAfter } });
    } finally {
      clearTimeout(timer);
    }
    return new Response("ok\n", { headers });
  });

  router.get(
    "/profile/:name",
    (_request, ctx) => page("profile", { title: `Hello, ${ctx.params.name}`, name: ctx.params.name }),
  );

  const contactForm = (
    values: ContactInput,
    extra: Record<string, unknown> = {},
    init: ResponseInit = {},
  ) =>
    page("contact", {
      title: "Contact",
      navContact: true,
      values,
      limits: CONTACT_LIMITS,
      ...extra,
    }, init);

  router.get("/contact", () => contactForm({ name: "", email: "", message: "" }));
  router.post("/contact", async (request, ctx) => {
    const form = await parseUrlEncoded(request, {
      maxBytes: CONTACT_MAX_BODY_BYTES,
      bodyTimeoutMs: options.bodyTimeoutMs,
    });
    const values: ContactInput = {
      name: (form.get("name") ?? "").trim(),
      email: (form.get("email") ?? "").trim(),
      message: (form.get("message") ?? "").trim(),
    };
    const errors = validateContact(values);
    if (Object.keys(errors).length > 0) {
      return await contactForm(values, { errors, invalid: true }, { status: 422 });
    }
    try {
      if (ctx.state.storeError) throw ctx.state.storeError;
      await store.addMessage({ ...values, clientAddr: ctx.clientAddr, sessionId: sessionIdOf(ctx) });
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      unavailable(err, request, ctx);
      // What the visitor typed stays on the page: they can send it again in a minute.
      return await contactForm(values, { storeDown: true }, { status: 503, headers: retryAfter });
    }
    // Committed: now, and only now, say so (RFC 9110 §15.4.4: 303 turns the POST into a GET).
    return new Response(null, { status: 303, headers: { location: "/contact/thanks" } });
  });
  router.get("/contact/thanks", () => page("thanks", { title: "Thank you", navContact: true }));

  const uploadForm = (extra: Record<string, unknown> = {}, init: ResponseInit = {}) =>
    page("upload", {
      title: "Upload",
      navUpload: true,
      maxUpload: maxUploadText,
      descriptionMax: DESCRIPTION_MAX_CHARS,
      description: "",
      ...extra,
    }, init);

  router.get("/upload", () => uploadForm());
  router.post("/upload", async (request, ctx) => {
    let files: UploadedFile[];
    let fields: URLSearchParams;
    try {
      // Made on each upload (one cheap call): a shared volume's folder may have been cleaned meanwhile.
      await Deno.mkdir(incomingDir, { recursive: true });
      ({ files, fields } = await readMultipart(request, {
        uploadDir: incomingDir,
        maxFileBytes: maxUploadBytes,
        maxTotalBytes: maxUploadBytes + UPLOAD_SLACK_BYTES,
        maxFiles: UPLOAD_MAX_FILES,
        maxFields: UPLOAD_MAX_FIELDS,
        maxFieldBytes: UPLOAD_MAX_FIELD_BYTES,
        bodyTimeoutMs: options.bodyTimeoutMs,
      }));
    } catch (err) {
      if (err instanceof HttpError && err.status === 413) {
        return await uploadForm({ error: `That file is larger than the ${maxUploadText} limit.` }, {
          status: 413,
        });
      }
      throw err;
    }
    const file = files.find((f) => f.field === "file");
    const discard = (keep?: UploadedFile) =>
      Promise.all(files.filter((f) => f !== keep).map((f) => Deno.remove(f.path).catch(() => {})));
    await discard(file);
    const description = (fields.get("description") ?? "").trim();
    let error: string | null = null;
    if (!file) error = "Please choose a file to upload.";
    else if (description.length > DESCRIPTION_MAX_CHARS) {
      error = `Please keep the description under ${DESCRIPTION_MAX_CHARS} characters.`;
    }
    if (error !== null || !file) {
      if (file) await Deno.remove(file.path).catch(() => {});
      return await uploadForm({ error, description }, { status: 422 });
    }
    // Complete: now it gets its final name (the same random UUID, so instances never collide).
    const storedPath = `${uploadDir}/${basename(file.path)}`;
    await Deno.rename(file.path, storedPath);
    const record = {
      storedName: basename(file.path),
      originalName: file.filename,
      size: file.size,
      contentType: file.contentType,
      sha256: file.sha256 ?? "",
      description,
      clientAddr: ctx.clientAddr,
      sessionId: sessionIdOf(ctx),
    };
    let id: number;
    try {
      if (ctx.state.storeError) throw ctx.state.storeError;
      id = await store.addUpload(record);
    } catch (err) {
      // Not recorded means not kept: a file the database does not know about would never be found again.
      await Deno.remove(storedPath).catch(() => {});
      if (!(err instanceof StoreError)) throw err;
      unavailable(err, request, ctx);
      return await uploadForm({
        description,
        error: "The file arrived, but the site's database is not answering, so it was not kept. " +
          "Please try again in a minute.",
      }, { status: 503, headers: retryAfter });
    }
    return await page("upload-done", {
      title: "Upload received",
      navUpload: true,
      upload: {
        ...record,
        id,
        originalName: record.originalName || "(no name)",
        sizeText: formatBytes(record.size),
        // The exact count only where the rounded one hides it.
        sizeExact: record.size >= 1024 ? record.size : null,
      },
    });
  });

  return router;
}
