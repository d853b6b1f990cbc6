// OpenTelemetry (issue 17): one app (tests/fixtures/otel_server.ts) served by Pier and by Deno.serve, each in a
// process with OTEL_DENO=true exporting OTLP/HTTP JSON to a receiver (tests/fixtures/otlp_receiver.ts). The
// same requests must give the same spans and metrics, bar what Pier does better; an incoming traceparent is
// the parent and the handler's own spans are children; and with the exporters' timers at a minute, what
// arrives is what the SIGTERM's graceful shutdown flushed, which a SIGKILL'd twin shows by losing all.
import assert from "node:assert/strict";
import { type OtlpReceiver, type ReceivedSpan, startReceiver } from "../fixtures/otlp_receiver.ts";
import { type SiteProcess, startProcess } from "../fixtures/static_fixture.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const SERVER = new URL("../fixtures/otel_server.ts", import.meta.url).pathname;
const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID = "b7ad6b7169203331";
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;

/** Telemetry on, exported as JSON to `endpoint`; nothing sent before a minute passes, unless flushed at exit. */
function otelEnv(endpoint: string, service: string): Record<string, string> {
  return {
    OTEL_DENO: "true",
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_BSP_SCHEDULE_DELAY: "60000",
    OTEL_METRIC_EXPORT_INTERVAL: "60000",
  };
}

function startServer(kind: "pier" | "deno", receiver: OtlpReceiver, service: string): Promise<SiteProcess> {
  // Only the network: the runtime reads the OTEL_* variables itself, and its exporter needs no permission.
  return startProcess(REPO, ["--allow-net=127.0.0.1"], SERVER, [kind], otelEnv(receiver.endpoint, service));
}

/** The requests both servers get: each path once, in this order. */
const REQUESTS: { path: string; init?: RequestInit; status: number; responseBytes: number }[] = [
  { path: "/plain?x=1&y=%20two", status: 200, responseBytes: 11 },
  { path: "/profile/ada", status: 200, responseBytes: 9 },
  { path: "/echo", init: { method: "POST", body: "abcdef" }, status: 200, responseBytes: 5 },
  { path: "/bytes", status: 200, responseBytes: 1234 },
  { path: "/stream", status: 200, responseBytes: 500 },
  { path: "/missing", status: 404, responseBytes: 9 },
  { path: "/fail", status: 503, responseBytes: 6 },
  { path: "/throw", status: 500, responseBytes: 22 }, // Pier's default 500 body ends with a newline
  { path: "/work", init: { headers: { traceparent: TRACEPARENT } }, status: 200, responseBytes: 6 },
  { path: "/plain", init: { method: "HEAD" }, status: 200, responseBytes: 0 },
];

async function send(port: number, kind: "pier" | "deno"): Promise<void> {
  for (const { path, init, status } of REQUESTS) {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, init);
    await response.body?.cancel();
    assert.equal(response.status, status, path);
    // Counting a streamed body as it is sent changes nothing on the wire: a short stream still gets its length.
    if (kind === "pier" && path === "/stream") assert.equal(response.headers.get("content-length"), "500");
  }
}

/** A span with what differs between two runs (ids, times, the port in url.full) taken out. */
function comparable(span: ReceivedSpan) {
  const attributes = { ...span.attributes };
  attributes["url.full"] = {
    ...attributes["url.full"],
    value: attributes["url.full"].value.replace(/:\d+\//, ":PORT/"),
  };
  return {
    name: span.name,
    kind: span.kind,
    attributes,
    status: span.status,
    parented: span.parentSpanId !== "",
  };
}

function serverSpans(receiver: OtlpReceiver, service: string): Map<string, ReceivedSpan> {
  const byRequest = new Map<string, ReceivedSpan>();
  for (const span of receiver.spans) {
    if (span.service !== service || span.kind !== 2) continue;
    const key = `${span.attributes["http.request.method"].value} ${span.attributes["url.path"].value}`;
    assert.ok(!byRequest.has(key), `one server span per request: ${key}`);
    byRequest.set(key, span);
  }
  return byRequest;
}

const METRICS = [
  "http.server.request.duration",
  "http.server.active_requests",
  "http.server.request.body.size",
  "http.server.response.body.size",
];

Deno.test({
  name: "otel: Pier's spans and metrics are Deno.serve's for the same requests, flushed by a SIGTERM",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using receiver = await startReceiver();
    const pier = await startServer("pier", receiver, "pier");
    let deno: SiteProcess | null = null;
    try {
      deno = await startServer("deno", receiver, "deno");
      await send(pier.port, "pier");
      await send(deno.port, "deno");
    } finally {
      // SIGTERM right after the last request: graceful shutdown, then the process ends by itself.
      const statuses = await Promise.all([pier.stop(), deno?.stop()]);
      assert.ok(statuses.every((s) => s === undefined || s.success), pier.output() + (deno?.output() ?? ""));
    }
    const complete = () =>
      serverSpans(receiver, "pier").size === REQUESTS.length &&
      serverSpans(receiver, "deno").size === REQUESTS.length &&
      METRICS.every((m) => receiver.lastMetric("pier", m) && receiver.lastMetric("deno", m));
    assert.ok(await receiver.until(complete, 5_000), "everything flushed at exit");
    assert.deepEqual(receiver.refused, []);

    // Spans: the same names, kinds, attributes (types included) and statuses, request by request.
    const pierSpans = serverSpans(receiver, "pier");
    const denoSpans = serverSpans(receiver, "deno");
    for (const [key, denoSpan] of denoSpans) {
      const pierSpan = pierSpans.get(key);
      assert.ok(pierSpan, `Pier made no span for ${key}`);
      assert.deepEqual(comparable(pierSpan), comparable(denoSpan), key);
      assert.equal(pierSpan.scope, "pier");
      assert.equal(denoSpan.scope, "deno");
    }
    // What they are, spelt out once (Deno's conventions: the status as a string, error for a 5xx only).
    const plain = pierSpans.get("GET /plain")!;
    assert.equal(plain.name, "GET /plain");
    assert.deepEqual(plain.attributes["url.query"], { type: "stringValue", value: "x=1&y=%20two" });
    assert.deepEqual(plain.attributes["http.response.status_code"], { type: "stringValue", value: "200" });
    assert.equal(pierSpans.get("GET /profile/ada")!.name, "GET /profile/:name");
    assert.deepEqual(pierSpans.get("GET /profile/ada")!.attributes["http.route"], {
      type: "stringValue",
      value: "/profile/:name",
    });
    assert.equal(pierSpans.get("GET /missing")!.name, "GET", "no route: the method alone");
    assert.equal(pierSpans.get("GET /missing")!.status.code, 0, "a 404 is not the server's error");
    for (const failed of ["GET /fail", "GET /throw"]) {
      const span = pierSpans.get(failed)!;
      assert.equal(span.status.code, 2, failed);
      assert.equal(span.attributes["error.type"].value, span.attributes["http.response.status_code"].value);
    }

    // Metrics: the same instruments, units, descriptions, buckets and data points (attributes with their
    // types, counts), but for two things Pier does better or cannot do otherwise, checked below.
    for (const name of METRICS) {
      const ours = receiver.lastMetric("pier", name)!;
      const theirs = receiver.lastMetric("deno", name)!;
      assert.deepEqual(
        { unit: ours.unit, description: ours.description, kind: ours.kind, monotonic: ours.isMonotonic },
        {
          unit: theirs.unit,
          description: theirs.description,
          kind: theirs.kind,
          monotonic: theirs.isMonotonic,
        },
        name,
      );
      const points = (m: typeof ours) =>
        m.points.map((p) => ({
          attributes: JSON.stringify(Object.entries(p.attributes).sort()),
          count: p.count,
          bounds: p.explicitBounds,
          // Deno's JS meter records in doubles only: Pier's active-request count is a double sum.
          value: p.value,
          // Deno 2.9.6 records 0 as the size of a response body given as a string or bytes.
          sum: name === "http.server.response.body.size" || name === "http.server.request.duration"
            ? undefined
            : p.sum,
        })).sort((a, b) => a.attributes.localeCompare(b.attributes));
      assert.deepEqual(points(ours), points(theirs), name);
    }
    const duration = receiver.lastMetric("pier", "http.server.request.duration")!;
    const routed = duration.points.find((p) => p.attributes["http.route"]?.value === "/profile/:name");
    assert.equal(routed?.count, 1, "the route is on the metric");
    assert.deepEqual(routed?.attributes["http.response.status_code"], { type: "intValue", value: "200" });
    assert.deepEqual(routed?.attributes["network.protocol.version"], { type: "stringValue", value: "1.1" });
    const active = receiver.lastMetric("pier", "http.server.active_requests")!;
    assert.ok(active.points.every((p) => p.value === 0), "every request ended");
    // The response body sizes are the bytes sent: 1234 for /bytes, 500 for /stream, 0 for HEAD.
    const sizes = receiver.lastMetric("pier", "http.server.response.body.size")!;
    const total = sizes.points.reduce((sum, p) => sum + (p.sum ?? 0), 0);
    assert.equal(total, REQUESTS.reduce((sum, r) => sum + r.responseBytes, 0));
    const requestSizes = receiver.lastMetric("pier", "http.server.request.body.size")!;
    assert.equal(requestSizes.points.reduce((sum, p) => sum + (p.sum ?? 0), 0), 6);
  },
});

Deno.test({
  name: "otel: an incoming traceparent is the server span's parent, and the handler's own spans its children",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using receiver = await startReceiver();
    const pier = await startServer("pier", receiver, "pier");
    try {
      for (const traceparent of [TRACEPARENT, null]) {
        const headers: Record<string, string> = traceparent === null ? {} : { traceparent };
        const response = await fetch(`http://127.0.0.1:${pier.port}/work`, { headers });
        assert.equal(await response.text(), "worked");
      }
    } finally {
      await pier.stop();
    }
    assert.ok(await receiver.until(() => receiver.spans.length >= 4, 5_000), pier.output());
    const servers = receiver.spans.filter((s) => s.kind === 2);
    const works = receiver.spans.filter((s) => s.name === "work");
    assert.equal(servers.length, 2);
    assert.equal(works.length, 2);
    const [continued, fresh] = servers;
    assert.equal(continued.traceId, TRACE_ID);
    assert.equal(continued.parentSpanId, PARENT_ID);
    assert.notEqual(fresh.traceId, TRACE_ID);
    assert.equal(fresh.parentSpanId, "", "no traceparent: a new trace");
    for (const server of servers) {
      assert.equal(server.name, "GET /work");
      const work = works.find((w) => w.traceId === server.traceId);
      assert.ok(work, "the handler's span is in the request's trace");
      assert.equal(work.parentSpanId, server.spanId);
      assert.equal(work.scope, "app");
      assert.ok(work.startNs >= server.startNs && work.endNs <= server.endNs, "inside the request");
    }
  },
});

Deno.test({
  name: "otel: a failed call's span says why by its code only; an engine's 413 is the request span's status",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using receiver = await startReceiver();
    const pier = await startServer("pier", receiver, "pier");
    try {
      const lookup = await fetch(`http://127.0.0.1:${pier.port}/lookup`);
      assert.equal(await lookup.text(), "unavailable");
      // A chunked body over maxBodyBytes (1024 here), read by the handler: the engine answers 413.
      const upload = await fetch(`http://127.0.0.1:${pier.port}/upload`, {
        method: "POST",
        body: new Blob([new Uint8Array(4096)]).stream(),
      });
      await upload.body?.cancel();
      assert.equal(upload.status, 413);
    } finally {
      await pier.stop();
    }
    assert.ok(await receiver.until(() => receiver.spans.length >= 3, 5_000), pier.output());
    const request = receiver.spans.find((s) => s.name === "GET /lookup")!;
    const call = receiver.spans.find((s) => s.name === "lookup")!;
    assert.equal(call.parentSpanId, request.spanId);
    assert.equal(call.kind, 3, "a client span");
    assert.equal(call.status.code, 2);
    assert.deepEqual(call.attributes, {
      "app.table": { type: "stringValue", value: "rates" },
      "error.type": { type: "stringValue", value: "LOCKED" },
    });
    assert.ok(!JSON.stringify(call, (_k, v) => typeof v === "bigint" ? String(v) : v).includes("secret-key"));
    assert.equal(request.attributes["http.response.status_code"].value, "503");
    const upload = receiver.spans.find((s) => s.attributes["url.path"]?.value === "/upload")!;
    assert.equal(upload.attributes["http.response.status_code"].value, "413");
    assert.equal(upload.status.code, 0, "a 4xx is the client's");
  },
});

Deno.test({
  name: "otel: a SIGTERM right after requests loses no span, not even an in-flight one; a SIGKILL loses all",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using receiver = await startReceiver();
    const graceful = await startServer("pier", receiver, "graceful");
    let killed: SiteProcess | null = null;
    try {
      killed = await startServer("pier", receiver, "killed");
      for (const server of [graceful, killed]) {
        await Promise.all(
          Array.from(
            { length: 20 },
            () => fetch(`http://127.0.0.1:${server.port}/plain`).then((r) => r.text()),
          ),
        );
      }
      // A request still being answered when the signal comes: shutdown waits for it, and for its span.
      const slow = fetch(`http://127.0.0.1:${graceful.port}/slow`).then((r) => r.text());
      await new Promise((resolve) => setTimeout(resolve, 100));
      const [status] = await Promise.all([graceful.stop(), slow.then((text) => assert.equal(text, "slow"))]);
      assert.ok(status.success, graceful.output());
    } finally {
      await graceful.stop();
      await killed?.kill("SIGKILL");
    }
    const spans = (service: string) => receiver.spans.filter((s) => s.service === service && s.kind === 2);
    assert.ok(
      await receiver.until(() => spans("graceful").length >= 21, 5_000),
      `got ${spans("graceful").length}`,
    );
    assert.equal(spans("graceful").length, 21);
    assert.equal(spans("graceful").filter((s) => s.name === "GET /slow").length, 1);
    const counted = receiver.lastMetric("graceful", "http.server.request.duration");
    assert.equal(counted?.points.reduce((n, p) => n + (p.count ?? 0), 0), 21, "the metrics were flushed too");
    // The control: without the graceful exit nothing had been sent yet, so the flush above is the shutdown's.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(spans("killed").length, 0);
  },
});
