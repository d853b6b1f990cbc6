// Turning errors into responses. A `HttpError` carries the status and message a client may see; anything
// else is a bug, answered with a bare 500 while the log gets the details (internals never reach a client).

import { STATUS_TEXT } from "./status.ts";

/** Options for {@link HttpError}. */
export interface HttpErrorOptions {
  /** Whether the message may be shown to the client. Default: true below 500, false from 500 up. */
  expose?: boolean;
  /** Headers to send with the error response (`Allow` for a 405, `Retry-After` for a 503, ...). */
  headers?: HeadersInit;
  /** The underlying error, kept for the log. */
  cause?: unknown;
}

/**
 * An error that becomes an HTTP response with its own status and message.
 *
 * Only 4xx and 5xx statuses are allowed: anything else is not an error. A 5xx message is hidden from the
 * client unless `expose: true`, since server-side failures tend to describe internals.
 *
 * @example
 * ```ts
 * import { HttpError } from "./errors.ts";
 * const handler = (): Response => {
 *   throw new HttpError(404, "No such page");
 * };
 * ```
 */
export class HttpError extends Error {
  /** The response status, 400 to 599. */
  readonly status: number;
  /** Whether {@link errorResponse} shows the message to the client. */
  readonly expose: boolean;
  /** Headers for the error response. */
  readonly headers: Headers;

  /**
   * Create an error for the given status.
   *
   * @param status An HTTP status from 400 to 599.
   * @param message The text the client sees; defaults to the status's reason phrase.
   * @param options Whether to expose the message, extra headers, and a cause.
   * @throws {RangeError} When the status is not an integer from 400 to 599.
   *
   * @example
   * ```ts
   * import { HttpError } from "./errors.ts";
   * const err = new HttpError(429, "Slow down", { headers: { "retry-after": "10" } });
   * console.log(err.status, err.expose); // 429 true
   * ```
   */
  constructor(status: number, message?: string, options: HttpErrorOptions = {}) {
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`HttpError status must be an integer from 400 to 599, got ${status}`);
    }
    super(message ?? statusText(status), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HttpError";
    this.status = status;
    this.expose = options.expose ?? status < 500;
    this.headers = new Headers(options.headers);
  }
}

/**
 * The reason phrase for a status (RFC 9110 §15), or "Error" for one this module does not name.
 *
 * @param status An HTTP status code.
 * @returns Its reason phrase.
 *
 * @example
 * ```ts
 * import { statusText } from "./errors.ts";
 * console.log(statusText(404)); // "Not Found"
 * ```
 */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? "Error";
}

/**
 * Turn a thrown value into a plain-text response.
 *
 * A {@link HttpError} becomes its status, headers and (when exposed) message. Anything else becomes a
 * 500 "Internal Server Error" with no details, and the error is logged with `console.error` along with
 * the request it broke, so the operator can find out why.
 *
 * @param error What was thrown.
 * @param request The request being handled, named in the log.
 * @returns The response to send.
 *
 * @example
 * ```ts
 * import { errorResponse, HttpError } from "./errors.ts";
 * const res = errorResponse(new HttpError(404, "No such page"));
 * console.log(res.status, await res.text()); // 404 "No such page"
 * ```
 */
export function errorResponse(error: unknown, request?: Request): Response {
  const where = request ? ` for ${request.method} ${request.url}` : "";
  if (error instanceof HttpError) {
    // A 5xx HttpError is still a server-side failure: the operator needs to hear about it.
    if (error.status >= 500) console.error(`HttpError ${error.status}${where}:`, error);
    const headers = new Headers(error.headers);
    headers.set("content-type", "text/plain; charset=utf-8");
    const body = error.expose ? error.message : statusText(error.status);
    return new Response(body, { status: error.status, headers });
  }
  console.error(`Unhandled error${where}:`, error);
  return new Response(statusText(500), {
    status: 500,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
