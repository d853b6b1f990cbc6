// Reading request bodies for handlers: urlencoded forms, and multipart uploads with the files they carry. It
// owns the limits and the files (streamed to disk under random names, removed on every failure); it must never
// buffer past a limit, leave a partial file behind, nor wait forever on a client that stopped sending.
import { createHash, type Hash } from "node:crypto";
import { join } from "node:path";
import { HttpError } from "./errors.ts";
import { type HeaderValue, parseHeaderValue } from "./headers.ts";
import {
  isValidBoundary,
  MAX_PART_HEADER_BYTES,
  MultipartParser,
  NEED_DATA,
  type PartHead,
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
  yield* readStream(stream, { timeoutMs });
}

/** How {@link readStream} reads. */
interface ReadStreamOptions {
  /** The longest wait for one chunk, in ms (408 beyond); Infinity for no timer. */
  timeoutMs: number;
  /**
   * Read into this buffer (a BYOB read) when the stream is a byte stream, as Pier's request bodies are: each
   * chunk is then a view of it, valid until the next one is asked for, and reading allocates nothing.
   */
  into?: Uint8Array;
}

/**
 * The wait for a body's next chunk, with one timer for the whole body rather than one per chunk: each read
 * sets a deadline (a clock read), and when the timer fires before it, because chunks came meanwhile, it is
 * set again for what is left. It counts only while a read waits, so the time a handler spends on a chunk
 * never does. Per chunk this saves a timer, a promise and a race: on a 200 MiB upload, over a MiB less
 * garbage between two collections.
 */
class ReadDeadline {
  /** True once a read waited longer than the timeout. */
  expired = false;
  readonly #ms: number;
  readonly #onExpire: () => void;
  #deadline = 0;
  #waiting = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(ms: number, onExpire: () => void) {
    this.#ms = ms;
    this.#onExpire = onExpire;
  }

  /** A read starts waiting. */
  start(): void {
    if (this.#ms === Infinity) return; // setTimeout would take Infinity as 0
    this.#deadline = performance.now() + this.#ms;
    this.#waiting = true;
    this.#timer ??= setTimeout(this.#check, this.#ms);
  }

  /** The read was answered. */
  stop(): void {
    this.#waiting = false;
  }

  /** No more reads. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check = (): void => {
    this.#timer = undefined;
    if (!this.#waiting) return; // the next read sets it again
    const left = this.#deadline - performance.now();
    if (left > 0) {
      this.#timer = setTimeout(this.#check, left);
      return;
    }
    this.expired = true;
    this.#onExpire();
  };
}

/** The chunks of a stream, under a timeout per chunk; see {@link readChunks}. */
async function* readStream(
  stream: ReadableStream<Uint8Array>,
  options: ReadStreamOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const { timeoutMs } = options;
  let into = options.into;
  let reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader;
  try {
    reader = into === undefined ? stream.getReader() : stream.getReader({ mode: "byob" });
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    reader = stream.getReader(); // not a byte stream: take the chunks it makes
    into = undefined;
  }
  // Cancelling settles the read that waits (as done), and stops the stream's source.
  const deadline = new ReadDeadline(timeoutMs, () => void reader.cancel().catch(() => {}));
  let finished = false;
  try {
    while (true) {
      let result: ReadableStreamReadResult<Uint8Array>;
      deadline.start();
      try {
        result = into === undefined
          ? await (reader as ReadableStreamDefaultReader<Uint8Array>).read()
          : await (reader as ReadableStreamBYOBReader).read(into);
      } catch (err) {
        throw bodyReadError(err);
      } finally {
        deadline.stop();
      }
      if (deadline.expired) throw new HttpError(408, `No request body data for ${timeoutMs} ms`);
      if (result.done) {
        finished = true;
        return;
      }
      yield result.value;
      // A BYOB read moves the buffer into the chunk it answers (the old view is detached): read into it again.
      if (into !== undefined) into = new Uint8Array(result.value.buffer);
    }
  } finally {
    deadline.clear();
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * The error to throw when reading a request body fails: an `HttpError` passes through; an error carrying
 * a 4xx `status` (the engine's `ProtocolError`, say a 413 for a body over the server's limit) keeps it;
 * anything else (the client went away mid-body) becomes a 400. The original is kept as `cause`.
 */
function bodyReadError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const status = (err as { status?: unknown } | null)?.status;
  const code = typeof status === "number" && status >= 400 && status < 500 ? status : 400;
  return new HttpError(code, "The request body could not be read", { cause: err });
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

/** Limits and destination for {@link parseMultipart}. Every limit has a default; 0 is not "unlimited". */
export interface MultipartOptions {
  /** Directory the file parts are written into, under random names. Required: it decides `--allow-write`. */
  uploadDir: string;
  /** Largest single file part, in bytes. Default 32 MiB: photos and documents, not video. */
  maxFileBytes?: number;
  /** Most file parts in one body. Default 10: a form rarely has more inputs than that. */
  maxFiles?: number;
  /** Most non-file parts in one body. Default 100: a long form, with room to spare. */
  maxFields?: number;
  /** Largest non-file part, in bytes. Default 64 KiB: fields are held in memory, files are not. */
  maxFieldBytes?: number;
  /** Largest header block of one part, in bytes. Default 8 KiB, like most servers' header lines. */
  maxPartHeaderBytes?: number;
  /** Largest whole body, in bytes, preamble and epilogue included. Default 64 MiB. */
  maxTotalBytes?: number;
  /** Compute each file's SHA-256 while it streams. Default true: it costs one pass, already in cache. */
  sha256?: boolean;
}

/**
 * The defaults behind every {@link MultipartOptions} limit.
 *
 * @example
 * ```ts
 * import { MULTIPART_DEFAULTS } from "./body.ts";
 * console.log(MULTIPART_DEFAULTS.maxFileBytes); // 33554432
 * ```
 */
export const MULTIPART_DEFAULTS = {
  maxFileBytes: 32 * 1024 * 1024,
  maxFiles: 10,
  maxFields: 100,
  maxFieldBytes: 64 * 1024,
  maxPartHeaderBytes: MAX_PART_HEADER_BYTES,
  maxTotalBytes: 64 * 1024 * 1024,
  sha256: true,
} as const;

/** One file part, already on disk. The caller owns `path` from here on (move it or remove it). */
export interface UploadedFile {
  /** The form field name (the `name` parameter). */
  field: string;
  /** The client's filename: metadata only, stripped of any directory part. May be empty. */
  filename: string;
  /** The part's Content-Type; `application/octet-stream` when absent (RFC 7578 §4.4). */
  contentType: string;
  /** Size in bytes. */
  size: number;
  /** Where the bytes are: `uploadDir` joined with a random UUID. */
  path: string;
  /** Hex SHA-256 of the bytes, when the `sha256` option is on. */
  sha256?: string;
}

/** What {@link parseMultipart} returns: text fields (repeats kept, in order) and files on disk. */
export interface MultipartResult {
  /** Non-file parts, decoded as UTF-8. `getAll(name)` gives repeated fields. */
  fields: URLSearchParams;
  /** File parts, in the order they arrived. */
  files: UploadedFile[];
}

/**
 * A multipart body is read into one buffer of this size, again and again, when its stream is a byte stream
 * (Pier's request bodies are): the engine reads a large body 64 KiB at a time, so one read takes what one
 * socket read brought. A fresh chunk per read was 200 MiB of garbage for a 200 MiB upload, each chunk held
 * until the next garbage collection: most of what such an upload added to the server's memory.
 */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Small writes are gathered up to this many bytes before they reach the disk, so a client sending tiny
 * chunks costs one syscall per 64 KiB rather than one per chunk. Bounded memory: one batch per file.
 */
const WRITE_BATCH_BYTES = 64 * 1024;

/** A file being written, with a bounded staging buffer for small chunks. */
class FileSink {
  #file: Deno.FsFile;
  #staging: Uint8Array | undefined;
  #used = 0;

  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /** Write `bytes` (or stage them); they may be reused once this resolves. */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.#used + bytes.length > WRITE_BATCH_BYTES) await this.flush();
    if (bytes.length >= WRITE_BATCH_BYTES) return await this.#writeAll(bytes);
    this.#staging ??= new Uint8Array(WRITE_BATCH_BYTES);
    this.#staging.set(bytes, this.#used);
    this.#used += bytes.length;
  }

  async flush(): Promise<void> {
    if (this.#used === 0 || !this.#staging) return;
    const n = this.#used;
    this.#used = 0;
    await this.#writeAll(this.#staging.subarray(0, n));
  }

  close(): void {
    try {
      this.#file.close();
    } catch {
      // Already closed: closing is idempotent here.
    }
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    // Awaiting each write is the backpressure: the next chunk is not read until the disk took this one.
    for (let off = 0; off < bytes.length;) off += await this.#file.write(bytes.subarray(off));
  }
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** The part being received: a file on disk or a field in memory. */
type OpenPart =
  | { kind: "file"; sink: FileSink; entry: UploadedFile; hash: Hash | null }
  | { kind: "field"; name: string; chunks: Uint8Array[]; size: number };

/**
 * One multipart body being received: the parser's events in, fields and files on disk out, under the
 * limits. Every file it creates is listed in `#created` before it is opened, so {@link discard} finds it
 * whatever failed, and when.
 */
class FormReceiver {
  readonly fields = new URLSearchParams();
  readonly files: UploadedFile[] = [];
  readonly #limits: Required<MultipartOptions>;
  readonly #created: string[] = [];
  #fieldCount = 0;
  #part: OpenPart | null = null;

  constructor(limits: Required<MultipartOptions>) {
    this.#limits = limits;
  }

  /** Take the parser's events until it needs more bytes. */
  async take(parser: MultipartParser): Promise<void> {
    for (let event = parser.next(); event !== NEED_DATA; event = parser.next()) {
      switch (event.type) {
        case "part-start":
          await this.#start(event.part);
          break;
        case "data":
          await this.#data(event.data);
          break;
        case "part-end":
          await this.#end();
          break;
        case "done":
          break; // what follows is the epilogue, which the parser ignores (RFC 2046 §5.1.1)
        case "error":
          throw new HttpError(event.error.status, event.error.message);
      }
    }
  }

  async #start(head: PartHead): Promise<void> {
    const limits = this.#limits;
    if (head.filename === null) {
      if (++this.#fieldCount > limits.maxFields) {
        throw new HttpError(413, `More than ${limits.maxFields} fields`);
      }
      this.#part = { kind: "field", name: head.name, chunks: [], size: 0 };
      return;
    }
    if (this.files.length + 1 > limits.maxFiles) {
      throw new HttpError(413, `More than ${limits.maxFiles} files`);
    }
    const path = join(limits.uploadDir, crypto.randomUUID());
    this.#created.push(path); // before opening: a failure after this line still finds it for cleanup
    const sink = new FileSink(await Deno.open(path, { write: true, createNew: true, mode: 0o600 }));
    this.#part = {
      kind: "file",
      sink,
      hash: limits.sha256 ? createHash("sha256") : null,
      entry: {
        field: head.name,
        filename: head.filename,
        // RFC 7578 §4.4 defaults a part to text/plain, but a file without a type is opaque bytes.
        contentType: head.contentType ?? "application/octet-stream",
        size: 0,
        path,
      },
    };
  }

  async #data(bytes: Uint8Array): Promise<void> {
    const part = this.#part!;
    const limits = this.#limits;
    if (part.kind === "file") {
      part.entry.size += bytes.length;
      if (part.entry.size > limits.maxFileBytes) {
        throw new HttpError(413, `File "${part.entry.field}" exceeds ${limits.maxFileBytes} bytes`);
      }
      part.hash?.update(bytes);
      await part.sink.write(bytes);
    } else {
      part.size += bytes.length;
      if (part.size > limits.maxFieldBytes) {
        throw new HttpError(413, `Field "${part.name}" exceeds ${limits.maxFieldBytes} bytes`);
      }
      part.chunks.push(bytes.slice()); // a copy: the parser's bytes are reused for the next read
    }
  }

  async #end(): Promise<void> {
    const done = this.#part!;
    if (done.kind === "field") {
      this.#part = null;
      this.fields.append(done.name, new TextDecoder().decode(concatBytes(done.chunks)));
      return;
    }
    await done.sink.flush(); // on failure the part is still open, so discard() closes the file
    done.sink.close();
    this.#part = null;
    if (done.hash) done.entry.sha256 = done.hash.digest("hex");
    // HTML sends `filename=""` with no bytes for a file input left empty: that is no file at all.
    if (done.entry.filename === "" && done.entry.size === 0) {
      await removeQuietly(done.entry.path);
      this.#created.splice(this.#created.indexOf(done.entry.path), 1);
    } else {
      this.files.push(done.entry);
    }
  }

  /** After a failure: close the open file and remove every file this body created, finished or not. */
  async discard(): Promise<void> {
    if (this.#part?.kind === "file") this.#part.sink.close();
    this.#part = null;
    await Promise.all(this.#created.map(removeQuietly));
  }
}

/** Read a multipart body from `chunks` into fields and files; see {@link parseMultipart}. */
async function receiveMultipart(
  chunks: AsyncIterable<Uint8Array>,
  boundary: string,
  options: MultipartOptions,
): Promise<MultipartResult> {
  const limits = { ...MULTIPART_DEFAULTS, ...options };
  const parser = new MultipartParser(boundary, { maxPartHeaderBytes: limits.maxPartHeaderBytes });
  const form = new FormReceiver(limits);
  try {
    const reader = chunks[Symbol.asyncIterator]();
    let total = 0;
    try {
      while (true) {
        let chunk: IteratorResult<Uint8Array>;
        try {
          chunk = await reader.next();
        } catch (err) {
          throw bodyReadError(err);
        }
        if (chunk.done) break;
        total += chunk.value.length;
        if (total > limits.maxTotalBytes) {
          throw new HttpError(413, `Multipart body exceeds ${limits.maxTotalBytes} bytes`);
        }
        parser.feed(chunk.value);
        await form.take(parser); // every event of this chunk, before the next read reuses its bytes
      }
    } catch (err) {
      // Stop the client's stream too: nothing more of this body will be read.
      await reader.return?.().catch(() => {});
      throw err;
    }
    parser.end();
    await form.take(parser); // a body that ended before its close delimiter is a 400 here
    return { fields: form.fields, files: form.files };
  } catch (err) {
    await form.discard();
    throw err;
  }
}

/**
 * Parse a `multipart/form-data` body as it streams, writing each file part straight to `uploadDir`.
 *
 * Files get random names (`crypto.randomUUID()`); the client's filename is kept only as metadata. On any
 * failure (a limit hit: 413; malformed framing: 400; the stream erroring: 400) every file this call
 * created is removed before the error is thrown. A byte stream (`request.body` on Pier) is read into one
 * reused buffer. Use {@link readMultipart} to get Content-Type checks and a read timeout on top.
 *
 * @param body The body bytes: `request.body`, or any async iterable of chunks.
 * @param boundary The boundary from the Content-Type (validate it with `isValidBoundary`).
 * @param options Where files go, and the limits.
 * @returns The fields and the files written.
 * @throws {HttpError} 413 when a limit is crossed, 400 when the body is malformed or cut short.
 *
 * @example
 * ```ts
 * import { parseMultipart } from "./body.ts";
 * const body = "--xyz\r\n" +
 *   'Content-Disposition: form-data; name="title"\r\n\r\nHello\r\n' +
 *   "--xyz\r\n" +
 *   'Content-Disposition: form-data; name="doc"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\n' +
 *   "file body\r\n--xyz--\r\n";
 * const uploadDir = await Deno.makeTempDir();
 * const { fields, files } = await parseMultipart(new Blob([body]).stream(), "xyz", { uploadDir });
 * console.log(fields.get("title"), files[0].filename, files[0].size); // Hello a.txt 9
 * await Deno.remove(uploadDir, { recursive: true });
 * ```
 */
export async function parseMultipart(
  body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  boundary: string,
  options: MultipartOptions,
): Promise<MultipartResult> {
  if (!isValidBoundary(boundary)) throw new HttpError(400, "Invalid multipart boundary");
  const chunks = body instanceof ReadableStream
    ? readStream(body, { timeoutMs: Infinity, into: new Uint8Array(READ_BUFFER_BYTES) })
    : body;
  return await receiveMultipart(chunks, boundary, options);
}

/** Options for {@link readMultipart}: the parser's limits and destination, plus a read timeout. */
export interface ReadMultipartOptions extends MultipartOptions {
  /** Idle time allowed between chunks before a 408, in ms. Default {@link DEFAULT_BODY_TIMEOUT_MS}. */
  bodyTimeoutMs?: number;
}

/**
 * Read a `multipart/form-data` request: check its Content-Type, then stream it through {@link parseMultipart},
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
  const chunks = readStream(request.body, {
    timeoutMs: bodyTimeoutMs,
    into: new Uint8Array(READ_BUFFER_BYTES),
  });
  return await receiveMultipart(chunks, boundary, limits);
}
