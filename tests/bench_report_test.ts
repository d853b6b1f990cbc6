// The benchmark page's writers must not erase each other: `--only cluster` and `--only site` replace only
// their own section, and a run of the other scenarios rewrites the page but carries both sections over. The
// page names the machine's CPU model. The site bench finds a returning visitor's cookie however it is made.
import assert from "node:assert/strict";
import { cpuModel } from "../bench/_machine.ts";
import {
  chartSvg,
  CLUSTER_BEGIN,
  CLUSTER_END,
  clusterSection,
  keepSections,
  markdown,
  type Report,
  SITE_BEGIN,
  SITE_END,
  siteSection,
  withClusterSection,
  withSiteSection,
} from "../bench/_report.ts";
import { returningCookie } from "../bench/site.ts";

const section = (figure: string) =>
  `${CLUSTER_BEGIN}\n\n## Several instances\n\n${figure}\n\n${CLUSTER_END}\n`;
const site = (figure: string) => `${SITE_BEGIN}\n\n## The site's home page\n\n${figure}\n\n${SITE_END}\n`;

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

Deno.test("withSiteSection() appends the site section to a page that has none", () => {
  const page = withSiteSection("# Benchmarks\n\nmain table\n", site("1012 req/s"));
  assert.equal(page, `# Benchmarks\n\nmain table\n\n${site("1012 req/s")}`);
  assert.equal(siteSection(page), site("1012 req/s"));
});

Deno.test("withSiteSection() replaces the site section only, leaving the cluster section as it was", () => {
  const before = `# Benchmarks\n\nmain table\n\n${site("old")}\n${section("kept")}`;
  const after = withSiteSection(before, site("new"));
  assert.equal(after, `# Benchmarks\n\nmain table\n\n${site("new")}\n${section("kept")}`);
  // And the other way round: the cluster run leaves the site section alone.
  assert.equal(siteSection(withClusterSection(after, section("newer"))), site("new"));
});

Deno.test("a section's figures are written as they are, even with $ in them", () => {
  const before = `# Benchmarks\n\n${site("old")}`;
  assert.equal(siteSection(withSiteSection(before, site("$& $1 $$"))), site("$& $1 $$"));
});

Deno.test("a rewritten main page keeps both sections in their order (what writeReport does)", () => {
  const old = `# Benchmarks\n\nold table\n\n${section("cluster kept")}\n${site("site kept")}`;
  const rewritten = keepSections(old, "# Benchmarks\n\nnew table\n");
  assert.match(rewritten, /new table/);
  assert.doesNotMatch(rewritten, /old table/);
  assert.equal(siteSection(rewritten), site("site kept"));
  assert.equal(clusterSection(rewritten), section("cluster kept"));
  assert.ok(rewritten.indexOf(CLUSTER_BEGIN) < rewritten.indexOf(SITE_BEGIN));
  // A page with only one section keeps that one; a page with none is left as generated.
  assert.equal(siteSection(keepSections(`x\n\n${site("only")}`, "new\n")), site("only"));
  assert.equal(clusterSection(keepSections(`x\n\n${site("only")}`, "new\n")), "");
  assert.equal(keepSections("", "new\n"), "new\n");
  assert.equal(siteSection("# no section\n"), "");
});

// The machine line names the CPU model even where /proc/cpuinfo's name is vague (a VM's "AMD EPYC").
const EPYC_CPUINFO = `processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
`;

Deno.test("cpuModel() adds family, model and stepping to /proc/cpuinfo's model name", () => {
  assert.equal(cpuModel(EPYC_CPUINFO), "AMD EPYC (family 25, model 1, stepping 1)");
  // lscpu naming the same CPU no better changes nothing.
  assert.equal(
    cpuModel(EPYC_CPUINFO, "Vendor ID:  AuthenticAMD\nModel name:  AMD EPYC\nCPU family:  25\n"),
    "AMD EPYC (family 25, model 1, stepping 1)",
  );
});

Deno.test("cpuModel() takes lscpu's model name when it says more", () => {
  const lscpu = "BIOS Model name:  pc-q35\nModel name:  AMD EPYC 7763 64-Core Processor\nModel:  1\n";
  assert.equal(
    cpuModel(EPYC_CPUINFO, lscpu),
    "AMD EPYC 7763 64-Core Processor (family 25, model 1, stepping 1)",
  );
  // ARM: /proc/cpuinfo names no model; lscpu does, and gives the numbers it has.
  const arm = "Vendor ID:  ARM\nModel name:  Neoverse-N1\nModel:  1\nStepping:  r3p1\n";
  assert.equal(cpuModel("processor\t: 0\nCPU part\t: 0xd0c\n", arm), "Neoverse-N1 (model 1, stepping r3p1)");
  assert.equal(cpuModel(""), "unknown CPU");
});

Deno.test("the page and the chart name the CPU model", () => {
  const machine = { cpu: cpuModel(EPYC_CPUINFO), cores: 2, memGiB: 4, load: "0.1 0.2 0.3" };
  const report: Report = {
    command: "bench/run.ts",
    date: "2026-01-01T00:00:00Z",
    header: [],
    machine,
    loadAfter: "0.1 0.2 0.3",
    versions: { deno: "2", v8: "13", node: "v20", nginx: "nginx/1" },
    pinning: "not pinned",
    notes: [],
    table: [],
    rounds: [],
    errorNotes: [],
    rows: [],
    memory: null,
  };
  assert.match(
    markdown(report, "benchmarks.svg"),
    /CPU: AMD EPYC \(family 25, model 1, stepping 1\), 2 cores/,
  );
  assert.match(chartSvg(report), /AMD EPYC \(family 25, model 1, stepping 1\), 2 cores/);
});

/** A stand-in site on a free port whose cookies `answer` decides from the request's Cookie header. */
async function withCookieSite(answer: (cookie: string) => string[], test: (port: number) => Promise<void>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const headers = new Headers();
    for (const line of answer(request.headers.get("cookie") ?? "")) headers.append("set-cookie", line);
    return new Response("home", { headers });
  });
  try {
    await test(server.addr.port);
  } finally {
    await server.shutdown();
  }
}

Deno.test("returningCookie() takes a session cookie set on the first visit", async () => {
  await withCookieSite(
    (cookie) => cookie ? [] : ["sid=abc; Path=/; HttpOnly"],
    async (port) => assert.deepEqual(await returningCookie(port), { header: "sid=abc", names: ["sid"] }),
  );
});

Deno.test("returningCookie() follows a first visit's cookie that becomes a session later", async () => {
  // The first visit gets a signed marker; sending it back makes the session and removes the marker.
  await withCookieSite((cookie) => {
    if (cookie === "") return ["first=signed; Path=/"];
    if (cookie === "first=signed") return ["sid=xyz; Path=/", "first=; Path=/; Max-Age=0"];
    return cookie === "sid=xyz" ? [] : ["unexpected=1"];
  }, async (port) => assert.deepEqual(await returningCookie(port), { header: "sid=xyz", names: ["sid"] }));
  // A site that sets the same cookie again on every visit (a refreshed expiry) is settled too.
  await withCookieSite(
    () => ["sid=same; Max-Age=3600"],
    async (port) => assert.deepEqual(await returningCookie(port), { header: "sid=same", names: ["sid"] }),
  );
});

Deno.test("returningCookie() fails when there is no returning visitor to make", async () => {
  await withCookieSite(() => [], async (port) => {
    await assert.rejects(() => returningCookie(port), /sets no cookie/);
  });
  let visit = 0;
  await withCookieSite(() => [`sid=${++visit}`], async (port) => {
    await assert.rejects(() => returningCookie(port), /still sets new cookies/);
  });
});
