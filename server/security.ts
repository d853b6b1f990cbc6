// Security defaults as middleware: cross-origin request protection (the rule of Go 1.25's
// http.CrossOriginProtection, from the Fetch Metadata and Origin headers browsers send) and security
// headers for HTML pages. Neither reads a body or a cookie; both must leave a handler's own headers alone.
import type { Middleware } from "./context.ts";
import { crossOriginReason, trustedOriginSet } from "./origin.ts";

/** Methods that RFC 9110 §9.2.1 defines as safe: they must not change state, so they need no protection. */
const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The default policy: only the site's own resources; no plugins; the page may not be framed (clickjacking),
 * may not change its base URL (injected `<base>`), and may only submit forms to itself.
 */
export const DEFAULT_CONTENT_SECURITY_POLICY: string =
  "default-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/**
 * One year: the max-age HSTS preload lists ask for, long enough that a returning visitor is never
 * downgraded to plain HTTP (RFC 6797 §6.1.1).
 */
const DEFAULT_HSTS_MAX_AGE = 31_536_000;

/** Options for {@link crossOriginProtection}. */
export interface CrossOriginProtectionOptions {
  /**
   * Origins allowed to send unsafe requests although they are cross-origin, as browsers write them in
   * `Origin`: scheme, host and port only (`https://app.example.com`).
   */
  trustedOrigins?: readonly string[];
  /** Answers a rejected request. Default: a plain-text 403. */
  onReject?: (request: Request, reason: string) => Response | Promise<Response>;
}

/**
 * Middleware that rejects cross-origin requests with unsafe methods, as Go 1.25's
 * `http.CrossOriginProtection` does; no tokens are needed in forms.
 *
 * - GET, HEAD and OPTIONS always pass: they are safe (RFC 9110 §9.2.1).
 * - With `Sec-Fetch-Site` (all current browsers), only `same-origin` and `none` (the user typed the
 *   address or used a bookmark) pass; `same-site` and `cross-site` are rejected, since a sibling
 *   subdomain is not the same origin.
 * - Without it (older browsers), an `Origin` (RFC 6454 §7) whose host differs from the request's host is
 *   rejected, as is `Origin: null` (sandboxed or privacy-sensitive contexts).
 * - Requests with neither header pass: they come from curl, scripts or other servers, which carry no
 *   victim's cookies (every browser since 2020 sends at least `Origin` on a cross-site POST).
 * - An `Origin` listed in `trustedOrigins` passes.
 *
 * @param options Trusted origins and the rejection response.
 * @returns The middleware.
 * @throws {TypeError} When a trusted origin is not of the form `scheme://host[:port]`.
 *
 * @example
 * ```ts
 * import { Router } from "./router.ts";
 * import { crossOriginProtection } from "./security.ts";
 * const router = new Router()
 *   .use(crossOriginProtection({ trustedOrigins: ["https://admin.example.com"] }))
 *   .post("/comments", () => new Response("saved"));
 * ```
 */
export function crossOriginProtection(options: CrossOriginProtectionOptions = {}): Middleware {
  // Browsers send the serialised origin, so only that exact form can ever match.
  const trusted = trustedOriginSet(options.trustedOrigins ?? []);
  const reject = options.onReject ??
    ((_req: Request, reason: string) =>
      new Response(`Forbidden: ${reason}`, {
        status: 403,
        headers: { "content-type": "text/plain; charset=utf-8" },
      }));

  return async function crossOriginProtection(request, next, ctx) {
    if (SAFE_METHODS.has(request.method)) return await next();
    // The rule itself lives in origin.ts: upgradeWebSocket applies the same one to every handshake.
    const reason = crossOriginReason(request.headers, ctx.url.host, trusted);
    if (reason === null) return await next();
    return await reject(request, reason);
  };
}

/** Options for {@link securityHeaders}. Each header can be replaced with a string, or turned off with false. */
export interface SecurityHeadersOptions {
  /** `Content-Security-Policy` for HTML. Default: {@link DEFAULT_CONTENT_SECURITY_POLICY}. */
  contentSecurityPolicy?: string | false;
  /** `Referrer-Policy` for HTML. Default: `same-origin`, so no URL of the site leaks to other sites. */
  referrerPolicy?: string | false;
  /** `X-Frame-Options` for HTML, for browsers without CSP `frame-ancestors`. Default: `DENY`. */
  frameOptions?: string | false;
  /**
   * `Strict-Transport-Security`, sent only when the request came over TLS (RFC 6797 §7.2: never over plain
   * HTTP). Default: `max-age=31536000`, without `includeSubDomains`, which could break a subdomain still
   * on plain HTTP.
   */
  strictTransportSecurity?: string | false;
}

/**
 * Middleware that adds security headers, never replacing one the handler set.
 *
 * HTML responses (`Content-Type: text/html`) get `Content-Security-Policy`, `Referrer-Policy` and
 * `X-Frame-Options`: those govern documents. Every response gets `X-Content-Type-Options: nosniff`, so a
 * browser never runs a text or JSON response as a script or page, and `Strict-Transport-Security` when the
 * request came over TLS (directly, or through a trusted proxy: `ctx.secure`).
 *
 * @param options Replacement values, or false to leave a header out.
 * @returns The middleware.
 *
 * @example
 * ```ts
 * import { Router } from "./router.ts";
 * import { securityHeaders } from "./security.ts";
 * const router = new Router()
 *   .use(securityHeaders({ referrerPolicy: "strict-origin-when-cross-origin" }))
 *   .get("/", () => new Response("<h1>hi</h1>", { headers: { "content-type": "text/html" } }));
 * ```
 */
export function securityHeaders(options: SecurityHeadersOptions = {}): Middleware {
  const add = securityHeadersFor(options);
  return async function securityHeaders(_request, next, ctx) {
    return add(await next(), ctx.secure);
  };
}

/**
 * The work of {@link securityHeaders} as a plain function, for a handler that answers without middleware
 * (a static file served before the router, say): it adds the same headers to a response, never replacing one
 * it has, copying a response whose headers are immutable.
 *
 * @param options Replacement values, or false to leave a header out.
 * @returns `(response, secure) => response`, where `secure` says the request came over TLS.
 *
 * @example
 * ```ts
 * import { securityHeadersFor } from "./security.ts";
 * const add = securityHeadersFor();
 * const res = add(new Response("hi"), false);
 * console.log(res.headers.get("x-content-type-options")); // "nosniff"
 * ```
 */
export function securityHeadersFor(
  options: SecurityHeadersOptions = {},
): (response: Response, secure: boolean) => Response {
  const html: [string, string][] = [];
  const csp = options.contentSecurityPolicy ?? DEFAULT_CONTENT_SECURITY_POLICY;
  if (csp !== false) html.push(["content-security-policy", csp]);
  const referrer = options.referrerPolicy ?? "same-origin";
  if (referrer !== false) html.push(["referrer-policy", referrer]);
  const frame = options.frameOptions ?? "DENY";
  if (frame !== false) html.push(["x-frame-options", frame]);
  const hsts = options.strictTransportSecurity ?? `max-age=${DEFAULT_HSTS_MAX_AGE}`;

  return (response, secure) => {
    const wanted: [string, string][] = [["x-content-type-options", "nosniff"]];
    if (isHtml(response.headers.get("content-type"))) wanted.push(...html);
    if (secure && hsts !== false) wanted.push(["strict-transport-security", hsts]);
    const missing = wanted.filter(([name]) => !response.headers.has(name));
    if (missing.length === 0) return response;
    try {
      for (const [name, value] of missing) response.headers.set(name, value);
    } catch {
      // Immutable headers (Response.redirect, a fetch() result): copy the response, then set.
      response = new Response(response.body, response);
      for (const [name, value] of missing) response.headers.set(name, value);
    }
    return response;
  };
}

/** Whether a Content-Type is HTML (RFC 9110 §8.3.1: the media type is case-insensitive, before any `;`). */
function isHtml(contentType: string | null): boolean {
  if (contentType === null) return false;
  const semi = contentType.indexOf(";");
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return type === "text/html";
}
