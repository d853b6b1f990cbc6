// The post limit's rule, without a database: the flag's syntax, the sliding window, Retry-After, and a log
// that forgets what left the window. The site's tests check it over sockets, on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { DEFAULT_RATE_LIMIT, parseRateLimit, PostLimiter, type PostLog } from "../../app/rate_limit.ts";

Deno.test("parseRateLimit() reads N/WINDOW and off, and refuses anything else", () => {
  assert.deepEqual(parseRateLimit("20/10m"), DEFAULT_RATE_LIMIT);
  assert.deepEqual(parseRateLimit("5/30s"), { limit: 5, windowMs: 30_000 });
  assert.deepEqual(parseRateLimit("100/h"), { limit: 100, windowMs: 3_600_000 });
  assert.equal(parseRateLimit("off"), null);
  for (
    const bad of ["20", "20/10", "20/10x", "0/10m", "20/0s", "20/8d", "-1/1m", "1.5/1m", "", "OFF", " 20/10m"]
  ) {
    assert.throws(() => parseRateLimit(bad), TypeError, bad);
  }
});

/** A post log in memory, as the stores keep it. */
function memoryLog(): PostLog & { rows: { addr: string; at: number }[] } {
  const rows: { addr: string; at: number }[] = [];
  return {
    rows,
    postsSince(addr, since) {
      const mine = rows.filter((r) => r.addr === addr && r.at >= since).map((r) => r.at);
      return Promise.resolve({ count: mine.length, oldest: mine.length ? Math.min(...mine) : null });
    },
    recordPost(addr, at, forgetBefore) {
      rows.push({ addr, at });
      for (let i = rows.length - 1; i >= 0; i--) if (rows[i].at < forgetBefore) rows.splice(i, 1);
      return Promise.resolve();
    },
  };
}

Deno.test("PostLimiter allows N posts per client in a sliding window, then says how long to wait", async () => {
  let now = 1_000_000;
  const log = memoryLog();
  const limiter = new PostLimiter(log, { limit: 3, windowMs: 60_000 }, () => now);
  for (let i = 0; i < 3; i++) {
    assert.equal(await limiter.check("a"), null);
    await limiter.record("a");
    now += 10_000;
  }
  // Three posts at 0 s, 10 s and 20 s; at 30 s the first leaves the window at 60 s: wait 30 s.
  assert.equal(await limiter.check("a"), 30);
  assert.equal(await limiter.check("b"), null, "another client has its own count");
  now = 1_000_000 + 60_000;
  assert.equal(await limiter.check("a"), null, "the oldest post left the window");
  await limiter.record("a");
  assert.deepEqual(log.rows.map((r) => r.at - 1_000_000), [10_000, 20_000, 60_000], "older posts forgotten");
});
