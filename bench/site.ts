// The `site` section of `deno task bench`: the real site (app/main.ts as `deno task start` runs it, SQLite in
// a fresh temporary data folder) answering `GET /` to new visitors (no cookie) and to a returning one, with
// its req/s, CPU per request, memory (RSS) under load and database size, against the home page's goals.
import { startTaskFlags } from "../tests/fixtures/static_fixture.ts";
import { withUploadScope } from "../tests/fixtures/cluster_fixture.ts";
import { freePort, median, pinningNote, rssKiB, type ServerProc, startServer, wrk } from "./_harness.ts";
import { machineInfo, machineLine } from "./_machine.ts";
import { errorNotesMarkdown, SITE_BEGIN, SITE_END } from "./_report.ts";

/** Connections wrk holds: the issue's `wrk -c32`. */
export const SITE_CONNECTIONS = 32;
/** The home page's goal for both kinds of visitor, in requests per second. */
export const RPS_GOAL = 3000;
/** The goal for the server's RSS under load, in MB (10^6 bytes, as the issue counts). */
export const RSS_GOAL_MB = 150;
/** How long after the load the last RSS reading is taken: whether the memory is given back. */
const SETTLE_MS = 5000;
/** How often RSS is read during a round, for its peak. */
const SAMPLE_MS = 500;
/** Visits the cookie jar may take to settle before the site is judged to never stop setting cookies. */
const MAX_VISITS = 5;
const REPO = new URL("../", import.meta.url).pathname;
const MAIN = "app/main.ts";

/** One way of visiting `GET /`. */
interface Scenario {
  id: string;
  label: string;
  /** What wrk's requests carry, beside the path. */
  describe: string;
}
const SCENARIOS: readonly Scenario[] = [
  {
    id: "new",
    label: "new visitors",
    describe: "no cookie: every request is a first visit, as crawlers and scanners come",
  },
  {
    id: "returning",
    label: "returning visitors",
    describe: "every request sends one visitor's session cookie",
  },
];

/** The server's resident memory at the moments measured, in KiB (VmRSS). */
export interface Rss {
  before: number;
  /** The highest reading during the rounds (every 0.5 s and at the end of each). */
  peak: number;
  /** Right after the last round. */
  end: number;
  /** 5 s after the last round. */
  after: number;
}

/** One database file's size and its write-ahead log's, in bytes, after the scenario. */
export interface DatabaseFile {
  name: string;
  bytes: number;
  walBytes: number;
}

/** One scenario's figures. */
export interface SiteRow {
  scenario: string;
  describe: string;
  /** Median requests per second over the rounds. */
  rps: number;
  /** Median server CPU time per request, in µs. */
  cpuUs: number;
  /** 4xx and 5xx answers over all rounds (the warm-up not counted). */
  badStatus: number;
  socketErrors: number;
  /** Each round's requests per second. */
  rounds: number[];
  rss: Rss;
  database: DatabaseFile[];
}

/** What the site run measured, for the console and docs/benchmarks.md. */
export interface SiteReport {
  command: string;
  date: string;
  seconds: number;
  roundsCount: number;
  machine: string;
  pinning: string;
  loadBefore: string;
  loadAfter: string;
  /** The cookie names the returning visitor sends (values left out: they are secrets of a throwaway site). */
  cookieNames: string[];
  rows: SiteRow[];
  /** wrk's words for rounds with errors. */
  errorNotes: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Start the site as `deno task start` does, in the repository (its static/ and templates/), pinned to CPU 0,
 * with `data` as its data folder and `--quiet` so that writing the access log does not dominate. DATABASE_URL
 * is left out of its environment: the figures are SQLite's even where that variable names a server.
 */
async function startSite(label: string, data: string): Promise<ServerProc> {
  // The start task may write `data/` only: the folder is added to its read and write scopes, the widening
  // an operator makes for a shared upload folder.
  const flags = withUploadScope(await startTaskFlags(), data);
  const port = freePort();
  const env = Deno.env.toObject();
  delete env.DATABASE_URL;
  return await startServer(
    label,
    Deno.execPath(),
    ["run", ...flags, MAIN, "--port", String(port), "--data", data, "--quiet"],
    { cwd: REPO, port, env },
  );
}

/** A Set-Cookie line's name, value, and whether it removes the cookie (Max-Age ≤ 0 or Expires past). */
function parseSetCookie(line: string): { name: string; value: string; removes: boolean } {
  const [pair, ...attributes] = line.split(";");
  const eq = pair.indexOf("=");
  const removes = attributes.some((a) => {
    const [key, value = ""] = a.split("=").map((s) => s.trim());
    if (/^max-age$/i.test(key)) return Number(value) <= 0;
    if (/^expires$/i.test(key)) return Date.parse(value) <= Date.now();
    return false;
  });
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), removes };
}

/**
 * A returning visitor's Cookie header: `GET /` with a small cookie jar, visiting again while the site sets
 * something new, until a visit that sends the jar back changes nothing in it. The site may answer a first
 * visit with a cookie that becomes a session only on the second, so one visit's cookie is not enough.
 *
 * @param port The site's port on 127.0.0.1.
 * @returns The header value and the cookie names.
 */
export async function returningCookie(port: number): Promise<{ header: string; names: string[] }> {
  const jar = new Map<string, string>();
  const client = Deno.createHttpClient({});
  try {
    for (let visit = 1; visit <= MAX_VISITS; visit++) {
      const sent = [...jar].map(([name, value]) => `${name}=${value}`).join("; ");
      const response = await fetch(`http://127.0.0.1:${port}/`, {
        client,
        headers: sent ? { cookie: sent } : {},
      });
      await response.body?.cancel();
      if (response.status !== 200) throw new Error(`GET / (visit ${visit}) answered ${response.status}`);
      for (const line of response.headers.getSetCookie()) {
        const { name, value, removes } = parseSetCookie(line);
        if (removes) jar.delete(name);
        else jar.set(name, value);
      }
      const now = [...jar].map(([name, value]) => `${name}=${value}`).join("; ");
      if (now === sent && sent !== "") return { header: sent, names: [...jar.keys()] };
      if (now === "" && sent === "") throw new Error("GET / sets no cookie: there is no returning visitor");
    }
    throw new Error(`GET / still sets new cookies after ${MAX_VISITS} visits`);
  } finally {
    client.close();
  }
}

/** The database files in a data folder (`*.db`) with their `-wal` beside them, after a scenario. */
async function databaseFiles(data: string): Promise<DatabaseFile[]> {
  const size = (path: string) => Deno.stat(path).then((s) => s.size, () => 0);
  const files: DatabaseFile[] = [];
  for await (const entry of Deno.readDir(data)) {
    if (!entry.isFile || !entry.name.endsWith(".db")) continue;
    const path = `${data}/${entry.name}`;
    files.push({ name: entry.name, bytes: await size(path), walBytes: await size(`${path}-wal`) });
  }
  return files.sort((a, b) => a.name.localeCompare(b.name));
}

/** Run `work` while reading the server's RSS every {@link SAMPLE_MS}; the highest reading with its result. */
async function sampled<T>(pid: number, work: Promise<T>): Promise<{ result: T; peak: number }> {
  let done = false;
  const sampler = (async () => {
    let peak = 0;
    while (!done) {
      peak = Math.max(peak, await rssKiB(pid));
      await sleep(SAMPLE_MS);
    }
    return peak;
  })();
  try {
    const result = await work;
    done = true;
    return { result, peak: await sampler };
  } finally {
    done = true;
  }
}

/** A site process under test, with what its rounds have measured so far. */
interface RunningSite {
  scenario: Scenario;
  data: string;
  server: ServerProc;
  /** Header lines wrk sends (the returning visitor's Cookie). */
  headers: string[];
  rps: number[];
  cpu: number[];
  badStatus: number;
  socketErrors: number;
  rss: Rss;
  database: DatabaseFile[];
  /** The RSS reading taken 5 s after the last round, once scheduled. */
  settled: Promise<number>;
}

async function loadAverage(): Promise<string> {
  return (await machineInfo()).load;
}

/**
 * Run the site scenarios: one site process per scenario, each with its own fresh data folder, both running
 * side by side (the one not measured is idle); a 1 s warm-up of each, then rounds interleaved (new,
 * returning, then returning, new, ...) so drift in the machine's load falls on both.
 *
 * @param options Rounds, seconds per round, and the command line for the report.
 * @returns The figures.
 */
export async function runSite(
  options: { rounds: number; seconds: number; command: string },
): Promise<SiteReport> {
  const { rounds, seconds } = options;
  const work = await Deno.makeTempDir({ prefix: "pier_site_bench_" });
  const sites: RunningSite[] = [];
  try {
    for (const scenario of SCENARIOS) {
      const data = `${work}/${scenario.id}`;
      await Deno.mkdir(data);
      const server = await startSite(scenario.label, data);
      sites.push({
        scenario,
        data,
        server,
        headers: [],
        rps: [],
        cpu: [],
        badStatus: 0,
        socketErrors: 0,
        rss: { before: 0, peak: 0, end: 0, after: 0 },
        database: [],
        settled: Promise.resolve(NaN),
      });
    }
    const returning = sites.find((s) => s.scenario.id === "returning")!;
    const cookie = await returningCookie(returning.server.port);
    returning.headers = [`Cookie: ${cookie.header}`];

    const loadBefore = await loadAverage();
    const run = (site: RunningSite, time: number) =>
      wrk(site.server, "/", { connections: SITE_CONNECTIONS, seconds: time, headers: site.headers });
    for (const s of sites) s.rss.before = await rssKiB(s.server.pid);
    for (const s of sites) await run(s, 1);
    const errorNotes: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...sites].reverse() : sites;
      for (const s of order) {
        const { result: r, peak } = await sampled(s.server.pid, run(s, seconds));
        const end = await rssKiB(s.server.pid);
        s.rps.push(r.rps);
        s.cpu.push(r.cpuUsPerReq);
        s.badStatus += r.badStatus;
        s.socketErrors += r.socketErrors;
        s.rss.peak = Math.max(s.rss.peak, peak, end);
        if (r.errors > 0) errorNotes.push(`  ${s.scenario.label}, round ${round + 1}: ${r.errorText}`);
        console.log(
          `  ${s.scenario.label}, round ${round + 1}: ${Math.round(r.rps)} req/s, RSS ${mb(end)} MB` +
            (r.errors ? `, ${r.errorText}` : ""),
        );
        if (round === rounds - 1) {
          // The last reading is taken while the other scenario's last round runs.
          s.rss.end = end;
          s.database = await databaseFiles(s.data);
          s.settled = sleep(SETTLE_MS).then(() => rssKiB(s.server.pid));
        }
      }
    }
    for (const s of sites) s.rss.after = await s.settled;
    const loadAfter = await loadAverage();
    const rows: SiteRow[] = sites.map((s) => ({
      scenario: s.scenario.label,
      describe: s.scenario.describe,
      rps: median(s.rps),
      cpuUs: median(s.cpu),
      badStatus: s.badStatus,
      socketErrors: s.socketErrors,
      rounds: s.rps,
      rss: s.rss,
      database: s.database,
    }));
    return {
      command: options.command,
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      seconds,
      roundsCount: rounds,
      machine: machineLine(await machineInfo()),
      pinning: pinningNote(),
      loadBefore,
      loadAfter,
      cookieNames: cookie.names,
      rows,
      errorNotes,
    };
  } finally {
    for (const s of sites) await s.server.stop();
    await Deno.remove(work, { recursive: true }).catch((e) =>
      console.error(`could not remove ${work}: ${e}`)
    );
  }
}

/** KiB (as /proc gives it) in MB of 10^6 bytes, one decimal. */
const mb = (kib: number) => (kib * 1024 / 1e6).toFixed(1);
const bytesMb = (bytes: number) => (bytes / 1e6).toFixed(1);
const meets = (ok: boolean) => ok ? "met" : "not met";

/** The database files as one cell: `site.db 6.5 + wal 4.5`. */
function databaseCell(files: DatabaseFile[]): string {
  if (!files.length) return "no *.db file";
  return files.map((f) => `${f.name} ${bytesMb(f.bytes)} + wal ${bytesMb(f.walBytes)}`).join(", ");
}

/** The console tables: speed, then memory and the database, each scenario beside its goals. */
export function siteTable(report: SiteReport): string[] {
  const rpsGoal = `goal ≥ ${RPS_GOAL}`;
  const rssGoal = `goal ≤ ${RSS_GOAL_MB}`;
  const lines = [
    "scenario".padEnd(20) + "req/s".padStart(7) + rpsGoal.padStart(14) + "CPU µs/req".padStart(12) +
    "4xx/5xx".padStart(9) + "socket errors".padStart(15),
  ];
  for (const r of report.rows) {
    lines.push(
      r.scenario.padEnd(20) + String(Math.round(r.rps)).padStart(7) +
        meets(r.rps >= RPS_GOAL).padStart(14) + r.cpuUs.toFixed(1).padStart(12) +
        String(r.badStatus).padStart(9) + String(r.socketErrors).padStart(15),
    );
  }
  lines.push(
    "",
    "RSS MB".padEnd(20) + "before".padStart(7) + "peak".padStart(8) + rssGoal.padStart(14) +
      "end".padStart(8) + "5 s after".padStart(11) + "   database MB after",
  );
  for (const r of report.rows) {
    lines.push(
      r.scenario.padEnd(20) + mb(r.rss.before).padStart(7) + mb(r.rss.peak).padStart(8) +
        meets(r.rss.peak * 1024 / 1e6 <= RSS_GOAL_MB).padStart(14) + mb(r.rss.end).padStart(8) +
        mb(r.rss.after).padStart(11) + `   ${databaseCell(r.database)}`,
    );
  }
  return lines;
}

/**
 * The site section of docs/benchmarks.md (markers included): the figures as printed, beside the goals, and
 * how the runs were made. Every figure comes from the report.
 */
export function siteMarkdown(report: SiteReport): string {
  return `${SITE_BEGIN}

## The site's home page

Generated by \`${report.command}\` on ${report.date}; to update the figures, run it again (it rewrites this
section only). ${report.machine}; ${report.pinning}. Load average ${report.loadBefore} at the start,
${report.loadAfter} at the end.

| scenario | req/s | goal ≥ ${RPS_GOAL} | RSS under load (MB) | goal ≤ ${RSS_GOAL_MB} MB | database (MB) |
| --- | --- | --- | --- | --- | --- |
${
    report.rows.map((r) =>
      `| ${r.scenario} | ${Math.round(r.rps)} | ${meets(r.rps >= RPS_GOAL)} | ${mb(r.rss.peak)} | ${
        meets(r.rss.peak * 1024 / 1e6 <= RSS_GOAL_MB)
      } | ${databaseCell(r.database)} |`
    ).join("\n")
  }

\`\`\`text
${siteTable(report).join("\n")}
\`\`\`

- Goals (issue 15): at least ${RPS_GOAL} req/s for both kinds of visitor, and at most ${RSS_GOAL_MB} MB of
  RSS under load; they are printed beside the figures, and a run that misses them still passes.
- Setup: \`app/main.ts\` with the start task's flags, its fresh temporary data folder (SQLite) added to the
  read and write scopes, and \`--quiet\` (no access log); one site process per scenario, both running side
  by side (the one not measured is idle), each pinned to CPU 0 and wrk to CPU 1.
- \`wrk -t1 -c${SITE_CONNECTIONS} -d${report.seconds}s\` on \`GET /\`, ${report.roundsCount} rounds
  interleaved (new then returning, then returning then new, ...) after a 1 s warm-up of each; medians.
${report.rows.map((r) => `- **${r.scenario}**: ${r.describe}.`).join("\n")} The returning visitor's cookie
  (${report.cookieNames.map((n) => `\`${n}\``).join(", ")}) comes from visiting \`GET /\` with a cookie jar
  until a visit that sends the jar back is given no new cookie (the site may make a session only on a second
  visit).
- **CPU µs/req**: the site process's user + system CPU time during a round (its database Worker included)
  over the requests answered. **4xx/5xx** and **socket errors**: over all rounds, as wrk counts them.
- **RSS** (\`VmRSS\` of the one process, so the database Worker's memory is in it), in MB of 10^6 bytes:
  before the warm-up, the peak read every ${SAMPLE_MS / 1000} s during the rounds (the figure held to the
  goal), right after the last round, and ${SETTLE_MS / 1000} s after it. **database MB after**: each \`*.db\`
  file in the data folder and its \`-wal\`, right after the last round (the warm-up's visits included).

Per-round figures (req/s):

\`\`\`text
${report.rows.map((r) => `  ${r.scenario}: ${r.rounds.map((x) => Math.round(x)).join(", ")}`).join("\n")}
\`\`\`
${errorNotesMarkdown(report.errorNotes)}
${SITE_END}
`;
}
