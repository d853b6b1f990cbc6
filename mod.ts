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

// Framework: router, errors, cookies, templates, security
export type { Context, Middleware, RouteHandler } from "./server/context.ts";
export {
  type ErrorHandler,
  type MethodNotAllowedHandler,
  type RouteMatch,
  Router,
  type RouterOptions,
} from "./server/router.ts";
export { errorResponse, HttpError, type HttpErrorOptions, statusText } from "./server/errors.ts";
export {
  type CookieOptions,
  deleteCookie,
  getCookies,
  parseCookies,
  serializeCookie,
  setCookie,
} from "./server/cookies.ts";
export {
  compileTemplate,
  type CompileTemplateOptions,
  escapeHtml,
  type Template,
  Templates,
  type TemplatesOptions,
} from "./server/template.ts";
export {
  crossOriginProtection,
  type CrossOriginProtectionOptions,
  DEFAULT_CONTENT_SECURITY_POLICY,
  securityHeaders,
  type SecurityHeadersOptions,
} from "./server/security.ts";
