// The benchmark page's two writers must not erase each other: `--only cluster` replaces only the cluster
// section, and a run of the other scenarios rewrites the page but carries that section over.
import assert from "node:assert/strict";
import { CLUSTER_BEGIN, CLUSTER_END, clusterSection, withClusterSection } from "../bench/_report.ts";

const section = (figure: string) =>
  `${CLUSTER_BEGIN}\n\n## Several instances\n\n${figure}\n\n${CLUSTER_END}\n`;

Deno.test("withClusterSection() appends the cluster section to a page that has none", () => {
  const page = withClusterSection("# Benchmarks\n\nmain table\n", section("3 : 1 = 0.9x"));
  assert.equal(page, `# Benchmarks\n\nmain table\n\n${section("3 : 1 = 0.9x")}`);
  assert.equal(clusterSection(page), section("3 : 1 = 0.9x"));
});

Deno.test("withClusterSection() replaces the section only, leaving the rest of the page as it was", () => {
  const before = `# Benchmarks\n\nmain table\n\n${section("old")}\ntrailing note\n`;
  const after = withClusterSection(before, section("new"));
  assert.equal(after, `# Benchmarks\n\nmain table\n\n${section("new")}\ntrailing note\n`);
});

Deno.test("a rewritten main page keeps the old cluster section (what writeReport does)", () => {
  const old = `# Benchmarks\n\nold table\n\n${section("kept")}`;
  const rewritten = withClusterSection("# Benchmarks\n\nnew table\n", clusterSection(old));
  assert.match(rewritten, /new table/);
  assert.doesNotMatch(rewritten, /old table/);
  assert.equal(clusterSection(rewritten), section("kept"));
  assert.equal(clusterSection("# no section\n"), "");
});
