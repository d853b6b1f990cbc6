/**
 * Pier: an HTTP/1.1 server written from scratch for Deno, and a small web framework on top.
 *
 * `serve(options, handler)` mirrors `Deno.serve`: a handler takes a standard `Request` and returns a
 * `Response`, so any Deno.serve handler runs on Pier unchanged. This entry point is the server and the
 * framework; the sans-IO HTTP/1.1 parser underneath is the low-level API, at `@pier/pier/http1`, and a
 * session store in a SQLite file is at `@pier/pier/sqlite-session`.
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

// The HTTP/1.1 engine
export {
  defaultMaxConnections,
  fileLimit,
  KEEP_ALIVE_MARGIN_MS,
  keepAliveHintSeconds,
  type PierServer,
  removeStaleSocket,
  serve,
  SERVE_DEFAULTS,
  type ServeOptions,
  type ServeUnixOptions,
} from "./server/serve.ts";
export type { Refusal } from "./server/conn.ts";
// The limits every server enforces (the parser itself is the "./http1" entry point: the low-level API).
export { DEFAULT_PARSER_LIMITS, type ParserLimits } from "./server/http1.ts";

// OpenTelemetry, on with Deno's (OTEL_DENO=true): the request's span, and spans of your own around calls
export {
  activeSpan,
  type Attributes,
  type AttributeValue,
  type Span,
  SpanKind,
  type SpanOptions,
  telemetryEnabled,
  withSpan,
} from "./server/otel.ts";

// WebSocket (RFC 6455) with permessage-deflate (RFC 7692), shaped as Deno.upgradeWebSocket
export {
  PierWebSocket,
  PierWebSocketStream,
  upgradeWebSocket,
  type UpgradeWebSocketOptions,
  upgradeWebSocketStream,
  WEBSOCKET_DEFAULTS,
  type WebSocketCloseInfo,
  type WebSocketStreamConnection,
  type WebSocketUpgrade,
} from "./server/websocket.ts";
export { DEFLATE_DEFAULTS, type DeflateOptions } from "./server/websocket_deflate.ts";

// Framework: router, errors, cookies, templates, security
export {
  type Context,
  type ContextOptions,
  createContext,
  type Middleware,
  peerAddress,
  type RouteHandler,
  UNIX_PEER,
} from "./server/context.ts";
export {
  type ErrorHandler,
  type MethodNotAllowedHandler,
  type RouteMatch,
  Router,
  ROUTER_VERBS,
  type RouterOptions,
  type RouterVerbs,
  type UseOptions,
} from "./server/router.ts";
export type { MatchedRoute, RouteMatcher } from "./server/router_trie.ts";
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
  templateFileName,
  templateIncludes,
} from "./server/template.ts";
export { Templates, type TemplatesOptions } from "./server/template_files.ts";
export {
  crossOriginProtection,
  type CrossOriginProtectionOptions,
  DEFAULT_CONTENT_SECURITY_POLICY,
  securityHeaders,
  securityHeadersFor,
  type SecurityHeadersOptions,
} from "./server/security.ts";

// Framework: bodies, multipart, sessions
export {
  DEFAULT_BODY_TIMEOUT_MS,
  MULTIPART_DEFAULTS,
  type MultipartOptions,
  type MultipartResult,
  parseMultipart,
  parseUrlEncoded,
  readChunks,
  readMultipart,
  type ReadMultipartOptions,
  type UploadedFile,
  URLENCODED_DEFAULTS,
  type UrlEncodedLimits,
} from "./server/body.ts";
export { isValidBoundary, sanitizeFilename } from "./server/multipart.ts";
export {
  DEFAULT_ABSOLUTE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_SESSION_COOKIE,
  DEFAULT_TOUCH_INTERVAL_MS,
  MemorySessionStore,
  Session,
  type SessionData,
  type SessionOptions,
  sessions,
  type SessionStore,
  type StoredSession,
} from "./server/session.ts";

// Server-Sent Events
export {
  type EventStream,
  formatEvent,
  type ServerSentEvent,
  sse,
  SSE_DEFAULTS,
  type SseOptions,
} from "./server/sse.ts";

// Static files
export {
  type CacheControlRule,
  DEFAULT_CACHE_CONTROL,
  type SecurityEvent,
  serveStatic,
  staticFiles,
  type StaticOptions,
} from "./server/static.ts";
export { decodePathOnce, isInside, resolveSafePath, type SafePath } from "./server/safe_path.ts";
// Validators, preconditions, ranges and negotiation, pure functions any handler can use; content types
export {
  type Answer,
  answerFor,
  type ByteRange,
  checkIfRange,
  checkPreconditions,
  type ConditionalRequest,
  type EntityTag,
  etagMatches,
  fileEtag,
  negotiateEncoding,
  parseEtags,
  parseHttpDate,
  parseRange,
  type Representation,
  type Validators,
} from "./server/conditional.ts";
export { contentTypeFor, isCompressible } from "./server/mime.ts";
