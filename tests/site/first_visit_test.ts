// The first-visit cookie: issued values check out, and anything else does not (tampered, foreign key, old,
// future, malformed), so a visitor's database row is only ever made for a visit this site saw.
import assert from "node:assert/strict";
import { FirstVisits } from "../../app/first_visit.ts";

const secret = () => crypto.getRandomValues(new Uint8Array(32));

Deno.test("FirstVisits: an issued value checks out, with its id and time", async () => {
  const visits = await FirstVisits.withSecret(secret());
  const now = 1_800_000_000_000;
  const value = await visits.issue(now);
  const visit = await visits.check(value, now + 1000, 60_000);
  assert.ok(visit);
  assert.equal(visit.at, now);
  assert.equal(visit.id, value.split(".")[0]);
  assert.notEqual(
    (await visits.check(await visits.issue(now), now, 60_000))?.id,
    visit.id,
    "a fresh id each",
  );
});

Deno.test("FirstVisits: tampered, foreign, expired, future and malformed values are refused", async () => {
  const visits = await FirstVisits.withSecret(secret());
  const other = await FirstVisits.withSecret(secret());
  const now = 1_800_000_000_000;
  const value = await visits.issue(now);
  const [id, at, mac] = value.split(".");
  const flip = (s: string) => (s[0] === "a" ? "b" : "a") + s.slice(1);
  const refused = [
    `${id}.${Number(at) + 1}.${mac}`, // another time
    `${crypto.randomUUID()}.${at}.${mac}`, // another id
    `${id}.${at}.${flip(mac)}`, // another signature
    `${id}.${at}.${mac.slice(0, -1)}`, // a shorter one
    `${id}.${at}.`,
    `${id}.${at}`,
    "",
    "a.b.c",
    `${id.toUpperCase()}.${at}.${mac}`,
  ];
  for (const v of refused) assert.equal(await visits.check(v, now, 60_000), null, v);
  assert.equal(await other.check(value, now, 60_000), null, "signed with another site's secret");
  assert.equal(await visits.check(value, now + 60_001, 60_000), null, "older than the max age");
  assert.equal(await visits.check(value, now - 1, 60_000), null, "from the future");
  await assert.rejects(FirstVisits.withSecret(new Uint8Array(16)), RangeError);
});
