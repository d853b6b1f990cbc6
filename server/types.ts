// The public shapes shared by the engine and the framework: a handler is exactly a Deno.serve handler,
// so anything written for Deno.serve (a Hono app's `fetch`, say) runs on Pier unchanged.
// This file holds types only; it must never import anything with side effects.

/**
 * What the server tells a handler besides the request, as `Deno.ServeHandlerInfo` does. `Addr` is the
 * kind of address: a TCP server's handlers get `Deno.NetAddr`, a Unix socket's `Deno.UnixAddr`.
 *
 * @example
 * ```ts
 * import type { ServeHandlerInfo } from "./types.ts";
 * const log = (_req: Request, info: ServeHandlerInfo<Deno.NetAddr>) => console.log(info.remoteAddr.hostname);
 * ```
 */
export interface ServeHandlerInfo<Addr extends Deno.Addr = Deno.Addr> {
  /** The peer of the connection (the proxy's address when behind one; a Unix address on a Unix socket). */
  remoteAddr: Addr;
  /** Resolves when the response has been written out (or the client went away). */
  completed: Promise<void>;
}

/**
 * A request handler: a standard `Request` in, a `Response` (or a promise of one) out.
 *
 * @example
 * ```ts
 * import type { Handler } from "./types.ts";
 * const hello: Handler = () => new Response("hello");
 * ```
 */
export type Handler<Addr extends Deno.Addr = Deno.Addr> = (
  request: Request,
  info: ServeHandlerInfo<Addr>,
) => Response | Promise<Response>;
