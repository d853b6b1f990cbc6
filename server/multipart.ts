// A streaming multipart/form-data parser (RFC 7578, framing from RFC 2046 §5.1.1). It owns the bytes of one
// request body and the files it writes for it; it must never hold a whole file in memory, never use a
// client's filename as a path, and never leave a partial file behind when it fails.
import { createHash, type Hash } from "node:crypto";
import { join } from "node:path";
import { HttpError } from "./errors.ts";
import { decodeExtValue, parseHeaderValue } from "./headers.ts";

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

/** The defaults behind every {@link MultipartOptions} limit. */
export const MULTIPART_DEFAULTS = {
  maxFileBytes: 32 * 1024 * 1024,
  maxFiles: 10,
  maxFields: 100,
  maxFieldBytes: 64 * 1024,
  maxPartHeaderBytes: 8 * 1024,
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

/** RFC 2046 §5.1.1: a boundary is 1 to 70 of these characters and does not end in a space. */
const BOUNDARY_RE = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/**
 * Whether a string is a valid multipart boundary (RFC 2046 §5.1.1).
 *
 * @param boundary The `boundary` parameter of the Content-Type, unquoted.
 * @returns True when it has 1 to 70 allowed characters and does not end in a space.
 *
 * @example
 * ```ts
 * import { isValidBoundary } from "./multipart.ts";
 * console.log(isValidBoundary("----WebKitFormBoundary7MA4YWxkTrZu0gW")); // true
 * console.log(isValidBoundary("bad;boundary")); // false
 * ```
 */
export function isValidBoundary(boundary: string): boolean {
  return BOUNDARY_RE.test(boundary);
}

/**
 * The error to throw when reading a request body fails: an `HttpError` passes through; an error carrying
 * a 4xx `status` (the engine's `ProtocolError`, say a 413 for a body over the server's limit) keeps it;
 * anything else (the client went away mid-body) becomes a 400. The original is kept as `cause`.
 *
 * @param err What the body stream threw.
 * @returns The `HttpError` to throw.
 *
 * @example
 * ```ts
 * import { bodyReadError } from "./multipart.ts";
 * console.log(bodyReadError(new Deno.errors.ConnectionReset("gone")).status); // 400
 * ```
 */
export function bodyReadError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const status = (err as { status?: unknown } | null)?.status;
  const code = typeof status === "number" && status >= 400 && status < 500 ? status : 400;
  return new HttpError(code, "The request body could not be read", { cause: err });
}

/**
 * Reduce a client's filename to a safe display name: the last path segment (either separator, since the
 * client may be Windows), without control characters. The result is metadata, never a path.
 *
 * @param name The filename as sent.
 * @returns The base name, or "" when nothing usable remains.
 *
 * @example
 * ```ts
 * import { sanitizeFilename } from "./multipart.ts";
 * console.log(sanitizeFilename("C:\\Users\\me\\..\\cv.pdf")); // "cv.pdf"
 * console.log(sanitizeFilename("../../etc/passwd")); // "passwd"
 * ```
 */
export function sanitizeFilename(name: string): string {
  const last = name.slice(Math.max(name.lastIndexOf("/"), name.lastIndexOf("\\")) + 1);
  // deno-lint-ignore no-control-regex
  const base = last.replace(/[\x00-\x1f\x7f]/g, "").trim();
  return base === "." || base === ".." ? "" : base;
}

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const CRLF = new Uint8Array([CR, LF]);
const HEADER_END = new Uint8Array([CR, LF, CR, LF]);
const utf8 = new TextEncoder();

/** A needle with its Boyer–Moore–Horspool shift table, so a search skips most bytes of the haystack. */
interface Needle {
  bytes: Uint8Array;
  shift: Uint32Array;
}

function needle(bytes: Uint8Array): Needle {
  const shift = new Uint32Array(256).fill(bytes.length);
  for (let i = 0; i < bytes.length - 1; i++) shift[bytes[i]] = bytes.length - 1 - i;
  return { bytes, shift };
}

/** First index of `n` in `hay` at or after `from`, or -1. Linear on average; never worse than O(n·m). */
function indexOf(hay: Uint8Array, n: Needle, from: number): number {
  const m = n.bytes.length;
  const last = m - 1;
  let i = from;
  while (i + m <= hay.length) {
    let j = last;
    while (j >= 0 && hay[i + j] === n.bytes[j]) j--;
    if (j < 0) return i;
    i += n.shift[hay[i + last]];
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const State = {
  Preamble: "preamble",
  AfterDelimiter: "after-delimiter",
  Headers: "headers",
  Body: "body",
  Epilogue: "epilogue",
} as const;
type State = typeof State[keyof typeof State];

/** The part being received: a file on disk or a field in memory. */
type Part =
  | { kind: "file"; file: FileSink; entry: UploadedFile; hash?: Hash }
  | { kind: "field"; name: string; chunks: Uint8Array[]; size: number };

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

/**
 * Parse a `multipart/form-data` body as it streams, writing each file part straight to `uploadDir`.
 *
 * Files get random names (`crypto.randomUUID()`); the client's filename is kept only as metadata. On any
 * failure (a limit hit: 413; malformed framing: 400; the stream erroring: 400) every file this call
 * created is removed before the error is thrown. Use `readMultipart` from `body.ts` to get Content-Type
 * checks and a read timeout on top.
 *
 * @param body The body bytes: `request.body`, or any async iterable of chunks.
 * @param boundary The boundary from the Content-Type (validate it with {@link isValidBoundary}).
 * @param options Where files go, and the limits.
 * @returns The fields and the files written.
 * @throws {HttpError} 413 when a limit is crossed, 400 when the body is malformed or cut short.
 *
 * @example
 * ```ts
 * import { parseMultipart } from "./multipart.ts";
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
  const limits = { ...MULTIPART_DEFAULTS, ...options };
  const delimiter = needle(utf8.encode(`\r\n--${boundary}`));
  const headerEnd = needle(HEADER_END);
  const keep = delimiter.bytes.length - 1; // bytes held back: the most a split delimiter can have arrived

  const fields = new URLSearchParams();
  const files: UploadedFile[] = [];
  const created: string[] = [];
  let fieldCount = 0;
  let part: Part | undefined;
  let state = State.Preamble as State; // widened: closures below change it
  // A virtual CRLF lets the first delimiter (which has none before it) match the same needle as the others.
  let buf: Uint8Array = CRLF;
  let headerScan = 0;
  let total = 0;

  const emit = async (bytes: Uint8Array): Promise<void> => {
    if (bytes.length === 0 || !part) return;
    if (part.kind === "file") {
      part.entry.size += bytes.length;
      if (part.entry.size > limits.maxFileBytes) {
        throw new HttpError(413, `File "${part.entry.field}" exceeds ${limits.maxFileBytes} bytes`);
      }
      part.hash?.update(bytes);
      await part.file.write(bytes);
    } else {
      part.size += bytes.length;
      if (part.size > limits.maxFieldBytes) {
        throw new HttpError(413, `Field "${part.name}" exceeds ${limits.maxFieldBytes} bytes`);
      }
      part.chunks.push(bytes.slice()); // a copy: a view would pin the whole network chunk
    }
  };

  const finishPart = async (): Promise<void> => {
    if (!part) return;
    const done = part;
    if (done.kind === "file") {
      await done.file.flush(); // on failure `part` is still set, so the cleanup below closes the file
      done.file.close();
      part = undefined;
      if (done.hash) done.entry.sha256 = done.hash.digest("hex");
      // HTML sends `filename=""` with no bytes for a file input left empty: that is no file at all.
      if (done.entry.filename === "" && done.entry.size === 0) {
        await removeQuietly(done.entry.path);
        created.splice(created.indexOf(done.entry.path), 1);
      } else {
        files.push(done.entry);
      }
    } else {
      part = undefined;
      fields.append(done.name, new TextDecoder().decode(joinChunks(done.chunks)));
    }
  };

  const startPart = async (block: Uint8Array): Promise<void> => {
    const headers = parsePartHeaders(block);
    const cd = parseHeaderValue(headers.get("content-disposition") ?? "");
    const name = cd.params.get("name");
    if (cd.value !== "form-data" || name === undefined) {
      throw new HttpError(400, "Multipart part without Content-Disposition: form-data; name=...");
    }
    const plain = cd.params.get("filename");
    const extended = cd.params.get("filename*");
    const decoded = extended === undefined ? undefined : decodeExtValue(extended);
    // Any filename parameter makes it a file part, even one whose filename* cannot be decoded.
    if (plain === undefined && extended === undefined) {
      if (++fieldCount > limits.maxFields) throw new HttpError(413, `More than ${limits.maxFields} fields`);
      part = { kind: "field", name, chunks: [], size: 0 };
      return;
    }
    if (files.length + 1 > limits.maxFiles) throw new HttpError(413, `More than ${limits.maxFiles} files`);
    const path = join(limits.uploadDir, crypto.randomUUID());
    created.push(path); // before opening: a failure after this line still finds it for cleanup
    const file = new FileSink(await Deno.open(path, { write: true, createNew: true, mode: 0o600 }));
    part = {
      kind: "file",
      file,
      hash: limits.sha256 ? createHash("sha256") : undefined,
      entry: {
        field: name,
        // RFC 7578 §4.2 / RFC 8187: filename* wins when both are present and it decodes.
        filename: sanitizeFilename(decoded ?? plain ?? ""),
        contentType: headers.get("content-type")?.trim() || "application/octet-stream",
        size: 0,
        path,
      },
    };
  };

  // Between data chunks only a short carry (under one delimiter) is held. Rather than copying each chunk
  // onto it (a copy and an allocation per chunk, hundreds of MiB of garbage on a big upload), look for a
  // delimiter that starts in the carry using the carry and the chunk's first bytes, then go on in the
  // chunk itself. Called with buf.length <= keep and chunk.length >= keep.
  const bridge = async (chunk: Uint8Array): Promise<void> => {
    const carry = buf.length;
    const at = carry === 0 ? -1 : indexOf(concat(buf, chunk.subarray(0, keep)), delimiter, 0);
    if (at >= 0) {
      // It starts in the carry (a delimiter is longer than the chunk bytes appended to it).
      if (state === State.Body) {
        await emit(buf.subarray(0, at));
        await finishPart();
      }
      buf = chunk.subarray(at + delimiter.bytes.length - carry);
      state = State.AfterDelimiter;
    } else {
      if (state === State.Body) await emit(buf);
      buf = chunk;
    }
  };

  // Runs the state machine over `buf` until it needs more bytes.
  const step = async (): Promise<void> => {
    while (true) {
      switch (state) {
        case State.Preamble:
        case State.Body: {
          const at = indexOf(buf, delimiter, 0);
          if (at < 0) {
            // No delimiter yet: everything but a possible delimiter prefix at the end is part data.
            const cut = Math.max(0, buf.length - keep);
            if (state === State.Body) await emit(buf.subarray(0, cut));
            buf = buf.subarray(cut);
            return;
          }
          if (state === State.Body) {
            await emit(buf.subarray(0, at));
            await finishPart();
          }
          buf = buf.subarray(at + delimiter.bytes.length);
          state = State.AfterDelimiter;
          break;
        }
        case State.AfterDelimiter: {
          // After a delimiter: "--" closes the body; else optional padding (LWSP) then CRLF.
          if (buf.length < 2) return;
          if (buf[0] === DASH) {
            if (buf[1] !== DASH) throw new HttpError(400, "Malformed multipart delimiter");
            state = State.Epilogue;
            break;
          }
          let i = 0;
          while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
          if (i > limits.maxPartHeaderBytes) throw new HttpError(413, "Multipart part headers too large");
          if (i + 1 >= buf.length) return;
          if (buf[i] !== CR || buf[i + 1] !== LF) throw new HttpError(400, "Malformed multipart delimiter");
          buf = buf.subarray(i); // keep the CRLF: the header block then ends at the first CRLFCRLF
          headerScan = 0;
          state = State.Headers;
          break;
        }
        case State.Headers: {
          const at = indexOf(buf, headerEnd, headerScan);
          if (at < 0) {
            if (buf.length > limits.maxPartHeaderBytes + HEADER_END.length) {
              throw new HttpError(413, `Multipart part headers exceed ${limits.maxPartHeaderBytes} bytes`);
            }
            headerScan = Math.max(0, buf.length - (HEADER_END.length - 1)); // rescan only the new bytes
            return;
          }
          if (at - 2 > limits.maxPartHeaderBytes) {
            throw new HttpError(413, `Multipart part headers exceed ${limits.maxPartHeaderBytes} bytes`);
          }
          await startPart(at >= 2 ? buf.subarray(2, at) : new Uint8Array(0));
          buf = buf.subarray(at + HEADER_END.length);
          state = State.Body;
          break;
        }
        case State.Epilogue:
          buf = new Uint8Array(0); // RFC 2046: the epilogue is to be ignored
          return;
      }
    }
  };

  try {
    const reader = body[Symbol.asyncIterator]();
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
        if ((state === State.Body || state === State.Preamble) && chunk.value.length >= keep) {
          await bridge(chunk.value);
        } else {
          buf = concat(buf, chunk.value);
        }
        await step();
      }
    } catch (err) {
      // Stop the client's stream too: nothing more of this body will be read.
      await reader.return?.().catch(() => {});
      throw err;
    }
    if (state !== State.Epilogue) {
      throw new HttpError(400, "Multipart body ended before its closing delimiter");
    }
    return { fields, files };
  } catch (err) {
    if (part?.kind === "file") part.file.close();
    await Promise.all(created.map(removeQuietly));
    throw err;
  }
}

function joinChunks(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  n = 0;
  for (const c of chunks) {
    out.set(c, n);
    n += c.length;
  }
  return out;
}

/** Parse a part's header block (lines split by CRLF). Names lower-cased; values decoded as UTF-8. */
function parsePartHeaders(block: Uint8Array): Map<string, string> {
  const headers = new Map<string, string>();
  if (block.length === 0) return headers;
  // RFC 7578 §5.1: non-ASCII field names and filenames arrive as raw UTF-8.
  for (const line of new TextDecoder().decode(block).split("\r\n")) {
    const colon = line.indexOf(":");
    // RFC 9112 §5.2: obsolete line folding is rejected, as is a line with no name.
    if (colon <= 0 || line[0] === " " || line[0] === "\t") {
      throw new HttpError(400, "Malformed multipart part header");
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}
