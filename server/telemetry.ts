// The server's OpenTelemetry: what Deno.serve's automatic instrumentation makes for each request (a server
// span, four request metrics), made for Pier's. serve() wraps its handler and error handler with these once,
// at start, and only when Deno's telemetry is on: with it off, no request runs a line of this file. It must
// never record a header, a body or a cookie: only the method, the URL, the status, sizes and times.
import { staticBody } from "./_fast.ts";
import {
  type Attributes,
  contextManager,
  type Counter,
  failSpan,
  type Histogram,
  meter,
  type OtelContext,
  propagator,
  routeOf,
  type Span,
  SPAN_KEY,
  SpanKind,
  SpanStatus,
  tracer,
} from "./otel.ts";
import type { Handler, ServeHandlerInfo } from "./types.ts";

/** The instrumentation scope of the server's spans and metrics (Deno.serve's is "deno"). */
const SCOPE = "pier";

/**
 * Bucket bounds of `http.server.request.duration`, in seconds: OpenTelemetry's HTTP conventions, and what
 * Deno.serve's histogram uses.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
];
/** Bucket bounds of the body size histograms, in bytes: Deno.serve's (powers of ten up to 1 GB). */
export const SIZE_BUCKETS: readonly number[] = [0, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/**
 * The HTTP version every metric names. Pier speaks HTTP/1.1 (an HTTP/1.0 request is answered as 1.1 would
 * be, RFC 9110 §6.2), and a handler cannot see the request's version.
 */
const PROTOCOL_VERSION = "1.1";

/** The request's instruments, made once per process (Deno's meter keeps one per name anyway). */
interface Instruments {
  duration: Histogram;
  active: Counter;
  requestSize: Histogram;
  responseSize: Histogram;
}
let instruments: Instruments | null | undefined;
function requestInstruments(): Instruments | null {
  if (instruments !== undefined) return instruments;
  const m = meter(SCOPE);
  instruments = m === null ? null : {
    // Names, units and descriptions as Deno.serve's (and OpenTelemetry's HTTP server conventions).
    duration: m.createHistogram("http.server.request.duration", {
      description: "Duration of HTTP server requests.",
      unit: "s",
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
    }),
    active: m.createUpDownCounter("http.server.active_requests", {
      description: "Number of active HTTP server requests.",
      unit: "{request}",
    }),
    requestSize: m.createHistogram("http.server.request.body.size", {
      description: "Size of HTTP server request bodies.",
      unit: "By",
      advice: { explicitBucketBoundaries: [...SIZE_BUCKETS] },
    }),
    responseSize: m.createHistogram("http.server.response.body.size", {
      description: "Size of HTTP server response bodies.",
      unit: "By",
      advice: { explicitBucketBoundaries: [...SIZE_BUCKETS] },
    }),
  };
  return instruments;
}

/** Reads a header for the propagators (W3C `traceparent`, `tracestate`, `baggage`). */
const HEADER_GETTER = {
  get: (headers: Headers, key: string): string | undefined => headers.get(key) ?? undefined,
  keys: (headers: Headers): string[] => [...headers.keys()],
};

/**
 * The span attributes Deno.serve sets from a request: method and URL (the query without its `?`).
 *
 * @param request The request.
 * @returns The attributes.
 *
 * @example
 * ```ts
 * import { requestAttributes } from "./telemetry.ts";
 * console.log(requestAttributes(new Request("http://localhost/a?b=1"))["url.query"]); // "b=1"
 * ```
 */
export function requestAttributes(request: Request): Attributes {
  const href = request.url;
  const url = new URL(href);
  return {
    "http.request.method": request.method,
    "url.full": href,
    "url.scheme": url.protocol.slice(0, -1),
    "url.path": url.pathname,
    "url.query": url.search.slice(1),
  };
}

/**
 * The length of a string in UTF-8, without encoding it.
 *
 * @param text The string.
 * @returns Its UTF-8 byte length (a lone surrogate counts as U+FFFD's 3 bytes, as TextEncoder writes it).
 *
 * @example
 * ```ts
 * import { utf8Length } from "./telemetry.ts";
 * console.log(utf8Length("café")); // 5
 * ```
 */
export function utf8Length(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // a pair: 2 UTF-16 units, 4 bytes
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

/** Whether an answer with this status to this method carries no body on the wire (RFC 9110 §6.4.1). */
function bodiless(method: string, status: number): boolean {
  return method === "HEAD" || status < 200 || status === 204 || status === 304;
}

/** A status as a metric attribute: an integer, as Deno.serve's (a JS number would be sent as a double). */
const statusValues: bigint[] = [];
function statusValue(status: number): bigint {
  return statusValues[status] ??= BigInt(status);
}

/** One request, from the handler's call until its answer is written. */
class Exchange {
  readonly span: Span | null;
  readonly method: string;
  readonly scheme: string;
  readonly start = performance.now();
  readonly requestSize: number;
  /** The answer's status; 0 until an answer is known. */
  status = 0;
  /** Body bytes of the answer: known at once for a string or bytes, counted as sent for a stream. */
  responseSize = 0;
  /** What the handler threw, if it did. */
  error: unknown = undefined;
  #done = false;

  constructor(request: Request, scheme: string, span: Span | null) {
    this.span = span;
    this.method = request.method;
    this.scheme = scheme;
    // As Deno.serve: the declared length (0 for none, or for a chunked body).
    const declared = Number(request.headers.get("content-length"));
    this.requestSize = Number.isSafeInteger(declared) && declared > 0 ? declared : 0;
  }

  /** The answer is `response`: note its status and size; a streamed body is counted as it is read. */
  answered(response: Response): Response {
    const status = response.status;
    this.status = status;
    if (bodiless(this.method, status)) return response;
    const fixed = staticBody(response);
    if (fixed !== null) {
      const body = fixed.body;
      this.responseSize = body === null ? 0 : typeof body === "string" ? utf8Length(body) : body.length;
      return response;
    }
    if (response.body === null) return response;
    return new Response(this.#counted(response.body), {
      status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }

  #counted(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    const reader = body.getReader();
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const next = await reader.read();
        if (next.done) {
          controller.close();
          return;
        }
        this.responseSize += next.value.byteLength;
        controller.enqueue(next.value);
      },
      cancel: (reason) => reader.cancel(reason),
    }, { highWaterMark: 0 });
  }

  /** The answer is written (or never will be): end the span, record the metrics. */
  finish(meters: Instruments | null): void {
    if (this.#done) return;
    this.#done = true;
    let status = this.status;
    // No answer from the handler or the error handler: the engine's (a body error's 4xx), or none.
    if (status === 0) status = statusOf(this.error);
    const span = this.span;
    const route = span === null ? undefined : routeOf(span);
    if (span !== null) {
      if (status !== 0) {
        span.setAttribute("http.response.status_code", String(status));
        // As Deno.serve: a server span fails on a 5xx only (a 4xx is the client's).
        if (status >= 500) {
          span.setAttribute("error.type", String(status));
          span.setStatus({ code: SpanStatus.Error });
        }
      } else if (this.error !== undefined) failSpan(span, this.error);
      span.end();
    }
    if (meters === null) return;
    const attributes: Attributes = {
      "http.request.method": this.method,
      "url.scheme": this.scheme,
      "network.protocol.version": PROTOCOL_VERSION,
      "http.response.status_code": status === 0 ? undefined : statusValue(status),
      "http.route": route,
    };
    meters.duration.record((performance.now() - this.start) / 1000, attributes);
    meters.requestSize.record(this.requestSize, attributes);
    meters.responseSize.record(this.responseSize, attributes);
    meters.active.add(-1, { "http.request.method": this.method, "url.scheme": this.scheme });
  }
}

/** The status an error carries (a request body's ProtocolError: 400, 408, 413), else 0. */
function statusOf(error: unknown): number {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" && status >= 100 && status <= 599 ? status : 0;
}

/** A server's handler and error handler, instrumented. */
export interface Instrumented {
  /** Runs the handler in a server span's context and records the request. */
  handler: Handler;
  /** The error handler, noting the answer it gives for the request. */
  onError: (error: unknown, request: Request) => Response | Promise<Response>;
}

/**
 * Instrument a server's handler as Deno.serve's requests are: a SERVER span per request, a child of the
 * incoming `traceparent` (through the registered propagators), named by the method (by the route once a
 * Router names it), with the method, URL and status; the handler runs in its context, so its own spans are
 * children. When the answer is written, the span ends and `http.server.request.duration`,
 * `http.server.request.body.size` and `http.server.response.body.size` are recorded;
 * `http.server.active_requests` counts the requests in between. Call it only when `telemetryEnabled`.
 *
 * @param handler The server's handler.
 * @param onError The server's error handler.
 * @param scheme "http" or "https", for the metrics.
 * @returns The instrumented pair.
 *
 * @example
 * ```ts
 * import { instrument } from "./telemetry.ts";
 * import { telemetryEnabled } from "./otel.ts";
 * const hello = () => new Response("hi");
 * const onError = () => new Response("oops", { status: 500 });
 * const { handler } = telemetryEnabled ? instrument(hello, onError, "http") : { handler: hello };
 * console.log(typeof handler);
 * ```
 */
export function instrument(
  handler: Handler,
  onError: (error: unknown, request: Request) => Response | Promise<Response>,
  scheme: "http" | "https",
): Instrumented {
  const spans = tracer(SCOPE);
  const meters = requestInstruments();
  const manager = contextManager;
  /** The requests being handled, so the error handler's answer is counted for its request. */
  const exchanges = new WeakMap<Request, Exchange>();

  const instrumented: Handler = (request: Request, info: ServeHandlerInfo) => {
    let span: Span | null = null;
    let context: OtelContext | null = null;
    if (spans !== null && manager !== null) {
      const active = manager.active();
      const parent = propagator === null
        ? active
        : propagator.extract(active, request.headers, HEADER_GETTER);
      span = spans.startSpan(request.method, {
        kind: SpanKind.Server,
        attributes: requestAttributes(request),
      }, parent);
      context = parent.setValue(SPAN_KEY, span);
    }
    const exchange = new Exchange(request, scheme, span);
    exchanges.set(request, exchange);
    meters?.active.add(1, { "http.request.method": exchange.method, "url.scheme": scheme });
    // Written, or the connection closed: `completed` always settles.
    info.completed.then(() => exchange.finish(meters), () => exchange.finish(meters));
    let result: Response | Promise<Response>;
    try {
      result = context === null
        ? handler(request, info)
        : manager!.with(context, handler, undefined, request, info);
    } catch (error) {
      exchange.error = error;
      throw error;
    }
    if (result instanceof Response) return exchange.answered(result);
    return Promise.resolve(result).then(
      (response) => response instanceof Response ? exchange.answered(response) : response,
      (error) => {
        exchange.error = error;
        throw error;
      },
    );
  };

  const instrumentedOnError = (error: unknown, request: Request): Response | Promise<Response> => {
    const exchange = exchanges.get(request);
    if (exchange === undefined) return onError(error, request);
    if (exchange.error === undefined) exchange.error = error;
    // An error handler that fails, or answers no Response, leaves the engine's plain 500.
    let result: Response | Promise<Response>;
    try {
      result = onError(error, request);
    } catch (again) {
      exchange.status = 500;
      throw again;
    }
    if (result instanceof Response) return exchange.answered(result);
    return Promise.resolve(result).then((response) => {
      if (response instanceof Response) return exchange.answered(response);
      exchange.status = 500;
      return response;
    }, (again) => {
      exchange.status = 500;
      throw again;
    });
  };

  return { handler: instrumented, onError: instrumentedOnError };
}
