// The home page: static/index.html with the visitor's own visit count in place of its placeholder. A first
// visit is carried by the visitor in a signed cookie (app/first_visit.ts), so a client that keeps no cookies
// (a crawler, a scanner, a flood) costs the database nothing; the second visit makes the visitor's row, and
// from then on the count is kept in the database, so instances never lose a visit. It owns the page's file
// cache and the counting rule; it never shows a count the next visit would not continue from.
import { type Context, deleteCookie, getCookies, type RouteHandler, setCookie } from "../mod.ts";
import { FIRST_VISIT_COOKIE, type FirstVisit, type FirstVisits } from "./first_visit.ts";
import { htmlResponse, type Pages, sessionOf } from "./pages.ts";
import { type StoreBackend, StoreError } from "./store.ts";

/** The placeholder in static/index.html that becomes the visitor's own visit count. */
export const VISIT_COUNT_PLACEHOLDER = "{{VISIT_COUNT}}";

/** The placeholder as found: `deno fmt` writes template tags with inner spaces (`{{ VISIT_COUNT }}`). */
const VISIT_COUNT_RE = /\{\{\s*VISIT_COUNT\s*\}\}/;

/**
 * How long the home page's file is trusted before it is stat'ed again: as serveStatic's `cacheRevalidateMs`,
 * an edit shows within a second, and a busy page costs one stat a second rather than one per visit.
 */
const HOME_REVALIDATE_MS = 1000;

/** static/index.html, read again only when its mtime changes. */
class HomeFile {
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

/** First-visit cookies already read, per request: the session middleware reads it first, the page again. */
const readVisits = new WeakMap<Request, Promise<FirstVisit | null>>();

/**
 * The first visit a request's cookie proves (this site signed it, within the session's idle time), or null.
 * Read once per request.
 *
 * @param request The request.
 * @param signer The site's first-visit signer (made on first use).
 * @param now The clock (ms).
 * @param maxAgeMs How long a first visit counts toward a second (the session's idle timeout).
 * @returns The first visit, or null.
 *
 * @example
 * ```ts ignore
 * const visit = await readFirstVisit(request, firstVisits, Date.now(), 30 * 60_000);
 * ```
 */
export function readFirstVisit(
  request: Request,
  signer: () => Promise<FirstVisits>,
  now: number,
  maxAgeMs: number,
): Promise<FirstVisit | null> {
  let visit = readVisits.get(request);
  if (visit === undefined) {
    const cookies = getCookies(request);
    const value = cookies[FIRST_VISIT_COOKIE] ?? cookies[`__Host-${FIRST_VISIT_COOKIE}`];
    visit = value === undefined ? Promise.resolve(null) : signer().then((s) => s.check(value, now, maxAgeMs));
    readVisits.set(request, visit);
  }
  return visit;
}

/** What the home page needs. */
export interface HomeOptions {
  /** The database's visit counter. */
  store: Pick<StoreBackend, "countVisit" | "visitCount">;
  /** The site's first-visit signer, made on first use (its secret is in the database). */
  firstVisits: () => Promise<FirstVisits>;
  /** The static folder holding index.html. */
  staticDir: string;
  /** The shared page helpers (the 404 page when index.html is missing). */
  pages: Pages;
  /** The clock (ms), the session middleware's. */
  clock: () => number;
  /** How long a session lives without a visit, in ms: a counted visit extends it. */
  sessionIdleMs: number;
}

/**
 * The home page's handler, for `GET /` and `GET /index.html` (HEAD shows what GET would, without counting).
 * It needs the session middleware before it; without a session (the database failed) it throws the
 * store's error, which the site answers with 503.
 *
 * @param options The store, folder, pages, clock and session lifetime.
 * @returns The route handler.
 *
 * @example
 * ```ts ignore
 * router.get("/", homePage({ store, staticDir: "static", pages, clock: Date.now, sessionIdleMs }));
 * ```
 */
export function homePage(options: HomeOptions): RouteHandler {
  const { store, pages, clock, sessionIdleMs, firstVisits } = options;
  const file = new HomeFile(`${options.staticDir}/index.html`);
  return async function home(request: Request, ctx: Context) {
    const parts = await file.parts();
    if (!parts) return await pages.notFound(ctx);
    const session = sessionOf(ctx);
    if (!session) throw ctx.state.storeError ?? new StoreError("No session", "NO_SESSION");
    // The cookie's name follows the session's: `__Host-` on secure requests (no subdomain can set it).
    const cookieName = ctx.secure ? `__Host-${FIRST_VISIT_COOKIE}` : FIRST_VISIT_COOKIE;
    let count: number;
    let cookie: ((headers: Headers) => void) | null = null;
    if (request.method !== "GET") {
      // A HEAD is not a visit: it shows what a GET would, without counting.
      count = session.isNew ? 0 : await store.visitCount(session.id);
    } else if (!session.isNew) {
      // Counted in the database, in one statement: two requests of one visitor on two instances at once
      // each add one (reading the count from the session and writing it back would lose one of them).
      const now = clock();
      count = await store.countVisit(session.id, now, now + sessionIdleMs);
    } else {
      const now = clock();
      const visit = await readFirstVisit(request, firstVisits, now, sessionIdleMs);
      if (visit !== null && visit.id === session.id) {
        // The second visit: the visitor's row is made now, counting the first, under the id the cookie
        // carried (so a replayed cookie finds the same row). A session is saved, and its cookie sent, only
        // once it holds a value: without it the next visit would not continue, so it must save (or 503).
        count = await store.countVisit(session.id, visit.at, now + sessionIdleMs, 1);
        session.set("firstVisitAt", visit.at);
        ctx.state.sessionMustSave = true;
        cookie = (headers) => deleteCookie(headers, cookieName, { path: "/", secure: ctx.secure });
      } else {
        // A first visit: nothing stored. The visitor carries it in a signed cookie; a client that keeps no
        // cookies comes back as a first visit, and never makes a row.
        count = 1;
        const value = await (await firstVisits()).issue(now);
        cookie = (headers) =>
          setCookie(headers, cookieName, value, {
            path: "/",
            httpOnly: true,
            sameSite: "Lax",
            secure: ctx.secure,
          });
      }
    }
    const response = htmlResponse(parts.join(String(Math.max(count, 1))));
    cookie?.(response.headers);
    return response;
  };
}
