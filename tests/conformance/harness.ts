// `deno task conformance [--write docs/conformance.md]`: every case of the shared corpus and of Pier's parser
// table sent to Pier, Deno.serve and Node.js in one run, their answers compared, and each difference given
// its reason from reasons.ts. Exits 1 when a difference has no reason. Every server it starts, it stops.
import { CASES } from "../fixtures/parser_cases.ts";
import { REASONS } from "./reasons.ts";
import {
  type CaseResult,
  type Observation,
  renderPage,
  RUN_LINE_PREFIX,
  type SentCase,
  summarise,
} from "./report.ts";
import { type ServerName, SERVERS, startServers, stopServers } from "./servers.ts";

const CORPUS_DIR = new URL("../../../shared/http-corpus/", import.meta.url);
const CLIENT = new URL("client.py", import.meta.url).pathname;
/** Seconds of quiet after which a connection counts as left open (cases expecting keep-alive wait it out). */
const QUIET_SECONDS = 1;
/** Connections in flight at once: most cases wait out the quiet second, so many run side by side. */
const JOBS = 48;

/** What `cmd` prints for `args`, or null when it cannot be run. */
async function output(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

// When no `node` is on the PATH, Deno runs itself in its place (its Node compatibility): node_app.mjs would
// then run on Deno's node:http, which is Deno.serve's parser again. Ask whoever answers whether it is Deno.
const LLHTTP_VERSION = ["-p", "typeof Deno === 'undefined' ? process.versions.llhttp : 'Deno'"];

/**
 * The programs the harness needs that do not run here (real Node.js, not Deno standing in; python3), each
 * named with what to install.
 *
 * @returns One line per missing program; empty when all are there.
 */
export async function missingPrograms(): Promise<string[]> {
  const missing: string[] = [];
  const llhttp = await output("node", LLHTTP_VERSION);
  if (!llhttp || !/^\d+\.\d+/.test(llhttp)) {
    missing.push(
      `real Node.js is needed (\`node\` ${llhttp === "Deno" ? "runs Deno itself" : "is not found"}): ` +
        "install Debian's `nodejs` package, or Node.js from nodejs.org",
    );
  }
  if (await output("python3", ["--version"]) === null) {
    missing.push("python3 is not found: install Debian's `python3` package");
  }
  return missing;
}

/** The corpus cases, from requests.jsonl. */
async function corpusCases(): Promise<SentCase[]> {
  const text = await Deno.readTextFile(new URL("requests.jsonl", CORPUS_DIR));
  return text.split("\n").filter((line) => line.trim()).map((line) => {
    const c = JSON.parse(line);
    return {
      source: "corpus",
      id: c.id,
      raw: c.raw,
      split: c.split,
      splitDelay: c.split_delay,
      // As the runner does: HEAD answers have no body to read.
      headIndexes: c.expect.head_idx ?? (c.raw.startsWith("HEAD ") ? [0] : []),
    };
  });
}

/** The parser cases that run with default limits, and the names of those that need others. */
function parserCases(): { cases: SentCase[]; skipped: string[] } {
  const cases = CASES.filter((c) => !c.limits).map((c): SentCase => ({
    source: "parser",
    id: c.name,
    // One byte per character, as server/http1_test.ts feeds them (a character over 0xFF keeps its low byte).
    raw: Array.from(c.raw, (ch) => String.fromCharCode(ch.charCodeAt(0) & 0xff)).join(""),
    headIndexes: c.raw.startsWith("HEAD ") ? [0] : [],
  }));
  return { cases, skipped: CASES.filter((c) => c.limits).map((c) => c.name) };
}

/** Send every case to every server through client.py; one observation per (server, case). */
async function observe(
  cases: SentCase[],
  servers: { name: ServerName; port: number }[],
): Promise<Observation[]> {
  const job = {
    runner: new URL("run_corpus.py", CORPUS_DIR).pathname,
    timeout: QUIET_SECONDS,
    jobs: JOBS,
    servers: servers.map((s) => ({ name: s.name, port: s.port })),
    cases: cases.map((c, key) => ({
      key,
      raw: c.raw,
      split: c.split ?? [],
      split_delay: c.splitDelay ?? 0.2,
      head_idx: c.headIndexes,
    })),
  };
  const child = new Deno.Command("python3", {
    args: [CLIENT],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  try {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(job)));
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    if (code !== 0) throw new Error(`client.py failed (exit ${code}):\n${new TextDecoder().decode(stderr)}`);
    return new TextDecoder().decode(stdout).split("\n").filter((l) => l).map((l) => JSON.parse(l));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* it has exited */ }
  }
}

/** Format markdown with `deno fmt` (the repository's line width), so the page passes `deno fmt --check`. */
async function formatMarkdown(text: string): Promise<string> {
  const child = new Deno.Command("deno", { args: ["fmt", "--ext=md", "-"], stdin: "piped", stdout: "piped" })
    .spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout } = await child.output();
  if (code !== 0) throw new Error("deno fmt refused the generated page");
  return new TextDecoder().decode(stdout);
}

/** What one run of the harness found. */
export interface Conformance {
  results: CaseResult[];
  /** The formatted page. */
  page: string;
  /** Cases that differ and have no reason in reasons.ts ("corpus: id", "parser: name"). */
  unexplained: string[];
  /** Reasons for cases that no longer differ, or no longer exist. */
  stale: string[];
  seconds: number;
}

/**
 * Run every case against the three servers and build the page. The servers are stopped before it returns,
 * whatever happens.
 *
 * @returns The results, the formatted page, the differences without a reason and the stale reasons.
 */
export async function runConformance(): Promise<Conformance> {
  const started = performance.now();
  const missing = await missingPrograms();
  if (missing.length) throw new Error(`the conformance harness cannot run:\n${missing.join("\n")}`);
  const parser = parserCases();
  const cases = [...await corpusCases(), ...parser.cases];
  const [node, llhttp, python] = await Promise.all([
    output("node", ["--version"]),
    output("node", LLHTTP_VERSION),
    output("python3", ["--version"]),
  ]);
  const servers = await startServers();
  let observations: Observation[];
  try {
    observations = await observe(cases, servers);
  } finally {
    await stopServers(servers);
  }
  const answers = cases.map(() => ({}) as Record<ServerName, string>);
  for (const seen of observations) answers[seen.key][seen.server] = summarise(seen);
  const results = cases.map((sent, i): CaseResult => {
    const missing = SERVERS.filter((s) => answers[i][s.name] === undefined);
    if (missing.length) {
      throw new Error(`no observation of ${sent.source} case ${sent.id} on ${missing[0].name}`);
    }
    const differs = new Set(Object.values(answers[i])).size > 1;
    return {
      sent,
      answers: answers[i],
      differs,
      reason: differs ? REASONS[sent.source][sent.id] : undefined,
    };
  });
  const label = (r: CaseResult) => `${r.sent.source}: ${r.sent.id}`;
  const unexplained = results.filter((r) => r.differs && !r.reason).map(label);
  const differing = new Set(results.filter((r) => r.differs).map(label));
  const stale = (["corpus", "parser"] as const).flatMap((source) =>
    Object.keys(REASONS[source]).map((id) => `${source}: ${id}`).filter((key) => !differing.has(key))
  );
  const date = new Date().toISOString().slice(0, 10);
  const runLine = `${date}, Deno ${Deno.version.deno}, Node.js ${node} (llhttp ${llhttp}), ${python}.`;
  const page = await formatMarkdown(
    renderPage(results, { runLine, quietSeconds: QUIET_SECONDS, skipped: parser.skipped }),
  );
  return { results, page, unexplained, stale, seconds: (performance.now() - started) / 1000 };
}

/**
 * The page without its date and versions line, for comparing two runs.
 *
 * @param page A page as written by the harness.
 * @returns The page with the run line removed.
 */
export function withoutRunLine(page: string): string {
  return page.split("\n").filter((line) => !line.startsWith(RUN_LINE_PREFIX)).join("\n");
}

if (import.meta.main) {
  const args = [...Deno.args];
  const at = args.indexOf("--write");
  const target = at >= 0 ? args[at + 1] : undefined;
  if (at >= 0 && !target) {
    console.error("usage: harness.ts [--write docs/conformance.md]");
    Deno.exit(2);
  }
  const run = await runConformance();
  for (const source of ["corpus", "parser"] as const) {
    const mine = run.results.filter((r) => r.sent.source === source);
    console.log(`${source}: ${mine.length} cases, ${mine.filter((r) => r.differs).length} differ`);
  }
  console.log(`${run.seconds.toFixed(1)} s`);
  if (target) {
    await Deno.writeTextFile(target, run.page);
    console.log(`wrote ${target}`);
  }
  if (run.stale.length) {
    console.warn(`warning: reasons for cases that no longer differ (remove them from reasons.ts):`);
    for (const key of run.stale) console.warn(`  ${key}`);
  }
  if (run.unexplained.length) {
    console.error(
      `${run.unexplained.length} difference(s) without a reason in tests/conformance/reasons.ts:`,
    );
    for (const r of run.results.filter((r) => r.differs && !r.reason)) {
      const seen = SERVERS.map((s) => `${s.label}: ${r.answers[s.name]}`).join("; ");
      console.error(`  ${r.sent.source}: ${r.sent.id}  [${seen}]`);
    }
    Deno.exit(1);
  }
}
