// Reading request bodies for handlers: urlencoded forms and multipart uploads, each under limits, read as a
// stream that stops the moment a limit is crossed. It must never buffer past a limit, nor wait forever on a
// client that stopped sending.
import { HttpError } from "./errors.ts";
import { type HeaderValue, parseHeaderValue } from "./headers.ts";
import {
  bodyReadError,
  isValidBoundary,
  MULTIPART_DEFAULTS,
  type MultipartOptions,
  type MultipartResult,
  parseMultipart,
} from "./multipart.ts";
import { concatBytes } from "./_bytes.ts";

/**
 * How long to wait for the next chunk of a body before giving up with 408, in milliseconds. 30 s: long
 * enough for a phone on a bad network, short enough that a trickling client cannot hold a slot for long.
 */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/** Limits for {@link parseUrlEncoded}. */
export interface UrlEncodedLimits {
  /** Largest body, in bytes (413 beyond). Default 1 MiB: forms are text; uploads go through multipart. */
  maxBytes?: number;
  /** Most `&`-separated fields (400 beyond). Default 1000, as PHP's `max_input_vars`. */
  maxFields?: number;
  /** Longest single `name=value` field, in bytes as sent (400 beyond). Default 64 KiB. */
  maxFieldBytes?: number;
  /** Idle time allowed between chunks before a 408, in ms. Default {@link DEFAULT_BODY_TIMEOUT_MS}. */
  bodyTimeoutMs?: number;
}

/** The defaults behind every {@link UrlEncodedLimits} field. */
export const URLENCODED_DEFAULTS = {
  maxBytes: 1024 * 1024,
  maxFields: 1000,
  maxFieldBytes: 64 * 1024,
  bodyTimeoutMs: DEFAULT_BODY_TIMEOUT_MS,
} as const;

/**
 * Iterate over a body's chunks, failing with 408 when none arrives for `timeoutMs`.
 *
 * The timer restarts with each chunk, so a large body on a slow but steady link is fine; a client that
 * stops sending is cut off. On early exit or timeout the stream is cancelled.
 *
 * @param stream The body, e.g. `request.body`.
 * @param timeoutMs The longest wait for one chunk, in milliseconds.
 * @returns An async iterable of the chunks.
 * @throws {HttpError} 408 when the wait for a chunk exceeds `timeoutMs`; when the stream fails, 400 (or
 *   the 4xx status the failure carries, such as the engine's 413).
 *
 * @example
 * ```ts
 * import { readChunks } from "./body.ts";
 * let n = 0;
 * for await (const chunk of readChunks(new Blob(["hello"]).stream(), 1000)) n += chunk.length;
 * console.log(n); // 5
 * ```
 */
export async function* readChunks(
  stream: ReadableStream<Uint8Array>,
  timeoutMs: number = DEFAULT_BODY_TIMEOUT_MS,
): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = stream.getReader();
  let finished = false;
  try {
    while (true) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new HttpError(408, `No request body data for ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await Promise.race([reader.read(), timeout]);
      } catch (err) {
        throw bodyReadError(err);
      } finally {
        clearTimeout(timer);
      }
      if (result.done) {
        finished = true;
        return;
      }
      yield result.value;
    }
  } finally {
    // Cancelling also settles a read still pending after a timeout, so nothing is left waiting.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** The media type of a request, lower-cased, with its parameters; 415 when absent. */
function mediaType(request: Request): HeaderValue {
  const header = request.headers.get("content-type");
  if (header === null) throw new HttpError(415, "Missing Content-Type");
  return parseHeaderValue(header);
}

/** 413 before reading a byte when the declared Content-Length is already over the limit. */
function checkDeclaredLength(request: Request, max: number): void {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > max) {
    throw new HttpError(413, `Request body of ${declared} bytes exceeds ${max} bytes`);
  }
}

const AMP = 0x26;

/**
 * Read an `application/x-www-form-urlencoded` body into `URLSearchParams`, under limits.
 *
 * The body is read chunk by chunk and reading stops as soon as a limit is crossed: a body over `maxBytes`
 * gives 413 (also when Content-Length says so up front), more than `maxFields` fields or a field longer
 * than `maxFieldBytes` gives 400, and so does malformed encoding (a bad `%` escape or invalid UTF-8),
 * which `URLSearchParams` alone would let through silently. A body with no chunk for `bodyTimeoutMs`
 * gives 408.
 *
 * @param request The request; its Content-Type must be `application/x-www-form-urlencoded` (else 415).
 * @param limits Size, count, length and time limits; each has a default.
 * @returns The fields, in order, repeats kept.
 * @throws {HttpError} 400, 408, 413 or 415 as described.
 *
 * @example
 * ```ts
 * import { parseUrlEncoded } from "./body.ts";
 * const req = new Request("http://localhost/", {
 *   method: "POST",
 *   headers: { "content-type": "application/x-www-form-urlencoded" },
 *   body: "name=Ada+Lovelace&tag=math&tag=poetry",
 * });
 * const form = await parseUrlEncoded(req);
 * console.log(form.get("name"), form.getAll("tag")); // "Ada Lovelace" ["math", "poetry"]
 * ```
 */
export async function parseUrlEncoded(
  request: Request,
  limits: UrlEncodedLimits = {},
): Promise<URLSearchParams> {
  const { maxBytes, maxFields, maxFieldBytes, bodyTimeoutMs } = { ...URLENCODED_DEFAULTS, ...limits };
  if (mediaType(request).value !== "application/x-www-form-urlencoded") {
    throw new HttpError(415, "Expected Content-Type application/x-www-form-urlencoded");
  }
  checkDeclaredLength(request, maxBytes);
  const params = new URLSearchParams();
  if (request.body === null) return params;

  const chunks: Uint8Array[] = [];
  let total = 0;
  let fields = 1;
  let fieldBytes = 0;
  for await (const chunk of readChunks(request.body, bodyTimeoutMs)) {
    total += chunk.length;
    if (total > maxBytes) throw new HttpError(413, `Form body exceeds ${maxBytes} bytes`);
    // Count fields and measure each one as the bytes arrive, so an abusive body stops early.
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] === AMP) {
        if (++fields > maxFields) throw new HttpError(400, `Form has more than ${maxFields} fields`);
        fieldBytes = 0;
      } else if (++fieldBytes > maxFieldBytes) {
        throw new HttpError(400, `Form field longer than ${maxFieldBytes} bytes`);
      }
    }
    chunks.push(chunk);
  }

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(concatBytes(chunks));
  } catch {
    throw new HttpError(400, "Form body is not valid UTF-8");
  }
  // WHATWG URL §5.1 (application/x-www-form-urlencoded parsing), but strict about bad escapes.
  for (const field of text.split("&")) {
    if (field === "") continue;
    const eq = field.indexOf("=");
    const name = eq < 0 ? field : field.slice(0, eq);
    const value = eq < 0 ? "" : field.slice(eq + 1);
    params.append(decodeFormComponent(name), decodeFormComponent(value));
  }
  return params;
}

function decodeFormComponent(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll("+", " "));
  } catch {
    throw new HttpError(400, "Malformed percent-encoding in form body");
  }
}

/** Options for {@link readMultipart}: the parser's limits and destination, plus a read timeout. */
export interface ReadMultipartOptions extends MultipartOptions {
  /** Idle time allowed between chunks before a 408, in ms. Default {@link DEFAULT_BODY_TIMEOUT_MS}. */
  bodyTimeoutMs?: number;
}

/**
 * Read a `multipart/form-data` request: check its Content-Type, then stream it through `parseMultipart`,
 * writing file parts to `options.uploadDir` under random names.
 *
 * 415 when the type is not multipart/form-data; 400 when the boundary is missing or invalid; 413 when the
 * declared Content-Length is already over `maxTotalBytes` (before any byte is read, so a client waiting
 * on `Expect: 100-continue` is refused without sending) or a limit is crossed while reading; 408 when no
 * chunk arrives for `bodyTimeoutMs`. On any error, every file written for this request is removed.
 *
 * @param request The request.
 * @param options Upload directory, limits and timeout.
 * @returns The fields and the files on disk; the caller moves or removes the files.
 * @throws {HttpError} 400, 408, 413 or 415 as described.
 *
 * @example
 * ```ts
 * import { readMultipart } from "./body.ts";
 * const form = new FormData();
 * form.append("title", "Holiday");
 * form.append("photo", new File(["...jpeg bytes..."], "beach.jpg", { type: "image/jpeg" }));
 * const req = new Request("http://localhost/upload", { method: "POST", body: form });
 * const uploadDir = await Deno.makeTempDir();
 * const { fields, files } = await readMultipart(req, { uploadDir, maxFileBytes: 5 * 1024 * 1024 });
 * console.log(fields.get("title"), files[0].filename, files[0].contentType); // Holiday beach.jpg image/jpeg
 * await Deno.remove(uploadDir, { recursive: true });
 * ```
 */
export async function readMultipart(
  request: Request,
  options: ReadMultipartOptions,
): Promise<MultipartResult> {
  const type = mediaType(request);
  if (type.value !== "multipart/form-data") {
    throw new HttpError(415, "Expected Content-Type multipart/form-data");
  }
  const boundary = type.params.get("boundary");
  if (boundary === undefined || !isValidBoundary(boundary)) {
    throw new HttpError(400, "multipart/form-data without a valid boundary");
  }
  const { bodyTimeoutMs = DEFAULT_BODY_TIMEOUT_MS, ...limits } = options;
  checkDeclaredLength(request, limits.maxTotalBytes ?? MULTIPART_DEFAULTS.maxTotalBytes);
  if (request.body === null) throw new HttpError(400, "multipart/form-data without a body");
  return await parseMultipart(readChunks(request.body, bodyTimeoutMs), boundary, limits);
}
