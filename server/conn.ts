// One connection's life: read into the parser, hand each request to the handler, give its answer to the
// writer (server/writer.ts), and decide in one place (#shouldReuse) whether the connection carries another
// request. It owns the deadlines, the request body stream, 100-continue and the background read; it must
// never let handler errors or client input crash the server, nor hold back an answer it has ready.
import { NEED_DATA, PAUSED, ProtocolError, type RequestHead, RequestParser } from "./http1.ts";
import { makeRequest } from "./_fast.ts";
import { decodeAscii, rawRid, readOp, writeOp } from "./_ops.ts";
import { type KeepAliveLines, Outcome, ResponseWriter, settlesSoon, type Sink } from "./writer.ts";
import type { Handler, ServeHandlerInfo } from "./types.ts";
import { takeoverFor, type Tunnel } from "./_upgrade.ts";

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
  /** Answers a connection carries at most; the last says `connection: close`. Infinity for no cap. */
  readonly maxRequestsPerConnection: number;
  /** The lines a keep-alive answer carries (`keep-alive: timeout=N`), made once. */
  readonly keepAlive: KeepAliveLines;
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
  /** Keep a connection taken over after a 101 (a WebSocket) until it is done (see server/_upgrade.ts). */
  adopt(tunnel: Tunnel): void;
}

/**
 * An answer the server gave on its own, without calling the handler: for access logs and monitoring.
 *
 * @example
 * ```ts
 * import type { Refusal } from "./conn.ts";
 * const log = (r: Refusal) => console.log(`${r.status} ${r.reason}`);
 * ```
 */
export interface Refusal {
  /** The status sent (400, 408, 413, 414, 417, 431, 501, 505, ...). */
  status: number;
  /** Why, in words meant for a log (never sent to the client). */
  reason: string;
  /** The peer (a Unix address on a Unix socket). */
  remoteAddr: Deno.Addr;
  /** The method when the request line was read, else null. */
  method: string | null;
  /** The request-target when the request line was read, else null. */
  target: string | null;
}

/** Timer kinds; the server's sweeper compares `deadline` with its clock and calls `timeout()`. */
export const Deadline = { None: 0, Idle: 1, Head: 2, Body: 3, Write: 4 } as const;
/** One of the {@link Deadline} kinds. */
export type Deadline = typeof Deadline[keyof typeof Deadline];

/**
 * A connection's state (Go's ConnState): one value, changed only along the steps in `STEPS`.
 *
 * @example
 * ```ts
 * import { ConnState } from "./conn.ts";
 * const closable = (state: ConnState) => state === ConnState.Idle;
 * ```
 */
export const ConnState = {
  /** Between requests, nothing of the next one received: shutdown may close it at once. */
  Idle: 0,
  /** Some of a request head has arrived: the head timer runs. */
  ReadingHead: 1,
  /** A request is served: from its head until its answer is written or queued. */
  Active: 2,
  /** The answer is given; what the handler left of the request body is read and discarded. */
  Draining: 3,
  /** Closed, for good. */
  Closed: 4,
} as const;
/** One of {@link ConnState}. */
export type ConnState = typeof ConnState[keyof typeof ConnState];
const STATE_NAMES = ["Idle", "ReadingHead", "Active", "Draining", "Closed"] as const;
const bits = (...states: ConnState[]) => states.reduce<number>((mask, s) => mask | 1 << s, 0);
/** The states each state may step to, as bits; staying in a state is always allowed (but Closed is final). */
const STEPS: readonly number[] = [
  /* Idle */ bits(ConnState.ReadingHead, ConnState.Active, ConnState.Closed),
  /* ReadingHead */ bits(ConnState.Active, ConnState.Closed),
  /* Active */ bits(ConnState.Idle, ConnState.ReadingHead, ConnState.Draining, ConnState.Closed),
  /* Draining */ bits(ConnState.Idle, ConnState.ReadingHead, ConnState.Active, ConnState.Closed),
  /* Closed */ 0,
];

/**
 * Why a connection is not reused, as bits recorded where each fact is learned and read by #shouldReuse.
 * The writer's {@link Outcome} bits (the handler asked to close, a close-delimited body, an incomplete
 * answer, a failed write) come first; these are the connection's own.
 */
const Reason = {
  /** `Connection: close`, or HTTP/1.0 without keep-alive (RFC 9112 §9.3). */
  ClientAsked: 16,
  /** The client left (end of stream) while a request was served. */
  ClientGone: 32,
  /** A request body the server will not read to its end: an early answer's, or a drain over its budget. */
  BodyUnread: 64,
  /** A head or body broke the grammar or a limit: where the next request starts is unknown (RFC 9112 §2.2). */
  ProtocolError: 128,
  /**
   * The client expects 100 Continue, not sent yet: it may still send the body it announced (RFC 9110
   * §10.1.1). Cleared when the 100 is sent.
   */
  ContinueUnsent: 256,
} as const;

const PARSER_OPTIONS = { decodeAscii };
/** Deno's global `Response` is a lazy accessor (a getter call per use); the class is read once. */
const ResponseClass = Response;

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

/**
 * Give `data` (a view of the parser's buffer, reused for the next read) to a body stream's reader: copied
 * into the buffer of a BYOB read waiting, what does not fit queued as a copy; else queued as a copy.
 */
function giveBytes(controller: ReadableByteStreamController, data: Uint8Array): void {
  const view = controller.byobRequest?.view;
  if (view == null) {
    controller.enqueue(data.slice());
    return;
  }
  const into = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const n = Math.min(into.length, data.length);
  into.set(data.subarray(0, n));
  controller.byobRequest!.respond(n);
  if (n < data.length) controller.enqueue(data.slice(n));
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
  readonly remoteAddr: Deno.Addr;
  readonly #progress: Progress;
  readonly #seq: number;
  #completed: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  constructor(remoteAddr: Deno.Addr, progress: Progress, seq: number) {
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
export class Connection implements Sink {
  readonly conn: Deno.Conn;
  readonly #host: ConnectionHost;
  readonly #parser: RequestParser;
  readonly #writer: ResponseWriter;
  readonly #remoteAddr: Deno.Addr;
  /** When the current timer fires, on the host's coarse clock; 0 for none. */
  deadline = 0;
  deadlineKind: Deadline = Deadline.None;
  #state: ConnState = ConnState.Idle;
  #headDeadline = 0;
  /** Requests read so far; an Info's number among them, and the owner of a request body stream. */
  #seq = 0;
  /** Requests whose answer has been queued; written when the queue is. */
  #queuedSeq = 0;
  readonly #progress: Progress = { written: 0, waiting: [] };
  // Facts about the request being served, recorded where they are learned; #shouldReuse reads them.
  /** {@link Reason} and {@link Outcome} bits: why this connection will not carry another request. */
  #closeReasons = 0;
  #bodyError: ProtocolError | null = null;
  /** A background read was started for this request (at most one: it must not read ahead unboundedly). */
  #watched = false;
  /**
   * The one socket read in flight (it lands in the parser's buffer), shared by the loop, bodies and the
   * watch: the op's own promise (bytes read, 0 at EOF). Whoever sees it settle first commits the bytes
   * ({@link Connection.#settled}); the others only learn the count.
   */
  #pendingRead: Promise<number> | null = null;
  #cancelCallbacks: (() => void)[] = [];
  /** The TCP resource id for the raw read and write ops, or -1 to use `Deno.Conn`'s methods. */
  readonly #rid: number;
  /** The socket went to a new protocol's taker after a 101: closing this Connection leaves it open. */
  #handedOff = false;
  /** Deno makes `request.signal` lazily; one asked for after the client left must still abort. */
  readonly #onCancel = (cb: () => void): void => {
    if ((this.#closeReasons & Reason.ClientGone) !== 0 || this.#closed) cb();
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
    this.#remoteAddr = conn.remoteAddr;
    this.#rid = rawRid(conn);
    this.#writer = new ResponseWriter(this, host);
  }

  // --- what its writer may ask of the connection (the Sink) ---------------------------------------------

  /**
   * For the writer: write all of `bytes`, under the write timeout. A failure closes the connection.
   *
   * @param bytes What to send.
   */
  writeAll(bytes: Uint8Array): Promise<void> {
    return this.#writeAll(bytes);
  }

  /** For the writer: everything queued is written, so the answers complete until now are done. */
  wrote(): void {
    this.#finishInfos();
  }

  /** For the writer: a streamed body is about to wait on its source; watch for the client leaving. */
  streaming(): void {
    this.#watch();
  }

  /** Where the connection is in its life; Idle connections are closed at once by a shutdown. */
  get state(): ConnState {
    return this.#state;
  }

  /** Closed for good (a getter, so that checks after an await are not narrowed away by the type checker). */
  get #closed(): boolean {
    return this.#state === ConnState.Closed;
  }

  #enter(to: ConnState): void {
    const from = this.#state;
    if (from !== to && (STEPS[from] & (1 << to)) === 0) {
      throw new Error(`illegal connection step: ${STATE_NAMES[from]} to ${STATE_NAMES[to]}`);
    }
    this.#state = to;
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

  /** Close now (idempotent). Aborts the signal of a request in flight and stops a body being sent. */
  close(): void {
    if (this.#closed) return;
    this.#enter(ConnState.Closed);
    this.deadline = 0;
    // A read in flight now fails (the resource is gone); it may have no one left to await it. Without
    // one, nothing can still write into the parser's buffer: it goes back to the pool.
    if (this.#pendingRead !== null) this.#pendingRead.catch(() => {});
    else this.#parser.release();
    if (!this.#handedOff) {
      try {
        this.conn.close();
      } catch { /* already closed */ }
    }
    // A body being sent stops (its source is cancelled); no error is made when none is (the usual case).
    this.#writer.cancel(this.#writer.streaming ? new ClientGone() : undefined);
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
      this.#writer.queueError(408);
      this.#flush().finally(() => this.close());
      return;
    }
    this.close();
  }

  /**
   * Whether the connection carries another request after this answer: the one place it is decided, from
   * facts recorded where they were learned (Go's shouldReuseConnection; RFC 9112 §9.3 and §9.6, RFC 9110
   * §10.1.1). Asked before an answer's head is written (to say `connection: close`) and after it.
   */
  #shouldReuse(): boolean {
    // The client or the handler asked to close, the answer is close-delimited or incomplete, a write
    // failed, the client left, a body will not be read, a protocol error was met, or 100 Continue was
    // expected and never sent (the client may still send the body it announced).
    if (this.#closeReasons !== 0) return false;
    if (this.#host.closing) return false; // shutting down: in-flight answers finish, then close
    if (this.#seq >= this.#host.maxRequestsPerConnection) return false; // nginx's keepalive_requests
    // An unread body beyond what is worth discarding (Go's rule: 256 KiB by default).
    return this.#parser.bodyRemaining <= this.#host.maxDrainBytes;
  }

  #setDeadline(kind: Deadline, ms: number): void {
    this.deadlineKind = kind;
    this.deadline = ms > 0 ? this.#host.now + ms : 0;
  }

  /** One write call: some or all of `b` (the count answers). */
  #write(b: Uint8Array): Promise<number> {
    return this.#rid >= 0 ? writeOp(this.#rid, b) : this.conn.write(b);
  }

  /** Write `b` whole, however many calls the socket needs, under the write timeout. */
  async #writeAll(b: Uint8Array): Promise<void> {
    this.#setDeadline(Deadline.Write, this.#host.writeTimeoutMs);
    try {
      let off = await this.#write(b);
      while (off < b.length) off += await this.#write(b.subarray(off));
    } catch (e) {
      // Nothing more can be sent: close at once, which also aborts the request's signal.
      if (!isDisconnect(e) && !this.#closed) this.#host.log("write failed", e);
      this.#closeReasons |= Outcome.WriteFailed;
      this.close();
      throw e;
    } finally {
      this.deadline = 0;
    }
  }

  /** Write everything queued; a failed write has closed the connection (see #writeAll). */
  async #flush(): Promise<void> {
    try {
      await this.#writer.flush();
    } catch { /* closed */ }
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

  /**
   * Read more body bytes into the parser, under the body timeout. What is ready is written first: an
   * answer to an earlier request never waits on this one's body. False on EOF or when closed.
   */
  async #fillBody(): Promise<boolean> {
    if (this.#writer.queued > 0) await this.#flush();
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
    if (this.#watched || this.#closed || this.#parser.state !== "DONE") return;
    this.#watched = true;
    this.#read().then((n) => {
      if (n === null && this.#state === ConnState.Active) this.#peerClosed();
    }, () => {
      if (this.#state === ConnState.Active) this.#peerClosed();
    });
  }

  /**
   * EOF while a request is served. As in Go: the request's signal aborts so the handler can stop, and no
   * further request can come, but a handler that still answers is answered (a client that only half-closed
   * gets it). A response stream waiting on its source is cancelled and the connection closed: an idle
   * event stream to a gone client would otherwise be held forever.
   */
  #peerClosed(): void {
    this.#closeReasons |= Reason.ClientGone;
    this.#runCancelCallbacks();
    if (this.#writer.streaming) {
      this.#writer.cancel(new ClientGone());
      this.close();
    }
  }

  #runCancelCallbacks(): void {
    if (this.#cancelCallbacks.length === 0) return;
    for (const cb of this.#cancelCallbacks.splice(0)) {
      try {
        cb();
      } catch { /* a signal listener's failure is not ours */ }
    }
  }

  async #loop(): Promise<void> {
    const parser = this.#parser;
    const host = this.#host;
    const writer = this.#writer;
    // The reuse decision after the last answer (nothing changes it until the next request is served).
    let reuse = true;
    for (;;) {
      const ev = parser.next();
      if (ev !== NEED_DATA) {
        if (ev === PAUSED) return; // never reached: a message that ends is followed by the reuse decision
        if (ev.type === "error") {
          await this.#sendError(ev.error.status, ev.error.message);
          return;
        }
        if (ev.type !== "head") throw new Error(`unexpected parser event ${ev.type} between requests`);
        this.#enter(ConnState.Active);
        this.#headDeadline = 0;
        this.deadline = 0;
        const pending = this.#serve(ev.head);
        if (pending !== undefined) await pending;
        if (this.#closed) return;
        reuse = this.#shouldReuse();
        if (reuse) {
          parser.startNextCycle();
          continue;
        }
        // The last answer: written below, like a batch.
      }
      // Everything parsed so far is answered: send the batch, then wait for more. The write is inlined
      // (one await, not three) because this is the path every request takes.
      const bytes = writer.take();
      if (bytes !== null) {
        this.#setDeadline(Deadline.Write, host.writeTimeoutMs);
        try {
          const written = this.#write(bytes);
          // Start the next read now rather than after the write: both ops go out in one turn of the
          // event loop. The read lands in the parser's buffer and the code below joins it.
          if (reuse && this.#pendingRead === null) this.#startRead();
          const n = await written;
          if (n < bytes.length) await this.#writeAll(bytes.subarray(n));
          else this.deadline = 0;
        } catch (e) {
          if (isDisconnect(e)) return; // close() quiets the read started above
          throw e;
        }
        // Written: the buffer goes back to the pool while this connection waits for its next request.
        writer.recycle();
        this.#finishInfos();
      }
      if (!reuse) return this.#switchProtocols();
      if (parser.headStarted) {
        // Go's ReadHeaderTimeout: the whole head within a bound of its first byte.
        if (this.#headDeadline === 0) this.#headDeadline = host.now + host.headerTimeoutMs;
        this.#enter(ConnState.ReadingHead);
        this.deadlineKind = Deadline.Head;
        this.deadline = this.#headDeadline;
      } else {
        this.#enter(ConnState.Idle);
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
    }
  }

  /**
   * After a 101 (RFC 9110 §15.2.2) the connection no longer speaks HTTP: it goes to the taker its response
   * names (server/_upgrade.ts), with the bytes already read behind the request head, including those of a
   * read still in flight; this Connection then ends without closing the socket. Without a 101, or without
   * a taker, nothing happens here and the connection closes as usual.
   */
  #switchProtocols(): void {
    if ((this.#closeReasons & Outcome.Switched) === 0 || this.#closed) return;
    const response = this.#writer.switchedTo;
    const takeover = response === null ? undefined : takeoverFor(response);
    if (takeover === undefined) return;
    const parser = this.#parser;
    const op = this.#pendingRead;
    const head = op === null ? Promise.resolve(parser.takeBuffered()) : op.then((n) => {
      this.#settled(op, n);
      return n === 0 ? null : parser.takeBuffered();
    }, () => null);
    this.#handedOff = true;
    // Adopted by the server before this Connection is released, so a shutdown never sees neither.
    takeover({ conn: this.conn, rid: this.#rid, head, host: this.#host });
    this.close();
  }

  /** Answer a protocol error: a short plain-text response, then close (RFC 9112 §2.2). */
  async #sendError(status: number, reason: string, head: RequestHead | null = null): Promise<void> {
    if (status >= 500 && status !== 501 && status !== 505) {
      this.#host.log(`protocol error ${status}: ${reason}`);
    }
    this.#refused(status, reason, head);
    this.#closeReasons |= Reason.ProtocolError;
    this.#writer.queueError(status);
    await this.#flush();
  }

  /**
   * Run the handler for one request and have its answer written. Returns undefined when everything
   * happened synchronously, which is the common case for a static answer: no promise, no microtask.
   */
  #serve(head: RequestHead): Promise<void> | undefined {
    const host = this.#host;
    const hasBody = head.framing.kind !== "none";
    const seq = ++this.#seq;
    this.#closeReasons = (head.keepAlive ? 0 : Reason.ClientAsked) |
      (head.expectContinue ? Reason.ContinueUnsent : 0);
    this.#bodyError = null;
    this.#watched = false;

    // Requests the server answers itself, before any handler.
    let early = 0;
    const method = head.method;
    // RFC 9110 §9.1: a method the server does not implement is a 501. CONNECT asks for a tunnel (§9.3.6),
    // which an origin server answering Requests with Responses cannot open.
    if (method === "CONNECT" || (host.methods !== null && !host.methods.has(method))) early = 501;
    else if (head.targetForm === "asterisk") early = 204; // OPTIONS *: about the server, nothing to add
    if (early !== 0) {
      if (early === 501) this.#refused(501, `method ${method} not implemented`, head);
      if (hasBody) this.#closeReasons |= Reason.BodyUnread; // never read an unimplemented method's body
      this.#writer.queueEmpty(early, !this.#shouldReuse());
      this.#queuedSeq = seq;
      if (!hasBody) this.#parser.next(); // the end of a bodiless message
      return undefined;
    }

    // RFC 9112 §3.2.2: with an absolute-form target, Host is ignored and the target is the URL.
    const url = head.targetForm === "absolute"
      ? head.target
      : `${host.scheme}://${head.host !== "" ? head.host : host.defaultHost}${head.target}`;
    const body = hasBody ? this.#bodyStream(seq) : null;
    let request: Request;
    try {
      request = makeRequest(method, url, head.headers, body, this.#onCancel);
    } catch {
      return this.#sendError(400, "request URL rejected", head);
    }
    const info = new Info(this.#remoteAddr, this.#progress, seq);
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
    // Answers to earlier pipelined requests are ready: if this handler is about to wait (on I/O, a
    // timer), they are written now rather than after it.
    if (this.#writer.queued > 0 && !(await settlesSoon(Promise.resolve(result)))) await this.#flush();
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
    if (this.#closed || (this.#closeReasons & Reason.ClientGone) !== 0) {
      return this.close();
    }
    // The handler may have failed on the body: then the protocol error is the answer, and we close.
    const bodyError = this.#bodyError as ProtocolError | null;
    if (bodyError !== null) return this.#sendError(bodyError.status, bodyError.message, head);
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

  /** Have the writer write `response`, with `connection: close` when this is the connection's last answer. */
  #respond(response: Response, head: RequestHead): Promise<void> | undefined {
    const outcome = this.#writer.answer(response, head, !this.#shouldReuse());
    if (typeof outcome === "number") return this.#afterAnswer(outcome);
    this.#watch();
    return outcome.then((o) => this.#afterAnswer(o));
  }

  #afterAnswer(outcome: Outcome): Promise<void> | undefined {
    // The answer is whole now: queued (written with the batch) or, streamed or large, already written.
    this.#closeReasons |= outcome;
    this.#queuedSeq = this.#seq;
    if (this.#writer.queued === 0) this.#finishInfos();
    if (this.#cancelCallbacks.length !== 0) this.#cancelCallbacks.length = 0;
    if (this.#closed) return undefined;
    const parser = this.#parser;
    if (parser.state === "BODY") {
      if (!this.#shouldReuse()) return undefined; // closing: not worth reading
      // Discard what the handler left of the body, so the next request starts at its first byte.
      this.#enter(ConnState.Draining);
      return this.#drain().then((drained) => {
        if (!drained) this.#closeReasons |= Reason.BodyUnread;
        else if (parser.state === "DONE") parser.next();
      });
    }
    if (parser.state === "DONE") parser.next(); // the "end" event, if the handler did not read it
    return undefined;
  }

  /**
   * The request body as a stream that reads the socket only when pulled: backpressure and lazy 100. It
   * belongs to request `seq`, and fails once that request is answered and its rest is being discarded.
   * It is a byte stream: a reader in BYOB mode has the bytes copied into its own buffer, so a large upload
   * read that way costs no allocation per chunk; any other reader gets each chunk as a fresh copy, which it
   * owns (the parser's buffer is reused for the next read).
   */
  #bodyStream(seq: number): ReadableStream<Uint8Array> {
    return new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        if (this.#seq !== seq || this.#state !== ConnState.Active) {
          controller.error(new ClientGone());
          return;
        }
        if ((this.#closeReasons & Reason.ContinueUnsent) !== 0) {
          // RFC 9110 §10.1.1: 100 Continue only once the handler asks for the body.
          this.#closeReasons &= ~Reason.ContinueUnsent;
          this.#writer.queueContinue();
          await this.#flush();
        }
        for (;;) {
          const ev = this.#parser.next();
          if (ev === NEED_DATA) {
            if (!(await this.#fillBody())) {
              this.#closeReasons |= Reason.ClientGone;
              this.#runCancelCallbacks(); // request.signal aborts: the client left mid-body
              controller.error(new ClientGone());
              return;
            }
            continue;
          }
          if (ev === PAUSED || ev.type === "end") {
            controller.close();
            controller.byobRequest?.respond(0); // a BYOB read waiting is answered "done"
            return;
          }
          if (ev.type === "data") {
            giveBytes(controller, ev.data);
            return;
          }
          if (ev.type === "error") {
            this.#closeReasons |= Reason.ProtocolError;
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

  /** The queued answers are written (or never will be, on close): settle the `completed` asked for. */
  #finishInfos(): void {
    const progress = this.#progress;
    progress.written = this.#closed ? Infinity : this.#queuedSeq;
    const waiting = progress.waiting;
    if (waiting.length === 0) return;
    progress.waiting = waiting.filter((info) => !info.settle());
  }
}
