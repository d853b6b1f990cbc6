// The multipart/form-data parser (RFC 7578, framing from RFC 2046 §5.1.1): bytes in, events out, like
// http1.ts. It owns the framing, each part's header block and its limit; it must never touch a file, a socket
// or `Deno` (body.ts owns the files), nor copy a part's bytes: they come out as views of the bytes fed.
import { decodeExtValue, parseHeaderValue } from "./headers.ts";

/**
 * The largest header block of one part, in bytes, by default (413 beyond): 8 KiB, like most servers' header
 * lines. A part's headers are held in memory until they end, so they need a bound of their own.
 */
export const MAX_PART_HEADER_BYTES = 8 * 1024;

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

/**
 * A malformed or refused multipart body. `status` is the answer it suggests: 400 for broken framing or a
 * part without its form-data disposition, 413 for a part header block over its limit.
 *
 * @example
 * ```ts
 * import { MultipartError } from "./multipart.ts";
 * const e = new MultipartError(413, "part headers exceed 8192 bytes");
 * console.log(e.status, e.message);
 * ```
 */
export class MultipartError extends Error {
  /** The HTTP status this error suggests (400 or 413). */
  readonly status: number;
  /**
   * Make an error that suggests `status`.
   *
   * @param status The status to answer with.
   * @param message What was wrong.
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "MultipartError";
    this.status = status;
  }
}

/** What a part says about itself in its header block (RFC 7578 §4.2-§4.4). */
export interface PartHead {
  /** The form field name: Content-Disposition's `name` parameter. */
  name: string;
  /**
   * The client's filename, decoded and reduced by {@link sanitizeFilename} (metadata, never a path; may be
   * ""), or null when the part has no filename parameter: a text field rather than a file.
   */
  filename: string | null;
  /** The part's Content-Type as sent, trimmed, or null when absent. */
  contentType: string | null;
  /** Every header of the part: names lower-cased, values trimmed, the first of a repeated name. */
  headers: Map<string, string>;
}

/**
 * A parser event: a part's headers, a piece of its content, its end, the end of the body; or an error.
 * The bytes of a `data` event are a view of the bytes fed (or of the parser's own small carry): use them
 * before the next call to `next()` or `feed()`, and copy what must be kept.
 */
export type MultipartEvent =
  | { type: "part-start"; part: PartHead }
  | { type: "data"; data: Uint8Array }
  | { type: "part-end" }
  | { type: "done" }
  | { type: "error"; error: MultipartError };

/** Returned by {@link MultipartParser.next} when it needs more bytes (or, after `done`, wants no more). */
export const NEED_DATA = "need-data" as const;

/** Options for {@link MultipartParser}; each has a default. */
export interface MultipartParserOptions {
  /** Largest header block of one part, in bytes; larger gets 413. Default {@link MAX_PART_HEADER_BYTES}. */
  maxPartHeaderBytes?: number;
}

/**
 * The parser's states: before the first delimiter, after a delimiter (its line not yet read), in a part's
 * header block, in a part's content, after the close delimiter, and failed.
 */
export const STATES = ["PREAMBLE", "AFTER_DELIMITER", "HEADERS", "BODY", "DONE", "ERROR"] as const;
/** One of {@link STATES}. */
export type MultipartState = typeof STATES[number];

// States and transitions are small integers, as in http1.ts: one enum idiom for every parser.
const State = { Preamble: 0, AfterDelimiter: 1, Headers: 2, Body: 3, Done: 4, Error: 5 } as const;
type State = typeof State[keyof typeof State];
const Transition = { Delimiter: 0, LineEnd: 1, PartStart: 2, Close: 3, Error: 4 } as const;
type Transition = typeof Transition[keyof typeof Transition];
const TRANSITION_NAMES = ["delimiter", "line_end", "part_start", "close", "error"] as const;
const TRANSITION_COUNT = TRANSITION_NAMES.length;
const ILLEGAL = -1;
/** Every legal step, `TRANSITIONS[state * 5 + transition]`; ILLEGAL marks a bug in this file. */
// deno-fmt-ignore
const TRANSITIONS: readonly (State | typeof ILLEGAL)[] = [
  // delimiter           line_end       part_start  close       error
  State.AfterDelimiter,  ILLEGAL,       ILLEGAL,    ILLEGAL,    State.Error, // Preamble
  ILLEGAL,               State.Headers, ILLEGAL,    State.Done, State.Error, // AfterDelimiter
  ILLEGAL,               ILLEGAL,       State.Body, ILLEGAL,    State.Error, // Headers
  State.AfterDelimiter,  ILLEGAL,       ILLEGAL,    ILLEGAL,    State.Error, // Body
  ILLEGAL,               ILLEGAL,       ILLEGAL,    ILLEGAL,    ILLEGAL,     // Done
  ILLEGAL,               ILLEGAL,       ILLEGAL,    ILLEGAL,    ILLEGAL,     // Error
];

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const SP = 0x20;
const HTAB = 0x09;
/** A header block ends at the first CRLF CRLF: these four bytes. */
const HEADER_END_BYTES = 4;
const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder();
const PART_END: MultipartEvent = Object.freeze({ type: "part-end" });
const DONE: MultipartEvent = Object.freeze({ type: "done" });

/**
 * A sans-IO `multipart/form-data` parser: `feed()` the body's bytes as they arrive, call `next()` until it
 * answers `"need-data"`, and call `end()` when the body is over. Events come in the order of the body:
 * `part-start`, `data`..., `part-end` for each part, then `done` after the close delimiter; an `error`
 * (which carries the status to answer) is returned forever once met. A body that ends before its close
 * delimiter is an error. The preamble and the epilogue are ignored (RFC 2046 §5.1.1).
 *
 * Bytes are not copied: `feed()` takes a view, `data` events are views of it. Only what may straddle two
 * feeds is kept: at most a delimiter's length of content, or one part's header block.
 *
 * @example
 * ```ts
 * import { MultipartParser, NEED_DATA } from "./multipart.ts";
 * const parser = new MultipartParser("xyz");
 * parser.feed(new TextEncoder().encode(
 *   '--xyz\r\nContent-Disposition: form-data; name="title"\r\n\r\nHello\r\n--xyz--\r\n',
 * ));
 * parser.end();
 * for (let ev = parser.next(); ev !== NEED_DATA; ev = parser.next()) {
 *   console.log(ev.type); // "part-start", "data", "part-end", "done"
 * }
 * ```
 */
export class MultipartParser {
  #state: State = State.Preamble;
  /** `\r\n--boundary`: every delimiter but a first one at the very start, which a virtual CRLF covers. */
  readonly #delimiter: Uint8Array;
  /** Boyer-Moore-Horspool shifts for the delimiter, so a search skips most bytes of a part's content. */
  readonly #shift: Uint32Array;
  readonly #maxHeaderBytes: number;
  /** The most bytes a header block can span, from the CRLF before it to the CRLF CRLF after it. */
  readonly #headerSpan: number;
  /** What next() reads: the fed bytes, or the window (the carry with the first fed bytes copied after it). */
  #input: Uint8Array = EMPTY;
  #pos = 0;
  /** The bytes fed last, and how far next() has consumed them. */
  #fed: Uint8Array = EMPTY;
  #fedPos = 0;
  /**
   * Bytes of earlier feeds not yet decided (a possible start of a delimiter, or a header block so far),
   * which come before `#fed[#fedPos]`. The parser's own buffer: it grows only to a header block's span.
   */
  #carry: Uint8Array;
  #carryLength = 0;
  /** True while #input is the window; then #fed's bytes start at #carryLength in it. */
  #inWindow = false;
  /** How many fed bytes the window holds. */
  #windowFed = 0;
  /** Header bytes already searched for the block's end, from the block's start (a resumable scan). */
  #headerScanned = 0;
  /** Transport padding seen after the current delimiter (RFC 2046 §5.1.1: LWSP before the CRLF). */
  #padding = 0;
  #ended = false;
  #error: { type: "error"; error: MultipartError } | null = null;

  /**
   * Make a parser for one body.
   *
   * @param boundary The boundary from the Content-Type, unquoted.
   * @param options Limits; each has a default.
   * @throws {MultipartError} 400 when the boundary is not valid (RFC 2046 §5.1.1).
   */
  constructor(boundary: string, options: MultipartParserOptions = {}) {
    if (!isValidBoundary(boundary)) throw new MultipartError(400, `invalid multipart boundary "${boundary}"`);
    this.#delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
    const m = this.#delimiter.length;
    this.#shift = new Uint32Array(256).fill(m);
    for (let i = 0; i < m - 1; i++) this.#shift[this.#delimiter[i]] = m - 1 - i;
    this.#maxHeaderBytes = options.maxPartHeaderBytes ?? MAX_PART_HEADER_BYTES;
    this.#headerSpan = 2 + this.#maxHeaderBytes + HEADER_END_BYTES;
    // The virtual CRLF: the first delimiter has no line before it, so it matches the same needle.
    this.#carry = new Uint8Array(2 * m);
    this.#carry[0] = CR;
    this.#carry[1] = LF;
    this.#carryLength = 2;
  }

  /** The current state: one of {@link STATES}. */
  get state(): MultipartState {
    return STATES[this.#state];
  }

  /**
   * Bytes the parser holds from earlier feeds: less than a delimiter while it reads a part's content, up to
   * one header block while it reads one. Everything else stays in the caller's bytes.
   */
  get buffered(): number {
    return this.#carryLength;
  }

  #go(transition: Transition): void {
    const to = TRANSITIONS[this.#state * TRANSITION_COUNT + transition];
    if (to === ILLEGAL) {
      throw new Error(
        `illegal multipart transition: "${TRANSITION_NAMES[transition]}" in state ${STATES[this.#state]}`,
      );
    }
    this.#state = to;
  }

  #fail(status: number, message: string): { type: "error"; error: MultipartError } {
    this.#go(Transition.Error);
    this.#error = { type: "error", error: new MultipartError(status, message) };
    return this.#error;
  }

  /**
   * Give the parser the next bytes of the body. They are not copied: leave them unchanged until `next()`
   * answers `"need-data"`, which it must have done before the next feed.
   *
   * @param bytes What arrived.
   * @throws {Error} When the bytes fed before are not consumed yet, or after `end()`.
   */
  feed(bytes: Uint8Array): void {
    if (this.#ended) throw new Error("MultipartParser.feed() after end()");
    if (this.#state === State.Done || this.#state === State.Error) return; // the epilogue, or nothing
    if (this.#inWindow || this.#fedPos < this.#fed.length) {
      throw new Error("MultipartParser.feed() before next() answered need-data");
    }
    this.#fed = bytes;
    this.#fedPos = 0;
    this.#input = bytes;
    this.#pos = 0;
    if (this.#carryLength > 0 && bytes.length > 0) this.#openWindow();
  }

  /** No more bytes will come: a body not closed by then is an error (400). */
  end(): void {
    this.#ended = true;
  }

  /**
   * The next event, or `"need-data"` when more bytes must be fed first. After `done` it answers
   * `"need-data"` and ignores what is fed (the epilogue); after an error, the same error forever.
   *
   * @returns The event.
   */
  next(): MultipartEvent | typeof NEED_DATA {
    if (this.#error !== null) return this.#error;
    for (;;) {
      if (this.#inWindow && this.#pos >= this.#carryLength) this.#leaveWindow();
      const event = this.#step();
      if (event !== NEED_DATA) return event;
      if (this.#state === State.Done) {
        this.#pos = this.#input.length; // RFC 2046 §5.1.1: the epilogue is ignored
        this.#fedPos = this.#fed.length;
        this.#inWindow = false;
        this.#carryLength = 0;
        return NEED_DATA;
      }
      if (!this.#inWindow) {
        // What is left of the fed bytes is carried (a carry from before any feed, the virtual CRLF, stays).
        if (this.#pos < this.#input.length) this.#keep(this.#input, this.#pos, this.#input.length);
        this.#fedPos = this.#fed.length;
        this.#input = EMPTY;
        this.#pos = 0;
      } else if (this.#pos >= this.#carryLength) {
        continue; // the window's carried bytes are consumed: go on in the fed bytes
      } else if (this.#windowFed < this.#fed.length - this.#fedPos) {
        // The state changed inside the window and needs more of the fed bytes to decide: a wider window.
        if (this.#windowNeed() <= this.#windowFed) throw new Error("MultipartParser: no progress (a bug)");
        this.#carry.copyWithin(0, this.#pos, this.#carryLength);
        this.#carryLength -= this.#pos;
        this.#openWindow();
        continue;
      } else {
        // Every fed byte is in the window and nothing is decided: all of it is carried to the next feed.
        this.#carry.copyWithin(0, this.#pos, this.#input.length);
        this.#carryLength = this.#input.length - this.#pos;
        this.#inWindow = false;
        this.#input = EMPTY;
        this.#pos = 0;
        this.#fedPos = this.#fed.length;
      }
      if (this.#ended) return this.#fail(400, "Multipart body ended before its closing delimiter");
      return NEED_DATA;
    }
  }

  /** How many fed bytes the window needs to decide in the current state (each bounded). */
  #windowNeed(): number {
    return this.#state === State.Headers ? this.#headerSpan : this.#delimiter.length;
  }

  /** Copy the first fed bytes after the carry, so what straddles the two can be searched in one array. */
  #openWindow(): void {
    const take = Math.min(this.#fed.length - this.#fedPos, this.#windowNeed());
    this.#ensureCarry(this.#carryLength + take);
    this.#carry.set(this.#fed.subarray(this.#fedPos, this.#fedPos + take), this.#carryLength);
    this.#windowFed = take;
    this.#input = this.#carry.subarray(0, this.#carryLength + take);
    this.#pos = 0;
    this.#inWindow = true;
  }

  /** The window's carried bytes are consumed: continue in the fed bytes, where the window left them. */
  #leaveWindow(): void {
    this.#fedPos += this.#pos - this.#carryLength;
    this.#carryLength = 0;
    this.#inWindow = false;
    this.#input = this.#fed;
    this.#pos = this.#fedPos;
  }

  /** Carry `bytes[start, end)` to the next feed. */
  #keep(bytes: Uint8Array, start: number, end: number): void {
    this.#ensureCarry(end - start);
    this.#carry.set(bytes.subarray(start, end), 0);
    this.#carryLength = end - start;
  }

  #ensureCarry(size: number): void {
    if (this.#carry.length >= size) return;
    const next = new Uint8Array(Math.max(size, this.#carry.length * 2));
    next.set(this.#carry.subarray(0, this.#carryLength));
    this.#carry = next;
  }

  /** One step of the state machine over `#input` from `#pos`: an event, or NEED_DATA when it cannot decide. */
  #step(): MultipartEvent | typeof NEED_DATA {
    for (;;) {
      switch (this.#state) {
        case State.Preamble:
        case State.Body: {
          const input = this.#input;
          const m = this.#delimiter.length;
          const at = this.#search(input, this.#pos);
          if (at === this.#pos) {
            this.#pos += m;
            const inPart = this.#state === State.Body;
            this.#go(Transition.Delimiter);
            this.#padding = 0;
            if (inPart) return PART_END;
            break;
          }
          // Content up to the delimiter, or up to the last bytes that could still begin one.
          const stop = at >= 0 ? at : Math.max(this.#pos, input.length - (m - 1));
          if (stop === this.#pos) return NEED_DATA;
          const start = this.#pos;
          this.#pos = stop;
          if (this.#state === State.Body) return { type: "data", data: input.subarray(start, stop) };
          break; // the preamble is ignored (RFC 2046 §5.1.1)
        }
        case State.AfterDelimiter: {
          // RFC 2046 §5.1.1: "--" closes the body; otherwise transport padding (LWSP), then CRLF.
          const input = this.#input;
          let i = this.#pos;
          while (i < input.length && (input[i] === SP || input[i] === HTAB)) i++;
          this.#padding += i - this.#pos;
          this.#pos = i;
          if (this.#padding > this.#maxHeaderBytes) {
            return this.#fail(413, `Multipart delimiter padding exceeds ${this.#maxHeaderBytes} bytes`);
          }
          if (input.length - i < 2) {
            if (i < input.length && input[i] !== CR && input[i] !== DASH) {
              return this.#fail(400, "Malformed multipart delimiter");
            }
            return NEED_DATA;
          }
          if (this.#padding === 0 && input[i] === DASH && input[i + 1] === DASH) {
            this.#pos = i + 2;
            this.#go(Transition.Close);
            return DONE;
          }
          if (input[i] !== CR || input[i + 1] !== LF) return this.#fail(400, "Malformed multipart delimiter");
          // The CRLF stays: the header block then ends at the first CRLF CRLF, even when it is empty.
          this.#headerScanned = 0;
          this.#go(Transition.LineEnd);
          break;
        }
        case State.Headers:
          return this.#headers();
        case State.Done:
        case State.Error:
          return NEED_DATA;
      }
    }
  }

  /** First index of the delimiter in `input` at or after `from`, or -1. Linear on average (Horspool). */
  #search(input: Uint8Array, from: number): number {
    const needle = this.#delimiter;
    const shift = this.#shift;
    const last = needle.length - 1;
    let i = from;
    while (i + last < input.length) {
      let j = last;
      while (j >= 0 && input[i + j] === needle[j]) j--;
      if (j < 0) return i;
      i += shift[input[i + last]];
    }
    return -1;
  }

  /** The header block that starts with the CRLF at #pos: its part-start, an error, or NEED_DATA. */
  #headers(): MultipartEvent | typeof NEED_DATA {
    const input = this.#input;
    const start = this.#pos;
    const stop = Math.min(input.length, start + this.#headerSpan);
    let end = -1;
    for (let i = start + Math.max(0, this.#headerScanned - 3); i + 3 < stop; i++) {
      if (input[i] === CR && input[i + 1] === LF && input[i + 2] === CR && input[i + 3] === LF) {
        end = i;
        break;
      }
    }
    if (end < 0) {
      if (stop - start >= this.#headerSpan) {
        return this.#fail(413, `Multipart part headers exceed ${this.#maxHeaderBytes} bytes`);
      }
      this.#headerScanned = stop - start; // look at only the new bytes next time
      return NEED_DATA;
    }
    // The block is what lies between the delimiter line's CRLF and the CRLF CRLF; empty when they touch.
    const block = end === start ? EMPTY : input.subarray(start + 2, end);
    if (block.length > this.#maxHeaderBytes) {
      return this.#fail(413, `Multipart part headers exceed ${this.#maxHeaderBytes} bytes`);
    }
    const part = partHead(block);
    if (typeof part === "string") return this.#fail(400, part);
    this.#pos = end + HEADER_END_BYTES;
    this.#go(Transition.PartStart);
    return { type: "part-start", part };
  }
}

/** A part's header block read into its {@link PartHead}, or why it cannot be (a 400). */
function partHead(block: Uint8Array): PartHead | string {
  const headers = new Map<string, string>();
  if (block.length > 0) {
    // RFC 7578 §5.1: non-ASCII field names and filenames arrive as raw UTF-8.
    for (const line of utf8.decode(block).split("\r\n")) {
      const colon = line.indexOf(":");
      // RFC 9112 §5.2: obsolete line folding is rejected, as is a line with no name.
      if (colon <= 0 || line[0] === " " || line[0] === "\t") return "Malformed multipart part header";
      const name = line.slice(0, colon).trim().toLowerCase();
      if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
    }
  }
  // RFC 7578 §4.2: every part has Content-Disposition: form-data with a name.
  const disposition = parseHeaderValue(headers.get("content-disposition") ?? "");
  const name = disposition.params.get("name");
  if (disposition.value !== "form-data" || name === undefined) {
    return "Multipart part without Content-Disposition: form-data; name=...";
  }
  const plain = disposition.params.get("filename");
  const extended = disposition.params.get("filename*");
  // Any filename parameter makes it a file part, even one whose filename* cannot be decoded. RFC 7578 §4.2
  // tells senders not to use filename*, but some do: when it decodes it wins, as in RFC 6266 §4.3.
  const decoded = extended === undefined ? undefined : decodeExtValue(extended);
  const filename = plain === undefined && extended === undefined
    ? null
    : sanitizeFilename(decoded ?? plain ?? "");
  return { name, filename, contentType: headers.get("content-type") || null, headers };
}
