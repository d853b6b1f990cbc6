// The site's handler in memory (no socket): pages, the visit count, the contact form and uploads end to end
// through the router and a real database Worker, and what a visitor sees when the database fails.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { PostgresStore } from "../../app/postgres_store.ts";
import { Store } from "../../app/store.ts";
import { CONTACT_LIMITS, validateContact } from "../../app/contact.ts";
import { createSite } from "../../app/site.ts";
import { formatBytes, INCOMING_DIR } from "../../app/upload.ts";
import { freshDatabase } from "../fixtures/postgres.ts";
import { CookieJar, formPost, INFO, memorySite, sessionCookie } from "../fixtures/site_fixture.ts";

const BASE = "http://localhost";

Deno.test("validateContact() accepts a sane message and names each bad field", () => {
  const ok = { name: "Ada", email: "ada@example.com", message: "Hello" };
  const cases: [string, Partial<typeof ok>, string[]][] = [
    ["valid", {}, []],
    ["empty name", { name: "" }, ["name"]],
    ["long name", { name: "x".repeat(CONTACT_LIMITS.name + 1) }, ["name"]],
    ["name at the limit", { name: "x".repeat(CONTACT_LIMITS.name) }, []],
    ["empty email", { email: "" }, ["email"]],
    ["no @", { email: "ada.example.com" }, ["email"]],
    ["no domain dot", { email: "ada@localhost" }, ["email"]],
    ["space in email", { email: "ada lovelace@example.com" }, ["email"]],
    ["two @", { email: "a@b@example.com" }, ["email"]],
    ["long email", { email: `${"a".repeat(60)}@${"b".repeat(200)}.com` }, ["email"]],
    ["subdomain email", { email: "ada@mail.example.co.uk" }, []],
    ["empty message", { message: "" }, ["message"]],
    ["long message", { message: "x".repeat(CONTACT_LIMITS.message + 1) }, ["message"]],
    ["all empty", { name: "", email: "", message: "" }, ["name", "email", "message"]],
  ];
  for (const [label, change, fields] of cases) {
    assert.deepEqual(Object.keys(validateContact({ ...ok, ...change })).sort(), fields.sort(), label);
  }
});

Deno.test("formatBytes() writes sizes in binary units", () => {
  const cases: [number, string][] = [
    [0, "0 bytes"],
    [1023, "1023 bytes"],
    [1024, "1 KB"],
    [1536, "1.5 KB"],
    [25 * 1024 * 1024, "25 MB"],
    [300 * 1024 * 1024, "300 MB"],
    [3 * 1024 ** 3, "3 GB"],
  ];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, String(bytes));
});

Deno.test("the home page counts the visitor's own visits: the first in a signed cookie, then in the database", async () => {
  const site = await memorySite();
  try {
    const jar = new CookieJar();
    const visit = async (method = "GET") => {
      const res = await site.fetch(new Request(`${BASE}/`, { method, headers: { cookie: jar.header() } }));
      jar.update(res);
      return res;
    };
    const first = await visit();
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(first.headers.get("cache-control"), "no-store");
    const html = await first.text();
    assert.match(html, /visit number <strong class="visit-count">1<\/strong>/);
    assert.ok(!html.includes("{{VISIT_COUNT}}"));
    // The first visit is carried by the visitor, signed: no session, no row.
    assert.match(
      first.headers.get("set-cookie") ?? "",
      /^pier_first=[0-9a-f-]{36}\.\d+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    assert.equal(jar.get("pier_sid"), undefined);
    const rows = () => {
      const db = new DatabaseSync(`${site.dir}/site.db`);
      try {
        return db.prepare("SELECT id, visit_count FROM sessions").all() as {
          id: string;
          visit_count: number;
        }[];
      } finally {
        db.close();
      }
    };
    assert.deepEqual(rows(), []);

    // The second visit makes the session, under the id the cookie carried, counting both visits.
    const second = await visit();
    assert.match(await second.text(), /visit-count">2</);
    const sid = jar.get("pier_sid")!;
    assert.ok(sid, "the session cookie is set on the second visit");
    assert.equal(jar.get("pier_first"), undefined, "the first-visit cookie is cleared");
    assert.equal(sid, first.headers.get("set-cookie")!.split("=")[1].split(".")[0]);
    // HEAD shows the same page without counting a visit, and without a body.
    const head = await visit("HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
    assert.match(await (await visit()).text(), /visit-count">3</);
    assert.deepEqual(rows().map((r) => [r.id, Number(r.visit_count)]), [[sid, 3]]);

    // Another visitor starts at 1.
    assert.match(await (await site.fetch(new Request(`${BASE}/`))).text(), /visit-count">1</);
  } finally {
    await site.close();
  }
});

Deno.test("a client that keeps no cookies makes no database row, however many times it comes", async () => {
  const site = await memorySite();
  try {
    for (let i = 0; i < 200; i++) {
      const res = await site.fetch(new Request(`${BASE}/`));
      assert.match(await res.text(), /visit-count">1</);
    }
    const db = new DatabaseSync(`${site.dir}/site.db`);
    const { n } = db.prepare("SELECT count(*) AS n FROM sessions").get() as { n: number };
    db.close();
    assert.equal(Number(n), 0);
    // A forged or foreign first-visit cookie is a first visit again, not a session.
    const forged = `pier_first=${crypto.randomUUID()}.${Date.now()}.AAAA`;
    const res = await site.fetch(new Request(`${BASE}/`, { headers: { cookie: forged } }));
    assert.match(await res.text(), /visit-count">1</);
    assert.match(res.headers.get("set-cookie") ?? "", /^pier_first=/);
  } finally {
    await site.close();
  }
});

Deno.test("a static file is answered before the routes: no session, no database, headers and a log line", async () => {
  const lines: string[] = [];
  let calls = 0;
  const dir = await Deno.makeTempDir({ prefix: "pier-site-static-" });
  const store = new Store(`${dir}/site.db`);
  // Every store call counted: a static file must cost the database nothing.
  const counted = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (name === "sessions") {
        return new Proxy(value, {
          get: (t, n) => typeof t[n] === "function" ? (...a: unknown[]) => (calls++, t[n](...a)) : t[n],
        });
      }
      return typeof value === "function" ? (...a: unknown[]) => (calls++, value.apply(target, a)) : value;
    },
  });
  const site = createSite({
    store: counted,
    uploadDir: dir,
    maxUploadBytes: 1024,
    staticDir: new URL("../../static", import.meta.url).pathname,
    templatesDir: new URL("../../templates", import.meta.url).pathname,
    accessLog: (line) => void lines.push(line),
  });
  try {
    const res = await site.fetch(
      new Request(`${BASE}/style.css?v=2`, { headers: { "x-forwarded-for": "198.51.100.4" } }),
      INFO,
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/css/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("set-cookie"), null);
    const css = await res.text();
    assert.ok(css.length > 0);
    const head = await site.fetch(new Request(`${BASE}/style.css`, { method: "HEAD" }), INFO);
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
    assert.equal(calls, 0, "no store call for a static file");
    assert.equal(lines.length, 2);
    assert.match(
      lines[0],
      /^\S+Z 198\.51\.100\.4 GET \/style\.css 200 \d+ \d+\.\dms$/,
      "the query stays out",
    );
    // The home page is a route, also as /%69ndex.html; a miss falls through to the 404 page.
    assert.match(
      await (await site.fetch(new Request(`${BASE}/%69ndex.html`), INFO)).text(),
      /visit-count">1</,
    );
    const missing = await site.fetch(new Request(`${BASE}/no-such-file.css`), INFO);
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /not found/i);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the profile page greets any single segment, HTML-escaped", async () => {
  const site = await memorySite();
  try {
    const cases: [string, number, string | null][] = [
      ["/profile/alice", 200, "Hello, alice!"],
      ["/profile/J%C3%BCrgen", 200, "Hello, Jürgen!"],
      ["/profile/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 200, "Hello, &lt;script&gt;alert(1)&lt;/script&gt;!"],
      ["/profile/a%22b'c", 200, "Hello, a&quot;b&#39;c!"],
      ["/profile/%zz", 400, null],
      ["/profile/a%00b", 400, null],
      ["/profile/", 404, null],
      ["/profile/alice/extra", 404, null],
    ];
    for (const [path, status, text] of cases) {
      const res = await site.fetch(new Request(`${BASE}${path}`));
      const body = await res.text();
      assert.equal(res.status, status, path);
      if (text) assert.ok(body.includes(text), `${path}: ${body}`);
      assert.ok(!body.includes("<script>"), path);
    }
  } finally {
    await site.close();
  }
});

Deno.test("POST /contact stores a valid message, then answers 303 to the thank-you page", async () => {
  const site = await memorySite();
  try {
    // Two visits make a session (the first is only a signed cookie); the message records its id.
    const jar = new CookieJar();
    for (let i = 0; i < 2; i++) {
      jar.update(await site.fetch(new Request(`${BASE}/`, { headers: { cookie: jar.header() } })));
    }
    const cookie = jar.header();
    const res = await site.fetch(
      formPost(`${BASE}/contact`, { name: " Ada ", email: "ada@example.com", message: "Hi\r\nthere" }, {
        cookie,
        "sec-fetch-site": "same-origin",
      }),
    );
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/contact/thanks");
    const [message] = await site.store.listMessages();
    assert.equal(message.name, "Ada");
    assert.equal(message.email, "ada@example.com");
    assert.equal(message.message, "Hi\r\nthere");
    assert.equal(message.clientAddr, "127.0.0.1");
    assert.equal(message.sessionId, jar.get("pier_sid"));
    const thanks = await site.fetch(new Request(`${BASE}/contact/thanks`));
    assert.equal(thanks.status, 200);
    assert.match(await thanks.text(), /Thank you!/);
  } finally {
    await site.close();
  }
});

Deno.test("invalid contact input re-renders the form with 422, the errors and the values typed (escaped)", async () => {
  const site = await memorySite();
  try {
    const res = await site.fetch(
      formPost(`${BASE}/contact`, { name: "<b>Ada</b>", email: "not-an-email", message: "" }),
    );
    assert.equal(res.status, 422);
    const html = await res.text();
    assert.match(html, /value="&lt;b&gt;Ada&lt;\/b&gt;"/);
    assert.match(html, /value="not-an-email"/);
    assert.match(html, /id="email-error">That does not look like an email address/);
    assert.match(html, /id="message-error">Please write a message/);
    assert.match(html, /aria-invalid="true" aria-describedby="email-error"/);
    assert.ok(!html.includes("<b>Ada</b>"));
    assert.deepEqual(await site.store.listMessages(), []);
  } finally {
    await site.close();
  }
});

Deno.test("POST /contact refuses what is not a form: wrong type 415, too large 413, cross-site 403", async () => {
  const site = await memorySite();
  try {
    const cases: [string, Request, number][] = [
      [
        "text/plain",
        new Request(`${BASE}/contact`, {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: "x",
        }),
        415,
      ],
      [
        "over 64 KiB",
        formPost(`${BASE}/contact`, { name: "a", email: "a@b.cd", message: "x".repeat(70_000) }),
        413,
      ],
      ["cross-site", formPost(`${BASE}/contact`, { name: "a" }, { "sec-fetch-site": "cross-site" }), 403],
      [
        "no body",
        new Request(`${BASE}/contact`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
        }),
        422,
      ],
    ];
    for (const [label, request, status] of cases) {
      const res = await site.fetch(request);
      await res.body?.cancel();
      assert.equal(res.status, status, label);
    }
    assert.deepEqual(await site.store.listMessages(), []);
  } finally {
    await site.close();
  }
});

function uploadRequest(
  content: BlobPart[],
  name: string,
  description = "",
  headers: HeadersInit = {},
): Request {
  const form = new FormData();
  form.append("description", description);
  form.append("file", new File(content, name, { type: "text/plain" }));
  return new Request(`${BASE}/upload`, { method: "POST", body: form, headers });
}

/** The files of an upload folder, with any file still in its staging folder (none once answered). */
async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) if (entry.name !== INCOMING_DIR) names.push(entry.name);
  try {
    for await (const entry of Deno.readDir(`${dir}/${INCOMING_DIR}`)) {
      names.push(`${INCOMING_DIR}/${entry.name}`);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return names;
}

Deno.test("concurrent visits of one visitor are each counted once (the increment is in the database)", async () => {
  // Reading the count from the session and writing it back loses visits that overlap; 40 at once would
  // end far below 41 that way.
  const check = async (fetch: (r: Request) => Promise<Response>, label: string) => {
    const first = await fetch(new Request(`${BASE}/`));
    assert.match(await first.text(), /visit-count">1</, label);
    const cookie = sessionCookie(first)!;
    const pages = await Promise.all(
      Array.from({ length: 40 }, () => fetch(new Request(`${BASE}/`, { headers: { cookie } }))),
    );
    const counts = await Promise.all(
      pages.map(async (p) => Number(/visit-count">(\d+)</.exec(await p.text())![1])),
    );
    // Each visit saw its own count: 2 to 41, every one once.
    assert.deepEqual(counts.sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 2), label);
    const head = await fetch(new Request(`${BASE}/`, { method: "HEAD", headers: { cookie } }));
    assert.equal(head.status, 200, label);
    const last = await fetch(new Request(`${BASE}/`, { headers: { cookie } }));
    assert.match(await last.text(), /visit-count">42</, label);
  };
  const site = await memorySite();
  try {
    await check(site.fetch, "SQLite");
  } finally {
    await site.close();
  }
  const db = await freshDatabase();
  if (!db) return;
  const store = new PostgresStore(db.url);
  const uploadDir = await Deno.makeTempDir({ prefix: "pier-site-pg-" });
  try {
    const router = createSite({
      store,
      uploadDir,
      maxUploadBytes: 1024,
      staticDir: new URL("../../static", import.meta.url).pathname,
      templatesDir: new URL("../../templates", import.meta.url).pathname,
      accessLog: null,
    });
    await check((r) => router.fetch(r, INFO), "PostgreSQL");
  } finally {
    await store.close();
    await db.drop();
    await Deno.remove(uploadDir, { recursive: true });
  }
});

Deno.test("POST /upload stores the file under a random name, records it and lists it on the page", async () => {
  const site = await memorySite();
  try {
    const res = await site.fetch(uploadRequest(["hello upload"], "../../notes <1>.txt", "My notes"));
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<dd>notes &lt;1&gt;.txt<\/dd>/);
    assert.match(html, /<dd>12 bytes<\/dd>/);
    assert.match(html, /<dd>My notes<\/dd>/);
    const sha = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("hello upload"))),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    assert.ok(html.includes(sha));
    const [upload] = await site.store.listUploads();
    assert.equal(upload.originalName, "notes <1>.txt");
    assert.equal(upload.size, 12);
    assert.equal(upload.sha256, sha);
    assert.equal(upload.description, "My notes");
    assert.match(upload.storedName, /^[0-9a-f-]{36}$/);
    assert.deepEqual(await listDir(site.uploadDir), [upload.storedName]);
    assert.equal(await Deno.readTextFile(`${site.uploadDir}/${upload.storedName}`), "hello upload");
  } finally {
    await site.close();
  }
});

Deno.test("POST /upload over the limit answers 413 on the form and leaves no file behind", async () => {
  const site = await memorySite({ maxUploadBytes: 1024 });
  try {
    const res = await site.fetch(uploadRequest([new Uint8Array(4096)], "big.bin", "too big"));
    assert.equal(res.status, 413);
    assert.match(await res.text(), /larger than the 1 KB limit/);
    assert.deepEqual(await listDir(site.uploadDir), []);
    assert.deepEqual(await site.store.listUploads(), []);
    // At the limit exactly is fine.
    const ok = await site.fetch(uploadRequest([new Uint8Array(1024)], "edge.bin"));
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  } finally {
    await site.close();
  }
});

Deno.test("POST /upload without a file, or with a long description, re-renders the form with 422", async () => {
  const site = await memorySite();
  try {
    const form = new FormData();
    form.append("description", "forgot the file");
    form.append("file", new File([], "", { type: "application/octet-stream" }));
    const none = await site.fetch(new Request(`${BASE}/upload`, { method: "POST", body: form }));
    assert.equal(none.status, 422);
    const html = await none.text();
    assert.match(html, /Please choose a file/);
    assert.match(html, /value="forgot the file"/);
    const long = await site.fetch(uploadRequest(["x"], "a.txt", "d".repeat(501)));
    assert.equal(long.status, 422);
    await long.body?.cancel();
    assert.deepEqual(await listDir(site.uploadDir), []);
  } finally {
    await site.close();
  }
});

Deno.test("unknown paths get the 404 page; other methods on a static file get 405 with Allow", async () => {
  const site = await memorySite();
  try {
    const missing = await site.fetch(new Request(`${BASE}/no/such/page`));
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /Page not found[\s\S]*<code>\/no\/such\/page<\/code>/);
    const css = await site.fetch(new Request(`${BASE}/style.css`, { method: "POST" }));
    assert.equal(css.status, 405);
    assert.equal(css.headers.get("allow"), "GET, HEAD");
    await css.body?.cancel();
    const put = await site.fetch(new Request(`${BASE}/contact`, { method: "PUT" }));
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, HEAD, POST, OPTIONS");
    await put.body?.cancel();
    const postMissing = await site.fetch(new Request(`${BASE}/nothing-here`, { method: "POST" }));
    assert.equal(postMissing.status, 404);
    await postMissing.body?.cancel();
    // An encoded name for the home page is the home page, with its count, not the file with the placeholder.
    const encoded = await site.fetch(new Request(`${BASE}/%69ndex.html`));
    assert.equal(encoded.status, 200);
    assert.match(await encoded.text(), /visit-count">1</);
    const favicon = await site.fetch(new Request(`${BASE}/favicon.svg`));
    assert.equal(favicon.status, 200);
    assert.equal(favicon.headers.get("content-type"), "image/svg+xml");
    await favicon.body?.cancel();
  } finally {
    await site.close();
  }
});

/** Run `fn` while another connection holds the site database's exclusive lock, then release it. */
async function whileLocked<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const locker = new DatabaseSync(`${dir}/site.db`);
  locker.exec("PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE");
  try {
    return await fn();
  } finally {
    locker.exec("ROLLBACK");
    locker.close();
  }
}

Deno.test("a locked database: the contact form answers 503 and keeps what was typed; nothing is lost later", async () => {
  const site = await memorySite({}, { busyTimeoutMs: 50 });
  try {
    await site.store.ready();
    const res = await whileLocked(
      site.dir,
      () =>
        site.fetch(
          formPost(`${BASE}/contact`, { name: "Ada", email: "ada@example.com", message: "Still here?" }),
        ),
    );
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "30");
    const html = await res.text();
    assert.match(html, /was not sent yet/);
    assert.match(html, /value="Ada"/);
    assert.match(html, />Still here\?<\/textarea>/);
    // The lock is gone: the same post goes through.
    const again = await site.fetch(
      formPost(`${BASE}/contact`, { name: "Ada", email: "ada@example.com", message: "Still here?" }),
    );
    assert.equal(again.status, 303);
    assert.equal((await site.store.listMessages()).length, 1);
  } finally {
    await site.close();
  }
});

Deno.test("a locked database: an upload answers 503 and its file is not kept", async () => {
  const site = await memorySite({}, { busyTimeoutMs: 50 });
  try {
    await site.store.ready();
    const res = await whileLocked(
      site.dir,
      () => site.fetch(uploadRequest(["data"], "a.txt", "kept description")),
    );
    assert.equal(res.status, 503);
    const html = await res.text();
    assert.match(html, /was not kept/);
    assert.match(html, /value="kept description"/);
    assert.deepEqual(await listDir(site.uploadDir), []);
  } finally {
    await site.close();
  }
});

Deno.test("a corrupt database file: pages that need it answer 503, static files and forms still work", async () => {
  const site = await memorySite({}, { busyTimeoutMs: 50 });
  try {
    await Deno.writeTextFile(`${site.dir}/site.db`, "this is not a database\n".repeat(200));
    const home = await site.fetch(new Request(`${BASE}/`));
    assert.equal(home.status, 503);
    assert.match(await home.text(), /Temporarily unavailable/);
    const css = await site.fetch(new Request(`${BASE}/style.css`));
    assert.equal(css.status, 200);
    await css.body?.cancel();
    const form = await site.fetch(new Request(`${BASE}/contact`));
    assert.equal(form.status, 200);
    await form.body?.cancel();
    const post = await site.fetch(
      formPost(`${BASE}/contact`, { name: "Ada", email: "ada@example.com", message: "Corrupt?" }),
    );
    assert.equal(post.status, 503);
    assert.match(await post.text(), />Corrupt\?<\/textarea>/);
    // Once the file is replaced, the store opens it again without a restart.
    await Deno.remove(`${site.dir}/site.db`);
    const fixed = await site.fetch(new Request(`${BASE}/`));
    assert.equal(fixed.status, 200);
    await fixed.body?.cancel();
  } finally {
    await site.close();
  }
});

Deno.test("HTML pages carry the security headers; pages are not cached by shared caches", async () => {
  const site = await memorySite();
  try {
    for (const path of ["/", "/contact", "/upload", "/profile/x", "/missing"]) {
      const res = await site.fetch(new Request(`${BASE}${path}`));
      await res.body?.cancel();
      assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'self'/, path);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
      assert.equal(res.headers.get("x-frame-options"), "DENY", path);
      assert.equal(res.headers.get("cache-control"), "no-store", path);
    }
  } finally {
    await site.close();
  }
});

Deno.test("a full database: the contact form answers 503, keeps what was typed, and the server stays up", async () => {
  const site = await memorySite({}, { maxDatabaseBytes: 48 * 1024 });
  try {
    const post = () =>
      site.fetch(
        formPost(`${BASE}/contact`, { name: "Ada", email: "ada@example.com", message: "m".repeat(4000) }),
      );
    let res = await post();
    for (let i = 0; i < 50 && res.status === 303; i++) res = await post();
    assert.equal(res.status, 503);
    const html = await res.text();
    assert.match(html, /was not sent yet/);
    assert.match(html, />m{4000}<\/textarea>/);
    const css = await site.fetch(new Request(`${BASE}/style.css`));
    assert.equal(css.status, 200);
    await css.body?.cancel();
  } finally {
    await site.close();
  }
});
