// Several instances behind nginx, sharing PostgreSQL: three real sites (app/main.ts with the start task's
// flags, each in its own working folder as on its own machine), one fresh database, one shared upload folder,
// and the repository's nginx.conf with its several-instances block in front. Checks what the deployment
// promises: any instance serves any session, no message is lost or stored twice under concurrent load, the
// visit count is exact across instances, and killing an instance loses no acknowledged message while nginx
// routes around it. Needs PostgreSQL (skips only when freshDatabase() says so, never in CI) and nginx (a CI
// dependency: never skips).
import assert from "node:assert/strict";
import { freshDatabase } from "../fixtures/postgres.ts";
import { NGINX_CONF, nginxConfFor, runNginx, severalInstances } from "../fixtures/nginx_fixture.ts";
import { freePort, makeCert } from "../fixtures/prod_fixture.ts";
import { startInstances, stopInstance } from "../fixtures/cluster_fixture.ts";
import { makeFullSiteFixture, MESSAGES, messagesTaskFlags, sessionCookie } from "../fixtures/site_fixture.ts";
import type { SiteProcess } from "../fixtures/static_fixture.ts";

/** Three instances: the example of nginx.conf's block, and the fewest where one can die and two remain. */
const INSTANCES = 3;
/** Contact posts in the load phase, and how many are in flight at once (spread by round-robin). */
const POSTS = 300;
const IN_FLIGHT = 30;
/** Home-page visits with one session cookie, all at once across the instances. */
const VISITS = 200;
/** The kill phase: jobs (every fourth a GET), the job that kills an instance first, and the jobs in flight. */
const KILL_JOBS = 240;
const KILL_AT = 80;
const KILL_IN_FLIGHT = 20;
/** After the kill: posts and GETs that must all succeed. */
const AFTER_POSTS = 60;
const AFTER_GETS = 30;
/**
 * Everything (startup included) must finish within this: a hung request fails the test rather than
 * hanging it. The whole run takes a few seconds on a 2-core machine.
 */
const DEADLINE_MS = 50_000;

/** The visit number the home page shows. */
const VISIT_COUNT_RE = /class="visit-count">(\d+)</;

Deno.test("severalInstances() uncomments nginx.conf's block, keeps as many servers as ports, drops the rate limit", async () => {
  const text = await Deno.readTextFile(NGINX_CONF);
  const two = severalInstances(text, [9101, 9102]);
  const upstreams = two.match(/^\s*upstream pier_app \{/gm) ?? [];
  assert.equal(upstreams.length, 1, "exactly one upstream pier_app");
  assert.match(two, /^\s*server 127\.0\.0\.1:9101 max_fails=\d+ fail_timeout=\d+s;$/m);
  assert.match(two, /^\s*server 127\.0\.0\.1:9102 max_fails=\d+ fail_timeout=\d+s;$/m);
  assert.doesNotMatch(two, /^\s*server 127\.0\.0\.1:800\d/m);
  assert.match(two, /^\s*zone pier_app \d+k;$/m);
  assert.match(two, /^\s*keepalive \d+;$/m);
  assert.doesNotMatch(two, /^\s*limit_req zone=/m);
  assert.match(two, /^\s*limit_req_zone /m, "only the per-location limits go");
  // The shipped file stays single-instance, and text without the block fails loudly.
  assert.match(text, /^ {8}server 127\.0\.0\.1:8000;$/m);
  assert.doesNotMatch(text, /^\s*zone pier_app/m);
  assert.throws(() => severalInstances(text.replace("--- BEGIN several instances ---", ""), [1]), /markers/);
  assert.throws(() => severalInstances(text.replace("127.0.0.1:8003", "127.0.0.1:8009"), [1]), /8003/);
  assert.throws(() => severalInstances(text, [1, 2, 3, 4]), RangeError);
});

/** Run `job(i)` for i in [0, count) with at most `inFlight` running at once; results in order. */
async function pool<T>(count: number, inFlight: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  return results;
}

Deno.test({
  name: "cluster: three instances behind nginx share sessions, messages, the visit count and uploads, and " +
    "survive a killed instance without losing an acknowledged message",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const db = await freshDatabase();
    if (db === null) return; // not configured outside CI (freshDatabase said SKIPPED); CI throws instead
    const deadline = AbortSignal.timeout(DEADLINE_MS);
    const dirs: string[] = [];
    const sites: SiteProcess[] = [];
    let nginx: { stop(): Promise<void>; errorLog(): Promise<string> } | null = null;
    let client: Deno.HttpClient | null = null;
    try {
      // Each instance in its own working folder (static/, templates/, data/), as on its own machine; the
      // upload folder is the one thing on disk they share.
      for (let i = 0; i < INSTANCES; i++) dirs.push(await makeFullSiteFixture());
      const shared = await Deno.makeTempDir({ prefix: "pier-cluster-uploads-" });
      const ngDir = await Deno.makeTempDir({ prefix: "pier-cluster-nginx-" });
      dirs.push(shared, ngDir);
      // When the test runs as root, nginx's workers run as www-data (the `user` line) and must reach these.
      for (const d of [dirs[0], ngDir]) await Deno.chmod(d, 0o755);
      const cert = await makeCert(`${ngDir}/certs`);

      sites.push(
        ...await startInstances(dirs.slice(0, INSTANCES), shared, [
          "--database",
          db.url,
          "--uploads",
          shared,
          "--idle-timeout",
          "75s",
          // The test posts hundreds of messages from one client: the post limit is not what it checks.
          "--rate-limit",
          "off",
        ]),
      );
      const ports = sites.map((s) => s.port);

      const httpsPort = freePort();
      const conf = nginxConfFor(await Deno.readTextFile(NGINX_CONF), {
        https: httpsPort,
        http: freePort(),
        app: ports,
        certDir: `${ngDir}/certs`,
        staticDir: `${dirs[0]}/static`,
        prefix: ngDir,
      });
      nginx = await runNginx(ngDir, conf, httpsPort);
      client = Deno.createHttpClient({ caCerts: [cert.pem] });
      const base = `https://localhost:${httpsPort}`;
      const http = client;

      /** GET through nginx (or straight to an instance, as nginx would send it), body read. */
      const get = async (url: string, headers: HeadersInit = {}) => {
        const res = await fetch(url, { client: http, headers, signal: deadline });
        return { res, text: await res.text() };
      };
      /** What nginx adds, for a request sent straight to an instance: the app trusts loopback proxies. */
      const asNginx = { "x-forwarded-proto": "https", "x-forwarded-for": "127.0.0.1" };
      /** A contact post through nginx, as a same-origin browser form; its status, or 0 when fetch failed. */
      const post = async (token: string): Promise<number> => {
        try {
          const res = await fetch(`${base}/contact`, {
            client: http,
            method: "POST",
            redirect: "manual",
            headers: { "content-type": "application/x-www-form-urlencoded", origin: base },
            body: new URLSearchParams({ name: "Load", email: "load@example.com", message: `token ${token}` }),
            signal: deadline,
          });
          await res.body?.cancel();
          return res.status;
        } catch (err) {
          if (deadline.aborted) throw err;
          return 0;
        }
      };
      const postsOn = (site: SiteProcess) =>
        site.output().split("\n").filter((l) => / POST \/contact 303 /.test(l)).length;

      // a. A session made through nginx is the same session on every instance: each one, asked directly
      // with the cookie, counts the next visit and sends no new cookie. The first visit is carried in a
      // signed cookie (no row); the second, on whichever instance, makes the session.
      const first = await get(`${base}/`);
      assert.equal(first.res.status, 200);
      const firstVisit = sessionCookie(first.res) ?? assert.fail("no first-visit cookie through nginx");
      assert.match(firstVisit, /^__Host-pier_first=/);
      assert.equal(VISIT_COUNT_RE.exec(first.text)?.[1], "1");
      const second = await get(`${base}/`, { cookie: firstVisit });
      assert.equal(VISIT_COUNT_RE.exec(second.text)?.[1], "2");
      const cookie = second.res.headers.getSetCookie().find((c) =>
        c.startsWith("__Host-pier_sid=")
      )?.split(";")[0] ??
        assert.fail("no session cookie through nginx on the second visit");
      for (const [i, port] of ports.entries()) {
        const direct = await get(`http://127.0.0.1:${port}/`, { cookie, ...asNginx });
        assert.equal(direct.res.status, 200);
        assert.equal(VISIT_COUNT_RE.exec(direct.text)?.[1], String(i + 3), `instance ${i} saw the session`);
        assert.equal(direct.res.headers.get("set-cookie"), null, `instance ${i} kept the session`);
      }

      // c. Visits at once through nginx with that cookie, spread over the instances: every visit gets its
      // own number (no two read the same count), and the next one shows exactly how many there were.
      const before = 2 + INSTANCES;
      const counts = await pool(VISITS, IN_FLIGHT, async () => {
        const { res, text } = await get(`${base}/`, { cookie });
        assert.equal(res.status, 200);
        return Number(VISIT_COUNT_RE.exec(text)?.[1]);
      });
      const expected = Array.from({ length: VISITS }, (_, i) => before + 1 + i);
      assert.deepEqual([...counts].sort((a, b) => a - b), expected, "each visit counted once");
      const last = await get(`${base}/`, { cookie });
      assert.equal(VISIT_COUNT_RE.exec(last.text)?.[1], String(before + VISITS + 1));

      // b. Contact posts at once through nginx: every one acknowledged (303), every one stored exactly once,
      // and every instance took a share (round-robin).
      const loadTokens = Array.from({ length: POSTS }, (_, i) => `load-${i}`);
      const loadStatuses = await pool(POSTS, IN_FLIGHT, (i) => post(loadTokens[i]));
      assert.deepEqual(loadStatuses.filter((s) => s !== 303), [], "every post acknowledged");
      const stored = await storedTokens(dirs[0], db.url, deadline);
      for (const t of loadTokens) assert.equal(stored.get(t), 1, `${t} stored once`);
      await new Promise((r) => setTimeout(r, 400)); // each access log writes its lines every 250 ms
      for (const [i, site] of sites.entries()) assert.ok(postsOn(site) > 0, `instance ${i} took no post`);

      // e. An upload straight to each instance lands in the one shared folder under a random name.
      const uploaded: string[] = [];
      for (const [i, port] of ports.entries()) {
        const bytes = crypto.getRandomValues(new Uint8Array(4096));
        const form = new FormData();
        form.set("description", `from instance ${i}`);
        form.set("file", new File([bytes], `photo-${i}.jpg`));
        const res = await fetch(`http://127.0.0.1:${port}/upload`, {
          client: http,
          method: "POST",
          headers: asNginx,
          body: form,
          signal: deadline,
        });
        assert.equal(res.status, 200, (await res.text()).slice(0, 300));
        const names = [];
        // Files only: the folder also holds readMultipart's `.incoming/` for bodies still arriving.
        for await (const e of Deno.readDir(shared)) {
          if (e.isFile && !uploaded.includes(e.name)) names.push(e.name);
        }
        assert.equal(names.length, 1, `one new file in the shared folder, got ${names}`);
        assert.match(names[0], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/);
        assert.deepEqual(await Deno.readFile(`${shared}/${names[0]}`), bytes);
        uploaded.push(names[0]);
      }

      // d. SIGKILL one instance in the middle of concurrent posts and GETs. A POST that was in flight to it
      // may fail (nginx's 502: it never retries a POST it already sent); every acknowledged one must be
      // stored, and nothing twice. GETs are retried on the next server, so every one succeeds.
      const victim = sites[1];
      const deadPort = victim.port;
      const jobs = await pool(KILL_JOBS, KILL_IN_FLIGHT, async (i) => {
        if (i === KILL_AT) await victim.kill("SIGKILL");
        if (i % 4 === 3) {
          const { res } = await get(`${base}/profile/during-${i}`);
          return { token: null, status: res.status };
        }
        const token = `kill-${i}`;
        return { token, status: await post(token) };
      });
      // After the kill, nginx routes around the dead instance: every request succeeds.
      const afterPosts = await pool(AFTER_POSTS, IN_FLIGHT, async (i) => {
        const token = `after-${i}`;
        return { token, status: await post(token) };
      });
      const afterGets = await pool(AFTER_GETS, IN_FLIGHT, async (i) => {
        const { res } = await get(`${base}/profile/after-${i}`);
        return res.status;
      });

      const gets = jobs.filter((j) => j.token === null);
      assert.deepEqual(gets.filter((j) => j.status !== 200), [], "every GET during the kill succeeded");
      const posts = jobs.filter((j): j is { token: string; status: number } => j.token !== null);
      const lost = posts.filter((j) => j.status !== 303);
      // A post fails only when nginx had sent it to the victim: in flight at the kill, or on a kept-alive
      // connection to it that nginx had not yet seen close. Either way nginx answers 502 itself.
      assert.ok(lost.every((j) => j.status === 502), JSON.stringify(lost));
      assert.ok(lost.length <= posts.length / 4, `${lost.length} of ${posts.length} posts failed`);
      assert.deepEqual(
        afterPosts.filter((j) => j.status !== 303),
        [],
        "every post after the kill acknowledged",
      );
      assert.deepEqual(afterGets.filter((s) => s !== 200), [], "every GET after the kill succeeded");

      const final = await storedTokens(dirs[0], db.url, deadline);
      for (const j of [...posts, ...afterPosts]) {
        if (j.status === 303) assert.equal(final.get(j.token), 1, `acknowledged ${j.token} stored once`);
      }
      const twice = [...final].filter(([, n]) => n > 1);
      assert.deepEqual(twice, [], "no message stored twice");
      const sent = new Set([...loadTokens, ...posts.map((j) => j.token), ...afterPosts.map((j) => j.token)]);
      assert.deepEqual([...final.keys()].filter((t) => !sent.has(t)), [], "only what was sent is stored");
      // nginx met the dead instance (a refused connection) and went on to the next one.
      assert.match(await nginx.errorLog(), new RegExp(`127\\.0\\.0\\.1:${deadPort}`));
      const survivors = sites.filter((s) => s !== victim);
      console.log(
        `kill phase: ${lost.length} of ${posts.length} posts unacknowledged (statuses ${
          lost.map((j) => j.status)
        }; ` +
          `${
            lost.filter((j) => final.has(j.token)).length
          } of them stored anyway), ${gets.length} GETs all 200; ` +
          `after: ${AFTER_POSTS} posts and ${AFTER_GETS} GETs all succeeded; posts per surviving instance: ` +
          survivors.map(postsOn).join(", "),
      );
    } finally {
      client?.close();
      await nginx?.stop();
      await Promise.all(sites.map(stopInstance));
      for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
      await db.drop();
    }
  },
});

/**
 * How often each `token ...` message is stored, read with `deno task messages --json` (its flags from
 * deno.json) from the shared database, as the site's owner would read it.
 */
async function storedTokens(cwd: string, url: string, signal: AbortSignal): Promise<Map<string, number>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...await messagesTaskFlags(), MESSAGES, "--database", url, "--json"],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal,
  }).output();
  const d = new TextDecoder();
  assert.equal(code, 0, d.decode(stderr));
  const counts = new Map<string, number>();
  for (const line of d.decode(stdout).split("\n")) {
    if (!line) continue;
    const token = /^token (\S+)$/.exec(JSON.parse(line).message)?.[1];
    if (token) counts.set(token, (counts.get(token) ?? 0) + 1);
  }
  return counts;
}
