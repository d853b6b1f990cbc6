// Session unit tests beside the module: cookie attributes, fresh sessions for bad ids, rotation, idle and absolute expiry (with an
// injected clock), and both stores (the SQLite one's own tests are sqlite_session_store_test.ts), and
// sessions() without a store in a process with no permission.
import assert from "node:assert/strict";
import { runDenoScript } from "../tests/fixtures/deno_script.ts";
import { createContext } from "./context.ts";
import {
  DEFAULT_ABSOLUTE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  MemorySessionStore,
  type Session,
  type SessionOptions,
  sessions,
  type SessionStore,
} from "./session.ts";
import { SqliteSessionStore } from "./sqlite_session_store.ts";

const MIN = 60 * 1000;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A test harness: one middleware, a settable clock, and a way to send a request through it. */
function harness(options: SessionOptions = {}) {
  let time = Date.UTC(2026, 0, 1);
  const store = (options.store ?? new MemorySessionStore()) as MemorySessionStore;
  const mw = sessions({ store, now: () => time, ...options });
  async function request(
    opts: { cookie?: string; secure?: boolean; handler?: (s: Session) => Response | void } = {},
  ): Promise<{ response: Response; session: Session; setCookie: string | null }> {
    const headers = new Headers();
    if (opts.cookie) headers.set("cookie", opts.cookie);
    const req = new Request(`${opts.secure ? "https" : "http"}://example.test/`, { headers });
    const ctx = createContext(req, {
      remoteAddr: { transport: "tcp", hostname: "203.0.113.1", port: 1 },
      completed: Promise.resolve(),
    });
    let session!: Session;
    const response = await mw(req, () => {
      session = ctx.state.session as Session;
      return Promise.resolve(opts.handler?.(session) ?? new Response("ok"));
    }, ctx);
    return { response, session, setCookie: response.headers.get("set-cookie") };
  }
  return {
    store,
    request,
    advance(ms: number) {
      time += ms;
    },
  };
}

const login = (s: Session) => void s.set("user", "ada");

Deno.test("sessions() sends no cookie and stores nothing for a visitor whose session stays empty", async () => {
  const h = harness();
  const { setCookie, session } = await h.request();
  assert.equal(setCookie, null);
  assert.equal(session.isNew, true);
  assert.equal(h.store.size, 0);
});

Deno.test("sessions() sets pier_sid with HttpOnly, SameSite=Lax, Path=/ and no Secure over plain HTTP", async () => {
  const h = harness();
  const { setCookie, session } = await h.request({ handler: login });
  assert.match(session.id, UUID_RE);
  assert.equal(setCookie, `pier_sid=${session.id}; Path=/; HttpOnly; SameSite=Lax`);
});

Deno.test("sessions() uses __Host-pier_sid with Secure when ctx.secure", async () => {
  const h = harness();
  const { setCookie, session } = await h.request({ secure: true, handler: login });
  assert.equal(setCookie, `__Host-pier_sid=${session.id}; Path=/; Secure; HttpOnly; SameSite=Lax`);
  // The plain name is not honoured over TLS, nor the prefixed one over plain HTTP.
  const plain = await h.request({ secure: true, cookie: `pier_sid=${session.id}` });
  assert.equal(plain.session.get("user"), undefined);
  const back = await h.request({ secure: true, cookie: `__Host-pier_sid=${session.id}` });
  assert.equal(back.session.get("user"), "ada");
});

Deno.test("sessions() trusts X-Forwarded-Proto only from a trusted proxy for Secure", async () => {
  const store = new MemorySessionStore();
  const mw = sessions({ store });
  for (const [peer, expectSecure] of [["127.0.0.1", true], ["203.0.113.7", false]] as const) {
    const req = new Request("http://example.test/", { headers: { "x-forwarded-proto": "https" } });
    const ctx = createContext(req, {
      remoteAddr: { transport: "tcp", hostname: peer, port: 1 },
      completed: Promise.resolve(),
    });
    const res = await mw(req, () => {
      (ctx.state.session as Session).set("k", 1);
      return Promise.resolve(new Response());
    }, ctx);
    const cookie = res.headers.get("set-cookie")!;
    assert.equal(cookie.startsWith("__Host-pier_sid="), expectSecure, cookie);
    assert.equal(cookie.includes("; Secure"), expectSecure, cookie);
  }
});

Deno.test("sessions() loads the session on the next request and sends no cookie when the id is unchanged", async () => {
  const h = harness();
  const first = await h.request({ handler: login });
  const second = await h.request({ cookie: `pier_sid=${first.session.id}` });
  assert.equal(second.session.id, first.session.id);
  assert.equal(second.session.isNew, false);
  assert.equal(second.session.get("user"), "ada");
  assert.equal(second.setCookie, null);
  // A change to an existing session is saved, still without a new cookie.
  const third = await h.request({ cookie: `pier_sid=${first.session.id}`, handler: (s) => s.set("n", 2) });
  assert.equal(third.setCookie, null);
  const fourth = await h.request({ cookie: `pier_sid=${first.session.id}` });
  assert.equal(fourth.session.get("n"), 2);
});

const BAD_IDS: Array<[string, string]> = [
  ["an unknown well-formed id", crypto.randomUUID()],
  ["a tampered id (one character changed)", "00000000-0000-4000-8000-00000000000g"],
  ["garbage", "%00;<script>"],
  ["an empty value", ""],
  ["a SQL-looking value", "' OR 1=1 --"],
];

for (const [label, id] of BAD_IDS) {
  Deno.test(`sessions() starts a fresh session for ${label}`, async () => {
    const h = harness();
    await h.request({ handler: login }); // some other visitor's session exists
    const { session, response } = await h.request({ cookie: `pier_sid=${id}` });
    assert.equal(response.status, 200);
    assert.equal(session.isNew, true);
    assert.notEqual(session.id, id);
    assert.equal(session.get("user"), undefined);
  });
}

Deno.test("sessions() clears a stale cookie and, once used, replaces it with a new id", async () => {
  const h = harness();
  const stale = crypto.randomUUID();
  const { setCookie } = await h.request({ cookie: `pier_sid=${stale}` });
  assert.match(setCookie!, /^pier_sid=; Max-Age=0; /);
  const used = await h.request({ cookie: `pier_sid=${stale}`, handler: login });
  assert.equal(used.setCookie, `pier_sid=${used.session.id}; Path=/; HttpOnly; SameSite=Lax`);
  assert.notEqual(used.session.id, stale);
});

Deno.test("session.regenerate() keeps the data, issues a new id and destroys the old one", async () => {
  const h = harness();
  const first = await h.request({ handler: (s) => s.set("cart", [1, 2]) });
  const oldId = first.session.id;
  const rotated = await h.request({
    cookie: `pier_sid=${oldId}`,
    handler: (s) => {
      s.regenerate();
      s.set("user", "ada");
    },
  });
  const newId = rotated.session.id;
  assert.notEqual(newId, oldId);
  assert.equal(rotated.setCookie, `pier_sid=${newId}; Path=/; HttpOnly; SameSite=Lax`);
  assert.equal(await h.store.get(oldId), undefined);
  const withNew = await h.request({ cookie: `pier_sid=${newId}` });
  assert.deepEqual(withNew.session.get("cart"), [1, 2]);
  assert.equal(withNew.session.get("user"), "ada");
  // The old id (say, fixed by an attacker before sign-in) no longer reaches the session.
  const withOld = await h.request({ cookie: `pier_sid=${oldId}` });
  assert.equal(withOld.session.get("user"), undefined);
  assert.equal(h.store.size, 1);
});

Deno.test("session.regenerate() alone, with no new value, still saves and rotates", async () => {
  const h = harness();
  const first = await h.request({ handler: login });
  const rotated = await h.request({ cookie: `pier_sid=${first.session.id}`, handler: (s) => s.regenerate() });
  assert.notEqual(rotated.session.id, first.session.id);
  assert.ok(rotated.setCookie?.startsWith(`pier_sid=${rotated.session.id};`));
  assert.equal((await h.request({ cookie: `pier_sid=${rotated.session.id}` })).session.get("user"), "ada");
});

Deno.test("session.destroy() removes the session and clears the cookie", async () => {
  const h = harness();
  const first = await h.request({ handler: login });
  const out = await h.request({ cookie: `pier_sid=${first.session.id}`, handler: (s) => s.destroy() });
  assert.match(out.setCookie!, /^pier_sid=; Max-Age=0; /);
  assert.equal(h.store.size, 0);
  assert.equal((await h.request({ cookie: `pier_sid=${first.session.id}` })).session.isNew, true);
});

Deno.test("sessions() expires a session idle for the idle timeout, and not one minute before", async () => {
  const h = harness();
  const first = await h.request({ handler: login });
  const cookie = `pier_sid=${first.session.id}`;
  h.advance(DEFAULT_IDLE_TIMEOUT_MS - MIN);
  assert.equal((await h.request({ cookie })).session.get("user"), "ada");
  // That request refreshed the idle timer (older than the touch interval), so the clock restarts from it.
  h.advance(DEFAULT_IDLE_TIMEOUT_MS - MIN);
  assert.equal((await h.request({ cookie })).session.get("user"), "ada");
  h.advance(DEFAULT_IDLE_TIMEOUT_MS);
  const expired = await h.request({ cookie });
  assert.equal(expired.session.isNew, true);
  assert.equal(expired.session.get("user"), undefined);
  assert.equal(h.store.size, 0);
});

Deno.test("sessions() expires an active session at the absolute timeout", async () => {
  const h = harness();
  const first = await h.request({ handler: login });
  const cookie = `pier_sid=${first.session.id}`;
  let elapsed = 0;
  // A visit every 20 minutes keeps it from going idle...
  while (elapsed + 20 * MIN < DEFAULT_ABSOLUTE_TIMEOUT_MS) {
    h.advance(20 * MIN);
    elapsed += 20 * MIN;
    assert.equal((await h.request({ cookie })).session.get("user"), "ada", `at ${elapsed / MIN} min`);
  }
  // ...but not past the absolute limit.
  h.advance(DEFAULT_ABSOLUTE_TIMEOUT_MS - elapsed);
  assert.equal((await h.request({ cookie })).session.isNew, true);
});

Deno.test("sessions() writes an unchanged session back only once per touch interval", async () => {
  let writes = 0;
  const inner = new MemorySessionStore();
  const counting: SessionStore = {
    get: (id) => inner.get(id),
    set: (id, data, exp) => {
      writes++;
      return inner.set(id, data, exp);
    },
    destroy: (id) => inner.destroy(id),
  };
  const h = harness({ store: counting, touchIntervalMs: MIN });
  const first = await h.request({ handler: login });
  const cookie = `pier_sid=${first.session.id}`;
  assert.equal(writes, 1);
  for (let i = 0; i < 5; i++) {
    h.advance(1000);
    await h.request({ cookie });
  }
  assert.equal(writes, 1);
  h.advance(MIN);
  await h.request({ cookie });
  assert.equal(writes, 2);
});

Deno.test("sessions() applies custom idle and absolute timeouts", async () => {
  const h = harness({ idleTimeoutMs: 5 * MIN, absoluteTimeoutMs: 10 * MIN });
  const first = await h.request({ handler: login });
  const cookie = `pier_sid=${first.session.id}`;
  h.advance(4 * MIN);
  assert.equal((await h.request({ cookie })).session.isNew, false);
  h.advance(4 * MIN);
  assert.equal((await h.request({ cookie })).session.isNew, false);
  h.advance(3 * MIN); // 11 min since creation, 3 since last seen
  assert.equal((await h.request({ cookie })).session.isNew, true);
});

Deno.test("sessions() adds its cookie to a response with immutable headers", async () => {
  const h = harness();
  const { response, session } = await h.request({
    handler: (s) => {
      s.set("flash", "saved");
      return Response.redirect("http://example.test/next", 303);
    },
  });
  assert.equal(response.status, 303);
  assert.equal(response.headers.get("location"), "http://example.test/next");
  assert.ok(response.headers.get("set-cookie")?.startsWith(`pier_sid=${session.id};`));
});

Deno.test("sessions() rejects an invalid cookie name at setup", () => {
  assert.throws(() => sessions({ store: new MemorySessionStore(), cookieName: "bad name" }), TypeError);
});

Deno.test("SqliteSessionStore persists sessions across instances, in WAL mode, and prunes expired ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier_session_" });
  try {
    const path = `${dir}/nested/sessions.db`; // the directory is created when missing
    const a = new SqliteSessionStore(path);
    await a.set("s1", { values: { user: "ada", tags: ["x"] }, createdAt: 1, lastSeenAt: 2 }, 1000);
    await a.set("s2", { values: {}, createdAt: 1, lastSeenAt: 2 }, 5000);
    await a.set("s1", { values: { user: "grace" }, createdAt: 1, lastSeenAt: 3 }, 2000); // replace
    await a.close();
    const b = new SqliteSessionStore(path);
    assert.deepEqual(await b.get("s1"), {
      data: { values: { user: "grace" }, createdAt: 1, lastSeenAt: 3 },
      expiresAt: 2000,
    });
    assert.equal(await b.prune(2000), 1);
    assert.equal(await b.get("s1"), undefined);
    assert.ok(await b.get("s2"));
    await b.destroy("s2");
    assert.equal(await b.get("s2"), undefined);
    await b.close();
    const { DatabaseSync } = await import("node:sqlite");
    const raw = new DatabaseSync(path);
    assert.equal((raw.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode, "wal");
    raw.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sessions() works end to end with the SQLite store", async () => {
  const store = new SqliteSessionStore(":memory:");
  try {
    const h = harness({ store });
    const first = await h.request({ handler: login });
    const again = await h.request({ cookie: `pier_sid=${first.session.id}` });
    assert.equal(again.session.get("user"), "ada");
    h.advance(DEFAULT_IDLE_TIMEOUT_MS);
    assert.equal((await h.request({ cookie: `pier_sid=${first.session.id}` })).session.isNew, true);
  } finally {
    await store.close();
  }
});

Deno.test("sessions() adopts an id the application issued, for a request without a session cookie", async () => {
  const adopted = crypto.randomUUID();
  let offered: string | undefined = adopted;
  const { request, store } = harness({ adoptId: () => offered });
  // Not stored yet: a new session under that id, saved (and its cookie sent) once it holds a value.
  let r = await request({ handler: (s) => void s.set("n", 1) });
  assert.equal(r.session.id, adopted);
  assert.equal(r.setCookie, `pier_sid=${adopted}; Path=/; HttpOnly; SameSite=Lax`);
  assert.deepEqual((await store.get(adopted))?.data.values, { n: 1 });
  // Stored: loaded, not started again; the cookie is sent, since the request carried none.
  r = await request({ handler: (s) => void assert.equal(s.get("n"), 1) });
  assert.equal(r.session.isNew, false);
  assert.equal(r.setCookie, `pier_sid=${adopted}; Path=/; HttpOnly; SameSite=Lax`);
  // A session cookie wins over the adopted id; an id of another shape is not taken.
  const other = await request({ cookie: `pier_sid=${adopted}` });
  assert.equal(other.session.id, adopted);
  offered = "not-a-uuid";
  r = await request();
  assert.notEqual(r.session.id, "not-a-uuid");
  assert.match(r.session.id, UUID_RE);
});

Deno.test({
  name: "sessions() without a store keeps sessions in memory, with no permission and no file",
  permissions: { run: true, read: true },
  async fn() {
    // In a process with no permission at all: a default store that opened a file would fail there.
    const script = `
      import { createContext } from ${JSON.stringify(new URL("./context.ts", import.meta.url).href)};
      import { sessions } from ${JSON.stringify(new URL("./session.ts", import.meta.url).href)};
      const mw = sessions();
      const remoteAddr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
      const info = { remoteAddr, completed: Promise.resolve() };
      async function visit(cookie) {
        const req = new Request("http://localhost/", { headers: cookie ? { cookie } : {} });
        const ctx = createContext(req, info);
        let seen;
        const res = await mw(req, () => {
          seen = ctx.state.session.get("user");
          ctx.state.session.set("user", "ada");
          return Promise.resolve(new Response("ok"));
        }, ctx);
        return { seen, cookie: res.headers.get("set-cookie") };
      }
      const first = await visit();
      const second = await visit(first.cookie.split(";")[0]);
      console.log(JSON.stringify([first.seen ?? null, second.seen]));
    `;
    const { code, stdout, stderr } = await runDenoScript(["--no-prompt", "--quiet", "--no-config"], script);
    assert.equal(code, 0, stderr);
    // The second visit found what the first stored: a working store, in this process's memory.
    assert.deepEqual(JSON.parse(stdout), [null, "ada"]);
  },
});
