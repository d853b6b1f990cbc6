// The site's limit on posts per client: at most N accepted posts (contact messages and uploads together) per
// client address in a sliding window, counted in the store so the limit holds across instances. It owns the
// rule and its flag's syntax; it never stores a post itself, and never refuses a client it cannot count.

/** A limit: at most `limit` accepted posts per client address per `windowMs`. */
export interface RateLimit {
  /** Posts allowed in one window. */
  limit: number;
  /** The window, in ms. */
  windowMs: number;
}

/** 20 posts per 10 minutes: a person writing and uploading by hand never meets it; a script soon does. */
export const DEFAULT_RATE_LIMIT: Readonly<RateLimit> = Object.freeze({ limit: 20, windowMs: 10 * 60 * 1000 });

const UNITS: Record<string, number> = { s: 1000, m: 60 * 1000, h: 60 * 60 * 1000, d: 24 * 60 * 60 * 1000 };

/**
 * Read `--rate-limit`: `N/WINDOW` (`20/10m`, `5/30s`, `100/1h`, `1000/1d`; a bare unit is one of it) or `off`.
 *
 * @param text The flag's value.
 * @returns The limit, or null for `off`.
 * @throws {TypeError} When the value is not of that shape, or a number is out of range.
 *
 * @example
 * ```ts
 * import { parseRateLimit } from "./rate_limit.ts";
 * console.log(parseRateLimit("20/10m")); // { limit: 20, windowMs: 600000 }
 * ```
 */
export function parseRateLimit(text: string): RateLimit | null {
  if (text === "off") return null;
  const m = /^([0-9]{1,9})\/([0-9]{0,9})([smhd])$/.exec(text);
  if (m === null) {
    throw new TypeError(`--rate-limit ${JSON.stringify(text)}: expected N/WINDOW (e.g. 20/10m) or off`);
  }
  const limit = Number(m[1]);
  const windowMs = (m[2] === "" ? 1 : Number(m[2])) * UNITS[m[3]];
  if (limit < 1 || windowMs < 1000 || windowMs > 7 * UNITS.d) {
    throw new TypeError(`--rate-limit ${text}: at least 1 post, and a window from 1s to 7d`);
  }
  return { limit, windowMs };
}

/** What the limiter needs of the store: the posts it recorded, per client address. */
export interface PostLog {
  /**
   * Posts recorded for `clientAddr` at or after `since` (ms): how many, and when the oldest of them was.
   */
  postsSince(clientAddr: string, since: number): Promise<{ count: number; oldest: number | null }>;
  /** Record an accepted post at `at`, and forget every client's posts older than `forgetBefore`. */
  recordPost(clientAddr: string, at: number, forgetBefore: number): Promise<void>;
}

/**
 * Checks and records accepted posts against a {@link RateLimit}, in a sliding window. A check and its
 * record are two steps: posts of one client arriving at the same moment on several instances may pass the
 * limit by as many as are in flight, which bounds a flood all the same.
 *
 * @example
 * ```ts ignore
 * const limiter = new PostLimiter(store, DEFAULT_RATE_LIMIT);
 * const wait = await limiter.check(ctx.clientAddr);
 * if (wait !== null) return tooMany(wait);
 * // ... store the post ...
 * await limiter.record(ctx.clientAddr);
 * ```
 */
export class PostLimiter {
  readonly #log: PostLog;
  readonly #rate: RateLimit;
  readonly #now: () => number;

  /**
   * @param log Where posts are counted.
   * @param rate The limit.
   * @param now The clock (ms). Default `Date.now`.
   */
  constructor(log: PostLog, rate: RateLimit, now: () => number = Date.now) {
    this.#log = log;
    this.#rate = rate;
    this.#now = now;
  }

  /**
   * Whether `clientAddr` may post now.
   *
   * @param clientAddr The client (the forwarded address behind a trusted proxy).
   * @returns Null when it may; else the whole seconds until it may again (for Retry-After).
   */
  async check(clientAddr: string): Promise<number | null> {
    const now = this.#now();
    // A post at t counts while now - t < window.
    const { count, oldest } = await this.#log.postsSince(clientAddr, now - this.#rate.windowMs + 1);
    if (count < this.#rate.limit) return null;
    // The window slides: a post is allowed again when the oldest counted one leaves it.
    const freeAt = (oldest ?? now) + this.#rate.windowMs;
    return Math.max(1, Math.ceil((freeAt - now) / 1000));
  }

  /**
   * Record an accepted post of `clientAddr`, and forget posts older than the window.
   *
   * @param clientAddr The client.
   */
  async record(clientAddr: string): Promise<void> {
    const now = this.#now();
    await this.#log.recordPost(clientAddr, now, now - this.#rate.windowMs + 1);
  }
}
