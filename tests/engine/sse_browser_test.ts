// sse() read by a client nobody here wrote: Chromium's EventSource (Debian's chromium, driven by
// playwright-core), straight from Pier and through the repository's nginx.conf in front of it. Event types,
// multi-line data and ids arrive as sent, each one before the next is made (nothing buffers: nginx's /events/
// location does it without the X-Accel-Buffering header); the browser reconnects with Last-Event-ID and the
// handler resumes after it; closing the page ends the stream on the server. Through nginx also: the heartbeat
// keeps an idle stream past proxy_read_timeout, and a client that stops reading is dropped by the app's write
// timeout. CI installs chromium and nginx: this test never skips.
import assert from "node:assert/strict";
import { launchChromium } from "../fixtures/chromium.ts"; // playwright-core behind its guard
import type { Browser, Page } from "playwright-core";
import { serve } from "../../server/serve.ts";
import { sse } from "../../server/sse.ts";
import { freePort, makeCert } from "../fixtures/prod_fixture.ts";
import { NGINX_CONF, nginxConfFor, runNginx } from "../fixtures/nginx_fixture.ts";

/** Every wait in the browser gives up after this long, so a broken stream fails the test instead of hanging it. */
const STEP_TIMEOUT_MS = 15_000;
/** The handler's pause between events: an event held back by a buffer would arrive after the next is sent. */
const PACE_MS = 400;
/** The reconnection delay the stream asks of the browser (its default is about 3 s). */
const RETRY_MS = 300;
/** The app's write timeout in the stalled-client case. */
const WRITE_TIMEOUT_MS = 1000;
/** The server checks deadlines on a 500 ms tick (serve.ts TICK_MS); the rest is room for a busy machine. */
const TICK_MS = 500;
const SLACK_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the app saw, for the test to compare with what the browser got. */
interface Seen {
  /** The Last-Event-ID of each connection to /events/paced, in order. */
  lastIds: (string | null)[];
  /** When each event id was sent (Date.now(), the clock the browser's Date.now() reads too). */
  sentAt: Map<string, number>;
  /** Streams of /events/paced that ended. */
  ended: number;
  /** Connections to /events/quiet, by heartbeat. */
  quiet: Map<number, number>;
  /** The stalled client's stream: bytes accepted, when last, when it ended. */
  flood: { accepted: number; lastAcceptedAt: number; endedAt: number };
  floodEnded: PromiseWithResolvers<void>;
}

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>events</title></head>` +
  `<body><p>events</p></body></html>`;

/** The app: a page, and the event streams the cases read. */
function eventsApp(seen: Seen): (request: Request) => Response {
  return (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/") {
      return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    if (url.pathname === "/events/paced") {
      // Three events, then the stream ends and the browser reconnects with Last-Event-ID: 3; two more,
      // then it stays open until the browser goes.
      const response = sse(request, async (stream) => {
        seen.lastIds.push(stream.lastEventId);
        const first = stream.lastEventId === null;
        if (first) await stream.send({ retry: RETRY_MS });
        const last = first ? 3 : 5;
        try {
          for (let id = Number(stream.lastEventId ?? 0) + 1; id <= last; id++) {
            seen.sentAt.set(String(id), Date.now());
            await stream.send({ event: "step", id, data: `event ${id}\nsecond line` });
            await stream.comment("not an event");
            if (!(await stream.sleep(PACE_MS))) return;
          }
          if (!first) await stream.finished;
        } finally {
          if (!first) seen.ended++;
        }
      }, { heartbeatMs: 0 });
      // Without the header, only nginx's own configuration keeps it from buffering.
      response.headers.delete("x-accel-buffering");
      return response;
    }
    if (url.pathname === "/events/quiet") {
      const heartbeatMs = Number(url.searchParams.get("heartbeat"));
      seen.quiet.set(heartbeatMs, (seen.quiet.get(heartbeatMs) ?? 0) + 1);
      return sse(request, async (stream) => {
        await stream.send({ retry: RETRY_MS, data: "ready" });
        await stream.finished;
      }, { heartbeatMs });
    }
    if (url.pathname === "/events/flood") {
      const event = { data: "f".repeat(16 * 1024) };
      return sse(request, async (stream) => {
        while (await stream.send(event)) {
          seen.flood.accepted += event.data.length;
          seen.flood.lastAcceptedAt = performance.now();
        }
        seen.flood.endedAt = performance.now();
        seen.floodEnded.resolve();
      });
    }
    return new Response("not found\n", { status: 404 });
  };
}

function newSeen(): Seen {
  return {
    lastIds: [],
    sentAt: new Map(),
    ended: 0,
    quiet: new Map(),
    flood: { accepted: 0, lastAcceptedAt: 0, endedAt: 0 },
    floodEnded: Promise.withResolvers<void>(),
  };
}

/** The browser globals the functions passed to `page.evaluate` use, typed just enough. */
interface Received {
  type: string;
  data: string;
  id: string;
  at: number;
}
interface EventSourceLike {
  addEventListener(
    type: string,
    listener: (e: { type: string; data: string; lastEventId: string }) => void,
  ): void;
  close(): void;
}
interface PageGlobals {
  EventSource: new (url: string) => EventSourceLike;
  received: Received[];
  sources: EventSourceLike[];
}

/** Open an EventSource in the page, recording every event of `types` with its arrival time. */
async function listen(page: Page, url: string, types: string[]): Promise<void> {
  await page.evaluate(({ url, types }) => {
    const w = globalThis as unknown as PageGlobals;
    w.received ??= [];
    w.sources ??= [];
    const source = new w.EventSource(url);
    for (const type of types) {
      source.addEventListener(type, (e) => {
        w.received.push({ type: e.type, data: e.data, id: e.lastEventId, at: Date.now() });
      });
    }
    w.sources.push(source);
  }, { url, types });
}

function received(page: Page): Promise<Received[]> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).received);
}

/**
 * The paced stream, read by EventSource on `base`: five events as sent, each before the next was made, one
 * reconnection with Last-Event-ID, and the stream ended on the server when the page closes.
 */
async function pacedCase(browser: Browser, base: string, seen: Seen, label: string): Promise<void> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const heads: Record<string, string>[] = [];
  page.on("response", (r) => {
    if (r.url().includes("/events/paced")) heads.push(r.headers());
  });
  await page.goto(`${base}/`);
  await listen(page, "/events/paced", ["step", "message"]);
  await page.waitForFunction(() => (globalThis as unknown as PageGlobals).received.length >= 5);
  const events = await received(page);
  assert.deepEqual(
    events.map(({ type, data, id }) => ({ type, data, id })),
    [1, 2, 3, 4, 5].map((id) => ({ type: "step", data: `event ${id}\nsecond line`, id: String(id) })),
    `${label}: the events`,
  );
  assert.deepEqual(seen.lastIds, [null, "3"], `${label}: one reconnection, with Last-Event-ID`);
  // Each event reached the page before the handler made the next one: nothing on the way held it.
  for (const id of [1, 2, 4]) {
    const arrived = events[id - 1].at;
    const nextSent = seen.sentAt.get(String(id + 1))!;
    assert.ok(
      arrived < nextSent,
      `${label}: event ${id} arrived ${arrived - nextSent} ms after the next was sent`,
    );
  }
  for (const head of heads) {
    assert.equal(head["content-type"], "text/event-stream", `${label}: content type`);
    assert.equal(head["content-encoding"], undefined, `${label}: not compressed`);
  }
  const delays = [1, 2, 4].map((id) => events[id - 1].at - seen.sentAt.get(String(id))!);
  console.log(`${label}: each event reached the page ${delays.join(", ")} ms after it was sent`);
  // The page goes: the stream ends on the server.
  await page.close();
  const t0 = performance.now();
  while (seen.ended === 0 && performance.now() - t0 < 5000) await sleep(20);
  assert.equal(seen.ended, 1, `${label}: the stream ended when the page closed`);
  await context.close();
}

Deno.test({
  name: "sse in Chromium: EventSource reads Pier's events as sent, and reconnects with Last-Event-ID",
  // playwright-core keeps its pipe and child-process handles in Node's machinery (see site_browser_test.ts).
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seen = newSeen();
    const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, eventsApp(seen));
    let browser: Browser | null = null;
    try {
      browser = await launchChromium();
      await pacedCase(browser, `http://127.0.0.1:${server.addr.port}`, seen, "direct");
    } finally {
      await browser?.close();
      await server.shutdown();
    }
  },
});

/** The event-stream location of nginx.conf, whose read timeout the heartbeat case shortens. */
const EVENTS_LOCATION = /(location \^~ \/events\/ \{[^}]*?proxy_read_timeout )60s;/;
/** nginx's read timeout in the heartbeat case: longer than the heartbeat, shorter than the idle wait. */
const SHORT_READ_TIMEOUT_S = 2;

Deno.test({
  name:
    "sse through nginx: the /events/ location passes each event at once, Last-Event-ID, the heartbeat, the stalled client",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pier-sse-nginx-" });
    // When the test runs as root, nginx's workers run as www-data (the `user` line) and must reach these.
    await Deno.chmod(dir, 0o755);
    await Deno.mkdir(`${dir}/static`);
    const cert = await makeCert(`${dir}/certs`);
    const seen = newSeen();
    const server = serve(
      { hostname: "127.0.0.1", port: 0, onListen() {}, writeTimeoutMs: WRITE_TIMEOUT_MS },
      eventsApp(seen),
    );
    const httpsPort = freePort();
    let conf = nginxConfFor(await Deno.readTextFile(NGINX_CONF), {
      https: httpsPort,
      http: freePort(),
      app: server.addr.port,
      certDir: `${dir}/certs`,
      staticDir: `${dir}/static`,
      prefix: `${dir}/nginx`,
    });
    // The one change beyond the fixture's table: the event-stream location's read timeout, shortened so the
    // heartbeat case takes seconds, not minutes.
    assert.match(conf, EVENTS_LOCATION, "nginx.conf has the /events/ location with its read timeout");
    conf = conf.replace(EVENTS_LOCATION, `$1${SHORT_READ_TIMEOUT_S}s;`);
    let nginx: Awaited<ReturnType<typeof runNginx>> | null = null;
    let browser: Browser | null = null;
    try {
      nginx = await runNginx(`${dir}/nginx`, conf, httpsPort);
      const base = `https://localhost:${httpsPort}`;
      browser = await launchChromium();
      await pacedCase(browser, base, seen, "through nginx");

      // The heartbeat: a stream idle for more than twice nginx's read timeout stays the one connection with
      // a heartbeat more often than the timeout; without one, nginx cuts it and the browser reconnects.
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      await page.goto(`${base}/`);
      await listen(page, "/events/quiet?heartbeat=500", []);
      await listen(page, "/events/quiet?heartbeat=0", []);
      await sleep(SHORT_READ_TIMEOUT_S * 2500);
      const quiet = new Map(seen.quiet);
      await context.close();
      console.log(`idle streams through nginx: connections by heartbeat ${JSON.stringify([...quiet])}`);
      assert.equal(quiet.get(500), 1, "with a heartbeat, one connection all along");
      assert.ok((quiet.get(0) ?? 0) >= 2, "without one, nginx's read timeout cut the stream");

      // A client that stops reading: nginx stops reading from the app (no buffering), the app's writes
      // stall, and its write timeout drops the stream.
      const conn = await Deno.connectTls({ hostname: "127.0.0.1", port: httpsPort, caCerts: [cert.pem] });
      try {
        await conn.write(new TextEncoder().encode(`GET /events/flood HTTP/1.1\r\nHost: localhost\r\n\r\n`));
        const buf = new Uint8Array(64 * 1024);
        let text = "";
        while (!text.includes("data: fff")) {
          const n = await conn.read(buf);
          if (n === null) throw new Error(`the flood ended early: ${text}`);
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
        // Never read again.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          seen.floodEnded.promise,
          new Promise((_, reject) =>
            timer = setTimeout(() => reject(new Error("the stalled client was not dropped")), 30_000)
          ),
        ]).finally(() => clearTimeout(timer));
      } finally {
        conn.close();
      }
      const { accepted, lastAcceptedAt, endedAt } = seen.flood;
      const mib = accepted / 1024 / 1024;
      const stalledFor = endedAt - lastAcceptedAt;
      console.log(
        `stalled client through nginx: ${mib.toFixed(1)} MiB accepted, dropped ${
          Math.round(stalledFor)
        } ms ` +
          "after the last accepted send",
      );
      assert.ok(mib < 64, `${mib} MiB accepted`);
      assert.ok(stalledFor <= WRITE_TIMEOUT_MS + TICK_MS + SLACK_MS, `dropped ${stalledFor} ms after`);
      assert.doesNotMatch(await nginx.errorLog(), /\[(?:alert|emerg|crit)\]/);
    } finally {
      await browser?.close();
      await nginx?.stop();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
