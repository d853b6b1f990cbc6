// One connection's life: read into the parser, hand each request to the handler, write the answers in
// order, and decide in one place whether the connection is reused. It owns timeouts' effects, backpressure
// and the 100-continue decision; it must never let handler errors or client input crash the server.
import { NEED_DATA, PAUSED, ProtocolError, type RequestHead, RequestParser } from "./http1.ts";
import {
  decodeAscii,
  headerList,
  makeRequest,
  markBodyUsed,
  rawRid,
  readOp,
  staticBody,
  statusOf,
  writeOp,
} from "./_fast.ts";
import { concatBytes } from "./_bytes.ts";
import { STATUS_TEXT } from "./status.ts";
import type { Handler, ServeHandlerInfo } from "./types.ts";

/** What a connection needs from its server: settings, the clock, the log and the shutdown flag. */
export interface ConnectionHost {
  readonly handler: Handler;
  readonly parserLimits: ConstructorParameters<typeof RequestParser>[0];
  readonly scheme: "http" | "https";
  /** host:port of the listener, for HTTP/1.0 requests without Host. */
  readonly defaultHost: string;
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly maxDrainBytes: number;
  /** Methods handed to the handler, or null for every valid method token; the others get 501. */
  readonly methods: ReadonlySet<string> | null;
  /** The coarse clock (ms), advanced by the server's timer. */
  now: number;
  /** The current `date:` header line, with its CRLF. */
  dateLine: string;
  /** True once shutdown began: every response then closes its connection. */
  closing: boolean;
  onHandlerError(error: unknown, request: Request): Response | Promise<Response>;
  /** Told of every answer the server gives without a handler (protocol errors, 501s, 408s). */
  onRefused(refusal: Refusal): void;
  log(message: string, error?: unknown): void;
  release(conn: Connection): void;
}

/**
 * An answer the server gave on its own, without calling the handler: for access logs and monitoring.
 *
 * @example
 * ```ts
 * import type { Refusal } from "./conn.ts";
 * const log = (r: Refusal) => console.log(`${r.remoteAddr.hostname} ${r.status} ${r.reason}`);
 * ```
 */
export interface Refusal {
  /** The status sent (400, 408, 413, 414, 417, 431, 501, 505, ...). */
  status: number;
  /** Why, in words meant for a log (never sent to the client). */
  reason: string;
  /** The peer. */
  remoteAddr: Deno.NetAddr;
  /** The method when the request line was read, else null. */
  method: string | null;
  /** The request-target when the request line was read, else null. */
  target: string | null;
}

/** Timer kinds; the server's sweeper compares `deadline` with its clock and calls `timeout()`. */
export const Deadline = { None: 0, Idle: 1, Head: 2, Body: 3, Write: 4 } as const;
/** One of the {@link Deadline} kinds. */
export type Deadline = typeof Deadline[keyof typeof Deadline];

const encoder = new TextEncoder();
const CR = 0x0d, LF = 0x0a;
/** Deno's global `Response` is a lazy accessor (a getter call per use); the class is read once. */
const ResponseClass = Response;
const PARSER_OPTIONS = { decodeAscii };

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
const CONNECTION_KEEP_ALIVE = encoder.encode("connection: keep-alive\r\n");

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

/** What {@link probeStream} found: the chunks ready now, and whether the stream had ended. */
interface Probe {
  chunks: Uint8Array[];
  done: boolean;
  pending: Promise<ReadableStreamReadResult<Uint8Array>> | null;
}
/** Most bytes read ahead to learn a stream's length; past it the body is streamed. */
const PROBE_LIMIT = OUT_BUFFER;

/** Microtask turns a read may take and still count as ready (Deno's own streams settle in 2 to 5). */
const READY_TURNS = 16;

/**
 * Read the chunks a stream has ready without waiting on I/O: a read counts as ready if it settles within
 * a few microtask turns, before the event loop polls again. One that must wait is handed back, so no
 * chunk is lost, and a stream with nothing ready (server-sent events) gets its head sent at once.
 */
async function probeStream(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Probe> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const next = reader.read();
    let settled = false;
    next.then(() => settled = true, () => settled = true);
    for (let i = 0; i < READY_TURNS && !settled; i++) await null;
    if (!settled) return { chunks, done: false, pending: next };
    const r = await next;
    if (r.done) return { chunks, done: true, pending: null };
    if (!(r.value instanceof Uint8Array)) throw new TypeError("response body chunk is not a Uint8Array");
    chunks.push(r.value);
    size += r.value.length;
    if (size > PROBE_LIMIT) return { chunks, done: false, pending: null };
  }
}

/** Errors that mean the peer went away: routine, never logged as failures. */
function isDisconnect(e: unknown): boolean {
  return e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset ||
    e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.BadResource ||
    e instanceof Deno.errors.Interrupted || e instanceof Deno.errors.NotConnected ||
    e instanceof Deno.errors.UnexpectedEof || (e instanceof Error && e.name === "ClientGone");
}

class ClientGone extends Error {
  constructor() {
    super("client disconnected");
    this.name = "ClientGone";
  }
}

/** A protocol failure while the handler reads the body: the connection answers with its status and closes. */
class BodyError extends ProtocolError {}

/** What an {@link Info} asks of its connection: how many answers are fully written, and a wait list. */
interface Progress {
  /** Requests whose answers are fully written (or will never be: the connection closed). */
  written: number;
  /** Infos whose `completed` was asked for before their answer was written. */
  waiting: Info[];
}

/**
 * The `info` a handler receives. `completed` is made only if asked for, so the usual request costs no
 * promise and no list entry: the connection only counts written answers.
 */
class Info implements ServeHandlerInfo {
  readonly remoteAddr: Deno.NetAddr;
  readonly #progress: Progress;
  readonly #seq: number;
  #completed: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  constructor(remoteAddr: Deno.NetAddr, progress: Progress, seq: number) {
    this.remoteAddr = remoteAddr;
    this.#progress = progress;
    this.#seq = seq;
  }
  get completed(): Promise<void> {
    if (this.#completed === undefined) {
      if (this.#progress.written >= this.#seq) this.#completed = Promise.resolve();
      else {
        this.#completed = new Promise((r) => this.#resolve = r);
        this.#progress.waiting.push(this);
      }
    }
    return this.#completed;
  }
  /** Resolve `completed` if this answer is written; true when it was. */
  settle(): boolean {
    if (this.#progress.written < this.#seq) return false;
    this.#resolve?.();
    return true;
  }
}

/**
 * One HTTP/1.1 connection. `run()` serves requests until the connection should close, then closes it.
 *
 * @example
 * ```ts ignore
 * const c = new Connection(tcpConn, host);
 * await c.run();
 * ```
 */
export class Connection {
  readonly conn: Deno.Conn;
  readonly #host: ConnectionHost;
  readonly #parser: RequestParser;
  readonly #remoteAddr: Deno.NetAddr;
  /** When the current timer fires, on the host's coarse clock; 0 for none. */
  deadline = 0;
  deadlineKind: Deadline = Deadline.None;
  /** Idle between requests (no partial head): shutdown may close it at once. */
  idle = true;
  #closed = false;
  #headDeadline = 0;
  #out: Uint8Array | null = null;
  #outLen = 0;
  /** Requests handed to the handler so far; an Info's number among them. */
  #seq = 0;
  /** Requests whose answer has been queued; written when the queue is. */
  #queuedSeq = 0;
  readonly #progress: Progress = { written: 0, waiting: [] };
  // The request in flight.
  #closeAfter = false;
  #continueState: 0 | 1 | 2 = 0; // 0: not expected, 1: expected, not sent, 2: sent
  #bodyDetached = false;
  #bodyError: ProtocolError | null = null;
  #clientGone = false;
  /**
   * The one socket read in flight (it lands in the parser's buffer), shared by the loop, bodies and the
   * watch: the op's own promise (bytes read, 0 at EOF). Whoever sees it settle first commits the bytes
   * ({@link Connection.#settled}); the others only learn the count.
   */
  #pendingRead: Promise<number> | null = null;
  /** True from a request's head until its answer is written: a client leaving then is noticed. */
  #inFlight = false;
  #watching = false;
  #activeReader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #cancelCallbacks: (() => void)[] = [];
  /** The TCP resource id for the raw read and write ops, or -1 to use `Deno.Conn`'s methods. */
  readonly #rid: number;
  /** Deno makes `request.signal` lazily; one asked for after the client left must still abort. */
  readonly #onCancel = (cb: () => void): void => {
    if (this.#clientGone || this.#closed) cb();
    else this.#cancelCallbacks.push(cb);
  };

  /**
   * @param conn The accepted connection.
   * @param host The server it belongs to.
   */
  constructor(conn: Deno.Conn, host: ConnectionHost) {
    this.conn = conn;
    this.#host = host;
    this.#parser = new RequestParser(host.parserLimits, PARSER_OPTIONS);
    this.#remoteAddr = conn.remoteAddr as Deno.NetAddr;
    this.#rid = rawRid(conn);
  }

  /** Serve until done; never throws. */
  async run(): Promise<void> {
    try {
      await this.#loop();
    } catch (e) {
      if (!isDisconnect(e)) this.#host.log("connection failed", e);
    } finally {
      this.close();
    }
  }

  /** Close now (idempotent). Aborts the signal of a request in flight. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.deadline = 0;
    // A read in flight now fails (the resource is gone); it may have no one left to await it.
    this.#pendingRead?.catch(() => {});
    try {
      this.conn.close();
    } catch { /* already closed */ }
    this.#runCancelCallbacks();
    this.#finishInfos();
    this.#host.release(this);
  }

  #refused(status: number, reason: string, head: RequestHead | null): void {
    try {
      this.#host.onRefused({
        status,
        reason,
        remoteAddr: this.#remoteAddr,
        method: head?.method ?? null,
        target: head?.target ?? null,
      });
    } catch (e) {
      this.#host.log("onRefused failed", e);
    }
  }

  /** Called by the server's sweeper when `deadline` has passed. */
  timeout(): void {
    const kind = this.deadlineKind;
    this.deadline = 0;
    if (kind === Deadline.Head && !this.#closed) {
      this.#refused(408, "request head not received in time", null);
      // RFC 9110 §15.5.9: 408 tells the client we gave up on its request; then close.
      const msg = encoder.encode(
        `${statusLine(408)}connection: close\r\ncontent-length: 0\r\n${this.#host.dateLine}\r\n`,
      );
      this.conn.write(msg).catch(() => {}).finally(() => this.close());
      return;
    }
    this.close();
  }

  #setDeadline(kind: Deadline, ms: number): void {
    this.deadlineKind = kind;
    this.deadline = ms > 0 ? this.#host.now + ms : 0;
  }

  /** One write call: some or all of `b` (the count answers). */
  #write(b: Uint8Array): Promise<number> {
    return this.#rid >= 0 ? writeOp(this.#rid, b) : this.conn.write(b);
  }

  /** Start the socket read into the parser's buffer, unless one is in flight; returns the one in flight. */
  #startRead(): Promise<number> {
    if (this.#pendingRead !== null) return this.#pendingRead;
    const buf = this.#parser.writable();
    return this.#pendingRead = this.#rid >= 0
      ? readOp(this.#rid, buf)
      : this.conn.read(buf).then((n) => n ?? 0);
  }

  /** The read `op` settled with `n` bytes: commit them, once, if no one else did. */
  #settled(op: Promise<number>, n: number): void {
    if (this.#pendingRead !== op) return;
    this.#pendingRead = null;
    if (n > 0) this.#parser.commit(n);
  }

  /** The read `op` failed: forget it. A vanished peer (or our own close) returns; anything else throws. */
  #readFailed(op: Promise<number>, e: unknown): void {
    if (this.#pendingRead === op) this.#pendingRead = null;
    if (!isDisconnect(e) && !this.#closed) throw e;
  }

  /** Start, or join, the read in flight. It commits what it reads; null means EOF or a vanished peer. */
  async #read(): Promise<number | null> {
    const op = this.#startRead();
    let n: number;
    try {
      n = await op;
    } catch (e) {
      this.#readFailed(op, e);
      return null;
    }
    this.#settled(op, n);
    return n === 0 ? null : n;
  }

  /** Read more body bytes into the parser, under the body timeout. False on EOF or when closed. */
  async #fillBody(): Promise<boolean> {
    if (this.#closed) return false;
    this.#setDeadline(Deadline.Body, this.#host.bodyTimeoutMs);
    const n = await this.#read();
    this.#setDeadline(Deadline.None, 0);
    return n !== null;
  }

  /**
   * While a handler works or a response streams, keep a read pending so a client that leaves is noticed at
   * once (Go's backgroundRead). Only when the request body is fully read, so the read cannot take body
   * bytes the handler wants; bytes of a pipelined request just wait in the parser's buffer.
   */
  #watch(): void {
    if (this.#watching || this.#closed || this.#parser.state !== "DONE") return;
    this.#watching = true;
    this.#read().then((n) => {
      if (n === null && this.#inFlight) this.#peerClosed();
    }, () => {
      if (this.#inFlight) this.#peerClosed();
    });
  }

  /**
   * EOF while a request is in flight. As in Go: the request's signal aborts so the handler can stop, and no
   * further request can come, but a handler that still answers is answered (a client that only half-closed
   * gets it). A response stream waiting on its source is cancelled and the connection closed: an idle
   * event stream to a gone client would otherwise be held forever.
   */
  #peerClosed(): void {
    this.#clientGone = true;
    this.#closeAfter = true;
    this.#runCancelCallbacks();
    if (this.#activeReader !== null) {
      this.#activeReader.cancel(new ClientGone()).catch(() => {});
      this.close();
    }
  }

  #runCancelCallbacks(): void {
    for (const cb of this.#cancelCallbacks.splice(0)) {
      try {
        cb();
      } catch { /* a signal listener's failure is not ours */ }
    }
  }

  async #loop(): Promise<void> {
    const p = this.#parser;
    const host = this.#host;
    for (;;) {
      const ev = p.next();
      if (ev === NEED_DATA) {
        // Everything parsed so far is answered: send the batch, then wait for more. The write is inlined
        // (one await, not three) because this is the path every keep-alive request takes.
        const len = this.#outLen;
        if (len > 0) {
          // Detach the buffer while it is written: anything queued meanwhile takes another.
          const out = this.#out!;
          this.#out = null;
          this.#outLen = 0;
          this.#setDeadline(Deadline.Write, host.writeTimeoutMs);
          try {
            const wp = this.#write(len === out.length ? out : out.subarray(0, len));
            // Start the next read now rather than after the write: both ops go out in one turn of the
            // event loop. The read lands in the parser's buffer and the code below joins it.
            if (this.#pendingRead === null && !this.#closeAfter) this.#startRead();
            const n = await wp;
            if (n < len) await this.#writeAll(out.subarray(n, len));
          } catch (e) {
            if (isDisconnect(e)) return; // close() quiets the read started above
            throw e;
          }
          // Written: the buffer goes back to the pool while this connection waits for its next request.
          giveOut(out);
          this.#finishInfos();
        }
        if (p.headStarted) {
          // Go's ReadHeaderTimeout: the whole head within a bound of its first byte.
          if (this.#headDeadline === 0) this.#headDeadline = host.now + host.headerTimeoutMs;
          this.idle = false;
          this.deadlineKind = Deadline.Head;
          this.deadline = this.#headDeadline;
        } else {
          this.idle = true;
          if (host.closing) return;
          this.#setDeadline(Deadline.Idle, host.idleTimeoutMs);
        }
        // Join the read started with the write (or by the watch while the last request was served), or
        // start one. The op's own promise is awaited: no wrapper promise on the path every request takes.
        const op = this.#startRead();
        let n: number;
        try {
          n = await op;
        } catch (e) {
          this.#readFailed(op, e);
          return;
        }
        this.#settled(op, n);
        if (n === 0) return;
        continue;
      }
      if (ev === PAUSED) return; // not reused: the keep-alive decision said close
      if (ev.type === "error") {
        await this.#sendError(ev.error.status, ev.error.message);
        return;
      }
      if (ev.type !== "head") throw new Error(`unexpected parser event ${ev.type} between requests`);
      this.idle = false;
      this.#headDeadline = 0;
      this.deadline = 0;
      const pending = this.#serve(ev.head);
      if (pending !== undefined) await pending;
      if (this.#closed) return;
      if (this.#closeAfter) {
        if (this.#outLen > 0) await this.#flush();
        return;
      }
      p.startNextCycle();
    }
  }

  /** Answer a protocol error: a short plain-text response, then close (RFC 9112 §2.2). */
  async #sendError(status: number, reason: string, head: RequestHead | null = null): Promise<void> {
    if (status >= 500 && status !== 501 && status !== 505) {
      this.#host.log(`protocol error ${status}: ${reason}`);
    }
    this.#refused(status, reason, head);
    const body = `${STATUS_TEXT[status] ?? "Error"}\n`;
    this.#appendHead(
      `${statusLine(status)}content-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\n` +
        `connection: close\r\n${this.#host.dateLine}\r\n${body}`,
    );
    await this.#flush();
  }

  /**
   * Run the handler for one request and queue (or stream) its answer. Returns undefined when everything
   * happened synchronously, which is the common case for a static answer: no promise, no microtask.
   */
  #serve(head: RequestHead): Promise<void> | undefined {
    const host = this.#host;
    const hasBody = head.framing.kind !== "none";
    this.#closeAfter = !head.keepAlive || host.closing;
    this.#continueState = head.expectContinue ? 1 : 0;
    this.#bodyDetached = false;
    this.#bodyError = null;
    this.#inFlight = true;
    this.#watching = false;

    // Requests the server answers itself, before any handler.
    let early = 0;
    const method = head.method;
    // RFC 9110 §9.1: a method the server does not implement is a 501. CONNECT asks for a tunnel (§9.3.6),
    // which an origin server answering Requests with Responses cannot open.
    if (method === "CONNECT" || (host.methods !== null && !host.methods.has(method))) early = 501;
    else if (head.targetForm === "asterisk") early = 204; // OPTIONS *: about the server, nothing to add
    if (early !== 0) {
      if (early === 501) this.#refused(501, `method ${head.method} not implemented`, head);
      if (hasBody) this.#closeAfter = true; // never read an unknown method's body
      this.#appendHead(
        `${statusLine(early)}${early === 204 ? "" : "content-length: 0\r\n"}${
          this.#closeAfter ? "connection: close\r\n" : ""
        }${host.dateLine}\r\n`,
      );
      if (!hasBody) this.#parser.next(); // the end of a bodiless message
      return undefined;
    }

    // RFC 9112 §3.2.2: with an absolute-form target, Host is ignored and the target is the URL.
    const url = head.targetForm === "absolute"
      ? head.target
      : `${host.scheme}://${head.host !== "" ? head.host : host.defaultHost}${head.target}`;
    const body = hasBody ? this.#bodyStream() : null;
    let request: Request;
    try {
      request = makeRequest(head.method, url, head.headers, body, this.#onCancel);
    } catch {
      this.#closeAfter = true;
      return this.#sendError(400, "request URL rejected", head);
    }
    const info = new Info(this.#remoteAddr, this.#progress, ++this.#seq);
    let result: Response | Promise<Response>;
    try {
      result = host.handler(request, info);
    } catch (e) {
      return this.#handlerFailed(e, request, head);
    }
    if (result instanceof ResponseClass) return this.#respond(result, head);
    return this.#awaitHandler(result, request, head);
  }

  async #awaitHandler(
    result: Response | Promise<Response>,
    request: Request,
    head: RequestHead,
  ): Promise<void> {
    this.#watch();
    let response: Response;
    try {
      response = await result;
      if (!(response instanceof ResponseClass)) throw new TypeError("handler did not return a Response");
    } catch (e) {
      return this.#handlerFailed(e, request, head);
    }
    if (this.#closed) return;
    const pending = this.#respond(response, head);
    if (pending !== undefined) await pending;
  }

  async #handlerFailed(e: unknown, request: Request, head: RequestHead): Promise<void> {
    // A handler that failed because its client left (a body cut short, an aborted signal) is routine:
    // nothing to log, and nobody to answer.
    if (this.#closed || this.#clientGone) return this.close();
    // The handler may have failed on the body: then the protocol error is the answer, and we close.
    const bodyError = this.#bodyError as ProtocolError | null;
    if (bodyError !== null) {
      this.#closeAfter = true;
      return this.#sendError(bodyError.status, bodyError.message, head);
    }
    let response: Response;
    try {
      response = await this.#host.onHandlerError(e, request);
      if (!(response instanceof ResponseClass)) throw new TypeError("onError did not return a Response");
    } catch (e2) {
      this.#host.log("error handler failed", e2);
      response = new Response("Internal Server Error\n", { status: 500 });
    }
    if (this.#closed) return;
    const pending = this.#respond(response, head);
    if (pending !== undefined) await pending;
  }

  #respond(response: Response, head: RequestHead): Promise<void> | undefined {
    // The keep-alive decision, in one place (RFC 9112 §9.3, §9.6; RFC 9110 §10.1.1). The handler may
    // add to it with `connection: close`, read in #writeResponse.
    const p = this.#parser;
    if (this.#continueState === 1) this.#closeAfter = true; // the client may still send the unread body
    if (p.state === "BODY" && p.bodyRemaining > this.#host.maxDrainBytes) this.#closeAfter = true;
    if (p.state === "ERROR") this.#closeAfter = true;
    if (this.#host.closing) this.#closeAfter = true; // shutdown began while the handler ran
    const pending = this.#writeResponse(response, head);
    if (pending !== undefined) return pending.then(() => this.#afterResponse());
    return this.#afterResponse();
  }

  #afterResponse(): Promise<void> | undefined {
    // The answer is whole now: queued (written with the batch) or, streamed or large, already written.
    this.#queuedSeq = this.#seq;
    if (this.#outLen === 0) this.#finishInfos();
    this.#cancelCallbacks.length = 0;
    this.#inFlight = false;
    if (this.#closed || this.#closeAfter) return undefined;
    const p = this.#parser;
    if (p.state === "BODY") {
      // Discard what the handler left of the body, so the next request starts at its first byte.
      this.#bodyDetached = true;
      return this.#drain().then((ok) => {
        if (!ok) this.#closeAfter = true;
        else if (p.state === "DONE") p.next();
      });
    }
    if (p.state === "DONE") p.next(); // the "end" event, if the handler did not read it
    return undefined;
  }

  /** The request body as a stream that reads the socket only when pulled: backpressure and lazy 100. */
  #bodyStream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (this.#bodyDetached || this.#closed) {
          controller.error(new ClientGone());
          return;
        }
        if (this.#continueState === 1) {
          // RFC 9110 §10.1.1: 100 Continue only once the handler asks for the body.
          this.#continueState = 2;
          this.#appendHead("HTTP/1.1 100 Continue\r\n\r\n");
          await this.#flush();
        }
        for (;;) {
          const ev = this.#parser.next();
          if (ev === NEED_DATA) {
            if (!(await this.#fillBody())) {
              this.#clientGone = true;
              this.#runCancelCallbacks(); // request.signal aborts: the client left mid-body
              controller.error(new ClientGone());
              return;
            }
            continue;
          }
          if (ev === PAUSED) {
            controller.close();
            return;
          }
          if (ev.type === "data") {
            controller.enqueue(ev.data.slice());
            return;
          }
          if (ev.type === "end") {
            controller.close();
            return;
          }
          if (ev.type === "error") {
            this.#bodyError = ev.error;
            controller.error(new BodyError(ev.error.status, ev.error.message));
            return;
          }
          throw new Error("unexpected head inside a body");
        }
      },
    }, { highWaterMark: 0 });
  }

  /** Read and discard the rest of a body, up to the drain limit. False if the connection must close. */
  async #drain(): Promise<boolean> {
    let budget = this.#host.maxDrainBytes;
    for (;;) {
      const ev = this.#parser.next();
      if (ev === NEED_DATA) {
        if (!(await this.#fillBody())) return false;
        continue;
      }
      if (ev === PAUSED) return true;
      if (ev.type === "end") return true;
      if (ev.type === "data") {
        budget -= ev.data.length;
        if (budget < 0) return false;
        continue;
      }
      return false;
    }
  }

  // --- writing --------------------------------------------------------------------------------------

  #reserve(n: number): Uint8Array {
    let out = this.#out;
    if (out === null) out = this.#out = takeOut(n);
    else if (out.length - this.#outLen < n) {
      const bigger = new Uint8Array(Math.max(out.length * 2, this.#outLen + n));
      bigger.set(out.subarray(0, this.#outLen));
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
    const at = this.#outLen;
    const r = encoder.encodeInto(s, at === 0 ? out : out.subarray(at));
    if (r.read !== s.length || r.written !== s.length) {
      for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
    }
    this.#outLen = at + s.length;
  }

  /**
   * Queue `s` if it is all ASCII (one byte per char, the same in UTF-8 and ISO-8859-1); else queue
   * nothing and answer false, for the caller to encode head and body each the right way.
   */
  #appendAscii(s: string): boolean {
    const out = this.#reserve(s.length);
    const at = this.#outLen;
    const r = encoder.encodeInto(s, at === 0 ? out : out.subarray(at));
    if (r.read !== s.length || r.written !== s.length) return false;
    this.#outLen = at + s.length;
    return true;
  }

  /** Queue the first `len` bytes of `b`. */
  #appendBytes(b: Uint8Array, len: number): void {
    const out = this.#reserve(len);
    const at = this.#outLen;
    if (len <= 64) { for (let i = 0; i < len; i++) out[at + i] = b[i]; }
    else out.set(len === b.length ? b : b.subarray(0, len), at);
    this.#outLen = at + len;
  }

  /** The queued answers are written (or never will be, on close): settle the `completed` asked for. */
  #finishInfos(): void {
    const progress = this.#progress;
    progress.written = this.#closed ? Infinity : this.#queuedSeq;
    const waiting = progress.waiting;
    if (waiting.length === 0) return;
    progress.waiting = waiting.filter((info) => !info.settle());
  }

  /** Write `b` whole, however many calls the socket needs. */
  async #writeAll(b: Uint8Array): Promise<void> {
    this.#setDeadline(Deadline.Write, this.#host.writeTimeoutMs);
    let off = await this.#write(b);
    while (off < b.length) off += await this.#write(b.subarray(off));
    this.deadline = 0;
  }

  /** Write everything queued; the queued responses are then complete. A vanished client closes quietly. */
  async #flush(): Promise<void> {
    const len = this.#outLen;
    if (len > 0) {
      const out = this.#out!;
      this.#out = null;
      this.#outLen = 0;
      try {
        await this.#writeAll(len === out.length ? out : out.subarray(0, len));
      } catch (e) {
        if (isDisconnect(e)) {
          this.close();
          return;
        }
        throw e;
      }
      giveOut(out);
    }
    this.#finishInfos();
  }

  /** Queue (or stream) a response. Undefined when it was only queued, the common case. */
  #writeResponse(res: Response, head: RequestHead): Promise<void> | undefined {
    const host = this.#host;
    const status = statusOf(res);
    const isHead = head.method === "HEAD";
    // RFC 9110 §6.4.1: 1xx, 204 and 304 never carry content; HEAD gets the headers GET would.
    const noContent = status < 200 || status === 204 || status === 304;
    const fixed = staticBody(res);

    if (
      fixed !== null && fixed.contentType !== undefined && typeof fixed.body === "string" && !isHead &&
      fixed.body.length <= INLINE_BODY_CHARS &&
      this.#queuePlain(fixed.contentType, fixed.body, head.versionMinor)
    ) {
      markBodyUsed(res);
      return this.#outLen >= FLUSH_AT ? this.#flush() : undefined;
    }

    let s = statusLine(status);
    let declared = -1; // a Content-Length the handler set
    let hasDate = false;
    if (fixed !== null && fixed.contentType !== undefined) {
      if (fixed.contentType !== null) s += `content-type: ${fixed.contentType}\r\n`;
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
              if (/(?:^|,)[ \t]*close[ \t]*(?:,|$)/i.test(value)) this.#closeAfter = true;
              continue;
            case "transfer-encoding":
            case "keep-alive":
              continue; // hop-by-hop: framing and persistence are ours to decide (RFC 9112 §6.1, §9.3)
            case "date":
              hasDate = true;
          }
        }
        s += `${name}: ${value}\r\n`;
      }
    }
    if (!hasDate) s += host.dateLine;
    if (this.#closeAfter) s += "connection: close\r\n";
    else if (head.versionMinor === 0) s += "connection: keep-alive\r\n";

    if (fixed !== null) {
      markBodyUsed(res);
      const b = fixed.body;
      if (typeof b === "string") {
        // Most string bodies are ASCII, and then chars are bytes: head and body go out in one native call.
        if (!noContent && !isHead && b.length <= INLINE_BODY_CHARS) {
          if (this.#appendAscii(`${s}content-length: ${b.length}\r\n\r\n${b}`)) {
            return this.#outLen >= FLUSH_AT ? this.#flush() : undefined;
          }
        }
        if (b.length <= SCRATCH.length / 3) {
          return this.#queueFixed(
            s,
            status,
            declared,
            noContent,
            isHead,
            SCRATCH,
            encoder.encodeInto(b, SCRATCH).written,
          );
        }
        const bytes = encoder.encode(b);
        return this.#queueFixed(s, status, declared, noContent, isHead, bytes, bytes.length);
      }
      return this.#queueFixed(s, status, declared, noContent, isHead, b, b === null ? 0 : b.length);
    }
    return this.#writeStream(res.body!, s, status, declared, noContent, isHead, head.versionMinor);
  }

  /**
   * Queue a plain answer (200, at most a Content-Type, a short string body) from the cached head bytes.
   * False, with nothing queued, when the body is not all ASCII: its UTF-8 length differs from its length
   * in chars, and the caller takes the general path.
   */
  #queuePlain(contentType: string | null, body: string, versionMinor: 0 | 1): boolean {
    const prefix = plainHead(contentType, this.#host.dateLine);
    const n = body.length;
    // The prefix, up to 16 digits and CRLF, a connection line, CRLF, the body.
    const out = this.#reserve(prefix.length + 18 + CONNECTION_KEEP_ALIVE.length + 2 + n);
    let at = this.#outLen;
    out.set(prefix, at);
    at = writeDecimal(out, at + prefix.length, n);
    out[at++] = CR;
    out[at++] = LF;
    const connection = this.#closeAfter
      ? CONNECTION_CLOSE
      : versionMinor === 0
      ? CONNECTION_KEEP_ALIVE
      : null;
    if (connection !== null) {
      out.set(connection, at);
      at += connection.length;
    }
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
    this.#outLen = at + n;
    return true;
  }

  /** Queue a head with its Content-Length and a body whose bytes are all known. */
  #queueFixed(
    s: string,
    status: number,
    declared: number,
    noContent: boolean,
    isHead: boolean,
    bytes: Uint8Array | null,
    len: number,
  ): Promise<void> | undefined {
    if (noContent) {
      if (status === 304 && declared >= 0) s += `content-length: ${declared}\r\n`;
      this.#appendHead(s + "\r\n");
    } else {
      // A HEAD answer without a body states the length GET would have, when the handler declared it.
      const length = isHead && bytes === null && declared >= 0 ? declared : len;
      this.#appendHead(`${s}content-length: ${length}\r\n\r\n`);
      if (!isHead && len > 0) {
        if (len > OUT_BUFFER) {
          return this.#flushThen(len === bytes!.length ? bytes! : bytes!.subarray(0, len));
        }
        this.#appendBytes(bytes!, len);
      }
    }
    if (this.#outLen >= FLUSH_AT) return this.#flush();
    return undefined;
  }

  async #writeStream(
    stream: ReadableStream<Uint8Array>,
    s: string,
    status: number,
    declared: number,
    noContent: boolean,
    isHead: boolean,
    versionMinor: 0 | 1,
  ): Promise<void> {
    let reader: ReadableStreamDefaultReader<Uint8Array>;
    try {
      reader = stream.getReader();
    } catch (e) {
      this.#host.log("response body is not readable", e);
      this.#closeAfter = true;
      this.#appendHead(
        `${statusLine(500)}content-length: 0\r\nconnection: close\r\n${this.#host.dateLine}\r\n`,
      );
      return this.#flush();
    }
    // A stream that ends before it has to wait (a Blob, a finished stream, any body on the public-API
    // path) has a known length: send it with Content-Length, as a fixed body, rather than chunked.
    let first: Uint8Array[] = [];
    let pending: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
    if (declared < 0 && !noContent) {
      let probe: Probe;
      try {
        probe = await probeStream(reader);
      } catch (e) {
        return this.#bodyFailed(reader, e);
      }
      if (probe.done) {
        const bytes = concatBytes(probe.chunks);
        return this.#queueFixed(s, status, declared, noContent, isHead, bytes, bytes.length);
      }
      first = probe.chunks;
      pending = probe.pending;
    }
    if (noContent || isHead) {
      reader.cancel().catch(() => {});
      if (declared >= 0 && (isHead || status === 304)) s += `content-length: ${declared}\r\n`;
      this.#appendHead(s + "\r\n");
      return;
    }
    // Content-Length when the handler declared it; else chunked (HTTP/1.1), else close-delimited (1.0).
    const mode = declared >= 0 ? "length" : versionMinor === 1 ? "chunked" : "close";
    if (mode === "length") s += `content-length: ${declared}\r\n`;
    else if (mode === "chunked") s += "transfer-encoding: chunked\r\n";
    else if (!this.#closeAfter) {
      this.#closeAfter = true;
      s += "connection: close\r\n";
    }
    this.#appendHead(s + "\r\n");
    return this.#streamBody(reader, mode, declared, first, pending);
  }

  #bodyFailed(reader: ReadableStreamDefaultReader<Uint8Array>, e: unknown): void {
    reader.cancel(e).catch(() => {});
    if (!this.#closed && !this.#clientGone && !isDisconnect(e)) {
      this.#host.log("response body stream failed", e);
    }
    // The message cannot be completed: closing is the only honest end (RFC 9112 §8).
    this.close();
  }

  /** Send the queued head, then a large body straight from its buffer (no copy). */
  async #flushThen(body: Uint8Array): Promise<void> {
    await this.#flush();
    if (this.#closed) return;
    try {
      await this.#writeAll(body);
    } catch (e) {
      if (isDisconnect(e)) return this.close();
      throw e;
    }
  }

  async #streamBody(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    mode: string,
    declared: number,
    first: Uint8Array[],
    pending: Promise<ReadableStreamReadResult<Uint8Array>> | null,
  ): Promise<void> {
    let sent = 0;
    this.#activeReader = reader;
    this.#watch();
    try {
      for (let i = 0;; i++) {
        let value: Uint8Array | undefined;
        if (i < first.length) value = first[i];
        else {
          // Send what is queued before waiting on the stream, so a slow producer doesn't hold it back.
          if (this.#outLen > 0) {
            await this.#flush();
            if (this.#closed) throw new ClientGone();
          }
          const r = pending ?? reader.read();
          pending = null;
          const { done, value: v } = await r;
          if (done) break;
          value = v;
        }
        if (!(value instanceof Uint8Array)) throw new TypeError("response body chunk is not a Uint8Array");
        if (value.length === 0) continue;
        let chunk = value;
        if (mode === "length" && sent + chunk.length > declared) {
          // More bytes than declared: send what was promised and close, never a corrupt frame.
          chunk = chunk.subarray(0, declared - sent);
          this.#closeAfter = true;
        }
        sent += chunk.length;
        // One chunk, one write: the producer already holds it in memory, so splitting saves nothing.
        if (mode === "chunked") this.#appendHead(`${chunk.length.toString(16)}\r\n`);
        if (this.#outLen > 0 && chunk.length <= OUT_BUFFER) this.#appendBytes(chunk, chunk.length);
        else await this.#directWrite(chunk);
        if (mode === "chunked") this.#appendHead("\r\n");
        if (this.#closeAfter && mode === "length" && sent === declared) {
          reader.cancel().catch(() => {});
          break;
        }
      }
      if (this.#closed) return;
      if (mode === "chunked") this.#appendHead("0\r\n\r\n");
      else if (mode === "length" && sent < declared) {
        this.#host.log(`response body ended after ${sent} of ${declared} declared bytes`);
        this.#closeAfter = true;
        await this.#flush();
        this.close();
        return;
      }
      await this.#flush();
    } catch (e) {
      this.#bodyFailed(reader, e);
    } finally {
      this.#activeReader = null;
    }
  }

  async #directWrite(part: Uint8Array): Promise<void> {
    if (this.#outLen > 0) await this.#flush();
    if (this.#closed) throw new ClientGone();
    await this.#writeAll(part);
  }
}
