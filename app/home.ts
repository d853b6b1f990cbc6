// The home page: static/index.html with the visitor's own visit count in place of its placeholder, the
// count kept in the database so that instances never lose a visit. It owns the page's file cache and the
// counting rule; it never shows a count the next visit would not continue from.
import type { Context, RouteHandler } from "../mod.ts";
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

/** What the home page needs. */
export interface HomeOptions {
  /** The database's visit counter. */
  store: Pick<StoreBackend, "countVisit" | "visitCount">;
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
  const { store, pages, clock, sessionIdleMs } = options;
  const file = new HomeFile(`${options.staticDir}/index.html`);
  return async function home(request: Request, ctx: Context) {
    const parts = await file.parts();
    if (!parts) return await pages.notFound(ctx);
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
}
