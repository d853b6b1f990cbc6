// A visitor's first visit, carried in a signed cookie instead of a database row: crawlers and scanners that
// keep no cookies (most of a cookie-less flood) then cost the database nothing, and a visitor's row is made on
// the second visit, under the id the cookie carries. It owns the cookie's format and its signature; it never
// trusts a value it did not sign, and never reads the database.

/** The cookie's name (beside the session's `pier_sid`). */
export const FIRST_VISIT_COOKIE = "pier_first";

/** A v4 UUID, the shape of session ids (server/session.ts issues the same). */
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** What a valid first-visit cookie says. */
export interface FirstVisit {
  /** The session id the visitor's row gets on the second visit. */
  id: string;
  /** When the first visit was, in ms since the epoch. */
  at: number;
}

/** base64url without padding (RFC 4648 §5), for a cookie value. */
function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Issues and checks first-visit cookies: `<uuid>.<ms>.<HMAC-SHA-256 of both, base64url>`. The key is the
 * site's secret, kept in its database so that every instance signs and checks alike.
 *
 * @example
 * ```ts
 * import { FirstVisits } from "./first_visit.ts";
 * const visits = await FirstVisits.withSecret(crypto.getRandomValues(new Uint8Array(32)));
 * const value = await visits.issue(Date.now());
 * console.log((await visits.check(value, Date.now(), 60_000))?.id.length); // 36
 * ```
 */
export class FirstVisits {
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /**
   * Make a signer over `secret` (at least 32 random bytes).
   *
   * @param secret The site's secret.
   * @returns The signer.
   * @throws {RangeError} When the secret is shorter than 32 bytes.
   */
  static async withSecret(secret: Uint8Array): Promise<FirstVisits> {
    if (secret.length < 32) throw new RangeError("the first-visit secret must be at least 32 bytes");
    const key = await crypto.subtle.importKey(
      "raw",
      secret as Uint8Array<ArrayBuffer>,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    return new FirstVisits(key);
  }

  async #mac(text: string): Promise<string> {
    const signature = await crypto.subtle.sign("HMAC", this.#key, new TextEncoder().encode(text));
    return base64url(new Uint8Array(signature));
  }

  /**
   * A cookie value for a first visit now, with a fresh session id.
   *
   * @param now The time of the visit (ms).
   * @returns The value.
   */
  async issue(now: number): Promise<string> {
    const text = `${crypto.randomUUID()}.${Math.floor(now)}`;
    return `${text}.${await this.#mac(text)}`;
  }

  /**
   * What a cookie value says, if this site signed it and it is younger than `maxAgeMs`; else null.
   *
   * @param value The cookie's value, as the client sent it.
   * @param now The current time (ms).
   * @param maxAgeMs How long a first visit counts toward a second one.
   * @returns The first visit, or null.
   */
  async check(value: string, now: number, maxAgeMs: number): Promise<FirstVisit | null> {
    const parts = value.split(".");
    if (parts.length !== 3 || !UUID_RE.test(parts[0]) || !/^[0-9]{1,15}$/.test(parts[1])) return null;
    const at = Number(parts[1]);
    if (at > now || now - at > maxAgeMs) return null;
    const expected = await this.#mac(`${parts[0]}.${parts[1]}`);
    // Compared in full, whatever differs first: no early exit to time.
    let diff = expected.length ^ parts[2].length;
    for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ (parts[2].charCodeAt(i) | 0);
    return diff === 0 ? { id: parts[0], at } : null;
  }
}
