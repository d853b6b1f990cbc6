// The real site (started as `deno task start` starts it) with OTEL_DENO=true, exporting OTLP/HTTP JSON to the
// test receiver: its routes name their spans, each database call is a child span of its request's (SQLite and
// PostgreSQL), a traceparent carries through to them, nothing a visitor sent is in any span, and a SIGTERM right
// after the last request still delivers everything (the exporters' timers are at a minute).
import assert from "node:assert/strict";
import { type ReceivedSpan, startReceiver } from "../fixtures/otlp_receiver.ts";
import { freshDatabase } from "../fixtures/postgres.ts";
import { CookieJar, formPost, makeFullSiteFixture, startSite } from "../fixtures/site_fixture.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";
/** OTLP's span kinds. */
const SERVER = 2, CLIENT = 3;

async function exercise(database: string[], system: "sqlite" | "postgresql"): Promise<void> {
  const dir = await makeFullSiteFixture();
  await using receiver = await startReceiver();
  const site = await startSite(dir, database, {
    OTEL_DENO: "true",
    OTEL_SERVICE_NAME: "pier-site",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: "60000",
    OTEL_METRIC_EXPORT_INTERVAL: "60000",
  });
  const base = `http://127.0.0.1:${site.port}`;
  const jar = new CookieJar();
  const secret = "a message nobody may see in a trace";
  try {
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${base}${path}`, { headers: { cookie: jar.header(), ...headers } });
      jar.update(response);
      await response.body?.cancel();
      return response.status;
    };
    assert.equal(await get("/"), 200); // a first visit: a signed cookie, no row
    assert.equal(await get("/", { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` }), 200); // counted
    assert.equal(await get("/profile/ada%20lovelace"), 200);
    assert.equal(await get("/healthz"), 200);
    assert.equal(await get("/style.css"), 200); // a static file: no route
    const posted = await fetch(
      formPost(`${base}/contact`, { name: "Ada", email: "ada@example.com", message: secret }, {
        cookie: jar.header(),
        origin: base,
      }),
      { redirect: "manual" },
    );
    await posted.body?.cancel();
    assert.equal(posted.status, 303, site.output());
  } finally {
    const status = await site.stop(); // right after the last answer
    assert.ok(status.success, site.output());
  }
  const servers = () => receiver.spans.filter((s) => s.kind === SERVER);
  assert.ok(
    await receiver.until(() => servers().length >= 6, 5_000),
    `${servers().length} spans\n${site.output()}`,
  );
  const byName = (name: string) => servers().filter((s) => s.name === name);

  // The route names the span; a path outside the router keeps the method.
  assert.equal(byName("GET /").length, 2);
  assert.equal(byName("GET /profile/:name").length, 1);
  assert.equal(byName("GET /profile/:name")[0].attributes["http.route"].value, "/profile/:name");
  assert.equal(byName("GET /healthz").length, 1);
  assert.equal(byName("POST /contact").length, 1);
  const file = servers().find((s) => s.attributes["url.path"].value === "/style.css");
  assert.equal(file?.name, "GET");

  // The second visit continues the caller's trace, and its database calls are its children.
  const visit = byName("GET /").find((s) => s.traceId === TRACE_ID);
  assert.ok(visit, "the traceparent was honoured");
  assert.equal(visit.parentSpanId, PARENT_ID);
  const calls = (parent: ReceivedSpan) => receiver.spans.filter((s) => s.parentSpanId === parent.spanId);
  const visitCalls = calls(visit);
  assert.ok(visitCalls.some((s) => s.name === "countVisit"), visitCalls.map((s) => s.name).join());
  assert.ok(calls(byName("GET /healthz")[0]).some((s) => s.name === "schemaVersion"));
  assert.ok(calls(byName("POST /contact")[0]).some((s) => s.name === "addMessage"));
  const storeSpans = receiver.spans.filter((s) => s.scope === "pier-site");
  for (const span of storeSpans) {
    assert.equal(span.kind, CLIENT, span.name);
    // The operation and the database, nothing else: no argument, no result.
    assert.deepEqual(span.attributes, {
      "db.system.name": { type: "stringValue", value: system },
      "db.operation.name": { type: "stringValue", value: span.name },
    });
    const parent = servers().find((s) => s.spanId === span.parentSpanId);
    assert.ok(parent, `${span.name} is a request's child`);
    assert.equal(span.traceId, parent.traceId);
    assert.ok(
      span.startNs >= parent.startNs && span.endNs <= parent.endNs,
      `${span.name} within its request`,
    );
  }
  // What visitors sent (their session and first-visit cookies, a message) is in no span.
  const everything = JSON.stringify(receiver.spans, (_k, v) => typeof v === "bigint" ? String(v) : v);
  const cookies = jar.header().split("; ").map((pair) => pair.slice(pair.indexOf("=") + 1)).filter((v) =>
    v.length > 8
  );
  assert.ok(cookies.length > 0, "the visitor had cookies");
  for (const value of [...cookies, secret, "ada@example.com"]) {
    assert.ok(!everything.includes(value), `no span carries ${value.slice(0, 12)}...`);
  }
  // The request metrics carry the route too.
  const duration = receiver.lastMetric("pier-site", "http.server.request.duration");
  const routes = new Set(duration?.points.map((p) => p.attributes["http.route"]?.value));
  for (const route of ["/", "/profile/:name", "/healthz", "/contact"]) assert.ok(routes.has(route), route);
}

Deno.test({
  name: "site otel: routes name the spans, SQLite calls are child spans with no values, flushed at SIGTERM",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => exercise([], "sqlite"),
});

Deno.test({
  name: "site otel: PostgreSQL calls are child spans too",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const db = await freshDatabase();
    if (!db) return;
    try {
      await exercise(["--database", db.url], "postgresql");
    } finally {
      await db.drop();
    }
  },
});
