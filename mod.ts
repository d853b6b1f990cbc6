/**
 * Pier: an HTTP/1.1 server written from scratch for Deno, and a small web framework on top.
 *
 * `serve(options, handler)` mirrors `Deno.serve`: a handler takes a standard `Request` and returns a
 * `Response`, so any Deno.serve handler runs on Pier unchanged.
 *
 * @example
 * ```ts ignore
 * import { serve } from "@pier/pier";
 * const server = serve({ port: 8000 }, () => new Response("hello"));
 * await server.finished;
 * ```
 *
 * @module
 */

export type { Handler, ServeHandlerInfo } from "./server/types.ts";
