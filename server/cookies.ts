// Cookies per RFC 6265: lenient when reading a `Cookie` header (browsers send what they send), strict when
// writing `Set-Cookie` (a bad name or value is a TypeError that names it, never a header a browser drops).
// This file only reads and writes headers; it must never decode or sign values (that is the caller's job).

/** RFC 9110 §5.6.2 token characters: what a cookie-name may contain (RFC 6265 §4.1.1). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * RFC 6265 §4.1.1 cookie-value: cookie-octets (no CTLs, whitespace, DQUOTE, comma, semicolon or
 * backslash), optionally wrapped in one pair of double quotes.
 */
const COOKIE_VALUE =
  /^(?:[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*|"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*")$/;

/** RFC 6265 §4.1.1 path-value / extension-av: any CHAR except CTLs and ";". */
const ATTRIBUTE_VALUE = /^[\x20-\x3A\x3C-\x7E]*$/;

/** RFC 1034 §3.5 subdomain syntax, with an optional leading dot that RFC 6265 §5.2.3 ignores. */
const DOMAIN = /^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/**
 * Options for {@link serializeCookie}, one per `Set-Cookie` attribute (RFC 6265 §4.1.2, plus `SameSite`
 * from RFC 6265bis and `Partitioned` from CHIPS).
 */
export interface CookieOptions {
  /** `Max-Age` in seconds (an integer; zero or less expires the cookie at once). Wins over `expires`. */
  maxAge?: number;
  /** `Expires`: an absolute expiry, for old clients that ignore `Max-Age`. */
  expires?: Date;
  /** `Domain`: share the cookie with subdomains. Omit it to keep the cookie host-only (safer). */
  domain?: string;
  /** `Path`: the path prefix the cookie is sent for. */
  path?: string;
  /** `Secure`: send only over HTTPS. Required by `__Secure-`, `__Host-`, `SameSite=None`, `Partitioned`. */
  secure?: boolean;
  /** `HttpOnly`: hide the cookie from page scripts. */
  httpOnly?: boolean;
  /** `SameSite`: whether cross-site requests carry the cookie. */
  sameSite?: "Strict" | "Lax" | "None";
  /** `Partitioned`: store the cookie per top-level site (CHIPS). */
  partitioned?: boolean;
}

/**
 * Parse a `Cookie` request header into name/value pairs.
 *
 * Lenient as RFC 6265 §5.2 asks of readers: pairs without `=` or with an empty name are skipped, never
 * thrown on. Values are returned as sent (not percent-decoded), minus one pair of surrounding double
 * quotes. When a name repeats, the first one wins: browsers list the most specific path first (§5.4).
 *
 * @param header The `Cookie` header value, or `null` when absent.
 * @returns The cookies by name, in an object without a prototype (so `__proto__` is just a name).
 *
 * @example
 * ```ts
 * import { parseCookies } from "./cookies.ts";
 * const cookies = parseCookies("sid=abc123; theme=dark; junk");
 * console.log(cookies.sid, cookies.theme); // "abc123" "dark"
 * ```
 */
export function parseCookies(header: string | null): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null);
  if (!header) return cookies;
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=");
    if (eq === -1) continue;
    const name = pair.slice(0, eq).trim();
    if (name === "" || name in cookies) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    cookies[name] = value;
  }
  return cookies;
}

/**
 * Read the cookies a request carries.
 *
 * @param request The incoming request.
 * @returns The cookies by name, as {@link parseCookies} returns them.
 *
 * @example
 * ```ts
 * import { getCookies } from "./cookies.ts";
 * const req = new Request("http://localhost/", { headers: { cookie: "sid=abc123" } });
 * console.log(getCookies(req).sid); // "abc123"
 * ```
 */
export function getCookies(request: Request): Record<string, string> {
  return parseCookies(request.headers.get("cookie"));
}

/**
 * Build a `Set-Cookie` header value.
 *
 * Strict as RFC 6265 §4.1 asks of servers: a name that is not a token, a value with characters outside
 * cookie-octet, or a bad attribute throws a `TypeError` that names it. Encode arbitrary values yourself
 * (for example with `encodeURIComponent`). Prefix rules (RFC 6265bis §4.1.3): `__Secure-` needs `secure`;
 * `__Host-` needs `secure`, `path: "/"` and no `domain`. `SameSite=None` and `Partitioned` need `secure`,
 * since browsers drop such cookies otherwise.
 *
 * @param name The cookie name.
 * @param value The cookie value.
 * @param options The attributes.
 * @returns The header value, for example `sid=abc; Path=/; HttpOnly; SameSite=Lax`.
 * @throws {TypeError} When the name, value or an attribute is invalid, or a prefix rule is broken.
 *
 * @example
 * ```ts
 * import { serializeCookie } from "./cookies.ts";
 * const header = serializeCookie("sid", "abc123", { path: "/", httpOnly: true, sameSite: "Lax" });
 * console.log(header); // "sid=abc123; Path=/; HttpOnly; SameSite=Lax"
 * ```
 */
export function serializeCookie(name: string, value: string, options: CookieOptions = {}): string {
  if (!TOKEN.test(name)) throw new TypeError(`Invalid cookie name: ${JSON.stringify(name)}`);
  if (!COOKIE_VALUE.test(value)) {
    throw new TypeError(`Invalid value for cookie ${name}: ${JSON.stringify(value)}`);
  }
  // Prefixes are matched case-insensitively, as RFC 6265bis §5.7 has browsers do.
  const lower = name.toLowerCase();
  if (lower.startsWith("__secure-") && !options.secure) {
    throw new TypeError(`Cookie ${name}: the __Secure- prefix requires secure: true`);
  }
  if (lower.startsWith("__host-")) {
    if (!options.secure || options.path !== "/" || options.domain !== undefined) {
      throw new TypeError(
        `Cookie ${name}: the __Host- prefix requires secure: true, path: "/" and no domain`,
      );
    }
  }
  if (options.sameSite === "None" && !options.secure) {
    throw new TypeError(`Cookie ${name}: SameSite=None requires secure: true`);
  }
  if (options.partitioned && !options.secure) {
    throw new TypeError(`Cookie ${name}: Partitioned requires secure: true`);
  }

  let out = `${name}=${value}`;
  if (options.maxAge !== undefined) {
    if (!Number.isInteger(options.maxAge)) {
      throw new TypeError(`Cookie ${name}: maxAge must be an integer, got ${options.maxAge}`);
    }
    out += `; Max-Age=${options.maxAge}`;
  }
  if (options.expires !== undefined) {
    if (Number.isNaN(options.expires.getTime())) {
      throw new TypeError(`Cookie ${name}: expires is an invalid Date`);
    }
    // toUTCString() yields the IMF-fixdate of RFC 9110 §5.6.7, the sane-cookie-date of RFC 6265 §4.1.1.
    out += `; Expires=${options.expires.toUTCString()}`;
  }
  if (options.domain !== undefined) {
    if (!DOMAIN.test(options.domain)) {
      throw new TypeError(`Cookie ${name}: invalid domain ${JSON.stringify(options.domain)}`);
    }
    out += `; Domain=${options.domain}`;
  }
  if (options.path !== undefined) {
    if (!ATTRIBUTE_VALUE.test(options.path)) {
      throw new TypeError(`Cookie ${name}: invalid path ${JSON.stringify(options.path)}`);
    }
    out += `; Path=${options.path}`;
  }
  if (options.secure) out += "; Secure";
  if (options.httpOnly) out += "; HttpOnly";
  if (options.sameSite !== undefined) {
    if (!["Strict", "Lax", "None"].includes(options.sameSite)) {
      throw new TypeError(`Cookie ${name}: invalid sameSite ${JSON.stringify(options.sameSite)}`);
    }
    out += `; SameSite=${options.sameSite}`;
  }
  if (options.partitioned) out += "; Partitioned";
  return out;
}

/**
 * Append a `Set-Cookie` header (several cookies are several headers, never one joined line: RFC 6265 §3).
 *
 * @param headers The response headers to add to.
 * @param name The cookie name.
 * @param value The cookie value.
 * @param options The attributes, as for {@link serializeCookie}.
 * @throws {TypeError} As {@link serializeCookie} does.
 *
 * @example
 * ```ts
 * import { setCookie } from "./cookies.ts";
 * const headers = new Headers();
 * setCookie(headers, "theme", "dark", { path: "/", maxAge: 3600 });
 * console.log(headers.getSetCookie()); // ["theme=dark; Max-Age=3600; Path=/"]
 * ```
 */
export function setCookie(headers: Headers, name: string, value: string, options?: CookieOptions): void {
  headers.append("set-cookie", serializeCookie(name, value, options));
}

/**
 * Append a `Set-Cookie` that removes a cookie: an empty value, `Max-Age=0` and an `Expires` in the past
 * (for clients without `Max-Age`). The path and domain must match the ones the cookie was set with, or the
 * browser keeps the original (RFC 6265 §5.3 step 11 keys cookies by name, domain and path).
 *
 * @param headers The response headers to add to.
 * @param name The cookie name.
 * @param options The path and domain the cookie was set with. For `__Secure-` and `__Host-` names,
 *   `secure` defaults to true (and `path` to `/` for `__Host-`), since the prefix rules demand them.
 * @throws {TypeError} As {@link serializeCookie} does.
 *
 * @example
 * ```ts
 * import { deleteCookie } from "./cookies.ts";
 * const headers = new Headers();
 * deleteCookie(headers, "sid", { path: "/" });
 * console.log(headers.get("set-cookie")); // "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"
 * ```
 */
export function deleteCookie(
  headers: Headers,
  name: string,
  options: { path?: string; domain?: string; secure?: boolean } = {},
): void {
  const lower = name.toLowerCase();
  const host = lower.startsWith("__host-");
  const prefixed = host || lower.startsWith("__secure-");
  setCookie(headers, name, "", {
    maxAge: 0,
    expires: new Date(0),
    path: options.path ?? (host ? "/" : undefined),
    domain: options.domain,
    secure: options.secure ?? (prefixed || undefined),
  });
}
