// docs/conformance.md must stay what the harness finds: every case of the shared corpus and of the parser
// table sent to Pier, Deno.serve and Node.js, each difference with its reason. It needs real `node` and
// `python3` (.ci/run installs both); without them it fails, naming what to install, rather than skip.
import assert from "node:assert/strict";
import { missingPrograms, runConformance, withoutRunLine } from "../conformance/harness.ts";

const PAGE = new URL("../../docs/conformance.md", import.meta.url);

Deno.test({
  name: "docs/conformance.md is what the harness finds now, and every difference has a reason",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const missing = await missingPrograms();
    assert.deepEqual(
      missing,
      [],
      `the conformance test needs programs that are not installed:\n${missing.join("\n")}`,
    );
    // runConformance() stops its three servers itself, in a finally, whatever happens.
    const run = await runConformance();
    assert.deepEqual(
      run.unexplained,
      [],
      "differences without a reason: add them to tests/conformance/reasons.ts " +
        "(`deno task conformance` lists each with the three answers)",
    );
    if (run.stale.length) {
      console.warn(`reasons for cases that no longer differ (remove them):\n  ${run.stale.join("\n  ")}`);
    }
    const committed = await Deno.readTextFile(PAGE);
    assert.equal(
      withoutRunLine(run.page),
      withoutRunLine(committed),
      "docs/conformance.md is out of date: run `deno task conformance --write docs/conformance.md`",
    );
  },
});
