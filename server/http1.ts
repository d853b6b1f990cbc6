// The HTTP/1.1 request parser (RFC 9112): bytes in, events out. It owns syntax, body framing and the
// size limits; it must never touch a socket, a timer or `Deno`, so every rule can be tested by feeding bytes.
// Anything ambiguous is an error carrying the status to answer with, never a guess.

/** Size limits the parser enforces. Each has a safe default in {@link DEFAULT_PARSER_LIMITS}. */
export interface ParserLimits {
  /** Longest request-target; longer gets 414 (RFC 9112 §3: at least 8000 octets RECOMMENDED). */
  maxRequestLineBytes: number;
  /** Largest request head (request line and fields); larger gets 431 (RFC 6585 §5). */
  maxHeadBytes: number;
  /** Most header fields in one head; more gets 431. */
  maxHeaderCount: number;
  /** Largest body; a larger Content-Length gets 413 before any body byte is read (RFC 9110 §15.5.14). */
  maxBodyBytes: number;
  /** Longest chunk-size line with its extensions (RFC 9112 §7.1.1: extensions ought to be limited). */
  maxChunkLineBytes: number;
  /** Largest trailer section of a chunked body (RFC 9112 §7.1.2). */
  maxTrailerBytes: number;
}

/**
 * The default limits: generous for browsers (a 4 KB cookie, 50 headers, an 8000-octet URI), small enough
 * that a hostile client cannot make the server buffer much.
 *
 * @example
 * ```ts
 * import { DEFAULT_PARSER_LIMITS } from "./http1.ts";
 * console.log(DEFAULT_PARSER_LIMITS.maxHeadBytes); // 32768
 * ```
 */
export const DEFAULT_PARSER_LIMITS: Readonly<ParserLimits> = Object.freeze({
  maxRequestLineBytes: 8 * 1024,
  maxHeadBytes: 32 * 1024,
  maxHeaderCount: 100,
  maxBodyBytes: 16 * 1024 * 1024,
  maxChunkLineBytes: 4 * 1024,
  maxTrailerBytes: 8 * 1024,
});

/** The longest method we parse; registered methods are far shorter, so longer ones get 501 (RFC 9110 §9.1). */
export const MAX_METHOD_BYTES = 32;
/** Decimal digits we accept in Content-Length; 16 digits already exceed any body we would take. */
const MAX_CONTENT_LENGTH_DIGITS = 16;
/** Significant hex digits in a chunk size: 13 hex digits stay below 2^53, so sizes never lose precision. */
const MAX_CHUNK_SIZE_HEX_DIGITS = 13;

/**
 * A malformed or refused message. `status` is the answer the server should send before closing.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "./http1.ts";
 * const e = new ProtocolError(431, "too many header fields");
 * console.log(e.status, e.message);
 * ```
 */
export class ProtocolError extends Error {
  /** The HTTP status this error suggests (400, 413, 414, 417, 431, 501, 505). */
  readonly status: number;
  /**
   * Make an error that suggests `status`.
   *
   * @param status The status to answer with.
   * @param message What was wrong, for the log (never sent to the client).
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "ProtocolError";
    this.status = status;
  }
}

/** How the request body is delimited, decided once per RFC 9112 §6.3. */
export type BodyFraming =
  | { kind: "length"; n: number }
  | { kind: "chunked" }
  | { kind: "none" };

// The framings without a number are shared (frozen): a new object per request would be garbage, and each
// store of a young object into the long-lived parser costs a write barrier.
const FRAMING_NONE: BodyFraming = Object.freeze({ kind: "none" });
const FRAMING_CHUNKED: BodyFraming = Object.freeze({ kind: "chunked" });

/** The form of the request-target (RFC 9112 §3.2). */
export type TargetForm = "origin" | "absolute" | "authority" | "asterisk";

/** A parsed request head. Header names are lower-cased; values have their surrounding OWS removed. */
export interface RequestHead {
  /** The method, case-sensitive (RFC 9110 §9.1). */
  method: string;
  /** The request-target exactly as received. */
  target: string;
  /** Which of the four forms the target has. */
  targetForm: TargetForm;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (and 1.x with a higher minor, RFC 9112 §2.3). */
  versionMinor: 0 | 1;
  /** Header fields in arrival order, flattened: name, value, name, value, ... */
  headers: string[];
  /** The Host field value, validated; "" when absent (allowed for HTTP/1.0 only). */
  host: string;
  /** How the body is framed. */
  framing: BodyFraming;
  /** Whether the connection may carry another request after this one (RFC 9112 §9.3). */
  keepAlive: boolean;
  /** The client sent `Expect: 100-continue` over HTTP/1.1 (RFC 9110 §10.1.1). */
  expectContinue: boolean;
}

/** How the parser turns bytes into strings; the defaults use only the web platform. */
export interface ParserOptions {
  /**
   * Decode bytes known to be ASCII (a head without obs-text). Default: `TextDecoder`. The server passes a
   * faster one where the runtime has it; the parser itself stays free of any runtime API.
   */
  decodeAscii?: (bytes: Uint8Array) => string;
}

/** A parser event: a request head, a piece of body, or the end of the message; or an error. */
export type ParserEvent =
  | { type: "head"; head: RequestHead }
  | { type: "data"; data: Uint8Array }
  | { type: "end" }
  | { type: "error"; error: ProtocolError };

/** Returned by {@link RequestParser.next} when it needs more bytes. */
export const NEED_DATA = "need-data" as const;
/** Returned by {@link RequestParser.next} after a message ends, until {@link RequestParser.startNextCycle}. */
export const PAUSED = "paused" as const;

/** The parser's states (h11's model of the client side). */
export const STATES = ["IDLE", "BODY", "DONE", "ERROR"] as const;
/** One of {@link STATES}. */
export type ParserState = typeof STATES[number];
type Transition = "head" | "end" | "next_cycle" | "error";

// States and transitions as small integers: the state changes three times per request, and a lookup by
// string key at one site seeing several keys is a slow (megamorphic) property load in V8.
const IDLE = 0, BODY = 1, DONE = 2, ERROR = 3;
const T_HEAD = 0, T_END = 1, T_NEXT_CYCLE = 2, T_ERROR = 3;
const TRANSITION_NAMES: readonly Transition[] = ["head", "end", "next_cycle", "error"];
const NO = -1;
/** Every legal step, `TRANSITIONS[state * 4 + transition]`; NO marks a bug in the caller or here. */
// deno-fmt-ignore
const TRANSITIONS: readonly number[] = [
  // head  end   next_cycle  error
  BODY,    NO,   NO,         ERROR, // IDLE
  NO,      DONE, NO,         ERROR, // BODY
  NO,      NO,   IDLE,       NO,    // DONE
  NO,      NO,   NO,         NO,    // ERROR
];

// Byte classes (RFC 9110 §5.6.2 tchar, §5.5 field-vchar and obs-text, RFC 3986 §2 URI characters).
const CR = 0x0d, LF = 0x0a, SP = 0x20, HTAB = 0x09, COLON = 0x3a;
const TCHAR = new Uint8Array(256);
const VCHAR = new Uint8Array(256); // field-vchar: VCHAR / obs-text
const TARGET = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  const c = String.fromCharCode(b);
  if (/[A-Za-z0-9!#$%&'*+\-.^_`|~]/.test(c)) TCHAR[b] = 1;
  if (b >= 0x21 && b <= 0x7e) VCHAR[b] = 1;
  if (b >= 0x80) VCHAR[b] = 2; // obs-text: marks the head as not plain ASCII
  // Printable ASCII except the characters no URI may hold raw: '"', '<', '>', '\', and '#' (a fragment is
  // never sent, RFC 9112 §3.2). '{', '}', '|', '^' and '`' are let through because browsers send them
  // unencoded in queries.
  if (b >= 0x21 && b <= 0x7e && !'"<>\\#'.includes(c)) TARGET[b] = 1;
}

// Head scanner states: one per position in the grammar of RFC 9112 §2.1.
const H_START = 0, H_LEADING_LF = 1, H_METHOD = 2, H_TARGET = 3, H_VERSION = 4, H_RL_LF = 5;
const H_LINE = 6, H_NAME = 7, H_OWS = 8, H_VALUE = 9, H_VALUE_LF = 10, H_END_LF = 11;
// Chunked body states (RFC 9112 §7.1).
const C_SIZE = 0, C_DATA = 1, C_DATA_END = 2, C_TRAILER = 3;

// chunk-size [ chunk-ext ], with BWS around ';' and '=' (RFC 9112 §7.1.1, RFC 9110 §5.6.3-§5.6.4).
const TOKEN_RE = "[A-Za-z0-9!#$%&'*+\\-.^_`|~]+";
const QUOTED_RE = '"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*"';
const CHUNK_LINE_RE = new RegExp(
  `^([0-9A-Fa-f]+)(?:[ \\t]*;[ \\t]*${TOKEN_RE}(?:[ \\t]*=[ \\t]*(?:${TOKEN_RE}|${QUOTED_RE}))?)*$`,
);
const FIELD_LINE_RE = new RegExp(
  `^${TOKEN_RE}:[ \\t]*(?:[!-~\\x80-\\xff](?:[ \\t!-~\\x80-\\xff]*[!-~\\x80-\\xff])?)?[ \\t]*$`,
);
const HOST_RE = /^(?:[A-Za-z0-9\-._~]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$/;
const CONTENT_LENGTH_RE = /^[0-9]+$/;
/** Codings registered for Transfer-Encoding that we recognise but do not decode: 501, not 400. */
const KNOWN_CODINGS = new Set(["gzip", "x-gzip", "deflate", "compress", "x-compress"]);

/** Read buffer of an idle connection: a browser's head fits, and 10,000 idle connections cost 40 MiB. */
const INITIAL_BUFFER = 4096;
/** Read buffer while a large body streams in: fewer, larger reads. */
const BODY_BUFFER = 64 * 1024;

const asciiDecoder = new TextDecoder();
const decodeWithTextDecoder = (bytes: Uint8Array): string => asciiDecoder.decode(bytes);

/** Bytes to a string, one char per byte (field values are ISO-8859-1 on the wire, RFC 9110 §5.5). */
function latin1(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 4096) {
    return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
  }
  let s = "";
  for (let i = start; i < end; i += 4096) s += latin1(buf, i, Math.min(end, i + 4096));
  return s;
}

const COMMON_METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"];
/** The method string, without allocating for the common ones. */
function methodString(buf: Uint8Array, start: number, end: number): string {
  for (const m of COMMON_METHODS) {
    if (m.length !== end - start) continue;
    let same = true;
    for (let i = 0; i < m.length; i++) {
      if (buf[start + i] !== m.charCodeAt(i)) {
        same = false;
        break;
      }
    }
    if (same) return m;
  }
  return latin1(buf, start, end);
}

// Field names browsers and proxies send, by length: a name that matches one (ignoring case) is this string,
// without slicing and lower-casing a new one. Most heads are made of these.
const KNOWN_NAMES: string[][] = [];
for (
  const name of [
    "host",
    "accept",
    "cookie",
    "origin",
    "pragma",
    "expect",
    "upgrade",
    "referer",
    "priority",
    "connection",
    "user-agent",
    "keep-alive",
    "content-type",
    "content-length",
    "cache-control",
    "authorization",
    "if-none-match",
    "accept-encoding",
    "accept-language",
    "transfer-encoding",
    "if-modified-since",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-real-ip",
    "range",
    "dnt",
    "te",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "sec-fetch-user",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "upgrade-insecure-requests",
    "content-encoding",
    "if-match",
    "if-range",
  ]
) (KNOWN_NAMES[name.length] ??= []).push(name);

/** The lower-cased field name in `buf[start, end)`, a known name's string when it is one. */
function fieldName(buf: Uint8Array, start: number, end: number, text: string, base: number): string {
  const known = KNOWN_NAMES[end - start];
  if (known !== undefined) {
    for (let k = 0; k < known.length; k++) {
      const name = known[k];
      let i = 0;
      // tchar bytes only: `| 0x20` folds A-Z onto a-z and leaves '-' and digits alone; no other tchar
      // folds onto a letter or '-'.
      while (i < name.length && (buf[start + i] | 0x20) === name.charCodeAt(i)) i++;
      if (i === name.length) return name;
    }
  }
  return text.slice(start - base, end - base).toLowerCase();
}

/**
 * A sans-IO HTTP/1.1 request parser: `feed()` bytes (or read into `writable()` and `commit()`), then call
 * `next()` until it answers `"need-data"` or `"paused"`.
 *
 * Bytes of a `data` event are a view into the parser's buffer: use them before the next call to `feed`,
 * `writable` or `commit`.
 *
 * @example
 * ```ts
 * import { RequestParser } from "./http1.ts";
 * const p = new RequestParser();
 * p.feed(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
 * const ev = p.next();
 * if (typeof ev === "object" && ev.type === "head") console.log(ev.head.method, ev.head.target);
 * console.log(p.next()); // { type: "end" }
 * console.log(p.next()); // "paused"
 * ```
 */
export class RequestParser {
  /** The limits in force: the defaults with the constructor's overrides. */
  readonly limits: Readonly<ParserLimits>;
  #state = IDLE;
  #buf: Uint8Array;
  #start = 0; // first unconsumed byte
  #end = 0; // end of received data
  #maxBuffer: number;
  // Head scanning, resumable: offsets are relative to #start so compaction never invalidates them.
  #hs = H_START;
  #scan = 0;
  #headBegin = 0;
  #mEnd = 0;
  #tStart = 0;
  #tEnd = 0;
  #vStart = 0;
  #nStart = 0;
  #nEnd = 0;
  #valStart = 0;
  #valEnd = 0;
  /** Field line offsets, four per line; reused across requests (a truncated array would regrow each time). */
  #offs: number[] = [];
  #nOffs = 0;
  // Body.
  #framing: BodyFraming = FRAMING_NONE;
  #remaining = 0;
  #bodyTotal = 0;
  #cs = C_SIZE;
  #lineScan = 0;
  #trailerBytes = 0;
  #endSent = false;
  #error: { type: "error"; error: ProtocolError } | null = null;
  #lastHost: string | null = null;
  #obsText = false;
  #scanned = 0;
  #lastView: Uint8Array | null = null;
  readonly #decodeAscii: (bytes: Uint8Array) => string;

  /**
   * Make a parser for one connection.
   *
   * @param limits Overrides for {@link DEFAULT_PARSER_LIMITS}.
   * @param options How bytes become strings (see {@link ParserOptions}).
   */
  constructor(limits: Partial<ParserLimits> = {}, options: ParserOptions = {}) {
    this.limits = { ...DEFAULT_PARSER_LIMITS, ...limits };
    this.#decodeAscii = options.decodeAscii ?? decodeWithTextDecoder;
    this.#buf = new Uint8Array(INITIAL_BUFFER);
    const l = this.limits;
    this.#maxBuffer = Math.max(l.maxHeadBytes, l.maxChunkLineBytes, l.maxTrailerBytes) + INITIAL_BUFFER;
  }

  /** The current state: IDLE (waiting for a head), BODY, DONE (message read) or ERROR. */
  get state(): ParserState {
    return STATES[this.#state];
  }

  /** Bytes received and not yet consumed by an event. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** True while waiting for a head and some of it has arrived (the header timer runs then). */
  get headStarted(): boolean {
    return this.#state === IDLE && this.#end > this.#start;
  }

  /**
   * Head bytes examined so far, over the parser's life. Each byte is examined once however it is split
   * across reads, so a client dribbling a head costs linear work; tests assert it.
   */
  get scanned(): number {
    return this.#scanned;
  }

  /** Bytes of body still expected with Content-Length framing; -1 for chunked (unknown). */
  get bodyRemaining(): number {
    if (this.#state !== BODY) return 0;
    return this.#framing.kind === "length" ? this.#remaining : this.#framing.kind === "chunked" ? -1 : 0;
  }

  #go(t: number): void {
    const to = TRANSITIONS[this.#state * 4 + t];
    if (to === NO) {
      throw new Error(`illegal parser transition: "${TRANSITION_NAMES[t]}" in state ${STATES[this.#state]}`);
    }
    this.#state = to;
  }

  /**
   * Append received bytes (copied).
   *
   * @param bytes What arrived from the peer.
   */
  feed(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) {
      const room = this.#room(bytes.length - off, Infinity);
      const n = Math.min(room.length, bytes.length - off);
      room.set(bytes.subarray(off, off + n));
      this.#end += n;
      off += n;
    }
  }

  /**
   * A region to read into without copying; follow with {@link RequestParser.commit}. It grows only while
   * an incomplete head (or chunk line, or trailer) fills the whole buffer, up to the head limit.
   *
   * @returns A writable view at the end of the received data.
   */
  writable(): Uint8Array {
    if (this.#start === this.#end && this.#buf.length === INITIAL_BUFFER && this.#state !== BODY) {
      this.#start = this.#end = 0;
      return this.#buf; // the common case, without making a view
    }
    return this.#room(1, this.#maxBuffer);
  }

  /**
   * Mark `n` bytes of the last {@link RequestParser.writable} region as received.
   *
   * @param n How many bytes the read produced.
   */
  commit(n: number): void {
    this.#end += n;
  }

  #room(want: number, cap: number): Uint8Array {
    if (this.#start === this.#end) {
      // Nothing pending: rewind. Give back a buffer a large head made us grow; take a larger one for a
      // large body, so an upload costs few reads.
      this.#start = this.#end = 0;
      const bigBody = this.#state === BODY &&
        (this.#remaining >= BODY_BUFFER || this.#framing.kind === "chunked");
      if (bigBody && this.#buf.length < BODY_BUFFER) this.#buf = new Uint8Array(BODY_BUFFER);
      else if (!bigBody && this.#buf.length > INITIAL_BUFFER) this.#buf = new Uint8Array(INITIAL_BUFFER);
    }
    if (this.#start > 0 && this.#buf.length - this.#end < Math.max(want, 1024)) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#buf.length - this.#end < want) {
      const size = Math.min(Math.max(this.#buf.length * 2, this.#end + want), cap);
      if (size > this.#buf.length) {
        const next = new Uint8Array(size);
        next.set(this.#buf.subarray(0, this.#end));
        this.#buf = next;
      }
    }
    return this.#buf.subarray(this.#end);
  }

  /** After a message ends (`paused`), allow the next request on this connection (h11's start_next_cycle). */
  startNextCycle(): void {
    this.#go(T_NEXT_CYCLE);
    this.#hs = H_START;
    this.#scan = 0;
    this.#nOffs = 0;
    this.#endSent = false;
    this.#obsText = false;
  }

  /**
   * The next event, `"need-data"` when more bytes must arrive first, or `"paused"` when a message has
   * ended and {@link RequestParser.startNextCycle} has not been called. After an error, the same error
   * is returned forever.
   *
   * @returns The event.
   */
  next(): ParserEvent | typeof NEED_DATA | typeof PAUSED {
    switch (this.#state) {
      case IDLE:
        return this.#parseHead();
      case BODY:
        return this.#framing.kind === "chunked" ? this.#chunked() : this.#lengthBody();
      case DONE:
        if (this.#endSent) return PAUSED;
        this.#endSent = true;
        return END;
      default:
        return this.#error!;
    }
  }

  /**
   * `buf[start, end)` as a view. A keep-alive client tends to send heads of one length at one offset, so
   * the last view is kept and reused when it matches (a typed-array view costs an allocation).
   */
  #headView(buf: Uint8Array, start: number, end: number): Uint8Array {
    const v = this.#lastView;
    if (v !== null && v.buffer === buf.buffer && v.byteOffset === start && v.length === end - start) return v;
    return this.#lastView = buf.subarray(start, end);
  }

  #fail(status: number, message: string): { type: "error"; error: ProtocolError } {
    this.#go(T_ERROR);
    this.#error = { type: "error", error: new ProtocolError(status, message) };
    return this.#error;
  }

  // --- the head -------------------------------------------------------------------------------------

  #parseHead(): ParserEvent | typeof NEED_DATA {
    const buf = this.#buf;
    const base = this.#start;
    const stop = Math.min(this.#end, base + this.limits.maxHeadBytes);
    const from = this.#scan;
    const r = this.#scanHead(buf, base, stop, base + from);
    this.#scanned += this.#scan - from;
    return r;
  }

  #scanHead(buf: Uint8Array, base: number, stop: number, i: number): ParserEvent | typeof NEED_DATA {
    const lim = this.limits;
    let st = this.#hs;
    while (i < stop) {
      const b = buf[i];
      switch (st) {
        case H_START:
          // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
          if (b === CR) {
            st = H_LEADING_LF;
            i++;
          } else if (TCHAR[b]) {
            this.#headBegin = i - base;
            st = H_METHOD;
          } else return this.#fail(400, "request line does not start with a method");
          break;
        case H_LEADING_LF:
          if (b !== LF) return this.#fail(400, "bare CR before the request line");
          st = H_START;
          i++;
          break;
        case H_METHOD: {
          while (i < stop && TCHAR[buf[i]]) i++;
          if (i - base - this.#headBegin > MAX_METHOD_BYTES) return this.#fail(501, "method too long");
          if (i === stop) break;
          if (buf[i] !== SP) return this.#fail(400, "invalid character in method");
          this.#mEnd = i - base;
          this.#tStart = i + 1 - base;
          st = H_TARGET;
          i++;
          break;
        }
        case H_TARGET: {
          while (i < stop && TARGET[buf[i]]) i++;
          if (i - base - this.#tStart > lim.maxRequestLineBytes) {
            return this.#fail(414, "request-target too long");
          }
          if (i === stop) break;
          if (buf[i] !== SP || i - base === this.#tStart) {
            return this.#fail(400, "invalid request-target");
          }
          this.#tEnd = i - base;
          this.#vStart = i + 1 - base;
          st = H_VERSION;
          i++;
          break;
        }
        case H_VERSION:
          if (b === CR) {
            st = H_RL_LF;
          } else if (!TCHAR[b] && b !== 0x2f || i - base - this.#vStart >= 8) {
            return this.#fail(400, "invalid HTTP version");
          }
          i++;
          break;
        case H_RL_LF:
          if (b !== LF) return this.#fail(400, "bare CR in request line");
          st = H_LINE;
          i++;
          break;
        case H_LINE:
          if (b === CR) {
            st = H_END_LF;
            i++;
          } else if (TCHAR[b]) {
            this.#nStart = i - base;
            st = H_NAME;
          } else if (b === SP || b === HTAB) {
            // RFC 9112 §5.2 obs-fold, or whitespace before the first field (§2.2): both rejected.
            return this.#fail(400, "obsolete line folding or leading whitespace in a field line");
          } else return this.#fail(400, "invalid field line");
          break;
        case H_NAME: {
          while (i < stop && TCHAR[buf[i]]) i++;
          if (i === stop) break;
          // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon.
          if (buf[i] !== COLON) return this.#fail(400, "invalid character in field name");
          this.#nEnd = i - base;
          st = H_OWS;
          i++;
          break;
        }
        case H_OWS:
          if (b === SP || b === HTAB) {
            i++;
          } else if (b === CR) {
            this.#valStart = this.#valEnd = i - base;
            st = H_VALUE_LF;
            i++;
          } else if (VCHAR[b]) {
            if (b >= 0x80) this.#obsText = true;
            this.#valStart = i - base;
            this.#valEnd = i + 1 - base;
            st = H_VALUE;
            i++;
          } else return this.#fail(400, "invalid character in field value");
          break;
        case H_VALUE: {
          let ve = this.#valEnd + base;
          let kinds = 0;
          while (i < stop) {
            const c = buf[i];
            const k = VCHAR[c];
            if (k !== 0) {
              ve = ++i;
              kinds |= k;
            } else if (c === SP || c === HTAB) i++;
            else break;
          }
          this.#valEnd = ve - base;
          if (kinds & 2) this.#obsText = true;
          if (i === stop) break;
          // RFC 9110 §5.5: CR, LF and NUL in a value MUST be rejected; other controls we reject too.
          if (buf[i] !== CR) return this.#fail(400, "invalid character in field value");
          st = H_VALUE_LF;
          i++;
          break;
        }
        case H_VALUE_LF: {
          if (b !== LF) return this.#fail(400, "bare CR in field line");
          const n = this.#nOffs;
          if (n >= lim.maxHeaderCount * 4) return this.#fail(431, "too many header fields");
          const offs = this.#offs;
          offs[n] = this.#nStart;
          offs[n + 1] = this.#nEnd;
          offs[n + 2] = this.#valStart;
          offs[n + 3] = this.#valEnd;
          this.#nOffs = n + 4;
          st = H_LINE;
          i++;
          break;
        }
        case H_END_LF:
          if (b !== LF) return this.#fail(400, "bare CR at the end of the head");
          this.#scan = i + 1 - base;
          this.#start = i + 1;
          return this.#finishHead(buf, base);
      }
    }
    this.#hs = st;
    this.#scan = i - base;
    if (i - base >= lim.maxHeadBytes) {
      if (st === H_TARGET) return this.#fail(414, "request-target too long");
      if (st === H_METHOD) return this.#fail(501, "method too long");
      return this.#fail(431, "request head too large");
    }
    return NEED_DATA;
  }

  #finishHead(buf: Uint8Array, base: number): ParserEvent {
    // One string for the whole head; every piece is a slice of it (cheap, and one char per byte). A head
    // of plain ASCII, the usual case, decodes natively; obs-text needs the byte-per-char path.
    const text = this.#obsText
      ? latin1(buf, base, this.#start)
      : this.#decodeAscii(this.#headView(buf, base, this.#start));
    const method = methodString(buf, base + this.#headBegin, base + this.#mEnd);
    const target = text.slice(this.#tStart, this.#tEnd);
    // RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
    const v = base + this.#vStart;
    const versionOk = buf[v] === 0x48 && buf[v + 1] === 0x54 && buf[v + 2] === 0x54 && buf[v + 3] === 0x50 &&
      buf[v + 4] === 0x2f && buf[v + 5] >= 0x30 && buf[v + 5] <= 0x39 && buf[v + 6] === 0x2e &&
      buf[v + 7] >= 0x30 && buf[v + 7] <= 0x39 && buf[v + 8] === CR;
    if (!versionOk) return this.#fail(400, "invalid HTTP version");
    const major = buf[v + 5] - 0x30;
    if (major !== 1) return this.#fail(505, `HTTP/${major}.x is not supported`);
    const versionMinor: 0 | 1 = buf[v + 7] === 0x30 ? 0 : 1;

    const offs = this.#offs;
    const nOffs = this.#nOffs;
    const headers: string[] = new Array(nOffs / 2);
    let hostCount = 0, host = "";
    let cl: string | null = null, clCount = 0;
    let te: string | null = null;
    let connection = "";
    let expect: string | null = null;
    for (let k = 0, h = 0; k < nOffs; k += 4, h += 2) {
      const name = fieldName(buf, base + offs[k], base + offs[k + 1], text, base);
      const value = text.slice(offs[k + 2], offs[k + 3]);
      headers[h] = name;
      headers[h + 1] = value;
      switch (name) {
        case "host":
          hostCount++;
          host = value;
          break;
        case "content-length":
          clCount++;
          cl = value;
          break;
        case "transfer-encoding":
          te = te === null ? value : `${te}, ${value}`;
          break;
        case "connection":
          connection = connection === "" ? value : `${connection}, ${value}`;
          break;
        case "expect":
          expect = expect === null ? value : `${expect}, ${value}`;
          break;
      }
    }

    // Request-target forms (RFC 9112 §3.2).
    let targetForm: TargetForm;
    if (target.charCodeAt(0) === 0x2f) targetForm = "origin";
    else if (/^https?:\/\//i.test(target)) {
      targetForm = "absolute";
      const authority = target.slice(target.indexOf("//") + 2).split(/[/?]/, 1)[0];
      if (!HOST_RE.test(authority) || !URL.canParse(target)) {
        return this.#fail(400, "invalid authority in absolute-form target");
      }
    } else if (target === "*") {
      if (method !== "OPTIONS") return this.#fail(400, "asterisk-form is only for OPTIONS");
      targetForm = "asterisk";
    } else if (method === "CONNECT" && HOST_RE.test(target)) targetForm = "authority";
    else return this.#fail(400, "invalid request-target form");

    // Host (RFC 9112 §3.2, RFC 9110 §7.2): exactly one, valid, in HTTP/1.1.
    if (hostCount > 1) return this.#fail(400, "more than one Host field");
    if (hostCount === 0 && versionMinor === 1) return this.#fail(400, "HTTP/1.1 request without Host");
    if (hostCount === 1 && host !== this.#lastHost) {
      // The same client sends the same Host on every request of a connection: validate it once.
      // The URL parser is stricter than RFC 3986 (e.g. "lo.0" is a bad IPv4 address to it): the request
      // URL is built from Host, so a Host it refuses is refused here, as a 400 rather than a handler's 500.
      if (!HOST_RE.test(host) || !URL.canParse(`http://${host}/`)) {
        return this.#fail(400, "invalid Host field");
      }
      const port = host.lastIndexOf(":") > host.lastIndexOf("]") ? host.slice(host.lastIndexOf(":") + 1) : "";
      if (port !== "" && Number(port) > 65535) return this.#fail(400, "invalid port in Host");
      this.#lastHost = host;
    }

    // Body framing, in the order of RFC 9112 §6.3.
    let framing: BodyFraming;
    if (te !== null) {
      // §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing; with Content-Length it is a smuggling shape.
      if (versionMinor === 0) return this.#fail(400, "Transfer-Encoding in an HTTP/1.0 request");
      if (cl !== null) return this.#fail(400, "both Transfer-Encoding and Content-Length");
      const codings = te.split(",").map((c) => c.replace(/^[ \t]+|[ \t]+$/g, "").toLowerCase());
      const last = codings[codings.length - 1];
      if (codings.some((c) => !/^[a-z0-9!#$%&'*+\-.^_`|~]+$/.test(c))) {
        return this.#fail(400, "invalid transfer coding");
      }
      if (last !== "chunked") return this.#fail(400, "chunked is not the final transfer coding");
      const before = codings.slice(0, -1);
      if (before.includes("chunked")) return this.#fail(400, "chunked applied more than once");
      if (before.length > 0) {
        // RFC 9112 §6.1: an understood-but-unimplemented coding is 501; an unknown one is garbage.
        if (before.every((c) => KNOWN_CODINGS.has(c))) {
          return this.#fail(501, "transfer coding not implemented");
        }
        return this.#fail(400, "unknown transfer coding");
      }
      framing = FRAMING_CHUNKED;
    } else if (cl !== null) {
      // RFC 9110 §8.6: 1*DIGIT. A list or a repeated field is refused even when the values agree.
      if (clCount > 1) return this.#fail(400, "more than one Content-Length field");
      if (!CONTENT_LENGTH_RE.test(cl)) return this.#fail(400, "invalid Content-Length");
      const digits = cl.replace(/^0+(?=.)/, "");
      if (digits.length > MAX_CONTENT_LENGTH_DIGITS) return this.#fail(413, "Content-Length too large");
      const n = Number(digits);
      if (n > this.limits.maxBodyBytes) return this.#fail(413, "Content-Length exceeds the body limit");
      framing = n === 0 ? FRAMING_NONE : { kind: "length", n };
    } else {
      framing = FRAMING_NONE;
    }

    // Persistence (RFC 9112 §9.3): 1.1 persists unless "close"; 1.0 only with "keep-alive".
    let close = false, keep = false;
    if (connection !== "") {
      for (const tok of connection.split(",")) {
        const t = tok.trim().toLowerCase();
        if (t === "close") close = true;
        else if (t === "keep-alive") keep = true;
      }
    }
    const keepAlive = !close && (versionMinor === 1 || keep);

    // Expect (RFC 9110 §10.1.1): ignored in HTTP/1.0; only 100-continue is known.
    let expectContinue = false;
    if (expect !== null && versionMinor === 1) {
      if (expect.trim().toLowerCase() !== "100-continue") return this.#fail(417, "unsupported expectation");
      expectContinue = framing.kind !== "none";
    }

    this.#framing = framing;
    this.#remaining = framing.kind === "length" ? framing.n : 0;
    this.#bodyTotal = 0;
    this.#cs = C_SIZE;
    this.#lineScan = 0;
    this.#trailerBytes = 0;
    this.#go(T_HEAD);
    if (framing.kind === "none") this.#go(T_END);
    return {
      type: "head",
      head: { method, target, targetForm, versionMinor, headers, host, framing, keepAlive, expectContinue },
    };
  }

  // --- bodies ---------------------------------------------------------------------------------------

  #lengthBody(): ParserEvent | typeof NEED_DATA {
    const avail = this.#end - this.#start;
    if (avail === 0) return NEED_DATA;
    const take = Math.min(avail, this.#remaining);
    const data = this.#buf.subarray(this.#start, this.#start + take);
    this.#start += take;
    this.#remaining -= take;
    if (this.#remaining === 0) this.#go(T_END);
    return { type: "data", data };
  }

  /** Find the CRLF ending a line that starts at #start; -1 when incomplete. Bare LF is an error. */
  #lineEnd(max: number, what: string): number | ParserEvent {
    const buf = this.#buf;
    let i = this.#start + this.#lineScan;
    const stop = Math.min(this.#end, this.#start + max + 2);
    while (i < stop) {
      const b = buf[i];
      if (b === CR) {
        if (i + 1 >= this.#end) {
          this.#lineScan = i - this.#start;
          return -1;
        }
        if (buf[i + 1] !== LF) return this.#fail(400, `bare CR in ${what}`);
        return i;
      }
      if (b === LF) return this.#fail(400, `bare LF in ${what}`);
      i++;
    }
    if (i - this.#start > max) {
      return this.#fail(what === "trailer" ? 431 : 400, `${what} too long`);
    }
    this.#lineScan = i - this.#start;
    return -1;
  }

  #chunked(): ParserEvent | typeof NEED_DATA {
    for (;;) {
      switch (this.#cs) {
        case C_SIZE: {
          const eol = this.#lineEnd(this.limits.maxChunkLineBytes, "chunk size line");
          if (typeof eol !== "number") return eol;
          if (eol < 0) return NEED_DATA;
          const m = CHUNK_LINE_RE.exec(latin1(this.#buf, this.#start, eol));
          if (m === null) return this.#fail(400, "invalid chunk size line");
          const hex = m[1].replace(/^0+(?=.)/, "");
          if (hex.length > MAX_CHUNK_SIZE_HEX_DIGITS) return this.#fail(413, "chunk size too large");
          const size = parseInt(hex, 16);
          if (this.#bodyTotal + size > this.limits.maxBodyBytes) {
            return this.#fail(413, "body exceeds the limit");
          }
          this.#start = eol + 2;
          this.#lineScan = 0;
          if (size === 0) {
            this.#cs = C_TRAILER;
          } else {
            this.#remaining = size;
            this.#bodyTotal += size;
            this.#cs = C_DATA;
          }
          break;
        }
        case C_DATA: {
          const avail = this.#end - this.#start;
          if (avail === 0) return NEED_DATA;
          const take = Math.min(avail, this.#remaining);
          const data = this.#buf.subarray(this.#start, this.#start + take);
          this.#start += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#cs = C_DATA_END;
          return { type: "data", data };
        }
        case C_DATA_END:
          if (this.#end - this.#start < 2) {
            if (this.#end > this.#start && this.#buf[this.#start] !== CR) {
              return this.#fail(400, "chunk data longer than its size");
            }
            return NEED_DATA;
          }
          if (this.#buf[this.#start] !== CR || this.#buf[this.#start + 1] !== LF) {
            return this.#fail(400, "chunk data not followed by CRLF");
          }
          this.#start += 2;
          this.#cs = C_SIZE;
          break;
        case C_TRAILER: {
          // RFC 9112 §7.1.2: trailer fields are read, bounded, and dropped: they never change framing.
          const eol = this.#lineEnd(this.limits.maxTrailerBytes - this.#trailerBytes, "trailer");
          if (typeof eol !== "number") return eol;
          if (eol < 0) return NEED_DATA;
          if (eol === this.#start) {
            this.#start = eol + 2;
            this.#go(T_END);
            this.#endSent = true;
            return END;
          }
          if (!FIELD_LINE_RE.test(latin1(this.#buf, this.#start, eol))) {
            return this.#fail(400, "invalid trailer field");
          }
          this.#trailerBytes += eol + 2 - this.#start;
          this.#start = eol + 2;
          this.#lineScan = 0;
          break;
        }
      }
    }
  }
}

const END: ParserEvent = Object.freeze({ type: "end" }) as ParserEvent;
