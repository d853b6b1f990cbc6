// The shared corpus against the running site: app/main.ts started exactly as `deno task start` starts it,
// in a temp working directory holding static/, secret.txt beside it, and the escape symlink.
import assert from "node:assert/strict";
import { makeSiteFixture, SECRET_MARKER, startProcess, startTaskFlags } from "../fixtures/static_fixture.ts";

const RUNNER = new URL("../../../shared/http-corpus/run_corpus.py", import.meta.url);
const MAIN = new URL("../../app/main.ts", import.meta.url).pathname;

/** The corpus's static GET/HEAD cases in the `valid` category (the others need routes this site lacks). */
const STATIC_VALID = [
  "val-get-root",
  "val-get-index",
  "val-get-css",
  "val-get-missing",
  "val-get-query",
  "val-head-index",
  "val-head-missing",
  "val-http10-no-host",
  "val-header-name-case",
  "val-empty-header-value",
  "val-header-ows",
  "val-duplicate-plain-header",
  "val-underscore-header",
  "val-obs-text-value",
  "val-absolute-form",
  "val-absolute-form-host-ignored",
];

async function runCorpus(port: number, selection: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command("python3", {
    args: [RUNNER.pathname, "--port", String(port), "--jobs", "8", ...selection],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code, out: d.decode(stdout) + d.decode(stderr) };
}

Deno.test("site started as `deno task start` passes corpus path-traversal + static valid", async () => {
  await Deno.stat(RUNNER).catch(() => {
    throw new Error(`corpus runner not found at ${RUNNER.pathname}: shared/ must sit beside the repository`);
  });
  const dir = await makeSiteFixture();
  const server = await startProcess(dir, await startTaskFlags(), MAIN, ["--port", "0"]);
  let status: Deno.CommandStatus;
  try {
    const traversal = await runCorpus(server.port, ["--category", "path-traversal"]);
    assert.equal(
      traversal.code,
      0,
      `path-traversal corpus failed:\n${traversal.out}\n--- server ---\n${server.output()}`,
    );
    assert.match(traversal.out, /^38 passed, 0 failed$/m, traversal.out);

    const valid = await runCorpus(server.port, ["--only", STATIC_VALID.join(",")]);
    assert.equal(
      valid.code,
      0,
      `valid static corpus failed:\n${valid.out}\n--- server ---\n${server.output()}`,
    );
    assert.match(valid.out, new RegExp(`^${STATIC_VALID.length} passed, 0 failed$`, "m"), valid.out);
  } finally {
    status = await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
  const log = server.output();
  // Refusals were logged with the client address; nothing crashed; the secret never reached the log.
  assert.match(log, /\[security\] static: 403 .*client=127\.0\.0\.1 target="\/\.\.%2fsecret\.txt"/);
  assert.match(log, /\[security\] static: 404 resolves outside the root client=127\.0\.0\.1/);
  assert.doesNotMatch(log, /Internal Server Error|Uncaught|error:/i);
  assert.ok(!log.includes(SECRET_MARKER));
  assert.ok(status.success, `server exited with ${status.code}:\n${log}`);
});
