// Deno's OpenTelemetry as Pier reaches it: whether it is on (decided once, when this module loads), typed
// handles on the runtime's own providers (Deno.telemetry), the active span, and two things the framework
// adds to a trace: a route's name on the request's span, and a span around a call (`withSpan`). It must never
// read the environment (the runtime does: no --allow-env) nor cost more than a boolean when telemetry is off.

/** A span attribute's value, as OpenTelemetry takes it (a bigint is sent as an integer). */
export type AttributeValue = string | number | boolean | bigint;
/** Span or metric attributes. */
export type Attributes = Record<string, AttributeValue | undefined>;

/**
 * The part of an OpenTelemetry span Pier uses: Deno's spans, and those of `npm:@opentelemetry/api`, which
 * Deno's SDK serves, have it all.
 *
 * @example
 * ```ts
 * import type { Span } from "./otel.ts";
 * const name = (span: Span, route: string) => span.updateName(`GET ${route}`);
 * ```
 */
export interface Span {
  /** The span's ids: a trace id (32 hex digits), a span id (16) and the W3C trace flags. */
  spanContext(): { traceId: string; spanId: string; traceFlags: number };
  /** Set one attribute. */
  setAttribute(key: string, value: AttributeValue): unknown;
  /** Set the status: {@link SpanStatus}. */
  setStatus(status: { code: number; message?: string }): unknown;
  /** Rename the span. */
  updateName(name: string): unknown;
  /** False for a span that records nothing (a remote parent, or telemetry off). */
  isRecording(): boolean;
  /** End it now. */
  end(): void;
}

/** An OpenTelemetry context: immutable, a value per key. */
export interface OtelContext {
  /** The value under `key`. */
  getValue(key: symbol): unknown;
  /** A new context with `key` set to `value`. */
  setValue(key: symbol, value: unknown): OtelContext;
}

interface ContextManager {
  active(): OtelContext;
  with<A extends unknown[], R>(context: OtelContext, fn: (...args: A) => R, thisArg?: unknown, ...args: A): R;
}
interface Tracer {
  startSpan(name: string, options?: { kind?: number; attributes?: Attributes }, context?: OtelContext): Span;
}
/** A histogram, as Deno's meter makes it. */
export interface Histogram {
  /** Record one value. */
  record(value: number, attributes?: Attributes): void;
}
/** A counter (or up-down counter), as Deno's meter makes it. */
export interface Counter {
  /** Add `value` (negative for an up-down counter). */
  add(value: number, attributes?: Attributes): void;
}
interface Meter {
  createHistogram(
    name: string,
    options: { description?: string; unit?: string; advice?: { explicitBucketBoundaries?: number[] } },
  ): Histogram;
  createUpDownCounter(name: string, options: { description?: string; unit?: string }): Counter;
}
interface Propagator {
  extract<C>(
    context: OtelContext,
    carrier: C,
    getter: { get(carrier: C, key: string): string | undefined; keys(carrier: C): string[] },
  ): OtelContext;
}
/** What `npm:@opentelemetry/api` finds registered under its global key; Deno fills it when telemetry is on. */
interface Registered {
  trace?: unknown;
  metrics?: unknown;
  context?: unknown;
  propagation?: Propagator;
}

/**
 * The key under which `npm:@opentelemetry/api` keeps the providers registered for the process. Deno
 * registers its own there at startup, and only when its telemetry is on (`OTEL_DENO=true`): the one sign of
 * it that needs no --allow-env.
 */
const API_KEY = Symbol.for("opentelemetry.js.api.1");
/** The context key of the active span, as `npm:@opentelemetry/api` and Deno's SDK both spell it. */
export const SPAN_KEY: symbol = Symbol.for("OpenTelemetry Context Key SPAN");

/**
 * OpenTelemetry's span kinds, in the API's numbering (OTLP's is one more): a request served is a server
 * span, a call to a database a client span.
 *
 * @example
 * ```ts
 * import { SpanKind, withSpan } from "./otel.ts";
 * await withSpan("fetchRates", { kind: SpanKind.Client }, () => Promise.resolve());
 * ```
 */
export const SpanKind = { Internal: 0, Server: 1, Client: 2 } as const;
/**
 * OpenTelemetry's span status codes: a failed span is an error; the others stay unset.
 *
 * @example
 * ```ts
 * import { activeSpan, SpanStatus } from "./otel.ts";
 * activeSpan()?.setStatus({ code: SpanStatus.Error });
 * ```
 */
export const SpanStatus = { Unset: 0, Ok: 1, Error: 2 } as const;

// deno-lint-ignore no-explicit-any
const runtime: { tracerProvider?: any; meterProvider?: any; contextManager?: any } | undefined =
  // deno-lint-ignore no-explicit-any
  (Deno as any).telemetry;
const registered = (globalThis as Record<symbol, Registered | undefined>)[API_KEY];

/**
 * Whether Deno's tracing is on in this process: its tracer provider is the one registered. Decided once;
 * Deno sets it up before any module runs.
 *
 * @example
 * ```ts
 * import { tracingEnabled } from "./otel.ts";
 * console.log(tracingEnabled); // true under OTEL_DENO=true
 * ```
 */
export const tracingEnabled: boolean = runtime !== undefined && registered?.trace !== undefined &&
  registered.trace === runtime.tracerProvider;

/**
 * Whether Deno's metrics are on in this process (its meter provider is the one registered).
 *
 * @example
 * ```ts
 * import { metricsEnabled } from "./otel.ts";
 * console.log(metricsEnabled); // true under OTEL_DENO=true
 * ```
 */
export const metricsEnabled: boolean = runtime !== undefined && registered?.metrics !== undefined &&
  registered.metrics === runtime.meterProvider;

/**
 * Whether Pier instruments anything: Deno's telemetry is on (`OTEL_DENO=true`). When false, nothing of
 * OpenTelemetry runs per request.
 *
 * @example
 * ```ts
 * import { telemetryEnabled } from "./otel.ts";
 * if (telemetryEnabled) console.log("exporting spans and metrics");
 * ```
 */
export const telemetryEnabled: boolean = tracingEnabled || metricsEnabled;

/** The runtime's context manager (the one `npm:@opentelemetry/api` uses too); null with tracing off. */
export const contextManager: ContextManager | null = tracingEnabled ? runtime!.contextManager : null;

/** The registered propagators (`OTEL_PROPAGATORS`, W3C trace context and baggage by default), or null. */
export const propagator: Propagator | null = tracingEnabled ? registered?.propagation ?? null : null;

/**
 * A tracer of Deno's provider, or null when tracing is off.
 *
 * @param name The instrumentation scope: what makes the spans ("pier", "pier-site").
 * @returns The tracer.
 *
 * @example
 * ```ts
 * import { tracer } from "./otel.ts";
 * const spans = tracer("my-app"); // null unless OTEL_DENO=true
 * console.log(spans === null);
 * ```
 */
export function tracer(name: string): Tracer | null {
  return tracingEnabled ? runtime!.tracerProvider.getTracer(name) : null;
}

/**
 * A meter of Deno's provider, or null when metrics are off.
 *
 * @param name The instrumentation scope.
 * @returns The meter.
 *
 * @example
 * ```ts
 * import { meter } from "./otel.ts";
 * console.log(meter("my-app") === null); // true unless OTEL_DENO=true
 * ```
 */
export function meter(name: string): Meter | null {
  return metricsEnabled ? runtime!.meterProvider.getMeter(name) : null;
}

/**
 * The span active where this is called (a request's server span inside its handler), or undefined.
 *
 * @returns The span, or undefined when none is active or tracing is off.
 *
 * @example
 * ```ts
 * import { activeSpan } from "./otel.ts";
 * activeSpan()?.setAttribute("app.user", "ada");
 * ```
 */
export function activeSpan(): Span | undefined {
  if (contextManager === null) return undefined;
  const span = contextManager.active().getValue(SPAN_KEY) as Span | undefined;
  return span !== undefined && span.isRecording() ? span : undefined;
}

/** The route named on each server span, for the request metrics recorded when the span ends. */
const routes = new WeakMap<Span, string>();

/**
 * Name a request's server span after the route that answers it: `http.route` set to the pattern, and the
 * span renamed `METHOD pattern` (OpenTelemetry's HTTP conventions). Pier's request metrics carry the route
 * too; so do Deno.serve's, which copy `http.route` from the span.
 *
 * @param span The request's server span.
 * @param method The request's method.
 * @param pattern The route's pattern, as registered (`/profile/:name`), never the path itself.
 *
 * @example
 * ```ts
 * import { activeSpan, nameRoute } from "./otel.ts";
 * const span = activeSpan();
 * if (span) nameRoute(span, "GET", "/profile/:name");
 * ```
 */
export function nameRoute(span: Span, method: string, pattern: string): void {
  span.setAttribute("http.route", pattern);
  span.updateName(`${method} ${pattern}`);
  routes.set(span, pattern);
}

/**
 * The route named on `span` by {@link nameRoute}, if any.
 *
 * @param span A server span.
 * @returns The pattern, or undefined.
 *
 * @example
 * ```ts
 * import { activeSpan, routeOf } from "./otel.ts";
 * const span = activeSpan();
 * console.log(span && routeOf(span));
 * ```
 */
export function routeOf(span: Span): string | undefined {
  return routes.get(span);
}

/** A span name, its attributes and kind, for {@link withSpan}. */
export interface SpanOptions {
  /** Attributes set at the start. Never put values a visitor typed (what was stored, a session id) here. */
  attributes?: Attributes;
  /** The span's kind. Default {@link SpanKind.Internal}; a call to a database is {@link SpanKind.Client}. */
  kind?: number;
  /** The instrumentation scope. Default "pier". */
  scope?: string;
}

const tracers = new Map<string, Tracer>();

/**
 * Run `call` in a span, a child of the active one (the request's, inside a handler), ended when the call
 * settles: its duration is the call's. A failure sets the span's status to error, with `error.type` the
 * error's `code` or name (never its message, which may quote data). With tracing off, `call` just runs.
 *
 * @param name The span's name (an operation: `countVisit`).
 * @param options Attributes, kind and scope.
 * @param call The work.
 * @returns What `call` returns.
 *
 * @example
 * ```ts
 * import { SpanKind, withSpan } from "./otel.ts";
 * const rows = await withSpan("listMessages", {
 *   kind: SpanKind.Client,
 *   attributes: { "db.system.name": "sqlite", "db.operation.name": "listMessages" },
 * }, () => Promise.resolve([]));
 * console.log(rows.length); // 0
 * ```
 */
export function withSpan<T>(name: string, options: SpanOptions, call: () => Promise<T>): Promise<T> {
  if (contextManager === null) return call();
  const scope = options.scope ?? "pier";
  let spans = tracers.get(scope);
  if (spans === undefined) tracers.set(scope, spans = tracer(scope)!);
  const parent = contextManager.active();
  const span = spans.startSpan(name, {
    kind: options.kind ?? SpanKind.Internal,
    attributes: options.attributes,
  }, parent);
  let result: Promise<T>;
  try {
    result = contextManager.with(parent.setValue(SPAN_KEY, span), call);
  } catch (error) {
    failSpan(span, error);
    span.end();
    throw error;
  }
  return result.then((value) => {
    span.end();
    return value;
  }, (error) => {
    failSpan(span, error);
    span.end();
    throw error;
  });
}

/**
 * Mark a span failed by `error`: `error.type` its code (a StoreError's, an errno's) or name, never its
 * message, and the status an error.
 *
 * @param span The span.
 * @param error What was thrown.
 *
 * @example
 * ```ts
 * import { activeSpan, failSpan } from "./otel.ts";
 * const span = activeSpan();
 * if (span) failSpan(span, new TypeError("bad"));
 * ```
 */
export function failSpan(span: Span, error: unknown): void {
  const code = (error as { code?: unknown } | null)?.code;
  const type = typeof code === "string" && code !== "" ? code : error instanceof Error ? error.name : "Error";
  span.setAttribute("error.type", type);
  span.setStatus({ code: SpanStatus.Error });
}
