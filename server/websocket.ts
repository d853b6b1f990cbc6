// WebSocket for handlers (RFC 6455, RFC 7692): upgradeWebSocket() decides the handshake and answers 101,
// and once serve() has written it, the session here owns the connection: it reads frames through the
// sans-IO parser (websocket_frames.ts), delivers messages, answers pings, runs the close handshake and the
// timeouts, and writes what the handler sends, batched per turn of the event loop. It must never block the
// server's shutdown, keep a socket open past its close timeout, or let a peer make it buffer without bound.
import { decodeAscii, readOp, writeOp } from "./_ops.ts";
import { registerTakeover, type SwitchedConnection, type Tunnel, type TunnelHost } from "./_upgrade.ts";
import {
  CloseCode,
  closePayload,
  FRAME_DEFAULTS,
  frameHeadLength,
  FrameParser,
  isValidCloseCode,
  MAX_CLOSE_REASON_BYTES,
  NEED_DATA,
  Opcode,
  Utf8Validator,
  WebSocketProtocolError,
  writeFrameHead,
} from "./websocket_frames.ts";
import { DEFLATE_DEFAULTS, type DeflateOptions, MessageDeflate } from "./websocket_deflate.ts";
import { decideHandshake } from "./websocket_handshake.ts";

/**
 * Options for {@link upgradeWebSocket} and {@link upgradeWebSocketStream}. Every field has a safe default.
 *
 * @example
 * ```ts
 * import type { UpgradeWebSocketOptions } from "./websocket.ts";
 * const options: UpgradeWebSocketOptions = { protocol: "chat", idleTimeout: 60, maxMessageBytes: 65536 };
 * ```
 */
export interface UpgradeWebSocketOptions {
  /** The subprotocol the handler speaks; echoed in the 101 when the client offered it (RFC 6455 §4.2.2). */
  protocol?: string;
  /**
   * permessage-deflate (RFC 7692): false to refuse it, or how to use it. Default on, with
   * {@link DEFLATE_DEFAULTS}: agreed when the client offers it, and the server's own messages of 128 bytes or
   * more are compressed.
   */
  compress?: boolean | DeflateOptions;
  /**
   * Origins allowed besides the server's own, or `"*"` for any. Default: none, with the same-origin rule of
   * `crossOriginProtection` (a handshake carries the visitor's cookies and is not bound by CORS, so a page
   * on another site could otherwise open a socket as the visitor: cross-site WebSocket hijacking).
   */
  trustedOrigins?: readonly string[] | "*";
  /**
   * Seconds without a frame from the client before the server sends a ping; as many again without an
   * answer and the connection is closed (1001), with an `error` and a `close` event. 0 turns it off.
   * Default 30, as Deno's. Exact to within half a second (the server's tick).
   */
  idleTimeout?: number;
  /** Largest message (after inflating, for a compressed one); larger ones close the connection with 1009. */
  maxMessageBytes?: number;
  /** Largest frame; larger ones close the connection with 1009. Default: `maxMessageBytes`. */
  maxFrameBytes?: number;
  /**
   * How long the closing side waits for the peer's close frame (or, after a protocol error, for the peer to
   * go) before closing the TCP connection anyway. Default 5000 ms.
   */
  closeTimeoutMs?: number;
}

/**
 * The defaults of {@link UpgradeWebSocketOptions}, each with its reason.
 *
 * @example
 * ```ts
 * import { WEBSOCKET_DEFAULTS } from "./websocket.ts";
 * console.log(WEBSOCKET_DEFAULTS.maxMessageBytes); // 16777216
 * ```
 */
export const WEBSOCKET_DEFAULTS: Readonly<{
  idleTimeout: number;
  maxMessageBytes: number;
  closeTimeoutMs: number;
  deflateThreshold: number;
}> = Object.freeze({
  /** Deno's default: a dead peer (a laptop closed, a phone gone) is noticed within a minute. */
  idleTimeout: 30,
  /** 16 MiB: far above any chat or game message, small enough that a hostile peer cannot exhaust memory. */
  maxMessageBytes: FRAME_DEFAULTS.maxMessageBytes,
  /** Long enough for a peer across the world to answer a close; short enough that shutdown is not held. */
  closeTimeoutMs: 5_000,
  /** The server's own messages shorter than this go uncompressed (see DEFLATE_DEFAULTS). */
  deflateThreshold: DEFLATE_DEFAULTS.threshold,
});

/** The readyState values of a WebSocket (WHATWG), one session's life. */
const ReadyState = { Connecting: 0, Open: 1, Closing: 2, Closed: 3 } as const;
type ReadyState = typeof ReadyState[keyof typeof ReadyState];
const STATE_NAMES = ["CONNECTING", "OPEN", "CLOSING", "CLOSED"] as const;
const bits = (...states: ReadyState[]) => states.reduce<number>((mask, s) => mask | 1 << s, 0);
/** The states each state may step to, as bits (TRANSITIONS); staying is always allowed, CLOSED is final. */
const TRANSITIONS: readonly number[] = [
  /* Connecting */ bits(ReadyState.Open, ReadyState.Closing, ReadyState.Closed),
  /* Open */ bits(ReadyState.Closing, ReadyState.Closed),
  /* Closing */ bits(ReadyState.Closed),
  /* Closed */ 0,
];

/** Errors that mean the peer went away: routine, never logged. */
function isDisconnect(e: unknown): boolean {
  return e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset ||
    e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.BadResource ||
    e instanceof Deno.errors.Interrupted || e instanceof Deno.errors.NotConnected ||
    e instanceof Deno.errors.UnexpectedEof;
}

/** The smallest out buffer; larger ones go by powers of two, up to OUT_BUFFER_MAX. */
const OUT_BUFFER = 16 * 1024;
/** Out buffers up to this size are pooled; a larger one (a message of megabytes) is dropped after use. */
const OUT_BUFFER_MAX = 256 * 1024;
/** Free out buffers shared by all sessions, by size (16, 32, 64, 128, 256 KiB): an idle socket holds none. */
const outPools: Uint8Array[][] = [[], [], [], [], []];
/** Buffers kept per size: enough for the sessions writing at once, a bounded amount of memory. */
const OUT_POOL_MAX = 32;
/** Where strings are encoded before being framed (encodeInto is several times faster than encode). */
let scratch = new Uint8Array(64 * 1024);
/** Strings up to this long are encoded through the scratch buffer (which grows to 3 bytes per char). */
const SCRATCH_MAX_CHARS = 256 * 1024;

/** An out buffer of at least `size` bytes: from the pool, or new. */
function takeOut(size: number): Uint8Array {
  if (size > OUT_BUFFER_MAX) return new Uint8Array(size);
  let cls = 0;
  let length = OUT_BUFFER;
  while (length < size) {
    length *= 2;
    cls++;
  }
  return outPools[cls].pop() ?? new Uint8Array(length);
}

function giveOut(buffer: Uint8Array): void {
  const length = buffer.length;
  if (length > OUT_BUFFER_MAX || length < OUT_BUFFER) return;
  const cls = Math.log2(length / OUT_BUFFER);
  if (Number.isInteger(cls) && outPools[cls].length < OUT_POOL_MAX) outPools[cls].push(buffer);
}
const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
// ignoreBOM: a leading U+FEFF is part of the message, and an echo must give it back.
const bomKeepingDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Decode text already checked as UTF-8: Deno's decoder op (several times cheaper than a fatal TextDecoder),
 * except for text starting with a byte-order mark, which that op would drop.
 */
function decodeUtf8(bytes: Uint8Array): string {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    return bomKeepingDecoder.decode(bytes);
  }
  return decodeAscii(bytes);
}

/** What a session tells the object the handler holds (a WebSocket, or a WebSocketStream). */
interface SessionListener {
  opened(): void;
  /** A message: a string, or bytes the listener owns. */
  message(data: string | Uint8Array): void;
  /** The connection failed (a protocol error, a timeout): before `closed`. */
  failed(message: string): void;
  closed(code: number, reason: string, wasClean: boolean): void;
}

/** Resolved once queued bytes are written, or rejected when the connection closes first. */
interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/** Settings a session takes from the options and the handshake. */
interface SessionConfig {
  url: string;
  protocol: string;
  extensions: string;
  deflate: MessageDeflate | null;
  deflateThreshold: number;
  maxMessageBytes: number;
  maxFrameBytes: number;
  idleMs: number;
  closeTimeoutMs: number;
}

/**
 * One WebSocket connection after its handshake: reading, writing, the close handshake and the timers. The
 * socket objects handlers hold are thin faces over it.
 */
class Session implements Tunnel {
  readonly config: SessionConfig;
  readonly done: Promise<void>;
  #resolveDone!: () => void;
  #state: ReadyState = ReadyState.Connecting;
  #listener: SessionListener | null = null;
  #conn: Deno.Conn | null = null;
  #rid = -1;
  #host: TunnelHost | null = null;
  readonly #parser: FrameParser;
  readonly #deflate: MessageDeflate | null;
  // Writing: frames are appended to #out and written once per turn of the event loop.
  #out: Uint8Array | null = null;
  #outLength = 0;
  #writing = false;
  #flushQueued = false;
  /** Payload bytes sent by the handler and not yet written (WHATWG bufferedAmount). */
  #buffered = 0;
  /** Of those, the ones in #out. */
  #outAmount = 0;
  #outWaiters: Waiter[] = [];
  /** Sends that must wait (a compression, a Blob): while there is one, every send queues behind it. */
  #chain: Promise<void> | null = null;
  #chained = 0;
  // Closing.
  #closeSent = false;
  #closeReceived = false;
  #receivedCode: number = CloseCode.NoStatus;
  #receivedReason = "";
  /** The code of a failure this side detected (a protocol error, a timeout), or 0. */
  #failedCode = 0;
  #failedReason = "";
  /** Input is no longer parsed: after a close frame or a failure, until the TCP close. */
  #discarding = false;
  /** A close asked for before the connection was handed over. */
  #pendingClose: [number, string] | null = null;
  #tcpClosed = false;
  // Timers, on the host's clock (0 = off).
  #lastSeen = 0;
  #pingAt = 0;
  #closeBy = 0;
  #writeBy = 0;
  // Inbound backpressure (the stream form): no read while paused.
  #paused = false;
  #resume: (() => void) | null = null;

  constructor(config: SessionConfig) {
    this.config = config;
    this.#deflate = config.deflate;
    this.#parser = new FrameParser({
      role: "server",
      maxMessageBytes: config.maxMessageBytes,
      maxFrameBytes: config.maxFrameBytes,
      deflate: config.deflate !== null,
      decodeUtf8,
    });
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
  }

  set listener(listener: SessionListener) {
    this.#listener = listener;
  }

  get readyState(): ReadyState {
    return this.#state;
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  #enter(to: ReadyState): void {
    const from = this.#state;
    if (from !== to && (TRANSITIONS[from] & (1 << to)) === 0) {
      throw new Error(`illegal WebSocket step: ${STATE_NAMES[from]} to ${STATE_NAMES[to]}`);
    }
    this.#state = to;
  }

  /** When the next timer is due: the earliest of the write, close and idle timers. */
  get deadline(): number {
    let due = this.#writeBy;
    const close = this.#closeBy;
    if (close !== 0 && (due === 0 || close < due)) due = close;
    const idleMs = this.config.idleMs;
    if (idleMs > 0 && this.#state === ReadyState.Open) {
      const idle = (this.#pingAt !== 0 ? this.#pingAt : this.#lastSeen) + idleMs;
      if (due === 0 || idle < due) due = idle;
    }
    return due;
  }

  // --- life ---------------------------------------------------------------------------------------------

  /** The 101 is written: the connection is ours. */
  start(switched: SwitchedConnection): void {
    this.#conn = switched.conn;
    this.#rid = switched.rid;
    const host = this.#host = switched.host;
    host.adopt(this);
    this.#lastSeen = host.now;
    this.#enter(ReadyState.Open);
    this.#readLoop(switched.head);
  }

  async #readLoop(head: Promise<Uint8Array | null>): Promise<void> {
    const parser = this.#parser;
    try {
      // Open as soon as the 101 is written, not once the client has sent something: a server that speaks
      // first (a count, a greeting) would otherwise wait on a read that may never come.
      this.#listener?.opened();
      if (this.#pendingClose !== null) this.close(...this.#pendingClose);
      const first = await head;
      if (first === null) return this.#lost();
      if (first.length > 0) {
        parser.feed(first);
        const pending = this.#process();
        if (pending !== undefined) await pending;
      }
      const rid = this.#rid;
      const conn = this.#conn!;
      for (;;) {
        if (this.#paused) await new Promise<void>((resolve) => this.#resume = resolve);
        if (this.#tcpClosed) return;
        const buf = parser.writable();
        const n = rid >= 0 ? await readOp(rid, buf) : (await conn.read(buf)) ?? 0;
        if (this.#tcpClosed) return;
        if (n === 0) return this.#lost();
        this.#lastSeen = this.#host!.now;
        this.#pingAt = 0;
        if (this.#discarding) continue;
        parser.commit(n);
        const pending = this.#process();
        if (pending !== undefined) await pending;
      }
    } catch (e) {
      if (!isDisconnect(e) && !this.#tcpClosed) this.#host?.log("websocket read failed", e);
      this.#lost();
    }
  }

  /** Handle every event the parser has; a promise only when a compressed message must be inflated. */
  #process(): Promise<void> | undefined {
    const parser = this.#parser;
    for (;;) {
      if (this.#discarding) return undefined;
      const ev = parser.next();
      if (ev === NEED_DATA) return undefined;
      switch (ev.type) {
        case "text":
          this.#deliver(ev.text);
          break;
        case "binary":
          this.#deliver(ev.data.slice());
          break;
        case "deflated":
          return this.#inflateThenProcess(ev.binary, ev.data);
        case "ping":
          // RFC 6455 §5.5.2: a pong with the same payload, unless a close was sent already.
          if (!this.#closeSent) this.#sendControl(Opcode.Pong, ev.data);
          break;
        case "pong":
          break; // its arrival reset the idle timer
        case "close":
          this.#closeFrame(ev.code, ev.reason);
          return undefined;
        case "error":
          this.#fail(ev.error.code, ev.error.message);
          return undefined;
      }
    }
  }

  async #inflateThenProcess(binary: boolean, data: Uint8Array): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = await this.#deflate!.decompress(data, this.config.maxMessageBytes);
    } catch (e) {
      if (e instanceof WebSocketProtocolError) this.#fail(e.code, e.message);
      else this.#fail(CloseCode.InternalError, "inflate failed");
      return;
    }
    if (binary) this.#deliver(bytes);
    else {
      const utf8 = new Utf8Validator();
      if (!utf8.feed(bytes, 0, bytes.length) || !utf8.complete) {
        return this.#fail(CloseCode.InvalidPayload, "text message is not valid UTF-8");
      }
      this.#deliver(decodeUtf8(bytes));
    }
    const pending = this.#process();
    if (pending !== undefined) await pending;
  }

  #deliver(data: string | Uint8Array): void {
    // WHATWG: messages that arrive once closing has begun are not delivered.
    if (this.#state === ReadyState.Open) this.#listener?.message(data);
  }

  // --- sending ------------------------------------------------------------------------------------------

  /** Send a text message. */
  sendText(text: string, waiter?: Waiter): void {
    if (this.#closeSent || this.#tcpClosed) return waiter?.reject(new Error("the WebSocket is closed"));
    let bytes: Uint8Array;
    if (text.length <= SCRATCH_MAX_CHARS) {
      if (text.length * 3 > scratch.length) scratch = new Uint8Array(text.length * 3);
      bytes = scratch.subarray(0, encoder.encodeInto(text, scratch).written);
    } else bytes = encoder.encode(text);
    this.#send(Opcode.Text, bytes, bytes.buffer !== scratch.buffer, waiter);
  }

  /**
   * Send a message whose bytes the caller may change afterwards (they are copied before this returns, or
   * kept as a copy).
   */
  sendBytes(bytes: Uint8Array, waiter?: Waiter): void {
    if (this.#closeSent || this.#tcpClosed) return waiter?.reject(new Error("the WebSocket is closed"));
    this.#send(Opcode.Binary, bytes, false, waiter);
  }

  /** Send a message once `bytes` resolves (a Blob's), in order with the others. */
  sendLater(bytes: Promise<Uint8Array>, opcode: number): void {
    this.#chainStep(bytes.then((b) => [opcode, b, false] as const));
  }

  #send(opcode: number, bytes: Uint8Array, owned: boolean, waiter?: Waiter): void {
    this.#buffered += bytes.length;
    const deflate = this.#deflate;
    if (deflate !== null && bytes.length >= this.config.deflateThreshold) {
      // RFC 7692 §6: compressed, with RSV1 on the (only) frame. zlib works on a copy, off this turn.
      const copy = owned ? bytes : bytes.slice();
      this.#chainStep(deflate.compress(copy).then((c) => [opcode, c, true] as const), copy.length, waiter);
      return;
    }
    if (this.#chain !== null) {
      const copy = owned ? bytes : bytes.slice();
      this.#chainStep(Promise.resolve([opcode, copy, false] as const), copy.length, waiter);
      return;
    }
    this.#append(opcode, bytes, false, bytes.length, waiter);
  }

  /** Queue a send that must wait for `ready`, after every send queued before it. */
  #chainStep(
    ready: Promise<readonly [number, Uint8Array, boolean]>,
    amount = 0,
    waiter?: Waiter,
  ): void {
    this.#chained++;
    const previous = this.#chain ?? Promise.resolve();
    const step = previous.then(() => ready).then(
      ([opcode, payload, rsv1]) => {
        if (!this.#closeSent && !this.#tcpClosed) {
          if (amount === 0) this.#buffered += payload.length; // a Blob's size was unknown until now
          this.#append(opcode, payload, rsv1, amount === 0 ? payload.length : amount, waiter);
        } else waiter?.reject(new Error("the WebSocket is closed"));
      },
      (e) => {
        this.#host?.log("websocket send failed", e);
        waiter?.reject(e);
      },
    ).finally(() => {
      if (--this.#chained === 0) this.#chain = null;
    });
    this.#chain = step;
  }

  /** A ping or pong, queued now (control frames may go between a message's queued sends, §5.4). */
  #sendControl(opcode: number, payload: Uint8Array): void {
    this.#append(opcode, payload, false, 0);
  }

  /** Frame `payload` into the out buffer and have it written this turn. */
  #append(opcode: number, payload: Uint8Array, rsv1: boolean, amount: number, waiter?: Waiter): void {
    if (this.#tcpClosed) return;
    const length = payload.length;
    const size = frameHeadLength(length, false) + length;
    let out = this.#out;
    const used = this.#outLength;
    if (out === null || out.length - used < size) {
      const next = takeOut(used + size);
      if (out !== null) {
        next.set(out.subarray(0, used));
        giveOut(out);
      }
      out = this.#out = next;
    }
    const head = writeFrameHead(out, used, opcode, length, { rsv1 });
    out.set(payload, used + head);
    this.#outLength = used + head + length;
    this.#outAmount += amount;
    if (waiter !== undefined) this.#outWaiters.push(waiter);
    if (!this.#flushQueued && !this.#writing) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushTask);
    }
  }

  readonly #flushTask = (): void => {
    this.#flushQueued = false;
    this.#flush();
  };

  /** Write what is queued, batch after batch, one write in flight at a time. */
  async #flush(): Promise<void> {
    if (this.#writing || this.#tcpClosed) return;
    this.#writing = true;
    const host = this.#host!;
    const rid = this.#rid;
    const conn = this.#conn!;
    try {
      while (this.#outLength > 0 && !this.#tcpClosed) {
        const buffer = this.#out!;
        const bytes = buffer.subarray(0, this.#outLength);
        const amount = this.#outAmount;
        const waiters = this.#outWaiters;
        this.#out = null;
        this.#outLength = 0;
        this.#outAmount = 0;
        this.#outWaiters = [];
        this.#writeBy = host.now + host.writeTimeoutMs;
        let off = 0;
        while (off < bytes.length) {
          off += rid >= 0 ? await writeOp(rid, bytes.subarray(off)) : await conn.write(bytes.subarray(off));
        }
        this.#writeBy = 0;
        this.#buffered -= amount;
        giveOut(buffer);
        for (const w of waiters) w.resolve();
      }
    } catch (e) {
      if (!isDisconnect(e) && !this.#tcpClosed) host.log("websocket write failed", e);
      this.#writing = false;
      return this.#finish(false);
    }
    this.#writing = false;
    this.#afterFlush();
  }

  /** Once our close frame is out: after a close handshake the server closes first (§7.1.1). */
  #afterFlush(): void {
    if (!this.#closeSent || this.#outLength > 0 || this.#chain !== null) return;
    if (this.#closeReceived) return this.#finish(true);
    if (this.#failedCode !== 0) {
      // After a failure, tell the peer no more is coming (a half close): it answers with its own close or
      // end, and no data of ours can be lost to a reset while its last frames are still unread.
      this.#conn?.closeWrite().catch(() => {});
    }
  }

  // --- closing ------------------------------------------------------------------------------------------

  /** The handshake was refused: the socket never opens; it reports a failure and a close (1006). */
  refuse(reason: string): void {
    // After the handler has set its listeners (it returns the refusal first).
    setTimeout(() => {
      if (this.#state !== ReadyState.Connecting) return;
      this.#tcpClosed = true;
      this.#enter(ReadyState.Closed);
      try {
        this.#listener?.failed(`handshake refused: ${reason}`);
        this.#listener?.closed(CloseCode.Abnormal, "", false);
      } finally {
        this.#resolveDone();
      }
    }, 0);
  }

  /** The handler closes (or the server shuts down): send a close frame and wait for the peer's. */
  close(code: number, reason: string): void {
    const state = this.#state;
    if (state === ReadyState.Connecting) {
      this.#pendingClose = [code, reason];
      return;
    }
    if (state !== ReadyState.Open) return;
    this.#enter(ReadyState.Closing);
    this.#sendClose(code, reason);
  }

  /** Queue our close frame (after every message queued), once, and start the close timer. */
  #sendClose(code: number, reason: string): void {
    if (this.#closeSent) return;
    const payload = closePayload(code, reason);
    if (this.#chain !== null) this.#chainStep(Promise.resolve([Opcode.Close, payload, false] as const));
    else this.#append(Opcode.Close, payload, false, 0);
    this.#closeSent = true;
    this.#closeBy = this.#host!.now + this.config.closeTimeoutMs;
  }

  /** The peer's close frame (§5.5.1): answer it with the same code, then close the TCP connection. */
  #closeFrame(code: number, reason: string): void {
    this.#closeReceived = true;
    this.#receivedCode = code;
    this.#receivedReason = reason;
    this.#discarding = true;
    if (this.#state === ReadyState.Open) this.#enter(ReadyState.Closing);
    if (!this.#closeSent) this.#sendClose(code, "");
    else if (!this.#writing && this.#outLength === 0 && this.#chain === null) this.#finish(true);
  }

  /**
   * This side found the connection broken (§7.1.7): the close frame with the code goes out first, then the
   * connection closes once the peer answers or goes, or at the close timeout.
   */
  #fail(code: number, message: string): void {
    if (this.#failedCode !== 0 || this.#tcpClosed) return;
    this.#failedCode = code;
    this.#failedReason = truncateUtf8(message, MAX_CLOSE_REASON_BYTES);
    this.#discarding = true;
    const state = this.#state;
    if (state === ReadyState.Open) this.#enter(ReadyState.Closing);
    this.#listener?.failed(message);
    if (!this.#closeSent) this.#sendClose(code, this.#failedReason);
    else this.#afterFlush();
  }

  /** The peer ended the TCP connection (or it broke). */
  #lost(): void {
    this.#finish(this.#closeSent && this.#closeReceived);
  }

  /** Close the TCP connection and report the close, once. */
  #finish(wasClean: boolean): void {
    if (this.#tcpClosed) return;
    this.#tcpClosed = true;
    this.#closeBy = this.#writeBy = 0;
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    this.#deflate?.close();
    if (this.#out !== null) giveOut(this.#out);
    this.#out = null;
    this.#outLength = 0;
    const gone = new Error("the WebSocket closed before the data was written");
    for (const w of this.#outWaiters.splice(0)) w.reject(gone);
    this.#resume?.();
    this.#enter(ReadyState.Closed);
    // WHATWG: the code received, or 1006 without one; here a failure found on this side reports its code.
    const code = this.#failedCode !== 0
      ? this.#failedCode
      : this.#closeReceived
      ? this.#receivedCode
      : CloseCode.Abnormal;
    const reason = this.#failedCode !== 0 ? this.#failedReason : this.#receivedReason;
    try {
      this.#listener?.closed(code, reason, wasClean && this.#failedCode === 0);
    } finally {
      this.#resolveDone();
    }
  }

  // --- the server's side ----------------------------------------------------------------------------------

  timeout(): void {
    const host = this.#host!;
    const now = host.now;
    if (this.#writeBy !== 0 && now >= this.#writeBy) return this.#finish(false); // a peer that stopped reading
    if (this.#closeBy !== 0 && now >= this.#closeBy) return this.#finish(false); // no close frame in time
    const idleMs = this.config.idleMs;
    if (idleMs <= 0 || this.#state !== ReadyState.Open) return;
    if (this.#pingAt === 0) {
      if (now - this.#lastSeen >= idleMs) {
        this.#pingAt = now;
        this.#sendControl(Opcode.Ping, EMPTY);
        this.#parser.trim(); // quiet: give back a buffer a large message made grow
      }
    } else if (now - this.#pingAt >= idleMs) {
      // No answer to the ping: the peer is gone or stuck. The close frame is sent as a courtesy, and the
      // connection closes at once rather than after waiting for an answer that will not come.
      this.#fail(CloseCode.GoingAway, "no answer to ping");
      this.#closeBy = now;
    }
  }

  shutdown(): void {
    this.close(CloseCode.GoingAway, "server shutting down");
  }

  // --- inbound backpressure (the stream form) -------------------------------------------------------------

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    const resume = this.#resume;
    this.#resume = null;
    resume?.();
  }
}

/** `text` cut to at most `max` bytes of UTF-8, never inside a character. */
function truncateUtf8(text: string, max: number): string {
  if (text.length * 3 <= max) return text;
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const n = encoder.encode(ch).length;
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** Validate a close code and reason given by a handler; the errors are those WHATWG's close() throws. */
function checkClose(code: number | undefined, reason: string | undefined): [number, string] {
  if (code === undefined) {
    if (reason !== undefined && reason !== "") {
      // WHATWG sends 1000 when only a reason is given.
      code = CloseCode.Normal;
    } else return [CloseCode.NoStatus, ""];
  }
  if (!Number.isInteger(code) || !isValidCloseCode(code)) {
    throw new DOMException(`close code ${code} may not be sent`, "InvalidAccessError");
  }
  const text = reason ?? "";
  if (encoder.encode(text).length > MAX_CLOSE_REASON_BYTES) {
    throw new DOMException(`close reason longer than ${MAX_CLOSE_REASON_BYTES} bytes`, "SyntaxError");
  }
  return [code, text];
}

/** Lets only this module construct the socket classes. */
const INTERNAL = Symbol("pier.websocket");

/**
 * The server's side of a WebSocket, shaped as WHATWG's `WebSocket` (what `Deno.upgradeWebSocket` gives):
 * events `open`, `message`, `error`, `close` (as `on…` properties or with `addEventListener`), `send`,
 * `close`, `readyState`, `bufferedAmount`, `binaryType`, `protocol`, `extensions`. Made by
 * {@link upgradeWebSocket}; it opens once the server has written the 101.
 *
 * @example
 * ```ts ignore
 * const { socket, response } = upgradeWebSocket(request);
 * socket.onmessage = (e) => socket.send(e.data);
 * return response;
 * ```
 */
export class PierWebSocket extends EventTarget implements WebSocket {
  /** The connection is not yet open. */
  static readonly CONNECTING = 0;
  /** Open: messages flow. */
  static readonly OPEN = 1;
  /** The close handshake is under way. */
  static readonly CLOSING = 2;
  /** Closed. */
  static readonly CLOSED = 3;
  /** The connection is not yet open. */
  readonly CONNECTING = 0;
  /** Open: messages flow. */
  readonly OPEN = 1;
  /** The close handshake is under way. */
  readonly CLOSING = 2;
  /** Closed. */
  readonly CLOSED = 3;
  /** The URL of the handshake request. */
  readonly url: string;
  readonly #session: Session;
  #binaryType: BinaryType = "blob";
  readonly #handlers = new Map<string, { handler: unknown; listener: EventListener }>();

  /**
   * Made by {@link upgradeWebSocket} only.
   *
   * @param token Internal.
   * @param session Internal.
   */
  constructor(token: symbol, session: unknown) {
    super();
    if (token !== INTERNAL) throw new TypeError("use upgradeWebSocket() to make a WebSocket");
    this.#session = session as Session;
    this.url = this.#session.config.url;
    this.#session.listener = {
      opened: () => this.dispatchEvent(new Event("open")),
      message: (data) => {
        let value: unknown = data;
        if (typeof data !== "string") {
          value = this.#binaryType === "arraybuffer"
            ? exactBuffer(data)
            : new Blob([data as Uint8Array<ArrayBuffer>]);
        }
        this.dispatchEvent(new MessageEvent("message", { data: value }));
      },
      failed: (message) => this.dispatchEvent(new ErrorEvent("error", { message })),
      closed: (code, reason, wasClean) =>
        this.dispatchEvent(new CloseEvent("close", { code, reason, wasClean })),
    };
  }

  /** CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3). */
  get readyState(): number {
    return this.#session.readyState;
  }

  /** Bytes of messages sent and not yet written to the connection (before compression). */
  get bufferedAmount(): number {
    return this.#session.bufferedAmount;
  }

  /** The subprotocol agreed in the handshake, or "". */
  get protocol(): string {
    return this.#session.config.protocol;
  }

  /** The extensions agreed in the handshake (`permessage-deflate; …`), or "". */
  get extensions(): string {
    return this.#session.config.extensions;
  }

  /** How binary messages are given: `"blob"` (the default, as WHATWG's) or `"arraybuffer"`. */
  get binaryType(): BinaryType {
    return this.#binaryType;
  }

  set binaryType(value: BinaryType) {
    if (value === "blob" || value === "arraybuffer") this.#binaryType = value;
  }

  #handler(type: string): unknown {
    return this.#handlers.get(type)?.handler ?? null;
  }

  #setHandler(type: string, handler: unknown): void {
    const old = this.#handlers.get(type);
    if (old !== undefined) {
      this.removeEventListener(type, old.listener);
      this.#handlers.delete(type);
    }
    if (typeof handler === "function") {
      const listener = (ev: Event) => (handler as (ev: Event) => unknown).call(this, ev);
      this.#handlers.set(type, { handler, listener });
      this.addEventListener(type, listener);
    }
  }

  /** Called once the connection is open. */
  get onopen(): ((this: WebSocket, ev: Event) => unknown) | null {
    return this.#handler("open") as ((this: WebSocket, ev: Event) => unknown) | null;
  }
  set onopen(handler: ((this: WebSocket, ev: Event) => unknown) | null) {
    this.#setHandler("open", handler);
  }
  /** Called with each message. */
  get onmessage(): ((this: WebSocket, ev: MessageEvent) => unknown) | null {
    return this.#handler("message") as ((this: WebSocket, ev: MessageEvent) => unknown) | null;
  }
  set onmessage(handler: ((this: WebSocket, ev: MessageEvent) => unknown) | null) {
    this.#setHandler("message", handler);
  }
  /** Called when the connection fails (a protocol error, no answer to a ping), before `close`. */
  get onerror(): ((this: WebSocket, ev: Event) => unknown) | null {
    return this.#handler("error") as ((this: WebSocket, ev: Event) => unknown) | null;
  }
  set onerror(handler: ((this: WebSocket, ev: Event) => unknown) | null) {
    this.#setHandler("error", handler);
  }
  /** Called once the connection is closed, with its code, reason and whether the close was clean. */
  get onclose(): ((this: WebSocket, ev: CloseEvent) => unknown) | null {
    return this.#handler("close") as ((this: WebSocket, ev: CloseEvent) => unknown) | null;
  }
  set onclose(handler: ((this: WebSocket, ev: CloseEvent) => unknown) | null) {
    this.#setHandler("close", handler);
  }

  /**
   * Send a message: a string as text, bytes (an ArrayBuffer, a typed array, a DataView, a Blob) as binary.
   * Nothing waits: it is queued and written this turn of the event loop; see `bufferedAmount`, or use
   * {@link upgradeWebSocketStream} to wait for each write.
   *
   * @param data The message.
   * @throws {DOMException} InvalidStateError while the socket is still CONNECTING.
   */
  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    const session = this.#session;
    if (session.readyState === ReadyState.Connecting) {
      throw new DOMException("the WebSocket is not open yet", "InvalidStateError");
    }
    if (session.readyState !== ReadyState.Open) return; // WHATWG: dropped once closing
    if (typeof data === "string") session.sendText(data);
    else if (data instanceof Blob) {
      session.sendLater(data.arrayBuffer().then((b) => new Uint8Array(b)), Opcode.Binary);
    } else if (ArrayBuffer.isView(data)) {
      session.sendBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } else session.sendBytes(new Uint8Array(data));
  }

  /**
   * Start the close handshake: a close frame with `code` and `reason`, then the connection closes when
   * the client answers (or after the close timeout).
   *
   * @param code 1000, 3000-4999, or another code a server may send (1001, 1008, 1011, …). Default: none.
   * @param reason At most 123 bytes of UTF-8.
   * @throws {DOMException} InvalidAccessError for a code that may not be sent, SyntaxError for a long reason.
   */
  close(code?: number, reason?: string): void {
    const [c, r] = checkClose(code, reason);
    this.#session.close(c, r);
  }
}

/** The bytes as an ArrayBuffer of exactly their length (a copy only when they are a view of a larger one). */
function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes.buffer as ArrayBuffer
    : bytes.slice().buffer;
}

/** What {@link upgradeWebSocket} returns. */
export interface WebSocketUpgrade {
  /** The socket, shaped as WHATWG's `WebSocket`. */
  socket: WebSocket;
  /** The answer to return from the handler: the 101, or the refusal (400, 403, 426) when the handshake is wrong. */
  response: Response;
}

/** Make the session for a handshake, and the response that hands the connection to it. */
function prepare(
  request: Request,
  options: UpgradeWebSocketOptions,
): { session: Session; response: Response } {
  const handshake = decideHandshake(request, options);
  const maxMessageBytes = options.maxMessageBytes ?? WEBSOCKET_DEFAULTS.maxMessageBytes;
  const compress = options.compress ?? true;
  const level = typeof compress === "object" ? compress.level : undefined;
  const threshold = typeof compress === "object"
    ? (compress.threshold ?? WEBSOCKET_DEFAULTS.deflateThreshold)
    : WEBSOCKET_DEFAULTS.deflateThreshold;
  const session = new Session({
    url: request.url,
    protocol: handshake.ok ? handshake.protocol : "",
    extensions: handshake.ok ? handshake.extensions : "",
    deflate: handshake.ok && handshake.deflate !== null ? new MessageDeflate(handshake.deflate, level) : null,
    deflateThreshold: threshold,
    maxMessageBytes,
    maxFrameBytes: options.maxFrameBytes ?? maxMessageBytes,
    idleMs: (options.idleTimeout ?? WEBSOCKET_DEFAULTS.idleTimeout) * 1000,
    closeTimeoutMs: options.closeTimeoutMs ?? WEBSOCKET_DEFAULTS.closeTimeoutMs,
  });
  if (!handshake.ok) {
    session.refuse(handshake.reason);
    return { session, response: handshake.response };
  }
  const response = new Response(null, { status: 101, headers: handshake.headers });
  registerTakeover(response, (switched) => session.start(switched));
  return { session, response };
}

/**
 * Answer a WebSocket handshake (RFC 6455 §4.2), as `Deno.upgradeWebSocket` does: return `response` from
 * the handler, and use `socket` (a WHATWG `WebSocket`), which opens once the server has written the 101.
 * Code written for Deno moves over by changing the import.
 *
 * Unlike Deno's, it never throws for a client's mistake: `response` is then the refusal to send, and the
 * socket never opens. A request that is not a WebSocket upgrade, or asks for a version other than 13,
 * gets 426 with `Sec-WebSocket-Version: 13` (RFC 6455 §4.4); a malformed key or a body gets 400; an
 * `Origin` that fails the same-origin rule of `crossOriginProtection` gets 403 (see `trustedOrigins`). The
 * subprotocol given in `protocol` is echoed when the client offered it; permessage-deflate (RFC 7692) is
 * agreed when the client offers it, unless `compress` is false.
 *
 * Works with Pier's `serve()` only: it is serve that hands the connection over after the 101.
 *
 * @param request The handshake request.
 * @param options Subprotocol, compression, limits, idle timeout, trusted origins.
 * @returns The socket and the response to return.
 *
 * @example
 * ```ts
 * import { serve, upgradeWebSocket } from "../mod.ts";
 * const server = serve({ port: 0, onListen() {} }, (request) => {
 *   if (request.headers.get("upgrade") !== "websocket") return new Response("hello");
 *   const { socket, response } = upgradeWebSocket(request);
 *   socket.onmessage = (e) => socket.send(e.data);
 *   return response;
 * });
 * await server.shutdown();
 * ```
 */
export function upgradeWebSocket(request: Request, options: UpgradeWebSocketOptions = {}): WebSocketUpgrade {
  const { session, response } = prepare(request, options);
  return { socket: new PierWebSocket(INTERNAL, session), response };
}

/** The open connection of a {@link PierWebSocketStream}. */
export interface WebSocketStreamConnection {
  /**
   * The messages received: strings for text, Uint8Arrays for binary. While it is not read, the server stops
   * reading the socket, and the client is held back by TCP.
   */
  readable: ReadableStream<string | Uint8Array>;
  /** Messages to send; each `write()` resolves once its bytes are written to the connection. */
  writable: WritableStream<string | ArrayBufferLike | ArrayBufferView>;
  /** The subprotocol agreed, or "". */
  protocol: string;
  /** The extensions agreed, or "". */
  extensions: string;
}

/** How a {@link PierWebSocketStream} closed. */
export interface WebSocketCloseInfo {
  /** The close code. */
  closeCode?: number;
  /** The close reason. */
  reason?: string;
}

/** Bytes of received messages queued in a stream's readable before the socket stops being read. */
const STREAM_READ_AHEAD = 64 * 1024;

/**
 * The server's side of a WebSocket as streams, in the shape of WHATWG's `WebSocketStream`: `opened`
 * resolves with a readable and a writable, `closed` with the close code and reason. Both directions have
 * real backpressure: a message not read stops the reading of the socket, and a write resolves only once its
 * bytes are written. Made by {@link upgradeWebSocketStream}.
 *
 * @example
 * ```ts ignore
 * const { stream, response } = upgradeWebSocketStream(request);
 * stream.opened.then(async ({ readable, writable }) => {
 *   const writer = writable.getWriter();
 *   for await (const message of readable) await writer.write(message);
 * });
 * return response;
 * ```
 */
export class PierWebSocketStream {
  /** The URL of the handshake request. */
  readonly url: string;
  /** Resolves once the connection is open; rejects if it closes before. */
  readonly opened: Promise<WebSocketStreamConnection>;
  /** Resolves once the connection is closed, with the code and reason; rejects when it was not clean. */
  readonly closed: Promise<Required<WebSocketCloseInfo>>;
  readonly #session: Session;

  /**
   * Made by {@link upgradeWebSocketStream} only.
   *
   * @param token Internal.
   * @param session Internal.
   */
  constructor(token: symbol, session: unknown) {
    if (token !== INTERNAL) throw new TypeError("use upgradeWebSocketStream() to make a WebSocketStream");
    const s = this.#session = session as Session;
    this.url = s.config.url;
    let readController!: ReadableStreamDefaultController<string | Uint8Array>;
    const readable = new ReadableStream<string | Uint8Array>({
      start: (controller) => {
        readController = controller;
      },
      pull: () => s.resume(),
      cancel: () => s.close(CloseCode.Normal, ""),
    }, { highWaterMark: STREAM_READ_AHEAD, size: (chunk) => chunk.length });
    const writable = new WritableStream<string | ArrayBufferLike | ArrayBufferView>({
      write: (chunk) => {
        if (s.readyState !== ReadyState.Open) return Promise.reject(new Error("the WebSocket is closed"));
        return new Promise<void>((resolve, reject) => {
          const waiter = { resolve, reject };
          if (typeof chunk === "string") s.sendText(chunk, waiter);
          else if (ArrayBuffer.isView(chunk)) {
            s.sendBytes(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), waiter);
          } else s.sendBytes(new Uint8Array(chunk as ArrayBufferLike), waiter);
        });
      },
      close: () => s.close(CloseCode.Normal, ""),
      abort: () => s.close(CloseCode.Normal, ""),
    });
    let resolveOpened!: (c: WebSocketStreamConnection) => void;
    let rejectOpened!: (e: unknown) => void;
    this.opened = new Promise((resolve, reject) => {
      resolveOpened = resolve;
      rejectOpened = reject;
    });
    let resolveClosed!: (info: Required<WebSocketCloseInfo>) => void;
    let rejectClosed!: (e: unknown) => void;
    this.closed = new Promise((resolve, reject) => {
      resolveClosed = resolve;
      rejectClosed = reject;
    });
    this.opened.catch(() => {});
    this.closed.catch(() => {});
    let failure = "";
    s.listener = {
      opened: () =>
        resolveOpened({ readable, writable, protocol: s.config.protocol, extensions: s.config.extensions }),
      message: (data) => {
        readController.enqueue(data);
        if ((readController.desiredSize ?? 0) <= 0) s.pause();
      },
      failed: (message) => failure = message,
      closed: (closeCode, reason, wasClean) => {
        rejectOpened(new Error("the WebSocket closed before it opened"));
        if (wasClean) {
          try {
            readController.close();
          } catch { /* cancelled */ }
          resolveClosed({ closeCode, reason });
        } else {
          const error = new Error(`WebSocket closed with ${closeCode}${failure ? `: ${failure}` : ""}`);
          try {
            readController.error(error);
          } catch { /* cancelled */ }
          rejectClosed(error);
        }
      },
    };
  }

  /**
   * Start the close handshake.
   *
   * @param info The code (default none) and reason (default "").
   */
  close(info: WebSocketCloseInfo = {}): void {
    const [code, reason] = checkClose(info.closeCode, info.reason);
    this.#session.close(code, reason);
  }
}

/**
 * Answer a WebSocket handshake like {@link upgradeWebSocket}, and give the connection as streams
 * ({@link PierWebSocketStream}, WHATWG's `WebSocketStream` shape) with backpressure both ways: for code
 * that must not buffer without bound.
 *
 * @param request The handshake request.
 * @param options As {@link upgradeWebSocket}'s.
 * @returns The stream and the response to return.
 *
 * @example
 * ```ts
 * import { serve, upgradeWebSocketStream } from "../mod.ts";
 * const server = serve({ port: 0, onListen() {} }, (request) => {
 *   const { stream, response } = upgradeWebSocketStream(request);
 *   stream.opened.then(async ({ readable, writable }) => {
 *     const writer = writable.getWriter();
 *     for await (const message of readable) await writer.write(message); // an echo that never buffers
 *   }).catch(() => {});
 *   return response;
 * });
 * await server.shutdown();
 * ```
 */
export function upgradeWebSocketStream(
  request: Request,
  options: UpgradeWebSocketOptions = {},
): { stream: PierWebSocketStream; response: Response } {
  const { session, response } = prepare(request, options);
  return { stream: new PierWebSocketStream(INTERNAL, session), response };
}
