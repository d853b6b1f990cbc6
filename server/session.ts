// Cookie-based sessions: an unguessable id in a cookie, the data in a store (memory unless one is given).
// It owns the session cookie and lifetime, and does no I/O of its own; it must never trust an id it did not
// issue, let a bad or expired id become an error, or keep an id across a privilege change (callers rotate).
import type { Context, Middleware } from "./context.ts";
import { deleteCookie, getCookies, serializeCookie, setCookie } from "./cookies.ts";

/** What a store keeps for one session. Plain JSON: stores serialise it. */
export interface SessionData {
  /** The application's values. */
  values: Record<string, unknown>;
  /** When the session (or its current id, after a rotation) began, in ms since the epoch. */
  createdAt: number;
  /** The last request that saw it, in ms since the epoch (updated at most once per touch interval). */
  lastSeenAt: number;
}

/** A session as a store returns it. */
export interface StoredSession {
  /** The data last set. */
  data: SessionData;
  /** When the store may forget it, in ms since the epoch. */
  expiresAt: number;
}

/**
 * Where sessions live. Every method is async so that a store can move off the event loop (into a Worker,
 * or over the network) without changing its callers.
 *
 * @example
 * ```ts
 * import type { SessionStore } from "./session.ts";
 * const noop: SessionStore = {
 *   get: () => Promise.resolve(undefined),
 *   set: () => Promise.resolve(),
 *   destroy: () => Promise.resolve(),
 * };
 * ```
 */
export interface SessionStore {
  /** The session with this id, or undefined. Stores may return expired ones; the middleware checks. */
  get(id: string): Promise<StoredSession | undefined>;
  /** Create or replace a session. */
  set(id: string, data: SessionData, expiresAt: number): Promise<void>;
  /** Forget a session. Unknown ids are fine. */
  destroy(id: string): Promise<void>;
  /** Optional: forget every session that expired at or before `now`; returns how many went. */
  prune?(now: number): Promise<number>;
}

/**
 * An in-memory {@link SessionStore}, the default of {@link sessions}. Single-process: its sessions live in
 * this process's memory, so they are lost at restart and not shared with another process or Worker (run
 * several and a visitor's session exists on one only). It holds every live session; the middleware prunes
 * expired ones at most every ten minutes. For sessions that survive a restart, pass a store on disk: `SqliteSessionStore` from
 * `@pier/pier/sqlite-session`, or one over the application's own database. Data is copied through JSON on the
 * way in and out, as a real store would, so callers cannot mutate stored sessions by reference.
 *
 * @example
 * ```ts
 * import { MemorySessionStore } from "./session.ts";
 * const store = new MemorySessionStore();
 * await store.set("id", { values: { n: 1 }, createdAt: 0, lastSeenAt: 0 }, Date.now() + 60_000);
 * console.log((await store.get("id"))?.data.values.n); // 1
 * ```
 */
export class MemorySessionStore implements SessionStore {
  #rows = new Map<string, { json: string; expiresAt: number }>();

  /**
   * The session with this id.
   *
   * @param id The session id.
   * @returns The stored session, or undefined.
   *
   * @example
   * ```ts
   * import { MemorySessionStore } from "./session.ts";
   * console.log(await new MemorySessionStore().get("nope")); // undefined
   * ```
   */
  get(id: string): Promise<StoredSession | undefined> {
    const row = this.#rows.get(id);
    return Promise.resolve(row && { data: JSON.parse(row.json), expiresAt: row.expiresAt });
  }

  /**
   * Create or replace a session.
   *
   * @param id The session id.
   * @param data The session data (JSON-serialisable).
   * @param expiresAt When it may be forgotten, in ms since the epoch.
   * @returns When stored.
   *
   * @example
   * ```ts
   * import { MemorySessionStore } from "./session.ts";
   * await new MemorySessionStore().set("id", { values: {}, createdAt: 0, lastSeenAt: 0 }, 1);
   * ```
   */
  set(id: string, data: SessionData, expiresAt: number): Promise<void> {
    this.#rows.set(id, { json: JSON.stringify(data), expiresAt });
    return Promise.resolve();
  }

  /**
   * Forget a session.
   *
   * @param id The session id.
   * @returns When forgotten.
   *
   * @example
   * ```ts
   * import { MemorySessionStore } from "./session.ts";
   * await new MemorySessionStore().destroy("id");
   * ```
   */
  destroy(id: string): Promise<void> {
    this.#rows.delete(id);
    return Promise.resolve();
  }

  /**
   * Forget every session expired at `now`.
   *
   * @param now The current time, in ms since the epoch.
   * @returns How many sessions were removed.
   *
   * @example
   * ```ts
   * import { MemorySessionStore } from "./session.ts";
   * console.log(await new MemorySessionStore().prune(Date.now())); // 0
   * ```
   */
  prune(now: number): Promise<number> {
    let n = 0;
    for (const [id, row] of this.#rows) {
      if (row.expiresAt <= now) {
        this.#rows.delete(id);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  /** How many sessions are held (for tests). */
  get size(): number {
    return this.#rows.size;
  }
}

/** Mutable bookkeeping the middleware reads after the handler ran; kept off the public Session API. */
interface SessionState {
  values: Record<string, unknown>;
  createdAt: number;
  lastSeenAt: number;
  /** The id is in the store. */
  persisted: boolean;
  /** Values changed (or the id rotated): the session must be saved. */
  dirty: boolean;
  /** Ids this request retired (rotation, destroy): to be removed from the store. */
  retired: string[];
  /** The middleware's clock. */
  clock: () => number;
}

const internals = new WeakMap<Session, SessionState>();

/**
 * One visitor's session, at `ctx.state.session`. Values must be JSON-serialisable; they are saved after
 * the handler returns, and only when something changed. Mutating an object in place is not seen: call
 * `set` again.
 *
 * @example
 * ```ts
 * import type { Session } from "./session.ts";
 * import type { RouteHandler } from "./context.ts";
 * const visits: RouteHandler = (_req, ctx) => {
 *   const session = ctx.state.session as Session;
 *   const n = ((session.get("visits") as number | undefined) ?? 0) + 1;
 *   session.set("visits", n);
 *   return new Response(`visit ${n}`);
 * };
 * ```
 */
export class Session {
  #id: string;

  /**
   * Wrap session data; the middleware does this, applications do not.
   *
   * @param id The session id.
   * @param data The stored data, or undefined for a new session.
   * @param clock The time in ms since the epoch; the middleware passes its own (injectable) clock.
   *
   * @example
   * ```ts
   * import { Session } from "./session.ts";
   * const s = new Session(crypto.randomUUID(), undefined);
   * console.log(s.isNew); // true
   * ```
   */
  constructor(id: string, data: SessionData | undefined, clock: () => number = Date.now) {
    this.#id = id;
    const now = clock();
    internals.set(this, {
      values: { ...data?.values },
      createdAt: data?.createdAt ?? now,
      lastSeenAt: data?.lastSeenAt ?? now,
      persisted: data !== undefined,
      dirty: false,
      retired: [],
      clock,
    });
  }

  #state(): SessionState {
    return internals.get(this)!;
  }

  /** The current id. Changes on {@link Session.regenerate} and {@link Session.destroy}. */
  get id(): string {
    return this.#id;
  }

  /** True until the session is first saved: the visitor brought no valid session cookie. */
  get isNew(): boolean {
    return !this.#state().persisted;
  }

  /**
   * A value, or undefined.
   *
   * @param key The value's name.
   * @returns The value.
   *
   * @example
   * ```ts
   * import { Session } from "./session.ts";
   * console.log(new Session("id", undefined).get("user")); // undefined
   * ```
   */
  get(key: string): unknown {
    return Object.hasOwn(this.#state().values, key) ? this.#state().values[key] : undefined;
  }

  /**
   * Set a value (JSON-serialisable); the session will be saved and, if new, its cookie sent.
   *
   * @param key The value's name.
   * @param value The value.
   *
   * @example
   * ```ts
   * import { Session } from "./session.ts";
   * const s = new Session("id", undefined);
   * s.set("theme", "dark");
   * console.log(s.get("theme")); // "dark"
   * ```
   */
  set(key: string, value: unknown): void {
    const state = this.#state();
    state.values[key] = value;
    state.dirty = true;
  }

  /**
   * Remove a value.
   *
   * @param key The value's name.
   * @returns True when there was one.
   *
   * @example
   * ```ts
   * import { Session } from "./session.ts";
   * const s = new Session("id", { values: { a: 1 }, createdAt: 0, lastSeenAt: 0 });
   * console.log(s.delete("a"), s.get("a")); // true undefined
   * ```
   */
  delete(key: string): boolean {
    const state = this.#state();
    if (!Object.hasOwn(state.values, key)) return false;
    delete state.values[key];
    state.dirty = true;
    return true;
  }

  /**
   * Give the session a new id and keep its values; the old id is destroyed. Call it on every privilege
   * change (sign-in, sign-out, role change) so a session id fixed or stolen earlier is worthless.
   * The absolute lifetime restarts: the new id is a new session as far as expiry is concerned.
   *
   * @example
   * ```ts
   * import { Session } from "./session.ts";
   * const s = new Session("old-id", { values: { cart: [1] }, createdAt: 0, lastSeenAt: 0 });
   * s.regenerate();
   * s.set("user", "ada");
   * console.log(s.id !== "old-id", s.get("cart")); // true [1]
   * ```
   */
  regenerate(): void {
    const state = this.#state();
    if (state.persisted) state.retired.push(this.#id);
    this.#id = crypto.randomUUID();
    state.persisted = false;
    state.dirty = true;
    state.createdAt = state.lastSeenAt = state.clock();
  }

  /**
   * End the session: its values are cleared, its id destroyed and its cookie removed. Setting a value
   * afterwards in the same request starts a new session under a new id.
   *
   * @example
   * ```ts
   * import { Session } from "./session.ts";
   * const s = new Session("id", { values: { user: "ada" }, createdAt: 0, lastSeenAt: 0 });
   * s.destroy();
   * console.log(s.get("user"), s.isNew); // undefined true
   * ```
   */
  destroy(): void {
    const state = this.#state();
    if (state.persisted) state.retired.push(this.#id);
    this.#id = crypto.randomUUID();
    state.values = {};
    state.persisted = false;
    state.dirty = false;
  }
}

/** Options for {@link sessions}. */
export interface SessionOptions {
  /**
   * Where sessions are kept. Default: a {@link MemorySessionStore} of this middleware's own, single-process
   * and lost at restart.
   */
  store?: SessionStore;
  /** The cookie name; `__Host-` is prepended on secure requests. Default {@link DEFAULT_SESSION_COOKIE}. */
  cookieName?: string;
  /** A session unused for this long expires, in ms. Default {@link DEFAULT_IDLE_TIMEOUT_MS}. */
  idleTimeoutMs?: number;
  /** A session (id) older than this expires however active it is, in ms. Default 8 hours. */
  absoluteTimeoutMs?: number;
  /**
   * How stale the stored last-seen time may get before an unchanged session is written back to push its
   * idle expiry, in ms. Default 60 s: one write per minute per active visitor, not one per request.
   */
  touchIntervalMs?: number;
  /** The clock, in ms since the epoch. Default `Date.now`; tests inject one. */
  now?: () => number;
  /**
   * For a request without a session cookie: the id of a session to adopt, one the application issued
   * earlier by other means (a signed first-visit cookie, say), or undefined. The session is loaded when it
   * exists and started under that id when not. Only ids of the shape this middleware issues (v4 UUIDs) are
   * taken. Default: none, every new session gets a random id.
   */
  adoptId?: (request: Request) => string | undefined | Promise<string | undefined>;
}

/** The session cookie's base name. On secure requests it becomes `__Host-pier_sid`. */
export const DEFAULT_SESSION_COOKIE = "pier_sid";
/** 30 minutes: OWASP's upper range for idle timeouts of low-risk applications. */
export const DEFAULT_IDLE_TIMEOUT_MS: number = 30 * 60 * 1000;
/** 8 hours, a working day: OWASP's usual range for absolute timeouts is 4 to 8 hours. */
export const DEFAULT_ABSOLUTE_TIMEOUT_MS: number = 8 * 60 * 60 * 1000;
/** 60 seconds between idle-expiry refreshes of an unchanged session. */
export const DEFAULT_TOUCH_INTERVAL_MS: number = 60 * 1000;
/** Expired rows are swept at most this often (10 minutes), from a request, when the store can prune. */
const PRUNE_INTERVAL_MS = 10 * 60 * 1000;

/** Ids we issue are v4 UUIDs; anything else is not ours, so it is not even looked up. */
const SESSION_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Session middleware: loads the visitor's session into `ctx.state.session` (a {@link Session}) and saves
 * it after the handler.
 *
 * The cookie is `HttpOnly`, `SameSite=Lax`, `Path=/`, and on secure requests `Secure` with the
 * `__Host-` prefix (so no subdomain or plain-HTTP page can set it). It carries no `Max-Age`: a browser
 * session cookie, as OWASP recommends, while the server enforces idle and absolute expiry. A new session
 * is saved, and its cookie sent, only once it holds a value (crawlers create no rows); after that the
 * cookie is sent again only when the id rotates. An unknown, malformed or expired id silently starts a
 * fresh session (and a stale cookie is cleared).
 *
 * Without a `store`, sessions are kept in memory ({@link MemorySessionStore}): single-process, and lost at
 * restart. `SqliteSessionStore` (`@pier/pier/sqlite-session`) keeps them in a file, off the event loop.
 *
 * @param options Store, cookie name, timeouts and clock.
 * @returns The middleware.
 * @throws {TypeError} When `cookieName` is not a valid cookie name.
 *
 * @example
 * ```ts
 * import { MemorySessionStore, type Session, sessions } from "./session.ts";
 * import { createContext } from "./context.ts";
 * const mw = sessions({ store: new MemorySessionStore() });
 * const req = new Request("http://localhost/");
 * const ctx = createContext(req, {
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
 *   completed: Promise.resolve(),
 * });
 * const res = await mw(req, () => {
 *   (ctx.state.session as Session).set("user", "ada");
 *   return Promise.resolve(new Response("ok"));
 * }, ctx);
 * console.log(res.headers.get("set-cookie")); // "pier_sid=<uuid>; Path=/; HttpOnly; SameSite=Lax"
 * ```
 */
export function sessions(options: SessionOptions = {}): Middleware {
  const baseName = options.cookieName ?? DEFAULT_SESSION_COOKIE;
  serializeCookie(baseName, "x"); // fail at startup, not on the first request, on a bad name
  serializeCookie(`__Host-${baseName}`, "x", { secure: true, path: "/" });
  const idle = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const absolute = options.absoluteTimeoutMs ?? DEFAULT_ABSOLUTE_TIMEOUT_MS;
  const touchInterval = options.touchIntervalMs ?? DEFAULT_TOUCH_INTERVAL_MS;
  const now = options.now ?? Date.now;
  // Memory by default: a default never does blocking I/O, nor writes a file the application did not ask for.
  const store = options.store ?? new MemorySessionStore();
  let lastPrune = now();

  const expiresAt = (data: SessionData) => Math.min(data.lastSeenAt + idle, data.createdAt + absolute);

  return async function sessionMiddleware(request, next, ctx: Context): Promise<Response> {
    const name = ctx.secure ? `__Host-${baseName}` : baseName;
    const sent = getCookies(request)[name];
    const t = now();

    // The session cookie's id, or for a request without one an id the application adopts.
    let id = sent !== undefined && SESSION_ID_RE.test(sent) ? sent : undefined;
    if (sent === undefined && options.adoptId) {
      const adopted = await options.adoptId(request);
      if (adopted !== undefined && SESSION_ID_RE.test(adopted)) id = adopted;
    }
    let loaded: StoredSession | undefined;
    if (id !== undefined) {
      loaded = await store.get(id);
      if (loaded && (loaded.expiresAt <= t || expiresAt(loaded.data) <= t)) {
        await store.destroy(id);
        loaded = undefined;
      }
    }
    const session = loaded
      ? new Session(id!, loaded.data, now)
      : new Session(id !== undefined && id !== sent ? id : crypto.randomUUID(), undefined, now);
    const state = internals.get(session)!;
    ctx.state.session = session;

    let response = await next();

    const end = now();
    for (const id of state.retired) await store.destroy(id);
    if (state.dirty || (state.persisted && end - state.lastSeenAt >= touchInterval)) {
      state.lastSeenAt = end;
      const data = { values: state.values, createdAt: state.createdAt, lastSeenAt: end };
      await store.set(session.id, data, expiresAt(data));
      state.persisted = true;
      state.dirty = false;
    }
    const cookie = { path: "/", httpOnly: true, sameSite: "Lax", secure: ctx.secure } as const;
    if (state.persisted && session.id !== sent) {
      response = withHeaders(response, (h) => setCookie(h, name, session.id, cookie));
    } else if (!state.persisted && sent !== undefined) {
      // The visitor holds a cookie for no live session (expired, unknown, or just destroyed): clear it.
      response = withHeaders(response, (h) => deleteCookie(h, name, { path: "/", secure: ctx.secure }));
    }

    if (store.prune && end - lastPrune >= PRUNE_INTERVAL_MS) {
      lastPrune = end;
      await store.prune(end);
    }
    return response;
  };
}

/** Apply `edit` to a response's headers, copying the response first when its headers are immutable. */
function withHeaders(response: Response, edit: (headers: Headers) => void): Response {
  try {
    edit(response.headers);
    return response;
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    // Response.redirect() and fetch() responses have immutable headers.
    const headers = new Headers(response.headers);
    edit(headers);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}
