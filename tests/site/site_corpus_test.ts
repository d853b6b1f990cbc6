// The whole shared HTTP corpus (all 231 cases, --strict) against the real site, started exactly as
// `deno task start` starts it, in a temp working directory with secret.txt beside static/ and the escape
// symlink. The valid, dynamic-routes and methods cases describe the site's routes; the rest the engine.
import assert from "node:assert/strict";
import { SECRET_MARKER } from "../fixtures/static_fixture.ts";
import { makeFullSiteFixture, runMessages, spawnSite } from "../fixtures/site_fixture.ts";

const RUNNER = new URL("../../../shared/http-corpus/run_corpus.py", import.meta.url);
const CASES = 231;

Deno.test("the site passes the whole shared corpus in --strict mode, started as `deno task start`", async () => {
  await Deno.stat(RUNNER).catch(() => {
    throw new Error(`corpus runner not found at ${RUNNER.pathname}: shared/ must sit beside the repository`);
  });
  const dir = await makeFullSiteFixture();
  try {
    // The corpus posts about 70 forms from one address: its README asks for the post limit off.
    const site = await spawnSite(dir, ["--rate-limit", "off"]);
    let result: { code: number; out: string };
    try {
      // --jobs 8 bounds the run to a few seconds; cases that expect keep-alive wait out the runner's timeout.
      const { code, stdout, stderr } = await new Deno.Command("python3", {
        args: [RUNNER.pathname, "--port", String(site.port), "--strict", "--jobs", "8"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      result = { code, out: d.decode(stdout) + d.decode(stderr) };
    } finally {
      const status = await site.kill("SIGTERM");
      assert.ok(status.success, `site exited with ${status.code}:\n${site.output()}`);
    }
    assert.equal(
      result.code,
      0,
      `corpus failed:\n${result.out}\n--- site ---\n${site.output().slice(-5000)}`,
    );
    assert.match(result.out, new RegExp(`^${CASES} passed, 0 failed$`, "m"), result.out);

    const log = site.output();
    assert.ok(!log.includes(SECRET_MARKER), "the secret never reaches the log");
    assert.doesNotMatch(log, /Uncaught|unhandled failure|\[site\] 5\d\d|\[store\]/);
    // The corpus's valid contact posts were stored, and its XSS attempt is stored as text, not run.
    const messages = await runMessages(dir, ["--json"]);
    assert.equal(messages.code, 0, messages.out);
    const names = messages.out.trim().split("\n").map((line) => JSON.parse(line).name);
    assert.ok(names.includes("Alice"), messages.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
