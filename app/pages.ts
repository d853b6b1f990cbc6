// What every page of the site shares: rendering a template into an HTML answer (or plain text when the
// templates are gone), the 404 page, the 503 log line and its Retry-After, and the visitor's session as the
// session middleware left it. It owns no route and never touches the database.
import { type Context, type Session, statusText, type Templates } from "../mod.ts";
import type { PostLimiter } from "./rate_limit.ts";
import { StoreError } from "./store.ts";

/** A visitor who got a 503 may retry after this many seconds (RFC 9110 §10.2.3 Retry-After). */
export const RETRY_AFTER_SECONDS = 30;

/** The Retry-After header of every 503 the site gives. */
export const RETRY_AFTER: Readonly<Record<string, string>> = Object.freeze({
  "retry-after": String(RETRY_AFTER_SECONDS),
});

/**
 * An HTML response with its Content-Length, so the access log and HEAD know the size.
 *
 * @param html The page.
 * @param init Status and headers.
 * @returns The response, never stored by a shared cache unless `init` says otherwise.
 *
 * @example
 * ```ts
 * import { htmlResponse } from "./pages.ts";
 * console.log(htmlResponse("<p>hi</p>").headers.get("content-length")); // "9"
 * ```
 */
export function htmlResponse(html: string, init: ResponseInit = {}): Response {
  const body = new TextEncoder().encode(html);
  const headers = new Headers(init.headers);
  headers.set("content-type", "text/html; charset=utf-8");
  headers.set("content-length", String(body.length));
  // Pages carry per-visitor content (counts, form values): never stored by a shared cache.
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
  return new Response(body, { ...init, headers });
}

/**
 * The visitor's session, or undefined when the database failed to load it (the session middleware then
 * leaves the reason in `ctx.state.storeError`).
 *
 * @param ctx The request's context.
 * @returns The session, if any.
 *
 * @example
 * ```ts ignore
 * const session = sessionOf(ctx);
 * ```
 */
export function sessionOf(ctx: Context): Session | undefined {
  return ctx.state.session as Session | undefined;
}

/**
 * The session id to record with a message or upload: only a session that exists in the database.
 *
 * @param ctx The request's context.
 * @returns The id, or null for a new visitor or no session.
 *
 * @example
 * ```ts ignore
 * await store.addMessage({ ...values, sessionId: sessionIdOf(ctx) });
 * ```
 */
export function sessionIdOf(ctx: Context): string | null {
  const session = sessionOf(ctx);
  return session && !session.isNew ? session.id : null;
}

/**
 * Count an accepted post toward the client's limit. The post is stored already, so a database that fails
 * here is logged, not answered: the visitor must still hear that it was kept (they would send it again).
 *
 * @param limiter The post limit, or null for none.
 * @param clientAddr The client.
 * @returns When recorded (or given up on).
 *
 * @example
 * ```ts ignore
 * await recordPost(limiter, ctx.clientAddr);
 * ```
 */
export async function recordPost(limiter: PostLimiter | null, clientAddr: string): Promise<void> {
  try {
    await limiter?.record(clientAddr);
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    console.warn(`[store] post of ${clientAddr} not counted toward its limit: ${err.message} (${err.code})`);
  }
}

/** How the site's pages are answered: shared by the home page, the contact and upload flows and site.ts. */
export interface Pages {
  /** Render a template page (with the year); plain text with the status if the template is unavailable. */
  render(name: string, data: Record<string, unknown>, init?: ResponseInit): Promise<Response>;
  /** The 404 page for this path. */
  notFound(ctx: Context): Promise<Response>;
  /** Log a 503 caused by the database, with the operation and its code. */
  unavailable(err: StoreError, request: Request, ctx: Context): void;
  /** The 429 page of the post limit: wait this many seconds (sent as Retry-After, RFC 6585 §4). */
  tooManyPosts(waitSeconds: number): Promise<Response>;
}

/** A wait for people: "about 7 minutes", "about 40 seconds". */
function waitText(seconds: number): string {
  if (seconds < 90) return `about ${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return minutes < 90 ? `about ${minutes} minutes` : `about ${Math.ceil(minutes / 60)} hours`;
}

/**
 * The site's page renderer over a templates folder.
 *
 * @param templates The site's templates.
 * @returns The shared page helpers.
 *
 * @example
 * ```ts ignore
 * const pages = createPages(new Templates("templates"));
 * const res = await pages.render("thanks", { title: "Thank you" });
 * ```
 */
export function createPages(templates: Templates): Pages {
  const warnedTemplates = new Set<string>();
  const render = async (name: string, data: Record<string, unknown>, init: ResponseInit = {}) => {
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
  return {
    render,
    notFound: (ctx) => render("404", { title: "Page not found", path: ctx.url.pathname }, { status: 404 }),
    unavailable: (err, request, ctx) => {
      console.warn(`[store] 503 for ${request.method} ${ctx.url.pathname}: ${err.message} (${err.code})`);
    },
    tooManyPosts: (waitSeconds) =>
      render("error", {
        title: "Please wait a little",
        status: 429,
        message: "Many messages and files have come from your address in a short time, so this one was not " +
          `kept. Please try again in ${waitText(waitSeconds)}.`,
      }, { status: 429, headers: { "retry-after": String(waitSeconds) } }),
  };
}
