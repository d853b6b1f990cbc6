// The response writer (Go's transferWriter, h11's writers): it decides an answer's framing once (status,
// length, chunked, close-delimited or none, HEAD, the connection header), then writes head and body to its
// sink, queueing small answers so a pipelined batch goes out in one write. It owns the out buffers and the
// plain-head cache. It must never import the connection: what it learns, it returns as an Outcome.
import { headerList, markBodyUsed, staticBody, statusOf } from "./_fast.ts";
import { concatBytes } from "./_bytes.ts";
import { STATUS_TEXT } from "./status.ts";

/**
 * What a written answer tells the connection, as bits: each one means the connection must not be reused.
 * `Complete` (0) is the usual case.
 *
 * @example
 * ```ts
 * import { Outcome } from "./writer.ts";
 * const reusable = (o: number) => o === Outcome.Complete;
 * ```
 */
export const Outcome = {
  /** Written as framed; nothing against reuse. */
  Complete: 0,
  /** The response said `Connection: close` (RFC 9112 §9.6). */
  HandlerAsked: 1,
  /** The body's end is the connection's close (HTTP/1.0, length unknown; RFC 9112 §6.3 rule 8). */
  CloseDelimited: 2,
  /** The body could not be completed as framed: it failed, or ended short of its Content-Length. */
  Incomplete: 4,
  /** A write failed or the peer left: nothing more can be sent. */
  WriteFailed: 8,
  /**
   * A 101 Switching Protocols: after it the connection speaks another protocol (RFC 9110 §15.2.2), and
   * {@link ResponseWriter.switchedTo} names the response. Above the connection's own reasons (16 to 256).
   */
  Switched: 512,
} as const;
/** A combination of {@link Outcome} bits. */
export type Outcome = number;

/**
 * How an answer's body is delimited on the wire, decided once per answer (RFC 9112 §6.3, RFC 9110 §6.4.1).
 *
 * @example
 * ```ts
 * import { Framing } from "./writer.ts";
 * console.log(Framing.Chunked);
 * ```
 */
export const Framing = {
  /** No body: 1xx, 204, 304, or an answer to HEAD. */
  None: 0,
  /** Content-Length. */
  Length: 1,
  /** Transfer-Encoding: chunked (HTTP/1.1, length unknown). */
  Chunked: 2,
  /** The body ends when the connection closes (HTTP/1.0, length unknown). */
  Close: 3,
} as const;
/** One of {@link Framing}. */
export type Framing = typeof Framing[keyof typeof Framing];

/** What decides an answer's framing, besides its status. */
export interface FramingInput {
  /** The answer's status. */
  status: number;
  /** The request was HEAD: the headers GET would get, no body (RFC 9110 §9.3.2). */
  isHead: boolean;
  /** The request's HTTP minor version: 1.0 has no chunked encoding. */
  versionMinor: 0 | 1;
  /** The body's length when all of it is known (bytes, a finished stream), else -1. */
  known: number;
  /** A Content-Length the handler set, else -1. */
  declared: number;
}

/**
 * The framing of an answer and the Content-Length it states (-1 for none): the one place these are
 * decided, in the order of RFC 9112 §6.3.
 *
 * @param input The status, the request, and what is known of the body's length.
 * @returns The framing and the length to state.
 *
 * @example
 * ```ts
 * import { decideFraming, Framing } from "./writer.ts";
 * const f = decideFraming({ status: 200, isHead: false, versionMinor: 1, known: -1, declared: -1 });
 * console.log(f.framing === Framing.Chunked); // true
 * ```
 */
export function decideFraming(input: FramingInput): { framing: Framing; length: number } {
  const { status, isHead, versionMinor, known, declared } = input;
  // RFC 9110 §6.4.1: 1xx, 204 and 304 never carry content. A 304 may state the length a 200 would have.
  if (status < 200 || status === 204) return { framing: Framing.None, length: -1 };
  if (status === 304) return { framing: Framing.None, length: declared };
  // HEAD: the length GET would send when it is known, else the one the handler declared (static files
  // answer HEAD with a null body and a declared length), else none.
  if (isHead) return { framing: Framing.None, length: known >= 0 ? known : declared };
  if (known >= 0) return { framing: Framing.Length, length: known };
  if (declared >= 0) return { framing: Framing.Length, length: declared };
  return versionMinor === 1
    ? { framing: Framing.Chunked, length: -1 }
    : { framing: Framing.Close, length: -1 };
}

/** Where a writer's bytes go: the connection, which owns the socket and its write deadline. */
export interface Sink {
  /** Write all of `bytes`. Rejects when the peer is gone or the socket failed. */
  writeAll(bytes: Uint8Array): Promise<void>;
  /** Everything queued until now is written: the connection can report those answers complete. */
  wrote(): void;
  /** A streamed body is about to wait on its source: the connection watches for the client leaving. */
  streaming(): void;
}

/** What a writer reads from its server: the clock's `date:` line, the keep-alive lines and the log. */
export interface WriterHost {
  /** The current `date:` header line, with its CRLF (RFC 9110 §6.6.1). */
  readonly dateLine: string;
  /** What a keep-alive answer says about persistence, made once per server ({@link keepAliveLines}). */
  readonly keepAlive: KeepAliveLines;
  /** Log a failure of the handler's response (never a client that left). */
  log(message: string, error?: unknown): void;
}

/** The request facts an answer depends on (a parsed request head has them). */
export interface AnswerTo {
  /** The request's method: HEAD gets the headers GET would, without a body. */
  readonly method: string;
  /** Its HTTP minor version. */
  readonly versionMinor: 0 | 1;
}

const encoder = new TextEncoder();
const CR = 0x0d, LF = 0x0a;
const STATUS_LINES: string[] = [];
// Status lines for the known codes, made once; others get an empty reason phrase, which is valid.
for (const [code, reason] of Object.entries(STATUS_TEXT)) {
  STATUS_LINES[+code] = `HTTP/1.1 ${code} ${reason}\r\n`;
}
function statusLine(status: number): string {
  return STATUS_LINES[status] ?? `HTTP/1.1 ${status} \r\n`;
}

/** Out buffer size: a typical page and its head go out in one write; larger bodies are written directly. */
const OUT_BUFFER = 16 * 1024;
/** Free out buffers shared by all connections: an idle connection holds none (10,000 idle = no 160 MiB). */
const outPool: Uint8Array[] = [];
/** Free buffers kept for reuse; more than this many concurrent writers allocate and let GC take them. */
const OUT_POOL_MAX = 64;
function takeOut(n: number): Uint8Array {
  return n <= OUT_BUFFER && outPool.length > 0 ? outPool.pop()! : new Uint8Array(Math.max(OUT_BUFFER, n));
}
function giveOut(b: Uint8Array): void {
  if (b.length === OUT_BUFFER && outPool.length < OUT_POOL_MAX) outPool.push(b);
}

/** Where short string bodies are encoded before being queued: one buffer for all connections. */
const SCRATCH = new Uint8Array(OUT_BUFFER);
/**
 * String bodies up to this many chars are encoded together with their head, in one call, when both are
 * ASCII: a page or a JSON answer, not a large document, whose failed ASCII attempt would cost a full pass.
 */
const INLINE_BODY_CHARS = 4096;
/** Queued pipelined answers are flushed once this much is waiting, so a deep pipeline cannot grow memory. */
const FLUSH_AT = 64 * 1024;
/**
 * String bodies up to this many chars are copied in a JS loop rather than through the encoder op, whose
 * call costs about as much as copying this many chars.
 */
const LOOP_BODY_CHARS = 64;
const CONNECTION_CLOSE = encoder.encode("connection: close\r\n");
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

/**
 * The field lines a keep-alive answer carries, for each HTTP version, as text and as bytes: made once per
 * server so that the plain path copies them and builds nothing per answer.
 */
export interface KeepAliveLines {
  /** For HTTP/1.1: `keep-alive: timeout=N` with its CRLF, or "" when there is no hint. */
  readonly http11: string;
  /** For HTTP/1.0: `connection: keep-alive` (RFC 9112 §9.3), then the hint. */
  readonly http10: string;
  /** {@link KeepAliveLines.http11} as bytes. */
  readonly http11Bytes: Uint8Array;
  /** {@link KeepAliveLines.http10} as bytes. */
  readonly http10Bytes: Uint8Array;
}

/**
 * The keep-alive lines for a hint of `seconds` (0 or less: no `Keep-Alive` field). The field is the
 * informative one of RFC 9112 §9.3 and RFC 2068 §19.7.1.1: `timeout` is how long the server keeps an idle
 * connection, so a pooling client or proxy (Node's http.Agent, for one) drops it before the server does.
 *
 * @param seconds The `timeout` to announce, in whole seconds.
 * @returns The lines, as text and bytes.
 *
 * @example
 * ```ts
 * import { keepAliveLines } from "./writer.ts";
 * console.log(JSON.stringify(keepAliveLines(3).http11)); // "keep-alive: timeout=3\r\n"
 * ```
 */
export function keepAliveLines(seconds: number): KeepAliveLines {
  const http11 = seconds >= 1 ? `keep-alive: timeout=${Math.floor(seconds)}\r\n` : "";
  const http10 = `connection: keep-alive\r\n${http11}`;
  return Object.freeze({
    http11,
    http10,
    http11Bytes: encoder.encode(http11),
    http10Bytes: encoder.encode(http10),
  });
}

/**
 * The bytes that start a plain answer (200, one Content-Type, the date) up to its Content-Length value,
 * by content type. They change only with the date, once a second; until then each such answer copies
 * them instead of building and encoding its head. Bounded: a server with more content types than this
 * starts the cache over.
 */
const plainHeads = new Map<string | null, { dateLine: string; bytes: Uint8Array }>();
const PLAIN_HEADS_MAX = 32;
/** The last plain head made or found, checked before the map: most servers answer mostly one type. */
let lastPlain: { contentType: string | null; dateLine: string; bytes: Uint8Array } = {
  contentType: null,
  dateLine: "",
  bytes: new Uint8Array(0),
};
function plainHead(contentType: string | null, dateLine: string): Uint8Array {
  const last = lastPlain;
  if (last.contentType === contentType && last.dateLine === dateLine) return last.bytes;
  const bytes = plainHeadFromMap(contentType, dateLine);
  lastPlain = { contentType, dateLine, bytes };
  return bytes;
}
function plainHeadFromMap(contentType: string | null, dateLine: string): Uint8Array {
  const hit = plainHeads.get(contentType);
  if (hit !== undefined && hit.dateLine === dateLine) return hit.bytes;
  if (hit === undefined && plainHeads.size >= PLAIN_HEADS_MAX) plainHeads.clear();
  const type = contentType === null ? "" : `content-type: ${contentType}\r\n`;
  const text = `${statusLine(200)}${type}${dateLine}content-length: `;
  // Header values are ISO-8859-1 byte strings (RFC 9110 §5.5): one byte per char, not UTF-8.
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  plainHeads.set(contentType, { dateLine, bytes });
  return bytes;
}

/** Write `n` (a non-negative integer) in decimal at `at`; returns the offset after it. */
function writeDecimal(out: Uint8Array, at: number, n: number): number {
  if (n < 10) {
    out[at] = 0x30 + n;
    return at + 1;
  }
  let digits = 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    out[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}

/** Microtask turns a promise may take and still count as ready (Deno's own streams settle in 2 to 5). */
const READY_TURNS = 16;

/**
 * Whether `promise` settles within a few microtask turns, before the event loop polls again: "ready",
 * as opposed to waiting on I/O or a timer.
 *
 * @param promise The promise to watch (its result is not consumed).
 * @returns True when it settled in time.
 *
 * @example
 * ```ts
 * import { settlesSoon } from "./writer.ts";
 * console.log(await settlesSoon(Promise.resolve(1))); // true
 * ```
 */
export async function settlesSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  for (let i = 0; i < READY_TURNS && !settled; i++) await null;
  return settled;
}

/** What {@link probeStream} found: the chunks ready now, and whether the stream had ended. */
interface Probe {
  chunks: Uint8Array[];
  done: boolean;
  pending: Promise<ReadableStreamReadResult<Uint8Array>> | null;
}
/** Most bytes read ahead to learn a stream's length; past it the body is streamed. */
const PROBE_LIMIT = OUT_BUFFER;

/**
 * Read the chunks a stream has ready without waiting on I/O. One that must wait is handed back, so no
 * chunk is lost, and a stream with nothing ready (server-sent events) gets its head sent at once.
 */
async function probeStream(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Probe> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const next = reader.read();
    if (!(await settlesSoon(next))) return { chunks, done: false, pending: next };
    const r = await next;
    if (r.done) return { chunks, done: true, pending: null };
    if (!(r.value instanceof Uint8Array)) throw new TypeError("response body chunk is not a Uint8Array");
    chunks.push(r.value);
    size += r.value.length;
    if (size > PROBE_LIMIT) return { chunks, done: false, pending: null };
  }
}

/** The stream being sent was stopped: the peer left, or the connection closed. */
class Cancelled extends Error {
  constructor() {
    super("the connection closed while a body was being sent");
    this.name = "Cancelled";
  }
}

/** A write to the sink failed: the connection knows why (and logs it if it is not a client leaving). */
class WriteFailure extends Error {
  constructor(cause: unknown) {
    super("write failed", { cause });
    this.name = "WriteFailure";
  }
}

/** The head of an answer as the handler gave it: its field lines and the few fields the writer reads. */
interface HandlerHead {
  /** `name: value\r\n` lines, with the date, without the framing and connection fields. */
  lines: string;
  /** A Content-Length the handler set, else -1. */
  declared: number;
  /** The handler asked to close (RFC 9112 §9.6). */
  close: boolean;
}

/**
 * Writes one connection's answers, in order, to its {@link Sink}. Answers that are whole at once are
 * queued and go out when the connection flushes; streamed and large bodies are written as they come.
 *
 * @example
 * ```ts
 * import { keepAliveLines, ResponseWriter } from "./writer.ts";
 * const sent: Uint8Array[] = [];
 * const writer = new ResponseWriter({
 *   writeAll: (b) => (sent.push(b.slice()), Promise.resolve()),
 *   wrote() {},
 *   streaming() {},
 * }, {
 *   dateLine: "date: Mon, 30 Nov 2026 00:00:00 GMT\r\n",
 *   keepAlive: keepAliveLines(4),
 *   log: console.error,
 * });
 * writer.answer(new Response("hi"), { method: "GET", versionMinor: 1 }, false);
 * await writer.flush();
 * console.log(new TextDecoder().decode(sent[0]).split("\r\n")[0]); // "HTTP/1.1 200 OK"
 * ```
 */
export class ResponseWriter {
  readonly #sink: Sink;
  readonly #host: WriterHost;
  #out: Uint8Array | null = null;
  #outLength = 0;
  /** The buffer behind the bytes last taken, until they are written. */
  #taken: Uint8Array | null = null;
  /** The flush in progress: writes go out one after another, never interleaved. */
  #flushing: Promise<void> | null = null;
  /** The stream being sent, so it can be cancelled when the peer leaves. */
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #cancelled = false;
  /** The 101 answer written, whose taker gets the connection next ({@link Outcome.Switched}). */
  switchedTo: Response | null = null;

  /**
   * @param sink Where the bytes go.
   * @param host The clock's date line and the log.
   */
  constructor(sink: Sink, host: WriterHost) {
    this.#sink = sink;
    this.#host = host;
  }

  /** Bytes queued and not yet written. */
  get queued(): number {
    return this.#outLength;
  }

  /** Whether a streamed body is being sent (and would wait on its source). */
  get streaming(): boolean {
    return this.#reader !== null;
  }

  /**
   * Detach the queued bytes, for a caller that writes them itself (the connection's keep-alive path, which
   * starts its next read alongside the write); hand the buffer back with {@link ResponseWriter.recycle}
   * once they are written. One at a time: writes are never interleaved.
   *
   * @returns The queued bytes (a view of a pooled buffer), or null when nothing is queued.
   */
  take(): Uint8Array | null {
    const length = this.#outLength;
    if (length === 0) return null;
    const buffer = this.#out!;
    this.#out = null;
    this.#outLength = 0;
    this.#taken = buffer;
    return length === buffer.length ? buffer : buffer.subarray(0, length);
  }

  /** The bytes from {@link ResponseWriter.take} are written: their buffer goes back to the pool. */
  recycle(): void {
    const buffer = this.#taken;
    this.#taken = null;
    if (buffer !== null) giveOut(buffer);
  }

  /**
   * Write everything queued, after any write in progress. Rejects when the sink's write fails (the
   * error's `cause` is the sink's).
   *
   * @returns When the bytes are written.
   */
  async flush(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
    const bytes = this.take();
    if (bytes === null) return;
    const writing = this.#send(bytes);
    this.#flushing = writing.then(() => {}, () => {});
    try {
      await writing;
    } finally {
      this.#flushing = null;
    }
    this.recycle();
    this.#sink.wrote();
  }

  /** Write `bytes` through the sink; a failure becomes a {@link WriteFailure}. */
  async #send(bytes: Uint8Array): Promise<void> {
    try {
      await this.#sink.writeAll(bytes);
    } catch (e) {
      throw new WriteFailure(e);
    }
  }

  /**
   * Stop a body being streamed (the peer left, or the connection closed): its source is cancelled and
   * the write ends with {@link Outcome.WriteFailed}.
   *
   * @param reason Passed to the stream's cancel.
   */
  cancel(reason?: unknown): void {
    this.#cancelled = true;
    if (this.#reader !== null) this.#reader.cancel(reason ?? new Cancelled()).catch(() => {});
  }

  /** Queue `HTTP/1.1 100 Continue` (RFC 9110 §10.1.1), for a client waiting to send its body. */
  queueContinue(): void {
    this.#appendBytes(CONTINUE, CONTINUE.length);
  }

  /**
   * Queue an answer the server gives on its own, without a body (a 501, or 204 to `OPTIONS *`).
   *
   * @param status The status.
   * @param close Whether the connection closes after it.
   */
  queueEmpty(status: number, close: boolean): void {
    this.#appendHead(
      `${statusLine(status)}${status === 204 ? "" : "content-length: 0\r\n"}${
        close ? "connection: close\r\n" : this.#host.keepAlive.http11
      }${this.#host.dateLine}\r\n`,
    );
  }

  /**
   * Queue a protocol error's answer: a short plain-text body naming the status, then the connection
   * closes (RFC 9112 §2.2). The reason is never sent.
   *
   * @param status The status.
   */
  queueError(status: number): void {
    const body = `${STATUS_TEXT[status] ?? "Error"}\n`;
    this.#appendHead(
      `${statusLine(status)}content-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\n` +
        `connection: close\r\n${this.#host.dateLine}\r\n${body}`,
    );
  }

  /**
   * Write a handler's response to a request: queued when whole at once (the usual case: nothing to
   * await), streamed otherwise.
   *
   * @param res The handler's response (its body is consumed).
   * @param to The request it answers.
   * @param close The connection closes after this answer whatever it says: `connection: close` is sent.
   * @returns What the connection must know of the answer (an {@link Outcome}), or a promise of it.
   */
  answer(res: Response, to: AnswerTo, close: boolean): Outcome | Promise<Outcome> {
    const status = statusOf(res);
    const fixed = staticBody(res);
    if (
      fixed !== null && fixed.contentType !== undefined && typeof fixed.body === "string" &&
      to.method !== "HEAD" &&
      fixed.body.length <= INLINE_BODY_CHARS &&
      this.#queuePlain(fixed.contentType, fixed.body, to.versionMinor, close)
    ) {
      // A 200 whose only header is its Content-Type and whose body is a short ASCII string: its framing
      // is a Content-Length by construction, and its head comes from cached bytes.
      markBodyUsed(res);
      return this.#outLength >= FLUSH_AT ? this.#flushed(Outcome.Complete) : Outcome.Complete;
    }
    const head = this.#handlerHead(res, fixed);
    let outcome: Outcome = head.close ? Outcome.HandlerAsked : Outcome.Complete;
    if (status === 101) {
      // RFC 9110 §7.8: the protocol changes right after this answer's empty line.
      outcome = Outcome.Switched;
      this.switchedTo = res;
    }
    if (fixed !== null) {
      markBodyUsed(res);
      const b = fixed.body;
      if (typeof b === "string") return this.#queueString(status, head, b, to, close, outcome);
      return this.#queueFixed(status, head, b, b === null ? 0 : b.length, to, close, outcome);
    }
    return this.#writeStream(res.body!, status, head, to, close, outcome);
  }

  /** The handler's header lines (without framing and connection fields), its declared length and close. */
  #handlerHead(res: Response, fixed: ReturnType<typeof staticBody>): HandlerHead {
    let lines = "";
    let declared = -1;
    let hasDate = false;
    let close = false;
    if (fixed !== null && fixed.contentType !== undefined) {
      if (fixed.contentType !== null) lines = `content-type: ${fixed.contentType}\r\n`;
    } else {
      const list = headerList(res) ?? [...res.headers];
      for (let i = 0; i < list.length; i++) {
        const name = list[i][0];
        const value = list[i][1];
        // Only five names matter here; their lengths let every other name pass without lower-casing.
        const n = name.length;
        if (n === 4 || n === 10 || n === 14 || n === 17) {
          switch (name.toLowerCase()) {
            case "content-length":
              if (/^[0-9]{1,15}$/.test(value)) declared = Number(value);
              continue;
            case "connection":
              // A handler may ask to close (RFC 9112 §9.6); other connection options are ours to decide.
              if (/(?:^|,)[ \t]*close[ \t]*(?:,|$)/i.test(value)) close = true;
              continue;
            case "transfer-encoding":
            case "keep-alive":
              continue; // hop-by-hop: framing and persistence are ours to decide (RFC 9112 §6.1, §9.3)
            case "date":
              hasDate = true;
          }
        }
        lines += `${name}: ${value}\r\n`;
      }
    }
    if (!hasDate) lines += this.#host.dateLine;
    return { lines, declared, close };
  }

  /** The head of an answer: status line, the handler's lines, framing and connection fields, blank line. */
  #head(
    status: number,
    head: HandlerHead,
    framing: Framing,
    length: number,
    versionMinor: 0 | 1,
    close: boolean,
  ): string {
    let s = statusLine(status) + head.lines;
    // A 101 names its protocol in Upgrade (the handler's); Connection must list it (RFC 9110 §7.8).
    if (status === 101) return s + "connection: upgrade\r\n\r\n";
    if (length >= 0) s += `content-length: ${length}\r\n`;
    else if (framing === Framing.Chunked) s += "transfer-encoding: chunked\r\n";
    if (close || head.close || framing === Framing.Close) s += "connection: close\r\n";
    else if (status >= 200) {
      s += versionMinor === 0 ? this.#host.keepAlive.http10 : this.#host.keepAlive.http11;
    }
    return s + "\r\n";
  }

  /** Queue an answer whose body is a string. */
  #queueString(
    status: number,
    head: HandlerHead,
    body: string,
    to: AnswerTo,
    close: boolean,
    outcome: Outcome,
  ): Outcome | Promise<Outcome> {
    if (
      to.method !== "HEAD" && body.length <= INLINE_BODY_CHARS && status >= 200 && status !== 204 &&
      status !== 304
    ) {
      // Most string bodies are ASCII, and then chars are bytes: head and body go out in one native call;
      // the framing is a Content-Length of the body's length (decideFraming's "known" case).
      const text = this.#head(status, head, Framing.Length, body.length, to.versionMinor, close);
      if (this.#appendAscii(text + body)) {
        return this.#outLength >= FLUSH_AT ? this.#flushed(outcome) : outcome;
      }
    }
    if (body.length <= SCRATCH.length / 3) {
      const n = encoder.encodeInto(body, SCRATCH).written;
      return this.#queueFixed(status, head, SCRATCH, n, to, close, outcome);
    }
    const bytes = encoder.encode(body);
    return this.#queueFixed(status, head, bytes, bytes.length, to, close, outcome);
  }

  /** Queue (or, when large, write) an answer whose body bytes are all known. */
  #queueFixed(
    status: number,
    head: HandlerHead,
    bytes: Uint8Array | null,
    length: number,
    to: AnswerTo,
    close: boolean,
    outcome: Outcome,
  ): Outcome | Promise<Outcome> {
    // A null body answering HEAD with a declared length states that length (what GET would send).
    const isHead = to.method === "HEAD";
    const known = bytes === null && isHead && head.declared >= 0 ? -1 : length;
    const decided = decideFraming({
      status,
      isHead,
      versionMinor: to.versionMinor,
      known,
      declared: head.declared,
    });
    this.#appendHead(this.#head(status, head, decided.framing, decided.length, to.versionMinor, close));
    if (decided.framing === Framing.Length && length > 0) {
      if (length > OUT_BUFFER) {
        const body = length === bytes!.length ? bytes! : bytes!.subarray(0, length);
        return this.#flushThenWrite(body, outcome);
      }
      this.#appendBytes(bytes!, length);
    }
    return this.#outLength >= FLUSH_AT ? this.#flushed(outcome) : outcome;
  }

  /** Flush, then answer `outcome`, or {@link Outcome.WriteFailed} if the peer is gone. */
  async #flushed(outcome: Outcome): Promise<Outcome> {
    try {
      await this.flush();
      return outcome;
    } catch {
      return outcome | Outcome.WriteFailed;
    }
  }

  /** Send the queued head, then a large body straight from its buffer (no copy). */
  async #flushThenWrite(body: Uint8Array, outcome: Outcome): Promise<Outcome> {
    try {
      await this.flush();
      if (this.#cancelled) return outcome | Outcome.WriteFailed;
      await this.#send(body);
      this.#sink.wrote();
      return outcome;
    } catch {
      return outcome | Outcome.WriteFailed;
    }
  }

  async #writeStream(
    stream: ReadableStream<Uint8Array>,
    status: number,
    head: HandlerHead,
    to: AnswerTo,
    close: boolean,
    outcome: Outcome,
  ): Promise<Outcome> {
    let reader: ReadableStreamDefaultReader<Uint8Array>;
    try {
      reader = stream.getReader();
    } catch (e) {
      this.#host.log("response body is not readable", e);
      this.#appendHead(
        `${statusLine(500)}content-length: 0\r\nconnection: close\r\n${this.#host.dateLine}\r\n`,
      );
      return this.#flushed(Outcome.Incomplete);
    }
    // A stream that ends before it has to wait (a Blob, a finished stream, any body on the public-API
    // path) has a known length: sent with Content-Length, as a fixed body, rather than chunked.
    let first: Uint8Array[] = [];
    let pending: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
    const noContent = status < 200 || status === 204 || status === 304;
    if (head.declared < 0 && !noContent) {
      let probe: Probe;
      try {
        probe = await probeStream(reader);
      } catch (e) {
        return this.#bodyFailed(reader, e, outcome);
      }
      if (probe.done) {
        const bytes = concatBytes(probe.chunks);
        return this.#queueFixed(status, head, bytes, bytes.length, to, close, outcome);
      }
      first = probe.chunks;
      pending = probe.pending;
    }
    const decided = decideFraming({
      status,
      isHead: to.method === "HEAD",
      versionMinor: to.versionMinor,
      known: -1,
      declared: head.declared,
    });
    this.#appendHead(this.#head(status, head, decided.framing, decided.length, to.versionMinor, close));
    if (decided.framing === Framing.None) {
      reader.cancel().catch(() => {});
      return outcome;
    }
    if (decided.framing === Framing.Close) outcome |= Outcome.CloseDelimited;
    return this.#streamBody(reader, decided.framing, decided.length, first, pending, outcome);
  }

  /** The body's source failed: the message cannot be completed, so the connection must close (RFC 9112 §8). */
  #bodyFailed(reader: ReadableStreamDefaultReader<Uint8Array>, e: unknown, outcome: Outcome): Outcome {
    reader.cancel(e).catch(() => {});
    if (this.#cancelled || e instanceof Cancelled || e instanceof WriteFailure) {
      return outcome | Outcome.WriteFailed;
    }
    this.#host.log("response body stream failed", e);
    return outcome | Outcome.Incomplete;
  }

  async #streamBody(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    framing: Framing,
    declared: number,
    first: Uint8Array[],
    pending: Promise<ReadableStreamReadResult<Uint8Array>> | null,
    outcome: Outcome,
  ): Promise<Outcome> {
    let sent = 0;
    this.#reader = reader;
    this.#sink.streaming();
    try {
      for (let i = 0;; i++) {
        let value: Uint8Array | undefined;
        if (i < first.length) value = first[i];
        else {
          // Send what is queued before waiting on the stream, so a slow producer holds nothing back.
          if (this.#outLength > 0) await this.flush();
          if (this.#cancelled) throw new Cancelled();
          const r = pending ?? reader.read();
          pending = null;
          const { done, value: v } = await r;
          if (done) break;
          value = v;
        }
        if (!(value instanceof Uint8Array)) throw new TypeError("response body chunk is not a Uint8Array");
        if (value.length === 0) continue;
        let chunk = value;
        let full = false;
        if (framing === Framing.Length && sent + chunk.length >= declared) {
          // More bytes than declared: send what was promised and close, never a corrupt frame.
          if (sent + chunk.length > declared) outcome |= Outcome.Incomplete;
          chunk = chunk.subarray(0, declared - sent);
          full = true;
        }
        sent += chunk.length;
        // One chunk, one write: the producer already holds it in memory, so splitting saves nothing.
        if (framing === Framing.Chunked) this.#appendHead(`${chunk.length.toString(16)}\r\n`);
        if (this.#outLength > 0 && chunk.length <= OUT_BUFFER) this.#appendBytes(chunk, chunk.length);
        else {
          if (this.#outLength > 0) await this.flush();
          if (this.#cancelled) throw new Cancelled();
          await this.#send(chunk);
        }
        if (framing === Framing.Chunked) this.#appendHead("\r\n");
        if (full && outcome & Outcome.Incomplete) {
          reader.cancel().catch(() => {});
          break;
        }
      }
      // A source cancelled because the peer left ends as if it were done: that is no short body.
      if (this.#cancelled) return outcome | Outcome.WriteFailed;
      if (framing === Framing.Chunked) this.#appendHead("0\r\n\r\n");
      else if (framing === Framing.Length && sent < declared) {
        this.#host.log(`response body ended after ${sent} of ${declared} declared bytes`);
        outcome |= Outcome.Incomplete;
      }
      await this.flush();
      return outcome;
    } catch (e) {
      return this.#bodyFailed(reader, e, outcome);
    } finally {
      this.#reader = null;
    }
  }

  // --- the out buffer -------------------------------------------------------------------------------

  #reserve(n: number): Uint8Array {
    let out = this.#out;
    if (out === null) out = this.#out = takeOut(n);
    else if (out.length - this.#outLength < n) {
      const bigger = new Uint8Array(Math.max(out.length * 2, this.#outLength + n));
      bigger.set(out.subarray(0, this.#outLength));
      giveOut(out);
      out = this.#out = bigger;
    }
    return out;
  }

  /**
   * Queue head text. Field values are ISO-8859-1 byte strings (RFC 9110 §5.5, and Deno's Headers hold
   * ByteStrings), so each char is one byte; ASCII, the usual case, goes through the native encoder.
   */
  #appendHead(s: string): void {
    const out = this.#reserve(s.length);
    const at = this.#outLength;
    const r = encoder.encodeInto(s, at === 0 ? out : out.subarray(at));
    if (r.read !== s.length || r.written !== s.length) {
      for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
    }
    this.#outLength = at + s.length;
  }

  /**
   * Queue `s` if it is all ASCII (one byte per char, the same in UTF-8 and ISO-8859-1); else queue
   * nothing and answer false, for the caller to encode head and body each the right way.
   */
  #appendAscii(s: string): boolean {
    const out = this.#reserve(s.length);
    const at = this.#outLength;
    const r = encoder.encodeInto(s, at === 0 ? out : out.subarray(at));
    if (r.read !== s.length || r.written !== s.length) return false;
    this.#outLength = at + s.length;
    return true;
  }

  /** Queue the first `length` bytes of `b`. */
  #appendBytes(b: Uint8Array, length: number): void {
    const out = this.#reserve(length);
    const at = this.#outLength;
    if (length <= 64) { for (let i = 0; i < length; i++) out[at + i] = b[i]; }
    else out.set(length === b.length ? b : b.subarray(0, length), at);
    this.#outLength = at + length;
  }

  /**
   * Queue a plain answer (200, at most a Content-Type, a short string body) from the cached head bytes.
   * False, with nothing queued, when the body is not all ASCII: its UTF-8 length differs from its length
   * in chars, and the caller takes the general path.
   */
  #queuePlain(contentType: string | null, body: string, versionMinor: 0 | 1, close: boolean): boolean {
    const prefix = plainHead(contentType, this.#host.dateLine);
    const n = body.length;
    // The prefix, up to 16 digits and CRLF, the connection lines (made once per server), CRLF, the body.
    const keepAlive = this.#host.keepAlive;
    const connection = close
      ? CONNECTION_CLOSE
      : versionMinor === 0
      ? keepAlive.http10Bytes
      : keepAlive.http11Bytes;
    const out = this.#reserve(prefix.length + 18 + connection.length + 2 + n);
    let at = this.#outLength;
    out.set(prefix, at);
    at = writeDecimal(out, at + prefix.length, n);
    out[at++] = CR;
    out[at++] = LF;
    // A loop, as #appendBytes does for short copies: the lines are some 25 bytes.
    for (let i = 0; i < connection.length; i++) out[at + i] = connection[i];
    at += connection.length;
    out[at++] = CR;
    out[at++] = LF;
    if (n <= LOOP_BODY_CHARS) {
      for (let i = 0; i < n; i++) {
        const c = body.charCodeAt(i);
        if (c >= 0x80) return false;
        out[at + i] = c;
      }
    } else {
      const r = encoder.encodeInto(body, out.subarray(at));
      if (r.read !== n || r.written !== n) return false;
    }
    this.#outLength = at + n;
    return true;
  }
}
