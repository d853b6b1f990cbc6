// The per-request context the framework hands to routes and middleware. It owns nothing but plain data
// derived from the request; it must never read the body (handlers decide when, so 100-continue stays lazy).
import type { ServeHandlerInfo } from "./types.ts";

/**
 * Per-request data for routes and middleware.
 *
 * @example
 * ```ts
 * import { createContext } from "./context.ts";
 * const ctx = createContext(new Request("http://localhost/"), {
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
 *   completed: Promise.resolve(),
 * });
 * console.log(ctx.url.pathname);
 * ```
 */
export interface Context {
  /** The parsed request URL. */
  url: URL;
  /** Route parameters, percent-decoded once. Empty outside a route. */
  params: Record<string, string>;
  /** Connection details from the server. */
  info: ServeHandlerInfo;
  /** The client's address: the peer, or the forwarded address when the peer is a trusted proxy. */
  clientAddr: string;
  /** True when the request arrived over TLS, directly or through a trusted proxy that says so. */
  secure: boolean;
  /** Free-form per-request storage for middleware (a session, a user, ...). */
  state: Record<string, unknown>;
}

/**
 * A route handler: the request and its context in, a response out.
 *
 * @example
 * ```ts
 * import type { RouteHandler } from "./context.ts";
 * const hello: RouteHandler = (_req, ctx) => new Response(`hi ${ctx.params.name}`);
 * ```
 */
export type RouteHandler = (request: Request, ctx: Context) => Response | Promise<Response>;

/**
 * Middleware: runs around the next handler. Calling `next` twice is an error.
 *
 * @example
 * ```ts
 * import type { Middleware } from "./context.ts";
 * const timing: Middleware = async function timing(_req, next) {
 *   const res = await next();
 *   res.headers.set("x-took", "0");
 *   return res;
 * };
 * ```
 */
export type Middleware = (
  request: Request,
  next: () => Promise<Response>,
  ctx: Context,
) => Response | Promise<Response>;

/** Options for {@link createContext}. */
export interface ContextOptions {
  /**
   * Peer addresses whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed: IP addresses, and
   * {@link UNIX_PEER} for any peer on a Unix socket. Default: loopback and Unix sockets only, because a
   * reverse proxy on the same machine is the deployment we document.
   */
  trustedProxies?: readonly string[];
}

/**
 * How a peer on a Unix socket is named among trusted proxies and, without a forwarded address, as the
 * client: it has no IP address, and its socket path (empty for a client that did not bind one) tells
 * nothing. Only a process that may write the socket file can connect: on this machine, the proxy.
 */
export const UNIX_PEER = "unix:";

/** Loopback addresses and Unix sockets: the default set of trusted proxies. */
export const DEFAULT_TRUSTED_PROXIES: readonly string[] = ["127.0.0.1", "::1", "::ffff:127.0.0.1", UNIX_PEER];

/**
 * A peer's address as text: the IP address of a TCP peer, {@link UNIX_PEER} for a Unix socket's.
 *
 * @param addr The connection's remote address.
 * @returns Its IP address, or `unix:` (`vsock:` for a VSOCK peer).
 *
 * @example
 * ```ts
 * import { peerAddress } from "./context.ts";
 * console.log(peerAddress({ transport: "unix", path: "" })); // "unix:"
 * ```
 */
export function peerAddress(addr: Deno.Addr): string {
  return "hostname" in addr ? addr.hostname : `${addr.transport}:`;
}

/**
 * Build a {@link Context} for a request, deciding the client address and TLS from trusted proxies only.
 *
 * @param request The incoming request.
 * @param info The server's connection info.
 * @param options Which proxies to trust.
 * @returns A fresh context with empty params and state.
 *
 * @example
 * ```ts
 * import { createContext } from "./context.ts";
 * const req = new Request("http://localhost/", { headers: { "x-forwarded-for": "203.0.113.9" } });
 * const ctx = createContext(req, {
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
 *   completed: Promise.resolve(),
 * });
 * console.log(ctx.clientAddr); // "203.0.113.9": the peer is loopback, a trusted proxy
 * ```
 */
export function createContext(
  request: Request,
  info: ServeHandlerInfo,
  options: ContextOptions = {},
): Context {
  const url = new URL(request.url);
  const peer = peerAddress(info.remoteAddr);
  const trusted = (options.trustedProxies ?? DEFAULT_TRUSTED_PROXIES).includes(peer);
  let clientAddr = peer;
  let secure = url.protocol === "https:";
  if (trusted) {
    // The nearest hop a trusted proxy appended is the last element (RFC 7239 §5.2 ordering for XFF too).
    const xff = request.headers.get("x-forwarded-for");
    if (xff) {
      const last = xff.split(",").at(-1)?.trim();
      if (last) clientAddr = last;
    }
    const proto = request.headers.get("x-forwarded-proto");
    if (proto) secure = proto.trim().toLowerCase() === "https";
  }
  return { url, params: {}, info, clientAddr, secure, state: {} };
}
