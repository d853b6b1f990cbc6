// The HTTP/1.1 request parser (RFC 9112): bytes in, events out. It owns syntax, body framing and the
// size limits; it must never touch a socket, a timer or `Deno`, so every rule can be tested by feeding bytes.
// Anything ambiguous is an error carrying the status to answer with, never a guess.

/**
 * The low-level API (`@pier/pier/http1`): Pier's sans-IO HTTP/1.1 request parser, for code that brings its
 * own sockets, a proxy or a test harness. `serve()` in the main entry point is built on it. Feed it bytes,
 * ask for events: a head, body data, the end of a message, or an error carrying the status to answer.
 *
 * @example
 * ```ts
 * import { NEED_DATA, RequestParser } from "./http1.ts";
 * const parser = new RequestParser();
 * parser.feed(new TextEncoder().encode("GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n"));
 * for (let ev = parser.next(); ev !== NEED_DATA && ev !== "paused"; ev = parser.next()) {
 *   console.log(ev.type); // "head", then "end"
 * }
 * ```
 *
 * @module
 */

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
  /** The request-target as received, without a `#fragment` (which is dropped). */
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

// States and transitions are small integers: the state changes three times per request, and a lookup by
// string key at one site seeing several keys is a slow (megamorphic) property load in V8.
const State = { Idle: 0, Body: 1, Done: 2, Error: 3 } as const;
type State = typeof State[keyof typeof State];
const Transition = { Head: 0, End: 1, NextCycle: 2, Error: 3 } as const;
type Transition = typeof Transition[keyof typeof Transition];
const TRANSITION_NAMES = ["head", "end", "next_cycle", "error"] as const;
const ILLEGAL = -1;
/** Every legal step, `TRANSITIONS[state * 4 + transition]`; ILLEGAL marks a bug in the caller or here. */
// deno-fmt-ignore
const TRANSITIONS: readonly (State | typeof ILLEGAL)[] = [
  // head        end         next_cycle  error
  State.Body,    ILLEGAL,    ILLEGAL,    State.Error, // Idle
  ILLEGAL,       State.Done, ILLEGAL,    State.Error, // Body
  ILLEGAL,       ILLEGAL,    State.Idle, ILLEGAL,     // Done
  ILLEGAL,       ILLEGAL,    ILLEGAL,    ILLEGAL,     // Error
];

// Byte classes (RFC 9110 §5.6.2 tchar, §5.5 field-vchar and obs-text, RFC 3986 §2 URI characters).
const CR = 0x0d,
  LF = 0x0a,
  SP = 0x20,
  HTAB = 0x09,
  COLON = 0x3a,
  HASH = 0x23,
  BACKSLASH = 0x5c,
  QUESTION = 0x3f;
const TCHAR = new Uint8Array(256);
const VCHAR = new Uint8Array(256); // field-vchar: VCHAR / obs-text
const TARGET = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  const c = String.fromCharCode(b);
  if (/[A-Za-z0-9!#$%&'*+\-.^_`|~]/.test(c)) TCHAR[b] = 1;
  if (b >= 0x21 && b <= 0x7e) VCHAR[b] = 1;
  if (b >= 0x80) VCHAR[b] = 2; // obs-text: marks the head as not plain ASCII
  // Printable ASCII except the characters no URI may hold raw: '"', '<', '>'; '\' and '#' stop the scan
  // to be judged by where they are. '{', '}', '|', '^' and '`' are let through because browsers send them
  // unencoded in queries.
  if (b >= 0x21 && b <= 0x7e && !'"<>\\#'.includes(c)) TARGET[b] = 1;
}

/** Where the head scanner is in the grammar of RFC 9112 §2.1; it resumes there when more bytes arrive. */
const HeadState = {
  Start: 0,
  LeadingLf: 1,
  Method: 2,
  Target: 3,
  Version: 4,
  RequestLineLf: 5,
  LineStart: 6,
  Name: 7,
  Whitespace: 8,
  Value: 9,
  ValueLf: 10,
  EndLf: 11,
} as const;
type HeadState = typeof HeadState[keyof typeof HeadState];
/** Where a chunked body's reader is (RFC 9112 §7.1). */
const ChunkState = { Size: 0, Data: 1, DataEnd: 2, Trailer: 3 } as const;
type ChunkState = typeof ChunkState[keyof typeof ChunkState];

// chunk-size [ chunk-ext ], with BWS around ';' and '=' (RFC 9112 §7.1.1, RFC 9110 §5.6.3-§5.6.4).
const TOKEN_RE = "[A-Za-z0-9!#$%&'*+\\-.^_`|~]+";
const QUOTED_RE = '"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*"';
const CHUNK_LINE_RE = new RegExp(
  `^([0-9A-Fa-f]+)(?:[ \\t]*;[ \\t]*${TOKEN_RE}(?:[ \\t]*=[ \\t]*(?:${TOKEN_RE}|${QUOTED_RE}))?)*$`,
);
const FIELD_LINE_RE = new RegExp(
  `^${TOKEN_RE}:[ \\t]*(?:[!-~\\x80-\\xff](?:[ \\t!-~\\x80-\\xff]*[!-~\\x80-\\xff])?)?[ \\t]*$`,
);
/**
 * RFC 9110 §7.2 Host = uri-host [ ":" port ], with RFC 3986 §3.2.2's uri-host: an IP-literal, or a reg-name
 * (unreserved, pct-encoded and sub-delims, which covers IPv4 addresses), then a port of digits.
 */
const HOST_RE =
  /^(?:\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::([0-9]*))?$/;
/** Hosts already checked, shared by every connection: a client sends the same Host again and again. */
const checkedHosts = new Set<string>();
/** Bounded, since Host values come from clients: past this many the set starts over. */
const CHECKED_HOSTS_MAX = 256;

/**
 * Why `host` (a Host field, or an absolute-form target's authority) cannot be the host of the request's
 * URL, or null when it can. The request URL is built from it, so what the WHATWG URL parser refuses
 * (`lo.0`, a bad IPv4 address to it) is refused here too, as a 400 rather than a handler's 500.
 */
function hostProblem(host: string): string | null {
  if (checkedHosts.has(host)) return null;
  const m = HOST_RE.exec(host);
  if (m === null) return "is not an RFC 3986 host with an optional port";
  if (m[1] !== undefined && m[1] !== "" && Number(m[1]) > 65535) return "has a port over 65535";
  if (!URL.canParse(`http://${host}/`)) {
    return "is an RFC 3986 host, but the WHATWG URL parser refuses it, and the request URL is built from it";
  }
  if (checkedHosts.size >= CHECKED_HOSTS_MAX) checkedHosts.clear();
  checkedHosts.add(host);
  return null;
}
const CONTENT_LENGTH_RE = /^[0-9]+$/;
/** Codings registered for Transfer-Encoding that we recognise but do not decode: 501, not 400. */
const KNOWN_CODINGS = new Set(["gzip", "x-gzip", "deflate", "compress", "x-compress"]);

/** Read buffer of an idle connection: a browser's head fits, and 10,000 idle connections cost 40 MiB. */
const INITIAL_BUFFER = 4096;
/** Read buffer while a large body streams in: fewer, larger reads. */
const BODY_BUFFER = 64 * 1024;

/**
 * Free read buffers of INITIAL_BUFFER bytes, shared by every parser: a connection's parser takes one and
 * gives it back when the connection ends, so a new connection per request allocates no buffer.
 */
const bufferPool: Uint8Array[] = [];
/** Pooled buffers kept at most (1 MiB): more connections closing at once let GC take the rest. */
const BUFFER_POOL_MAX = 256;

/**
 * The last plain-ASCII head decoded by any parser, as bytes and text: keep-alive clients (and load
 * balancers, health checks, benchmarks) send the same head again and again, and comparing bytes costs
 * less than decoding them into a new string. Shared, so it adds nothing to a connection's memory.
 */
let lastHeadBytes = new Uint8Array(256);
let lastHeadLength = -1;
let lastHeadText = "";
/** Longest head remembered: a browser's with a few cookies; longer ones are decoded every time. */
const REMEMBERED_HEAD_BYTES = 2048;

/** Limits objects given to parsers, merged with the defaults once each. */
const mergedLimits = new WeakMap<Partial<ParserLimits>, Readonly<ParserLimits>>();

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
  #state: State = State.Idle;
  #buf: Uint8Array;
  #start = 0; // first unconsumed byte
  #end = 0; // end of received data
  #maxBuffer: number;
  // Head scanning, resumable: offsets are relative to #start so compaction never invalidates them.
  #headState: HeadState = HeadState.Start;
  #scanOffset = 0;
  #methodStart = 0;
  #methodEnd = 0;
  #targetStart = 0;
  #targetEnd = 0;
  /** Where the target's `#fragment` starts (relative to #start), or -1. */
  #fragmentStart = -1;
  /** Where the target's query (its first `?`) starts, or -1 when not found in the bytes searched so far. */
  #queryStart = -1;
  /** How far the search for the query's `?` has looked, so each byte is looked at once. */
  #querySearched = 0;
  #versionStart = 0;
  #nameStart = 0;
  #nameEnd = 0;
  #valueStart = 0;
  #valueEnd = 0;
  /** Field line offsets, four per line; reused across requests (a truncated array would regrow each time). */
  #fieldOffsets: number[] = [];
  #fieldOffsetCount = 0;
  // Body.
  #framing: BodyFraming = FRAMING_NONE;
  #remaining = 0;
  #bodyTotal = 0;
  #chunkState: ChunkState = ChunkState.Size;
  #lineScanned = 0;
  #trailerBytes = 0;
  #endSent = false;
  #error: { type: "error"; error: ProtocolError } | null = null;
  #hasObsText = false;
  #scanned = 0;
  #lastHeadView: Uint8Array | null = null;
  /** The last Host field found valid on this connection. */
  #lastHost: string | null = null;
  readonly #decodeAscii: (bytes: Uint8Array) => string;

  /**
   * Make a parser for one connection.
   *
   * @param limits Overrides for {@link DEFAULT_PARSER_LIMITS}.
   * @param options How bytes become strings (see {@link ParserOptions}).
   */
  constructor(limits: Partial<ParserLimits> = NO_LIMITS, options: ParserOptions = {}) {
    // A server makes many parsers from one limits object: they share one merged copy.
    let merged = mergedLimits.get(limits);
    if (merged === undefined) {
      mergedLimits.set(limits, merged = Object.freeze({ ...DEFAULT_PARSER_LIMITS, ...limits }));
    }
    this.limits = merged;
    this.#decodeAscii = options.decodeAscii ?? decodeWithTextDecoder;
    this.#buf = bufferPool.pop() ?? new Uint8Array(INITIAL_BUFFER);
    const l = this.limits;
    this.#maxBuffer = Math.max(l.maxHeadBytes, l.maxChunkLineBytes, l.maxTrailerBytes) + INITIAL_BUFFER;
  }

  /** The current state: IDLE (waiting for a head), BODY, DONE (message read) or ERROR. */
  get state(): ParserState {
    return STATES[this.#state];
  }

  /** True once a message broke the grammar or a limit: the parser answers that error forever. */
  get failed(): boolean {
    return this.#state === State.Error;
  }

  /** Bytes received and not yet consumed by an event. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** True while waiting for a head and some of it has arrived (the header timer runs then). */
  get headStarted(): boolean {
    return this.#state === State.Idle && this.#end > this.#start;
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
    if (this.#state !== State.Body) return 0;
    return this.#framing.kind === "length" ? this.#remaining : this.#framing.kind === "chunked" ? -1 : 0;
  }

  #go(transition: Transition): void {
    const to = TRANSITIONS[this.#state * 4 + transition];
    if (to === ILLEGAL) {
      throw new Error(
        `illegal parser transition: "${TRANSITION_NAMES[transition]}" in state ${STATES[this.#state]}`,
      );
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
    if (this.#start === this.#end && this.#buf.length === INITIAL_BUFFER && this.#state !== State.Body) {
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
      const bigBody = this.#state === State.Body &&
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

  /**
   * Give the parser's read buffer back for another parser to use, when the connection is done. Call it
   * only when no read into {@link RequestParser.writable} is still in flight; the parser is not used
   * again afterwards.
   */
  release(): void {
    const buf = this.#buf;
    this.#buf = EMPTY;
    this.#start = this.#end = 0;
    this.#lastHeadView = null;
    if (buf.length === INITIAL_BUFFER && bufferPool.length < BUFFER_POOL_MAX) bufferPool.push(buf);
  }

  /**
   * Take the bytes received and not consumed, leaving none: after a 101 Switching Protocols, what the
   * client sent behind the request head belongs to the new protocol (RFC 9110 §7.8).
   *
   * @returns A copy of those bytes (often empty).
   */
  takeBuffered(): Uint8Array {
    const bytes = this.#buf.slice(this.#start, this.#end);
    this.#start = this.#end;
    return bytes;
  }

  /** After a message ends (`paused`), allow the next request on this connection (h11's start_next_cycle). */
  startNextCycle(): void {
    this.#go(Transition.NextCycle);
    this.#headState = HeadState.Start;
    this.#scanOffset = 0;
    this.#fieldOffsetCount = 0;
    this.#fragmentStart = -1;
    this.#queryStart = -1;
    this.#querySearched = 0;
    this.#endSent = false;
    this.#hasObsText = false;
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
      case State.Idle:
        return this.#parseHead();
      case State.Body:
        return this.#framing.kind === "chunked" ? this.#chunked() : this.#lengthBody();
      case State.Done:
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
    const v = this.#lastHeadView;
    if (v !== null && v.buffer === buf.buffer && v.byteOffset === start && v.length === end - start) return v;
    return this.#lastHeadView = buf.subarray(start, end);
  }

  /** The text of a plain-ASCII head in `buf[start, end)`: the last one's when the bytes are the same. */
  #asciiHead(buf: Uint8Array, start: number, end: number): string {
    const n = end - start;
    if (n === lastHeadLength) {
      const last = lastHeadBytes;
      let i = 0;
      while (i < n && buf[start + i] === last[i]) i++;
      if (i === n) return lastHeadText;
    }
    const text = this.#decodeAscii(this.#headView(buf, start, end));
    if (n <= REMEMBERED_HEAD_BYTES) {
      if (lastHeadBytes.length < n) lastHeadBytes = new Uint8Array(REMEMBERED_HEAD_BYTES);
      lastHeadBytes.set(this.#headView(buf, start, end));
      lastHeadLength = n;
      lastHeadText = text;
    }
    return text;
  }

  #fail(status: number, message: string): { type: "error"; error: ProtocolError } {
    this.#go(Transition.Error);
    this.#error = { type: "error", error: new ProtocolError(status, message) };
    return this.#error;
  }

  // --- the head -------------------------------------------------------------------------------------

  #parseHead(): ParserEvent | typeof NEED_DATA {
    const buf = this.#buf;
    const base = this.#start;
    const stop = Math.min(this.#end, base + this.limits.maxHeadBytes);
    const from = this.#scanOffset;
    const r = this.#scanHead(buf, base, stop, base + from);
    this.#scanned += this.#scanOffset - from;
    return r;
  }

  #scanHead(buf: Uint8Array, base: number, stop: number, i: number): ParserEvent | typeof NEED_DATA {
    const limits = this.limits;
    let state = this.#headState;
    while (i < stop) {
      const byte = buf[i];
      switch (state) {
        case HeadState.Start:
          // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
          if (byte === CR) {
            state = HeadState.LeadingLf;
            i++;
          } else if (TCHAR[byte]) {
            this.#methodStart = i - base;
            state = HeadState.Method;
          } else return this.#fail(400, "request line does not start with a method");
          break;
        case HeadState.LeadingLf:
          if (byte !== LF) return this.#fail(400, "bare CR before the request line");
          state = HeadState.Start;
          i++;
          break;
        case HeadState.Method: {
          while (i < stop && TCHAR[buf[i]]) i++;
          if (i - base - this.#methodStart > MAX_METHOD_BYTES) return this.#fail(501, "method too long");
          if (i === stop) break;
          if (buf[i] !== SP) return this.#fail(400, "invalid character in method");
          this.#methodEnd = i - base;
          this.#targetStart = i + 1 - base;
          state = HeadState.Target;
          i++;
          break;
        }
        case HeadState.Target: {
          while (i < stop && TARGET[buf[i]]) i++;
          if (i - base - this.#targetStart > limits.maxRequestLineBytes) {
            return this.#fail(414, "request-target too long");
          }
          if (i === stop) break;
          const byte = buf[i];
          if (byte === HASH) {
            // RFC 9112 §3.2 never sends a fragment, but clients that do are answered as Deno.serve, Node and
            // nginx answer them: the fragment (to the end of the target) is dropped.
            if (this.#fragmentStart < 0) this.#fragmentStart = i - base;
            i++;
            break;
          }
          if (byte === BACKSLASH) {
            // The WHATWG URL keeps `\` raw in a query, so browsers send it there; in a path it is refused
            // (a path separator to some servers, a literal to others: never a guess).
            if (this.#fragmentStart < 0 && !this.#inQuery(buf, base, i)) {
              return this.#fail(400, "backslash in the request-target's path");
            }
            i++;
            break;
          }
          if (byte !== SP || i - base === this.#targetStart) {
            return this.#fail(400, "invalid request-target");
          }
          this.#targetEnd = i - base;
          this.#versionStart = i + 1 - base;
          state = HeadState.Version;
          i++;
          break;
        }
        case HeadState.Version:
          if (byte === CR) {
            state = HeadState.RequestLineLf;
          } else if (!TCHAR[byte] && byte !== 0x2f || i - base - this.#versionStart >= 8) {
            return this.#fail(400, "invalid HTTP version");
          }
          i++;
          break;
        case HeadState.RequestLineLf:
          if (byte !== LF) return this.#fail(400, "bare CR in request line");
          state = HeadState.LineStart;
          i++;
          break;
        case HeadState.LineStart:
          if (byte === CR) {
            state = HeadState.EndLf;
            i++;
          } else if (TCHAR[byte]) {
            this.#nameStart = i - base;
            state = HeadState.Name;
          } else if (byte === SP || byte === HTAB) {
            // RFC 9112 §5.2 obs-fold, or whitespace before the first field (§2.2): both rejected.
            return this.#fail(400, "obsolete line folding or leading whitespace in a field line");
          } else return this.#fail(400, "invalid field line");
          break;
        case HeadState.Name: {
          while (i < stop && TCHAR[buf[i]]) i++;
          if (i === stop) break;
          // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon.
          if (buf[i] !== COLON) return this.#fail(400, "invalid character in field name");
          this.#nameEnd = i - base;
          state = HeadState.Whitespace;
          i++;
          break;
        }
        case HeadState.Whitespace:
          if (byte === SP || byte === HTAB) {
            i++;
          } else if (byte === CR) {
            this.#valueStart = this.#valueEnd = i - base;
            state = HeadState.ValueLf;
            i++;
          } else if (VCHAR[byte]) {
            if (byte >= 0x80) this.#hasObsText = true;
            this.#valueStart = i - base;
            this.#valueEnd = i + 1 - base;
            state = HeadState.Value;
            i++;
          } else return this.#fail(400, "invalid character in field value");
          break;
        case HeadState.Value: {
          let valueEnd = this.#valueEnd + base;
          let kinds = 0;
          while (i < stop) {
            const c = buf[i];
            const kind = VCHAR[c];
            if (kind !== 0) {
              valueEnd = ++i;
              kinds |= kind;
            } else if (c === SP || c === HTAB) i++;
            else break;
          }
          this.#valueEnd = valueEnd - base;
          if (kinds & 2) this.#hasObsText = true;
          if (i === stop) break;
          // RFC 9110 §5.5: CR, LF and NUL in a value MUST be rejected; other controls we reject too.
          if (buf[i] !== CR) return this.#fail(400, "invalid character in field value");
          state = HeadState.ValueLf;
          i++;
          break;
        }
        case HeadState.ValueLf: {
          if (byte !== LF) return this.#fail(400, "bare CR in field line");
          const count = this.#fieldOffsetCount;
          if (count >= limits.maxHeaderCount * 4) return this.#fail(431, "too many header fields");
          const offsets = this.#fieldOffsets;
          offsets[count] = this.#nameStart;
          offsets[count + 1] = this.#nameEnd;
          offsets[count + 2] = this.#valueStart;
          offsets[count + 3] = this.#valueEnd;
          this.#fieldOffsetCount = count + 4;
          state = HeadState.LineStart;
          i++;
          break;
        }
        case HeadState.EndLf:
          if (byte !== LF) return this.#fail(400, "bare CR at the end of the head");
          this.#scanOffset = i + 1 - base;
          this.#start = i + 1;
          return this.#finishHead(buf, base);
      }
    }
    this.#headState = state;
    this.#scanOffset = i - base;
    if (i - base >= limits.maxHeadBytes) {
      if (state === HeadState.Target) return this.#fail(414, "request-target too long");
      if (state === HeadState.Method) return this.#fail(501, "method too long");
      return this.#fail(431, "request head too large");
    }
    return NEED_DATA;
  }

  /** Whether `buf[i]`, in the target, is inside its query: a `?` came before it. */
  #inQuery(buf: Uint8Array, base: number, i: number): boolean {
    if (this.#queryStart < 0) {
      let j = base + Math.max(this.#querySearched, this.#targetStart);
      while (j < i && buf[j] !== QUESTION) j++;
      this.#querySearched = i - base;
      if (j < i) this.#queryStart = j - base;
    }
    return this.#queryStart >= 0;
  }

  #finishHead(buf: Uint8Array, base: number): ParserEvent {
    // One string for the whole head; every piece is a slice of it (cheap, and one char per byte). A head
    // of plain ASCII, the usual case, decodes natively; obs-text needs the byte-per-char path.
    const text = this.#hasObsText ? latin1(buf, base, this.#start) : this.#asciiHead(buf, base, this.#start);
    const method = methodString(buf, base + this.#methodStart, base + this.#methodEnd);
    const target = text.slice(
      this.#targetStart,
      this.#fragmentStart < 0 ? this.#targetEnd : this.#fragmentStart,
    );
    // RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
    const v = base + this.#versionStart;
    const versionOk = buf[v] === 0x48 && buf[v + 1] === 0x54 && buf[v + 2] === 0x54 && buf[v + 3] === 0x50 &&
      buf[v + 4] === 0x2f && buf[v + 5] >= 0x30 && buf[v + 5] <= 0x39 && buf[v + 6] === 0x2e &&
      buf[v + 7] >= 0x30 && buf[v + 7] <= 0x39 && buf[v + 8] === CR;
    if (!versionOk) return this.#fail(400, "invalid HTTP version");
    const major = buf[v + 5] - 0x30;
    if (major !== 1) return this.#fail(505, `HTTP/${major}.x is not supported`);
    const versionMinor: 0 | 1 = buf[v + 7] === 0x30 ? 0 : 1;

    const offs = this.#fieldOffsets;
    const nOffs = this.#fieldOffsetCount;
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
      const problem = hostProblem(authority);
      if (problem !== null) return this.#fail(400, `the absolute-form target's authority ${problem}`);
      if (!URL.canParse(target)) return this.#fail(400, "the absolute-form target is not a valid URL");
    } else if (target === "*") {
      if (method !== "OPTIONS") return this.#fail(400, "asterisk-form is only for OPTIONS");
      targetForm = "asterisk";
    } else if (method === "CONNECT" && HOST_RE.test(target)) targetForm = "authority";
    else return this.#fail(400, "invalid request-target form");

    // Host (RFC 9112 §3.2, RFC 9110 §7.2): exactly one, valid, in HTTP/1.1.
    if (hostCount > 1) return this.#fail(400, "more than one Host field");
    if (hostCount === 0 && versionMinor === 1) return this.#fail(400, "HTTP/1.1 request without Host");
    if (hostCount === 1 && host !== this.#lastHost) {
      // A client sends the same Host on every request of a connection: it is checked once per connection
      // (and once per process for hosts seen on other connections).
      if (host === "") return this.#fail(400, "the Host field is empty");
      const problem = hostProblem(host);
      if (problem !== null) return this.#fail(400, `the Host field ${problem}`);
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
    this.#chunkState = ChunkState.Size;
    this.#lineScanned = 0;
    this.#trailerBytes = 0;
    this.#go(Transition.Head);
    if (framing.kind === "none") this.#go(Transition.End);
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
    if (this.#remaining === 0) this.#go(Transition.End);
    return { type: "data", data };
  }

  /** Find the CRLF ending a line that starts at #start; -1 when incomplete. Bare LF is an error. */
  #lineEnd(max: number, what: string): number | ParserEvent {
    const buf = this.#buf;
    let i = this.#start + this.#lineScanned;
    const stop = Math.min(this.#end, this.#start + max + 2);
    while (i < stop) {
      const b = buf[i];
      if (b === CR) {
        if (i + 1 >= this.#end) {
          this.#lineScanned = i - this.#start;
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
    this.#lineScanned = i - this.#start;
    return -1;
  }

  #chunked(): ParserEvent | typeof NEED_DATA {
    for (;;) {
      switch (this.#chunkState) {
        case ChunkState.Size: {
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
          this.#lineScanned = 0;
          if (size === 0) {
            this.#chunkState = ChunkState.Trailer;
          } else {
            this.#remaining = size;
            this.#bodyTotal += size;
            this.#chunkState = ChunkState.Data;
          }
          break;
        }
        case ChunkState.Data: {
          const avail = this.#end - this.#start;
          if (avail === 0) return NEED_DATA;
          const take = Math.min(avail, this.#remaining);
          const data = this.#buf.subarray(this.#start, this.#start + take);
          this.#start += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#chunkState = ChunkState.DataEnd;
          return { type: "data", data };
        }
        case ChunkState.DataEnd:
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
          this.#chunkState = ChunkState.Size;
          break;
        case ChunkState.Trailer: {
          // RFC 9112 §7.1.2: trailer fields are read, bounded, and dropped: they never change framing.
          const eol = this.#lineEnd(this.limits.maxTrailerBytes - this.#trailerBytes, "trailer");
          if (typeof eol !== "number") return eol;
          if (eol < 0) return NEED_DATA;
          if (eol === this.#start) {
            this.#start = eol + 2;
            this.#go(Transition.End);
            this.#endSent = true;
            return END;
          }
          if (!FIELD_LINE_RE.test(latin1(this.#buf, this.#start, eol))) {
            return this.#fail(400, "invalid trailer field");
          }
          this.#trailerBytes += eol + 2 - this.#start;
          this.#start = eol + 2;
          this.#lineScanned = 0;
          break;
        }
      }
    }
  }
}

const END: ParserEvent = Object.freeze({ type: "end" }) as ParserEvent;
const NO_LIMITS: Partial<ParserLimits> = Object.freeze({});
const EMPTY = new Uint8Array(0);
