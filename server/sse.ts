// Server-Sent Events (WHATWG HTML §9.2): a `text/event-stream` Response whose body a handler writes event by
// event. It owns the event format (fields checked, data split per line), the heartbeat, the bounded queue
// between the handler and the server, and the drop of a client that stops reading. It uses web-standard types
// only, so it runs on Pier's serve and on Deno.serve alike; it must never import the engine, nor let a
// producer grow memory without bound.
import { concatBytes } from "./_bytes.ts";

/**
 * One message of an event stream; every field is optional. The shape is Deno std's
 * `ServerSentEventMessage`, so messages written for `@std/http`'s stream move over unchanged.
 *
 * @example
 * ```ts
 * import type { ServerSentEvent } from "./sse.ts";
 * const news: ServerSentEvent = { event: "news", id: 42, data: "line one\nline two" };
 * ```
 */
export interface ServerSentEvent {
  /**
   * The message, any text. Each of its lines goes out as its own `data:` field, and the client joins them
   * with "\n" (a CR or CRLF line end therefore arrives as "\n"). Without data the client dispatches no event:
   * `event`, `id` and `retry` alone only set the client's state.
   */
  data?: string;
  /** The event type (the client's `addEventListener(type)`); default "message". Must not contain CR or LF. */
  event?: string;
  /**
   * The event's id: the client sends the last one back as `Last-Event-ID` when it reconnects. Must not
   * contain CR, LF or NUL; "" resets the client's last event id.
   */
  id?: string | number;
  /** How long the client waits before reconnecting, in ms: a non-negative integer. */
  retry?: number;
  /** A comment: any text, which the client ignores (a proxy sees traffic). */
  comment?: string;
}

/** Every line end the event-stream grammar knows: CRLF, LF, CR (WHATWG HTML §9.2.5, `end-of-line`). */
const LINE_END = /\r\n|\r|\n/;

/**
 * The wire form of one message: `comment`, `event`, `id`, `retry` and `data` fields in that order, then the
 * blank line that dispatches it. Text fields are split per line, so no value can start a field of its own;
 * `event` and `id` must be one line, or they could inject fields, and are refused otherwise.
 *
 * @param message The message; a message with no field gives "".
 * @returns Its text, to be sent as UTF-8 (the only encoding of `text/event-stream`).
 * @throws {TypeError} When `event` contains CR or LF, or `id` CR, LF or NUL.
 * @throws {RangeError} When `retry` is not a non-negative safe integer.
 *
 * @example
 * ```ts
 * import { formatEvent } from "./sse.ts";
 * formatEvent({ event: "tick", id: 7, data: "a\nb" }); // "event: tick\nid: 7\ndata: a\ndata: b\n\n"
 * ```
 */
export function formatEvent(message: ServerSentEvent): string {
  const { comment, event, id, retry, data } = message;
  let out = "";
  if (comment !== undefined) {
    for (const line of String(comment).split(LINE_END)) out += line === "" ? ":\n" : `: ${line}\n`;
  }
  if (event !== undefined) {
    if (/[\r\n]/.test(event)) {
      throw new TypeError(`event type contains a line break: ${JSON.stringify(event)}`);
    }
    out += `event: ${event}\n`;
  }
  if (id !== undefined) {
    const text = String(id);
    // A client ignores an id with NUL (§9.2.6); one with a line end would end the field early.
    if (/[\r\n\0]/.test(text)) {
      throw new TypeError(`event id contains CR, LF or NUL: ${JSON.stringify(text)}`);
    }
    out += `id: ${text}\n`;
  }
  if (retry !== undefined) {
    // §9.2.6: the client takes `retry` only when it is ASCII digits.
    if (!Number.isSafeInteger(retry) || retry < 0) {
      throw new RangeError(`retry must be a non-negative integer of ms, not ${retry}`);
    }
    out += `retry: ${retry}\n`;
  }
  if (data !== undefined) {
    // "data: " then the line: the client strips one space after the colon, so a leading space survives.
    for (const line of String(data).split(LINE_END)) out += `data: ${line}\n`;
  }
  return out === "" ? "" : out + "\n";
}

/**
 * Options for {@link sse}. Every field has a safe default ({@link SSE_DEFAULTS}); `{}` is valid.
 *
 * @example
 * ```ts
 * import type { SseOptions } from "./sse.ts";
 * const options: SseOptions = { heartbeatMs: 20_000, writeTimeoutMs: 10_000 };
 * ```
 */
export interface SseOptions {
  /**
   * A comment is sent when nothing else was for this long, so proxies and load balancers that close idle
   * connections (nginx's proxy_read_timeout is 60 s) keep the stream. 0 turns it off. Default 15 s.
   */
  heartbeatMs?: number;
  /**
   * Bytes the server has not taken yet (the client is not reading) for this long drop the client: the
   * stream fails and its `signal` aborts. On Pier, `serve`'s own `writeTimeoutMs` usually acts first.
   * Default 30 s, as serve's.
   */
  writeTimeoutMs?: number;
  /** Bytes queued past which `send()` waits until the server takes them (backpressure). Default 64 KiB. */
  highWaterMark?: number;
  /**
   * Bytes queued past which the client is dropped: a producer that does not await `send()` cannot grow the
   * queue beyond this. Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /** More response headers (they cannot replace `content-type`). */
  headers?: HeadersInit;
  /** Told when the handler throws (the stream then ends). Default: `console.error`. */
  onError?: (error: unknown) => void;
}

/**
 * The defaults of {@link SseOptions}, each with its reason.
 *
 * @example
 * ```ts
 * import { SSE_DEFAULTS } from "./sse.ts";
 * console.log(SSE_DEFAULTS.heartbeatMs); // 15000
 * ```
 */
export const SSE_DEFAULTS: Readonly<{
  heartbeatMs: number;
  writeTimeoutMs: number;
  highWaterMark: number;
  maxBufferedBytes: number;
}> = Object.freeze({
  /** A quarter of nginx's default proxy_read_timeout (60 s), and below the 30 s idle cut of many proxies. */
  heartbeatMs: 15_000,
  /** serve's writeTimeoutMs: 30 s of a client not reading is not a slow network. */
  writeTimeoutMs: 30_000,
  /** Many events' worth, so a steady producer never waits on a client that keeps up. */
  highWaterMark: 64 * 1024,
  /** Sixteen high-water marks: room for bursts from a producer that does not await, then a drop. */
  maxBufferedBytes: 1024 * 1024,
});

/**
 * The stream an {@link sse} handler writes to. Its methods never reject: once the stream has ended they
 * answer `false`, so a producer that calls them without `await` cannot crash the process.
 *
 * @example
 * ```ts
 * import { type EventStream, sse } from "./sse.ts";
 * async function clock(stream: EventStream): Promise<void> {
 *   while (await stream.send({ data: new Date().toISOString() })) await stream.sleep(1000);
 * }
 * const response = sse(new Request("http://localhost/clock"), clock);
 * await response.body?.cancel();
 * ```
 */
export interface EventStream {
  /**
   * The `Last-Event-ID` the client sent (the id of the last event it received, when it reconnects), or
   * null. It is client input: check it before use.
   */
  readonly lastEventId: string | null;
  /** True once the stream has ended: the handler returned, `close()`, the client left or was dropped. */
  readonly closed: boolean;
  /** Aborts when the stream ends, for the handler's own waits (a subscription, a fetch). */
  readonly signal: AbortSignal;
  /** Resolves when the stream ends: `return stream.finished` keeps it open until then. */
  readonly finished: Promise<void>;
  /** Bytes queued that the server has not taken yet. */
  readonly bufferedAmount: number;
  /**
   * Queue a message (see {@link formatEvent}; its checks throw synchronously).
   *
   * @returns true once the message is queued and the queue is under the high-water mark (at once,
   *   unless the client is not keeping up); false when the stream has ended, or this message dropped it.
   */
  send(message: ServerSentEvent): Promise<boolean>;
  /**
   * Queue a comment, which the client ignores.
   *
   * @returns As {@link EventStream.send}.
   */
  comment(text: string): Promise<boolean>;
  /**
   * Wait `ms`, or less if the stream ends first.
   *
   * @returns true after the full wait, false when the stream ended.
   */
  sleep(ms: number): Promise<boolean>;
  /** End the stream after the messages queued so far. */
  close(): void;
}

const encoder = new TextEncoder();
/** The heartbeat: one comment line and the blank line that closes it. */
const HEARTBEAT = encoder.encode(": keep-alive\n\n");
const TRUE = Promise.resolve(true);
const FALSE = Promise.resolve(false);

/** Why a client was dropped; the response body fails with it. */
class ClientDropped extends Error {
  constructor(reason: string) {
    super(`event stream client dropped: ${reason}`);
    this.name = "ClientDropped";
  }
}

/** An event stream's queue and timers: {@link EventStream}, with the ReadableStream the Response sends. */
class Stream implements EventStream {
  readonly lastEventId: string | null;
  readonly finished: Promise<void>;
  readonly body: ReadableStream<Uint8Array>;
  readonly #abort = new AbortController();
  readonly #options: Required<Pick<SseOptions, keyof typeof SSE_DEFAULTS>>;
  #resolveFinished!: () => void;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  /** Bytes sent by the handler and not yet taken by the server. */
  #queue: Uint8Array[] = [];
  #queued = 0;
  /** The server asked for bytes and none were queued: its pull, waiting for the next message. */
  #pulling: (() => void) | null = null;
  /** Sends waiting for the queue to go under the high-water mark. */
  #waiters: ((queued: boolean) => void)[] = [];
  #closed = false;
  /** When bytes were last handed to the queue or the server, for the heartbeat (ms, performance.now). */
  #lastWrite = performance.now();
  /** Since when queued bytes wait for the server to take them (0: none wait), for the write timeout. */
  #waitingSince = 0;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(request: Request, options: SseOptions) {
    this.#options = {
      heartbeatMs: options.heartbeatMs ?? SSE_DEFAULTS.heartbeatMs,
      writeTimeoutMs: options.writeTimeoutMs ?? SSE_DEFAULTS.writeTimeoutMs,
      highWaterMark: options.highWaterMark ?? SSE_DEFAULTS.highWaterMark,
      maxBufferedBytes: options.maxBufferedBytes ?? SSE_DEFAULTS.maxBufferedBytes,
    };
    // Browsers send no Last-Event-ID while it is empty (WHATWG HTML §9.2.4): "" is the same as none.
    this.lastEventId = request.headers.get("last-event-id") || null;
    this.finished = new Promise((r) => this.#resolveFinished = r);
    // Our own queue, not the stream's: highWaterMark 0 means the server pulls only when it is ready to
    // write (Pier pulls after the previous chunk is written), so the queue here is all there is to bound.
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pull(),
      // The server cancels the body when the client leaves (Pier and Deno.serve alike). request.signal is
      // not watched: Deno.serve also aborts it when a response completes, and warns about listeners.
      cancel: () => this.#end(null),
    }, { highWaterMark: 0 });
    this.#armHeartbeat(this.#options.heartbeatMs);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get bufferedAmount(): number {
    return this.#queued;
  }

  send(message: ServerSentEvent): Promise<boolean> {
    const text = formatEvent(message);
    if (this.#closed) return FALSE;
    return text === "" ? TRUE : this.#write(encoder.encode(text));
  }

  comment(text: string): Promise<boolean> {
    return this.send({ comment: text });
  }

  sleep(ms: number): Promise<boolean> {
    if (this.#closed) return FALSE;
    return new Promise((resolve) => {
      const signal = this.#abort.signal;
      const done = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", done);
        resolve(true);
      }, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  close(): void {
    if (this.#closed) return;
    // What is queued still goes out: it moves into the body stream, which the server reads to its end.
    if (this.#queued > 0) this.#controller.enqueue(concatBytes(this.#queue));
    this.#controller.close();
    this.#end(null);
  }

  /** Queue `bytes` for the server; the promise answers when the queue is under the high-water mark. */
  #write(bytes: Uint8Array): Promise<boolean> {
    this.#lastWrite = performance.now();
    const pulling = this.#pulling;
    if (pulling !== null) {
      // The server is waiting for bytes: they go straight to it, and out in its next write.
      this.#pulling = null;
      this.#controller.enqueue(bytes);
      pulling();
      return TRUE;
    }
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    if (this.#queued > this.#options.maxBufferedBytes) {
      this.#drop(`more than ${this.#options.maxBufferedBytes} bytes queued`);
      return FALSE;
    }
    if (this.#waitingSince === 0) {
      this.#waitingSince = this.#lastWrite;
      if (this.#stallTimer === undefined) this.#armStall(this.#options.writeTimeoutMs);
    }
    if (this.#queued <= this.#options.highWaterMark) return TRUE;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The server is ready to write: hand it everything queued as one chunk, or wait for the next message. */
  #pull(): Promise<void> | void {
    if (this.#closed) return;
    if (this.#queued === 0) return new Promise((resolve) => this.#pulling = resolve);
    const chunk = concatBytes(this.#queue);
    this.#queue = [];
    this.#queued = 0;
    this.#waitingSince = 0;
    this.#controller.enqueue(chunk);
    this.#release(true);
  }

  #release(queued: boolean): void {
    if (this.#waiters.length === 0) return;
    for (const resolve of this.#waiters.splice(0)) resolve(queued);
  }

  /** One timer for the heartbeat, set again for what is left when something was sent meanwhile. */
  #armHeartbeat(ms: number): void {
    if (this.#options.heartbeatMs <= 0 || this.#closed) return;
    this.#heartbeatTimer = setTimeout(() => {
      const idle = performance.now() - this.#lastWrite;
      const every = this.#options.heartbeatMs;
      if (idle < every) return this.#armHeartbeat(every - idle);
      // Bytes still queued are traffic enough: the client is behind, not idle.
      if (this.#queued === 0) this.#write(HEARTBEAT);
      this.#armHeartbeat(every);
    }, ms);
  }

  /** One timer for the write timeout, set when bytes start waiting and again for what is left. */
  #armStall(ms: number): void {
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = undefined;
      if (this.#closed || this.#waitingSince === 0) return;
      const waited = performance.now() - this.#waitingSince;
      const limit = this.#options.writeTimeoutMs;
      if (waited >= limit) this.#drop(`nothing taken for ${limit} ms`);
      else this.#armStall(limit - waited);
    }, ms);
  }

  /** The client is not keeping up: the body fails, so the server closes the connection. */
  #drop(reason: string): void {
    if (this.#closed) return;
    const error = new ClientDropped(reason);
    this.#controller.error(error);
    this.#end(error);
  }

  /** The stream has ended, for one of the reasons {@link EventStream.closed} names. */
  #end(error: ClientDropped | null): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#stallTimer);
    this.#queue = [];
    this.#queued = 0;
    this.#pulling?.();
    this.#pulling = null;
    this.#release(false);
    this.#abort.abort(error ?? undefined);
    this.#resolveFinished();
  }
}

/**
 * Answer a request with Server-Sent Events: `handler` writes messages to the stream, which stays open until
 * the handler's promise settles (return `stream.finished` to keep it open for a subscription), `close()`,
 * or the client leaves. A thrown error goes to `onError` and ends the stream.
 *
 * What it takes care of:
 * - the format: `data` split per line, `event` and `id` checked for line breaks ({@link formatEvent});
 * - a heartbeat comment after `heartbeatMs` of silence, for proxies that close idle connections;
 * - `Last-Event-ID`, as `stream.lastEventId`;
 * - flushing: each message goes to the server as soon as it can write, and `Cache-Control: no-store`,
 *   `X-Accel-Buffering: no` keep caches and nginx from holding it (no compression applies to
 *   `text/event-stream`);
 * - memory: `send()` waits while the client is not reading, and a client that takes nothing for
 *   `writeTimeoutMs`, or falls `maxBufferedBytes` behind, is dropped.
 *
 * @param request The request, for its `Last-Event-ID`.
 * @param handler Writes the messages.
 * @param options Heartbeat, timeout, queue limits, headers, error hook.
 * @returns The `text/event-stream` response to return from the route.
 *
 * @example
 * ```ts
 * import { sse } from "./sse.ts";
 * const handler = (request: Request) =>
 *   sse(request, async (stream) => {
 *     let n = Number(stream.lastEventId ?? 0);
 *     while (await stream.send({ event: "count", id: ++n, data: String(n) })) {
 *       await stream.sleep(1000);
 *     }
 *   });
 * const response = handler(new Request("http://localhost/count"));
 * await response.body?.cancel();
 * ```
 */
export function sse(
  request: Request,
  handler: (stream: EventStream) => unknown,
  options: SseOptions = {},
): Response {
  const stream = new Stream(request, options);
  const onError = options.onError ?? ((e: unknown) => console.error("pier: event stream handler failed:", e));
  (async () => await handler(stream))().then(
    () => stream.close(),
    (error) => {
      stream.close();
      try {
        onError(error);
      } catch (e) {
        console.error("pier: event stream onError failed:", e);
      }
    },
  );
  const headers = new Headers(options.headers);
  headers.set("content-type", "text/event-stream");
  // A proxy or browser cache must neither store nor hold back the stream; nginx reads X-Accel-Buffering.
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
  if (!headers.has("x-accel-buffering")) headers.set("x-accel-buffering", "no");
  return new Response(stream.body, { status: 200, headers });
}
