// The same-origin rule for requests a browser may send on another site's behalf (Go 1.25's
// http.CrossOriginProtection, from the Fetch Metadata and Origin headers): one pure function, used by the
// crossOriginProtection middleware for unsafe methods and by upgradeWebSocket for every handshake (a
// WebSocket is not bound by CORS, so a page on any site could open one with the visitor's cookies).

/** `Sec-Fetch-Site` values that mean the request came from the site itself or from the user (Fetch Metadata). */
const TRUSTED_FETCH_SITES: ReadonlySet<string> = new Set(["same-origin", "none"]);

/**
 * Check a list of trusted origins: each must be exactly what a browser writes in `Origin` (scheme, host,
 * port), since only that form can ever match.
 *
 * @param origins The origins, as `https://app.example.com`.
 * @returns The set of them.
 * @throws {TypeError} When one is not of the form `scheme://host[:port]`.
 *
 * @example
 * ```ts
 * import { trustedOriginSet } from "./origin.ts";
 * console.log(trustedOriginSet(["https://admin.example.com"]).size); // 1
 * ```
 */
export function trustedOriginSet(origins: readonly string[]): Set<string> {
  const trusted = new Set<string>();
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch { /* reported below */ }
    if (!parsed || parsed.origin === "null" || parsed.origin !== origin) {
      throw new TypeError(`Trusted origin must be scheme://host[:port], got ${JSON.stringify(origin)}`);
    }
    trusted.add(origin);
  }
  return trusted;
}

/**
 * Why a request is cross-origin and must be refused, or null when it may pass:
 *
 * - with `Sec-Fetch-Site` (all current browsers), only `same-origin` and `none` (the user typed the address)
 *   pass; `same-site` and `cross-site` are refused, since a sibling subdomain is not the same origin;
 * - without it (older browsers), an `Origin` (RFC 6454 §7) whose host differs from the request's host is
 *   refused, as is `Origin: null` (sandboxed or privacy-sensitive contexts);
 * - requests with neither header pass: they come from curl, scripts or other servers, which carry no
 *   victim's cookies;
 * - an `Origin` listed in `trusted` passes.
 *
 * @param headers The request's headers.
 * @param host The host (and port) the request was sent to, lower-case: `new URL(request.url).host`.
 * @param trusted Origins allowed although they are cross-origin ({@link trustedOriginSet}).
 * @returns The reason to refuse, for a log or a 403 body, or null.
 *
 * @example
 * ```ts
 * import { crossOriginReason } from "./origin.ts";
 * const headers = new Headers({ origin: "https://evil.example" });
 * console.log(crossOriginReason(headers, "example.com", new Set())); // "cross-origin request (Origin does not match Host)"
 * ```
 */
export function crossOriginReason(
  headers: Headers,
  host: string,
  trusted: ReadonlySet<string>,
): string | null {
  const origin = headers.get("origin");
  const site = headers.get("sec-fetch-site");
  if (site !== null) {
    if (TRUSTED_FETCH_SITES.has(site.toLowerCase())) return null;
    if (origin !== null && trusted.has(origin)) return null;
    return `cross-origin request (Sec-Fetch-Site: ${site})`;
  }
  // Neither header: not a browser, or one too old to protect; let it through as Go does.
  if (origin === null) return null;
  if (originHost(origin) === host.toLowerCase()) return null;
  if (trusted.has(origin)) return null;
  return "cross-origin request (Origin does not match Host)";
}

/** The host (with port, when not the scheme's default) of an Origin header; null for `null` or garbage. */
function originHost(origin: string): string | null {
  try {
    const url = new URL(origin);
    return url.host === "" ? null : url.host.toLowerCase();
  } catch {
    return null;
  }
}
