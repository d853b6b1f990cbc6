// The site's post limit: accepted posts (contact and uploads together) per client address, counted in the
// store. Past the limit a post gets 429 with Retry-After and a friendly page, and nothing is stored; behind a
// trusted proxy the client is the forwarded address; on PostgreSQL the limit holds across instances.
import assert from "node:assert/strict";
import { PostgresStore } from "../../app/postgres_store.ts";
import type { RateLimit } from "../../app/rate_limit.ts";
import { createSite, type SiteOptions } from "../../app/site.ts";
import { Store } from "../../app/store.ts";
import type { ServeHandlerInfo } from "../../mod.ts";
import { freshDatabase, postgresAdminUrl } from "../fixtures/postgres.ts";
import { formPost } from "../fixtures/site_fixture.ts";

const BASE = "http://localhost:8000";
const STATIC_DIR = new URL("../../static", import.meta.url).pathname;
const TEMPLATES_DIR = new URL("../../templates", import.meta.url).pathname;
const LIMIT: RateLimit = { limit: 3, windowMs: 10 * 60 * 1000 };

const infoFrom = (hostname: string): ServeHandlerInfo => ({
  remoteAddr: { transport: "tcp", hostname, port: 40000 },
  completed: Promise.resolve(),
});
const contact = (n: number, headers: HeadersInit = {}) =>
  formPost(`${BASE}/contact`, { name: `Sender ${n}`, email: `s${n}@example.com`, message: `Message ${n}` }, {
    "sec-fetch-site": "same-origin",
    ...headers,
  });
function upload(headers: HeadersInit = {}): Request {
  const form = new FormData();
  form.append("description", "a file");
  form.append("file", new File(["hello\n"], "a.txt", { type: "text/plain" }));
  return new Request(`${BASE}/upload`, {
    method: "POST",
    body: form,
    headers: { "sec-fetch-site": "same-origin", ...headers },
  });
}

/** A site over `store`, with a settable clock. */
async function siteOver(store: SiteOptions["store"], options: Partial<SiteOptions> = {}) {
  const uploadDir = await Deno.makeTempDir({ prefix: "pier-rate-" });
  let now = Date.UTC(2026, 11, 1, 12);
  const router = createSite({
    store,
    uploadDir,
    maxUploadBytes: 1024 * 1024,
    staticDir: STATIC_DIR,
    templatesDir: TEMPLATES_DIR,
    accessLog: null,
    rateLimit: LIMIT,
    sessionOptions: { now: () => now },
    ...options,
  });
  return {
    uploadDir,
    fetch: (request: Request, from = "127.0.0.1") => router.fetch(request, infoFrom(from)),
    advance: (ms: number) => void (now += ms),
    files: async () => {
      const names: string[] = [];
      for await (const e of Deno.readDir(uploadDir)) if (e.isFile) names.push(e.name);
      return names;
    },
    cleanup: () => Deno.remove(uploadDir, { recursive: true }),
  };
}

Deno.test("past the limit a post gets 429 with Retry-After and a friendly page, and nothing is stored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier-rate-db-" });
  const store = new Store(`${dir}/site.db`);
  const site = await siteOver(store);
  try {
    // Three accepted posts, contact messages and uploads together.
    assert.equal((await site.fetch(contact(1))).status, 303);
    assert.equal((await site.fetch(upload())).status, 200);
    // An invalid form is not an accepted post: it does not count.
    const invalid = await site.fetch(
      formPost(`${BASE}/contact`, { name: "x" }, { "sec-fetch-site": "same-origin" }),
    );
    assert.equal(invalid.status, 422);
    await invalid.body?.cancel();
    assert.equal((await site.fetch(contact(2))).status, 303);

    site.advance(60_000); // one minute later: the first post leaves the 10-minute window in 9 minutes
    const refused = await site.fetch(contact(3));
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get("retry-after"), "540");
    const page = await refused.text();
    assert.match(page, /Please wait a little/);
    assert.match(page, /try again in about 9 minutes/);
    const refusedUpload = await site.fetch(upload());
    assert.equal(refusedUpload.status, 429);
    await refusedUpload.body?.cancel();
    assert.deepEqual((await store.listMessages()).map((m) => m.name).sort(), ["Sender 1", "Sender 2"]);
    assert.equal((await store.listUploads()).length, 1);
    assert.equal((await site.files()).length, 1, "the refused upload left no file");

    // Another client has its own count; and once the posts leave the window, the client may post again.
    assert.equal((await site.fetch(contact(4), "192.0.2.9")).status, 303);
    site.advance(9 * 60_000);
    for (let i = 5; i < 8; i++) assert.equal((await site.fetch(contact(i))).status, 303, "a new window");
    const again = await site.fetch(contact(8));
    assert.equal(again.status, 429);
    await again.body?.cancel();
  } finally {
    await store.close();
    await site.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("behind a trusted proxy the limit is per forwarded client; --rate-limit off has none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier-rate-db-" });
  const store = new Store(`${dir}/site.db`);
  // The default trusted proxy is loopback: the forwarded address is the client.
  const site = await siteOver(store);
  const unlimited = await siteOver(store, { rateLimit: null });
  try {
    const via = (addr: string) => ({ "x-forwarded-for": addr });
    for (let i = 0; i < 3; i++) assert.equal((await site.fetch(contact(i, via("198.51.100.7")))).status, 303);
    const refused = await site.fetch(contact(9, via("198.51.100.7")));
    assert.equal(refused.status, 429);
    await refused.body?.cancel();
    // The proxy's other clients are not held back by that one.
    assert.equal((await site.fetch(contact(10, via("198.51.100.8")))).status, 303);
    // From a peer that is not a trusted proxy, X-Forwarded-For is ignored: the peer is the client.
    for (let i = 0; i < 3; i++) {
      assert.equal((await site.fetch(contact(20 + i, via("198.51.100.7")), "203.0.113.5")).status, 303);
    }
    const stillPeer = await site.fetch(contact(30, via("198.51.100.99")), "203.0.113.5");
    assert.equal(stillPeer.status, 429);
    await stillPeer.body?.cancel();
    // No limit at all.
    for (let i = 0; i < 8; i++) assert.equal((await unlimited.fetch(contact(40 + i))).status, 303);
  } finally {
    await store.close();
    await site.cleanup();
    await unlimited.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "on PostgreSQL the limit holds across two instances sharing the database",
  ignore: postgresAdminUrl() === null,
  async fn() {
    const db = await freshDatabase();
    if (!db) return;
    const a = new PostgresStore(db.url);
    const b = new PostgresStore(db.url);
    const one = await siteOver(a);
    const two = await siteOver(b);
    try {
      assert.equal((await one.fetch(contact(1))).status, 303);
      assert.equal((await two.fetch(contact(2))).status, 303);
      assert.equal((await one.fetch(upload())).status, 200);
      for (const site of [one, two]) {
        const refused = await site.fetch(contact(3));
        assert.equal(refused.status, 429);
        assert.ok(Number(refused.headers.get("retry-after")) > 0);
        await refused.body?.cancel();
      }
      assert.equal((await a.listMessages()).length, 2, "nothing stored past the limit, on either instance");
    } finally {
      await a.close();
      await b.close();
      await one.cleanup();
      await two.cleanup();
      await db.drop();
    }
  },
});
