// The `cluster` scenarios of `deno task bench`: the site's routed dynamic page (`GET /`, a visit counted in
// PostgreSQL) and the contact POST, through the repository's nginx.conf (HTTPS, its several-instances block)
// in front of 1 and of 3 Pier instances sharing one PostgreSQL database, in interleaved rounds. It creates
// its own database (dropped at the end) on the server PIER_BENCH_POSTGRES_URL or PIER_TEST_POSTGRES_URL
// names; everything it starts listens on 127.0.0.1 and is stopped at the end, even on failure.
import postgres from "postgres";
import { NGINX_CONF, nginxConfFor, runNginx, type RunningNginx } from "../tests/fixtures/nginx_fixture.ts";
import { startInstances, stopInstance } from "../tests/fixtures/cluster_fixture.ts";
import { makeCert } from "../tests/fixtures/prod_fixture.ts";
import type { SiteProcess } from "../tests/fixtures/static_fixture.ts";
import { cpuMs, freePort, median } from "./_harness.ts";
import { machineInfo } from "./_machine.ts";
import { CLUSTER_BEGIN, CLUSTER_END, errorNotesMarkdown } from "./_report.ts";

/** The variables naming a PostgreSQL role with CREATEDB, in the order they are read. */
export const CLUSTER_DB_VARS = ["PIER_BENCH_POSTGRES_URL", "PIER_TEST_POSTGRES_URL"] as const;

/** The instance counts compared: one, and nginx.conf's example of three. */
const SIZES = [1, 3] as const;
/**
 * Returning visitors on `GET /`: the requests cycle through this many session cookies, so the visit counter's
 * row updates spread over many rows as real visitors' do (one cookie for every request would measure one
 * row lock, not the site).
 */
const VISITORS = 200;
/** Connections wrk holds, as the other scenarios (bench/run.ts). */
const CONNECTIONS = 50;
const REPO = new URL("../", import.meta.url);

/** One cluster scenario's figures for one instance count. */
export interface ClusterRow {
  scenario: string;
  instances: number;
  /** Median requests per second over the rounds. */
  rps: number;
  /** Median of wrk's 99th-percentile latency, in ms. */
  p99Ms: number;
  /** Median CPU time of all Pier instances together per request, in µs (nginx and PostgreSQL excluded). */
  appCpuUs: number;
  /** Median share of the whole machine's CPU time that was busy during a round, 0 to 1. */
  machineBusy: number;
  /** Non-2xx/3xx answers and socket errors over all rounds. */
  errors: number;
  /** Each round's requests per second. */
  rounds: number[];
}

/** What the cluster run measured, for the console and docs/benchmarks.md. */
export interface ClusterReport {
  command: string;
  date: string;
  seconds: number;
  roundsCount: number;
  cores: number;
  cpu: string;
  loadBefore: string;
  loadAfter: string;
  versions: { deno: string; nginx: string; postgres: string };
  rows: ClusterRow[];
  /** wrk's words for rounds with errors. */
  errorNotes: string[];
}

/** The admin URL for the benchmark's database, or null when neither variable is set. */
export function clusterDatabaseUrl(): string | null {
  for (const name of CLUSTER_DB_VARS) {
    const url = Deno.env.get(name);
    if (url) return url;
  }
  return null;
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyDir(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** A cluster under test: nginx on `port` (HTTPS) in front of `instances`. */
interface Cluster {
  size: number;
  port: number;
  instances: SiteProcess[];
  nginx: RunningNginx;
}

interface WrkRun {
  rps: number;
  requests: number;
  p99Ms: number;
  errors: number;
  errorText: string;
}

async function wrkRun(url: string, seconds: number, script: string): Promise<WrkRun> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency", "-s", script, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(text);
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN),
    requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN),
    p99Ms: p99 ? Number(p99[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[p99[2]] : NaN,
    errors: (errs ? Number(errs[1]) : 0) + (sock ? sock.slice(1).reduce((s, n) => s + Number(n), 0) : 0),
    errorText: [errs?.[0], sock?.[0]].filter(Boolean).join("; "),
  };
}

/** Lua for wrk: requests pre-formatted once (wrk's own CPU stays small), sent in turn. */
function luaScript(requests: string[]): string {
  return `local reqs = {}
init = function(args)
${requests.map((r) => `  table.insert(reqs, ${r})`).join("\n")}
end
local i = 0
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
`;
}

const lua = (s: string) => JSON.stringify(s); // a JSON string of ASCII is a valid Lua string literal

async function sessionCookies(port: number, client: Deno.HttpClient, count: number): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < count; i++) {
    // A first visit is carried in a signed cookie; the second visit makes the session a returning visitor has.
    const first = await fetch(`https://127.0.0.1:${port}/`, { client });
    await first.body?.cancel();
    const firstVisit = first.headers.get("set-cookie")?.split(";")[0];
    if (first.status !== 200 || !firstVisit) {
      throw new Error(`GET / through nginx: ${first.status}, no cookie`);
    }
    const res = await fetch(`https://127.0.0.1:${port}/`, { client, headers: { cookie: firstVisit } });
    await res.body?.cancel();
    const cookie = res.headers.getSetCookie().find((c) => /^(__Host-)?pier_sid=/.test(c))?.split(";")[0];
    if (res.status !== 200 || !cookie) {
      throw new Error(`GET / through nginx: ${res.status}, no session cookie`);
    }
    cookies.push(cookie);
  }
  return cookies;
}

async function version(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output()
    .catch(() => null);
  if (!out) return "unknown";
  const d = new TextDecoder();
  return (d.decode(out.stdout) + d.decode(out.stderr)).trim();
}

/** The machine's CPU time so far, busy and total, in clock ticks (the `cpu` line of /proc/stat). */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const out = await new Deno.Command("cat", { args: ["/proc/stat"], stdout: "piped" }).output();
  const fields = new TextDecoder().decode(out.stdout).split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle and iowait are the 4th and 5th fields: everything else is some process (or the kernel) at work.
  return { busy: total - fields[3] - fields[4], total };
}

async function loadAverage(): Promise<string> {
  const out = await new Deno.Command("cat", { args: ["/proc/loadavg"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split(" ").slice(0, 3).join(" ");
}

/**
 * Run the cluster scenarios: `GET /` with {@link VISITORS} returning visitors' cookies, and `POST /contact`
 * (a valid form, `Sec-Fetch-Site: same-origin` as a browser sends it), each through nginx in front of 1 and
 * of 3 instances, rounds interleaved (1, 3, then 3, 1, ...) after a 1 s warm-up of each.
 *
 * @param options The admin URL, rounds, seconds per round, and the command line for the report.
 * @returns The figures.
 */
export async function runCluster(
  options: { adminUrl: string; rounds: number; seconds: number; command: string },
): Promise<ClusterReport> {
  const { adminUrl, rounds, seconds } = options;
  const dbName = `pier_bench_${crypto.randomUUID().replaceAll("-", "")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  const work = await Deno.makeTempDir({ prefix: "pier_cluster_bench_" });
  const clusters: Cluster[] = [];
  let client: Deno.HttpClient | null = null;
  try {
    await admin.unsafe(`CREATE DATABASE ${dbName}`);
    const pgVersion = (await admin`SHOW server_version`)[0].server_version as string;
    const url = new URL(adminUrl);
    url.pathname = `/${dbName}`;
    await Deno.chmod(work, 0o755); // nginx's workers may run as www-data
    const cert = await makeCert(`${work}/certs`);
    client = Deno.createHttpClient({ caCerts: [cert.pem] });
    const site = `${work}/site`;
    await copyDir(new URL("static", REPO).pathname, `${site}/static`);
    await copyDir(new URL("templates", REPO).pathname, `${site}/templates`);
    const uploads = `${work}/uploads`;
    await Deno.mkdir(uploads);
    // The production flags (docs/deploy.md), --quiet because nginx logs every request already.
    // --rate-limit off: the POST scenario sends thousands of posts from wrk's one address.
    const args = [
      "--database",
      url.href,
      "--uploads",
      uploads,
      "--idle-timeout",
      "75s",
      "--quiet",
      "--rate-limit",
      "off",
    ];
    for (const size of SIZES) {
      const instances = await startInstances(Array(size).fill(site), uploads, args);
      try {
        const port = freePort();
        const prefix = `${work}/nginx-${size}`;
        await Deno.mkdir(prefix);
        const conf = nginxConfFor(await Deno.readTextFile(NGINX_CONF), {
          https: port,
          http: freePort(),
          app: instances.map((s) => s.port),
          certDir: `${work}/certs`,
          staticDir: `${site}/static`,
          prefix,
        });
        clusters.push({ size, port, instances, nginx: await runNginx(prefix, conf, port) });
      } catch (err) {
        for (const s of instances) await stopInstance(s);
        throw err;
      }
    }

    const cookies = await sessionCookies(clusters[0].port, client, VISITORS);
    const home = `${work}/home.lua`;
    await Deno.writeTextFile(
      home,
      luaScript(cookies.map((c) => `wrk.format("GET", "/", { ["Cookie"] = ${lua(c)} })`)),
    );
    const contact = `${work}/contact.lua`;
    const form = new URLSearchParams({
      name: "Benchmark",
      email: "bench@example.com",
      message: "A contact message of a usual length, sent by the cluster benchmark.",
    }).toString();
    await Deno.writeTextFile(
      contact,
      luaScript([
        `wrk.format("POST", "/contact", { ["Content-Type"] = "application/x-www-form-urlencoded", ` +
        `["Sec-Fetch-Site"] = "same-origin" }, ${lua(form)})`,
      ]),
    );
    const scenarios = [
      { label: "GET / (visit counted in PostgreSQL)", script: home, path: "/" },
      { label: "POST /contact (message stored)", script: contact, path: "/contact" },
    ];

    const loadBefore = await loadAverage();
    const acc = new Map<
      string,
      { rps: number[]; p99: number[]; cpu: number[]; busy: number[]; errors: number }
    >();
    const errorNotes: string[] = [];
    for (const sc of scenarios) {
      for (const c of clusters) await wrkRun(`https://127.0.0.1:${c.port}${sc.path}`, 1, sc.script);
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 ? [...clusters].reverse() : clusters;
        for (const c of order) {
          const cpu = async () =>
            (await Promise.all(c.instances.map((s) => cpuMs(s.pid)))).reduce((a, b) => a + b);
          const before = await cpu();
          const ticks = await machineTicks();
          const r = await wrkRun(`https://127.0.0.1:${c.port}${sc.path}`, seconds, sc.script);
          const ticksAfter = await machineTicks();
          const used = await cpu() - before;
          const key = `${sc.label}|${c.size}`;
          const a = acc.get(key) ?? { rps: [], p99: [], cpu: [], busy: [], errors: 0 };
          a.busy.push((ticksAfter.busy - ticks.busy) / (ticksAfter.total - ticks.total));
          a.rps.push(r.rps);
          a.p99.push(r.p99Ms);
          a.cpu.push(r.requests > 0 ? used * 1000 / r.requests : NaN);
          a.errors += r.errors;
          if (r.errors > 0) {
            errorNotes.push(`  ${sc.label} | ${c.size} instance(s), round ${round + 1}: ${r.errorText}`);
          }
          acc.set(key, a);
          console.log(
            `  ${sc.label} | ${c.size} instance(s), round ${round + 1}: ${Math.round(r.rps)} req/s, p99 ${
              r.p99Ms.toFixed(1)
            } ms${r.errors ? `, ${r.errorText}` : ""}`,
          );
        }
      }
    }
    const loadAfter = await loadAverage();
    const rows: ClusterRow[] = [];
    for (const sc of scenarios) {
      for (const c of clusters) {
        const a = acc.get(`${sc.label}|${c.size}`)!;
        rows.push({
          scenario: sc.label,
          instances: c.size,
          rps: median(a.rps),
          p99Ms: median(a.p99),
          appCpuUs: median(a.cpu),
          machineBusy: median(a.busy),
          errors: a.errors,
          rounds: a.rps,
        });
      }
    }
    return {
      command: options.command,
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      seconds,
      roundsCount: rounds,
      cores: navigator.hardwareConcurrency,
      cpu: (await machineInfo()).cpu,
      loadBefore,
      loadAfter,
      versions: {
        deno: Deno.version.deno,
        nginx: (await version("nginx", ["-v"])).replace("nginx version: ", ""),
        postgres: pgVersion,
      },
      rows,
      errorNotes,
    };
  } finally {
    client?.close();
    for (const c of clusters) {
      await c.nginx.stop();
      for (const s of c.instances) await stopInstance(s);
    }
    try {
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${dbName}`;
      await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName}`);
    } catch (err) {
      console.error(`could not drop the benchmark database ${dbName}: ${(err as Error).message}`);
    }
    await admin.end();
    await Deno.remove(work, { recursive: true }).catch((e) =>
      console.error(`could not remove ${work}: ${e}`)
    );
  }
}

/** The console table: one line per scenario and instance count, with the 3 : 1 ratio. */
export function clusterTable(report: ClusterReport): string[] {
  const lines = [
    "scenario                               instances     req/s   3 : 1   p99 ms   app CPU µs/req   machine busy   errors",
  ];
  for (const r of report.rows) {
    const one = report.rows.find((x) => x.scenario === r.scenario && x.instances === 1)!;
    lines.push(
      r.scenario.padEnd(39) + String(r.instances).padStart(9) + String(Math.round(r.rps)).padStart(10) +
        (r.instances === 1 ? "" : `${(r.rps / one.rps).toFixed(2)}x`).padStart(8) +
        r.p99Ms.toFixed(1).padStart(9) + r.appCpuUs.toFixed(1).padStart(17) +
        `${Math.round(r.machineBusy * 100)} %`.padStart(15) + String(r.errors).padStart(9),
    );
  }
  return lines;
}

/**
 * The cluster section of docs/benchmarks.md (markers included): the figures as printed, what shares the
 * machine, and how the runs were made. Every figure comes from the report.
 */
export function clusterMarkdown(report: ClusterReport): string {
  const ratio = (scenario: string) => {
    const one = report.rows.find((r) => r.scenario === scenario && r.instances === 1)!;
    const three = report.rows.find((r) => r.scenario === scenario && r.instances === 3)!;
    return `${(three.rps / one.rps).toFixed(2)}x`;
  };
  const scenarios = [...new Set(report.rows.map((r) => r.scenario))];
  return `${CLUSTER_BEGIN}

## Several instances behind nginx

Generated by \`${report.command}\` on ${report.date}; to update the figures, run it again (it rewrites this
section only). How to deploy this is in [deploy.md](deploy.md#several-instances-behind-nginx).

**The ${report.cores} cores of this ${report.cpu} are shared by everything in the measurement**: nginx
(2 workers, \`worker_processes auto\`, terminating TLS), the Pier instances, PostgreSQL
${report.versions.postgres} (on the same machine) and wrk. Nothing is pinned. Three instances cannot run three times as fast on ${report.cores}
cores; what the ratio shows is what spreading the site's JavaScript over processes gains (or costs) when the
rest of the stack wants the same cores. Load average ${report.loadBefore} at the start, ${report.loadAfter} at
the end. Deno ${report.versions.deno}, ${report.versions.nginx}.

| scenario | 1 instance (req/s) | 3 instances (req/s) | 3 : 1 |
| --- | --- | --- | --- |
${
    scenarios.map((sc) => {
      const rps = (n: number) =>
        Math.round(report.rows.find((r) => r.scenario === sc && r.instances === n)!.rps);
      return `| ${sc} | ${rps(1)} | ${rps(3)} | **${ratio(sc)}** |`;
    }).join("\n")
  }

\`\`\`text
${clusterTable(report).join("\n")}
\`\`\`

- Setup: the repository's nginx.conf with its several-instances block (\`tests/fixtures/nginx_fixture.ts\`
  makes the same substitutions as \`tests/site/cluster_test.ts\`: loopback ports, a throwaway certificate, the POST
  rate limit removed), over HTTPS with keep-alive; 1 or 3 instances started with the start task's flags plus
  the shared upload folder in the write scope, \`--database\` one fresh PostgreSQL database (created for the
  run, dropped after), \`--uploads\` one folder, \`--idle-timeout 75s --quiet\`. Both setups run side by side;
  the one not measured is idle.
- \`wrk -t1 -c${CONNECTIONS} -d${report.seconds}s --latency\` with a Lua script, ${report.roundsCount} rounds
  interleaved (1 then 3, then 3 then 1, ...) after a 1 s warm-up of each; medians.
- **GET /**: ${VISITORS} returning visitors' session cookies (made beforehand) in turn; each request loads the
  session, counts the visit (one upsert in PostgreSQL, the count returned) and renders the home page.
- **POST /contact**: a valid form with \`Sec-Fetch-Site: same-origin\`, as a browser sends it; each request
  stores a message (one INSERT, committed before the answer) and gets a 303.
- **p99 ms**: the median over the rounds of wrk's 99th percentile. **app CPU µs/req**: the CPU time of all
  Pier instances together during a round over the requests answered (nginx, PostgreSQL and wrk not counted).
  **machine busy**: the share of all ${report.cores} cores' time that was not idle during a round
  (\`/proc/stat\`), everything on the machine included; near 100 % means the cores, not the site, set the
  rate.
- **errors**: non-2xx/3xx answers and socket errors over all rounds.

Per-round figures (req/s):

\`\`\`text
${
    report.rows.map((r) =>
      `  ${r.scenario} | ${r.instances} instance(s): ${r.rounds.map((x) => Math.round(x)).join(", ")}`
    ).join("\n")
  }
\`\`\`
${errorNotesMarkdown(report.errorNotes)}
${CLUSTER_END}
`;
}
