// `deno task bench`: Pier against Deno.serve, node:http (Deno's Node layer), Node.js and nginx on nine
// scenarios (plaintext keep-alive, pipelined x16, a new connection per request and keep-alive over TLS, a
// routed page, a 4 KiB and a 1 MiB static file by serveStatic alone, and the same two files through the whole
// site with its access log on, against nginx with its own), in interleaved rounds so a busy machine slows
// every server alike; then the memory of 10,000 held keep-alive connections. Prints one table of requests/s and server CPU
// time per request, with ratios to Pier. Needs wrk; nginx for its static rows, Node.js for its plaintext
// rows, openssl for the TLS row's throwaway certificate (each skipped with a note if missing).
// Then the `site` scenarios (bench/site.ts): the real site's home page for new and returning visitors, with
// its memory and database size. Then the `cluster` scenarios (bench/cluster.ts): the site through nginx in
// front of 1 and 3 instances sharing PostgreSQL, when PIER_BENCH_POSTGRES_URL or PIER_TEST_POSTGRES_URL
// names a server.
// Flags: --rounds N (3), --seconds S (5), --skip-memory, --only a,b (scenario ids: plaintext, pipelined,
// close, tls, routed, static-4k, static-1m, site-4k, site-1m; or "memory", "site", "cluster"),
// --write docs/benchmarks.md (also writes benchmarks.svg beside it; `--only site` and `--only cluster` write
// only the page's site or cluster section, and the other scenarios rewrite the page but keep those sections).
import {
  closesAfterAnswer,
  hasNginx,
  hasProgram,
  median,
  pinningNote,
  pipelineScript,
  randomBytes,
  selfSignedCert,
  type ServerProc,
  startNginx,
  startServer,
  wrk,
} from "./_harness.ts";
import { machineInfo, machineLine } from "./_machine.ts";
import { measureConnectionMemory } from "./conn_memory.ts";
import { ROUTED_PATH } from "./servers/routed.ts";
import {
  type Report,
  type Row,
  writeClusterSection,
  writeReport,
  writeSiteSection,
  writeWebSocketSection,
} from "./_report.ts";
import {
  CLUSTER_DB_VARS,
  clusterDatabaseUrl,
  clusterMarkdown,
  type ClusterReport,
  clusterTable,
  runCluster,
} from "./cluster.ts";
import { runSite, SITE_CONNECTIONS, siteMarkdown, type SiteReport, siteTable } from "./site.ts";
import {
  runWebSocket,
  WEBSOCKET_SCENARIOS,
  webSocketMarkdown,
  webSocketTable,
  type WsReport,
} from "./websocket.ts";

const args = Deno.args;
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const ROUNDS = Number(option("--rounds") ?? 3);
const SECONDS = Number(option("--seconds") ?? 5);
const ONLY = option("--only")?.split(",");
const WRITE = option("--write");
const CONNECTIONS = 50;
const APP = new URL("./servers/app.ts", import.meta.url).pathname;
const TEMPLATES = new URL("../templates", import.meta.url).pathname;
const NODE_HELLO = new URL("./servers/node_hello.mjs", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

type App = "hello" | "routed" | "static" | "site";
interface Scenario {
  id: string;
  label: string;
  app: App;
  path: string;
  pipelined?: boolean;
  /** wrk asks for `Connection: close`, so every request comes on a new TCP connection. */
  close?: boolean;
  /** Served over HTTPS (the servers that can) and asked for over it. */
  tls?: boolean;
  /** Servers left out: the Deno.listen floor never closes, so it has no figure for `close`. */
  without?: string[];
}
const SCENARIOS: Scenario[] = [
  { id: "plaintext", label: "plaintext, keep-alive", app: "hello", path: "/" },
  { id: "pipelined", label: "plaintext, pipelined x16", app: "hello", path: "/", pipelined: true },
  {
    id: "close",
    label: "plaintext, new connection per request",
    app: "hello",
    path: "/",
    close: true,
    without: ["Deno.listen floor"],
  },
  { id: "tls", label: "plaintext, keep-alive over TLS", app: "hello", path: "/", tls: true },
  { id: "routed", label: "routed page, 51 routes", app: "routed", path: ROUTED_PATH },
  { id: "static-4k", label: "static file, 4 KiB", app: "static", path: "/4k.bin" },
  { id: "static-1m", label: "static file, 1 MiB", app: "static", path: "/1m.bin" },
  // The same files through the whole site (createSite, its static-first path), its access log on, against
  // nginx with its default access log on.
  { id: "site-4k", label: "static 4 KiB via the site, logs on", app: "site", path: "/4k.bin" },
  { id: "site-1m", label: "static 1 MiB via the site, logs on", app: "site", path: "/1m.bin" },
];
const known = [
  ...SCENARIOS.map((s) => s.id),
  "memory",
  "site",
  "cluster",
  ...WEBSOCKET_SCENARIOS.map((s) => s.id),
];
for (const id of ONLY ?? []) {
  if (!known.includes(id)) {
    console.error(`--only ${id}: unknown; one or more of ${known.join(", ")}, comma-separated`);
    Deno.exit(2);
  }
}
const asked = SCENARIOS.filter((s) => !ONLY || ONLY.includes(s.id));
const HAS_OPENSSL = asked.some((s) => s.tls) && await hasProgram("openssl", ["version"]);
const selected = asked.filter((s) => !s.tls || HAS_OPENSSL);
const runMemory = !args.includes("--skip-memory") && (!ONLY || ONLY.includes("memory"));
/** The single-server scenarios or the memory figure: the page's main table (writeReport). */
const runMain = selected.length > 0 || runMemory;
const runSiteScenarios = !ONLY || ONLY.includes("site");
/** The WebSocket rows asked for (all of them without --only). */
const wsIds = WEBSOCKET_SCENARIOS.map((s) => s.id).filter((id) => !ONLY || ONLY.includes(id));
const CLUSTER_DB = clusterDatabaseUrl();
const runClusterScenarios = (!ONLY || ONLY.includes("cluster")) && CLUSTER_DB !== null;
if (ONLY?.includes("cluster") && CLUSTER_DB === null) {
  console.error(
    `--only cluster needs PostgreSQL: set ${CLUSTER_DB_VARS.join(" or ")} to a role with CREATEDB`,
  );
  Deno.exit(1);
}

if (!(await hasProgram("sh", ["-c", "command -v wrk"]))) {
  console.error("wrk is not installed (Debian: apt-get install wrk)");
  Deno.exit(1);
}
const HAS_NODE = await hasProgram("node", ["--version"]);
const HAS_NGINX = await hasNginx();
const notes: string[] = [];
if (!HAS_NODE) notes.push("Node.js not installed: its plaintext rows are skipped.");
if (!HAS_NGINX) notes.push("nginx not installed: its static-file rows are skipped.");
if (asked.some((s) => s.tls) && !HAS_OPENSSL) notes.push("openssl not installed: the TLS row is skipped.");
if (!ONLY && CLUSTER_DB === null) {
  console.log(`cluster scenarios skipped: set ${CLUSTER_DB_VARS.join(" or ")} to run them.`);
}
if (runClusterScenarios && !HAS_NGINX) {
  console.error("the cluster scenarios need nginx (Debian: apt-get install nginx)");
  Deno.exit(1);
}

/** The PEM files of the TLS scenario's certificate. */
interface TlsFiles {
  cert: string;
  key: string;
}
/**
 * A server that can run an app, over TLS when `tls` is given; null when it cannot (Node.js runs only the
 * plaintext answer; only Pier, Deno.serve and Node.js serve the TLS row).
 */
interface Contender {
  name: string;
  start(app: App, root: string, tls: TlsFiles | null): Promise<ServerProc> | null;
}
const denoServer = (kind: string, name: string): Contender => ({
  name,
  start: (app, root, tls) =>
    // The site rows are Pier's site against nginx only (pierSite below).
    app === "site" || (tls && kind !== "pier" && kind !== "deno")
      ? null
      : startServer(name, Deno.execPath(), [
        "run",
        "--config",
        CONFIG,
        "--allow-net=127.0.0.1",
        `--allow-read=${[root, ...(tls ? [tls.cert, tls.key] : [])].join(",")}`,
        APP,
        kind,
        app,
        ...(app === "static" ? [root] : []),
        ...(tls ? ["--cert", tls.cert, "--key", tls.key] : []),
      ]),
});
const pierPublic = denoServer("pier-public", "Pier, public API");
/** The portfolio site over a folder, its access log written to a file in `data` (app.ts's `site` app). */
const pierSite: Contender = {
  name: "Pier",
  start: (app, root, tls) => {
    if (app !== "site" || tls) return null;
    const data = `${root}/../site-data`;
    return Deno.mkdir(data, { recursive: true }).then(() =>
      startServer("Pier", Deno.execPath(), [
        "run",
        "--config",
        CONFIG,
        "--allow-net=127.0.0.1",
        `--allow-read=${root},${TEMPLATES},${data}`,
        `--allow-write=${data}`,
        APP,
        "pier",
        "site",
        root,
        data,
      ])
    );
  },
};
const CONTENDERS: Contender[] = [
  {
    name: "Pier",
    start: (app, root, tls) =>
      app === "site" ? pierSite.start(app, root, tls) : denoServer("pier", "Pier").start(app, root, tls),
  },
  // The engine with server/_fast.ts off: what the Deno fast paths are worth.
  pierPublic,
  denoServer("deno", "Deno.serve"),
  // Canned bytes on Deno.listen, parsing nothing: the ceiling of any engine on Deno.Conn (plaintext, and the
  // static files by serveStatic alone, each file's head and bytes joined once and sent in one write).
  {
    name: "Deno.listen floor",
    start: (app, root, tls) =>
      (app === "hello" || app === "static") && !tls
        ? denoServer("floor", "Deno.listen floor").start(app, root, null)
        : null,
  },
  denoServer("node", "node:http (Deno)"),
  {
    name: "Node.js node:http",
    start: (app, _root, tls) =>
      HAS_NODE && app === "hello"
        ? startServer("Node.js", "node", [NODE_HELLO, ...(tls ? ["--cert", tls.cert, "--key", tls.key] : [])])
        : null,
  },
  {
    name: "nginx",
    start: (app, root, tls) =>
      !HAS_NGINX || tls
        ? null
        : app === "static"
        ? startNginx(`${root}/..`, root)
        : app === "site"
        ? startNginx(`${root}/..`, root, true, { accessLog: true })
        : null,
  },
];

const work = await Deno.makeTempDir({ prefix: "pier_bench_" });
const root = `${work}/static`;
await Deno.mkdir(root);
await Deno.writeFile(`${root}/4k.bin`, randomBytes(4096));
await Deno.writeFile(`${root}/1m.bin`, randomBytes(1024 * 1024));
const pipeline = await pipelineScript(work, 16);
const tlsFiles = selected.some((s) => s.tls) ? await selfSignedCert(work) : null;

const before = await machineInfo();
const header = [
  `Pier benchmark: wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} interleaved rounds, ${pinningNote()}`,
  `${machineLine(before)}, load average ${before.load} at start`,
];
// The single-server scenarios' setup; the cluster scenarios print their own.
if (runMain) console.log(header.join("\n"));
for (const n of notes) console.log(n);
console.log();

const results = new Map<
  string,
  { rps: number[]; cpu: number[]; errors: number; requests: number; accepted: number }
>();
/** wrk's description of every round that had errors, for the report. */
const errorNotes: string[] = [];
const serversOf = new Map<string, string[]>();
/** A finding about the run that belongs beside the table (a server that did not close), printed at once. */
const note = (text: string) => {
  console.log(text);
  notes.push(text);
};
try {
  for (const app of ["hello", "routed", "static", "site"] as const) {
    // The TLS scenario needs its own processes: a server listens either with TLS or without.
    for (const tls of [false, true]) {
      const scenarios = selected.filter((s) => s.app === app && !!s.tls === tls);
      if (!scenarios.length) continue;
      const servers: ServerProc[] = [];
      try {
        for (const c of CONTENDERS) {
          const s = await c.start(app, root, tls ? tlsFiles : null);
          if (s) servers.push({ ...s, name: c.name });
        }
        for (const sc of scenarios) {
          const contenders = servers.filter((s) => !sc.without?.includes(s.name));
          serversOf.set(sc.id, contenders.map((s) => s.name));
          if (sc.close) {
            // wrk closes a connection itself after an answer that says `Connection: close`, so only a raw
            // socket shows whether the server closes it.
            for (const s of contenders) {
              const wrong = await closesAfterAnswer(s.port);
              if (wrong) note(`${sc.label}: ${s.name} ${wrong}.`);
            }
          }
          const run = (s: ServerProc, seconds: number) =>
            wrk(s, sc.path, {
              connections: CONNECTIONS,
              seconds,
              script: sc.pipelined ? pipeline : undefined,
              headers: sc.close ? ["Connection: close"] : undefined,
              tls: sc.tls,
            });
          // Warm up (JIT, caches, connection setup), not counted.
          for (const s of contenders) await run(s, 1);
          for (let round = 0; round < ROUNDS; round++) {
            // Alternate the order so drift in the machine's load does not always favour the same server.
            const order = round % 2 ? [...contenders].reverse() : contenders;
            for (const s of order) {
              const r = await run(s, SECONDS);
              const key = `${sc.id}|${s.name}`;
              const acc = results.get(key) ?? { rps: [], cpu: [], errors: 0, requests: 0, accepted: 0 };
              acc.rps.push(r.rps);
              acc.cpu.push(r.cpuUsPerReq);
              acc.errors += r.errors;
              acc.requests += r.requests;
              acc.accepted += r.accepted;
              if (r.errors > 0) {
                errorNotes.push(`  ${sc.label} | ${s.name}, round ${round + 1}: ${r.errorText}`);
              }
              // Every answered request needs a connection of its own; fewer means some were reused.
              if (sc.close && r.accepted < r.requests) {
                note(
                  `${sc.label}: ${s.name}, round ${round + 1}: ${r.accepted} connections for ${r.requests}` +
                    " requests (some connections were kept alive).",
                );
              }
              results.set(key, acc);
            }
          }
        }
      } finally {
        for (const s of servers) await s.stop();
      }
    }
  }
} finally {
  // Retry once: a server that just exited may still be letting go of a file in there.
  await Deno.remove(work, { recursive: true }).catch(async () => {
    await new Promise((r) => setTimeout(r, 1000));
    await Deno.remove(work, { recursive: true }).catch((e) =>
      console.error(`could not remove ${work}: ${e}`)
    );
  });
}

const rows: Row[] = [];
for (const sc of selected) {
  const pier = results.get(`${sc.id}|Pier`)!;
  const pierRps = median(pier.rps);
  const pierCpu = median(pier.cpu);
  for (const name of serversOf.get(sc.id) ?? []) {
    const r = results.get(`${sc.id}|${name}`)!;
    const rps = median(r.rps);
    const cpu = median(r.cpu);
    rows.push({
      scenario: sc.label,
      server: name,
      rps,
      cpuUs: cpu,
      rpsVsPier: rps / pierRps,
      cpuVsPier: cpu / pierCpu,
      errors: r.errors,
      rounds: r.rps,
    });
  }
}

const COLUMNS = [
  ["scenario", 39],
  ["server", 20],
  ["req/s", 9],
  ["vs Pier", 9],
  ["CPU µs/req", 12],
  ["vs Pier", 9],
  ["errors", 0],
] as const;
const line = (cells: string[]) =>
  cells.map((c, i) => i >= 2 && i <= 5 ? c.padStart(COLUMNS[i][1] - 2) + "  " : c.padEnd(COLUMNS[i][1]))
    .join("").trimEnd();
const table = [line(COLUMNS.map(([h]) => h))];
for (const r of rows) {
  table.push(line([
    r.scenario,
    r.server,
    Math.round(r.rps).toString(),
    `${r.rpsVsPier.toFixed(2)}x`,
    r.cpuUs.toFixed(1),
    `${r.cpuVsPier.toFixed(2)}x`,
    String(r.errors),
  ]));
}
const rounds = rows.map((r) => {
  const line = `  ${r.scenario} | ${r.server}: ${r.rounds.map((x) => Math.round(x)).join(", ")}`;
  const sc = selected.find((s) => s.label === r.scenario)!;
  if (!sc.close) return line;
  // The check that each request came on a connection of its own: at least 1 (above it: wrk's last
  // connections, unanswered, and anything else the machine accepted meanwhile).
  const acc = results.get(`${sc.id}|${r.server}`)!;
  return `${line} (${(acc.accepted / acc.requests).toFixed(3)} connections accepted per request)`;
});
if (selected.length > 0) {
  console.log(table.join("\n"));
  console.log(
    "\nreq/s and CPU: medians over the rounds; vs Pier: that server's figure over Pier's (req/s above 1: faster" +
      " than Pier; CPU above 1: more CPU per request than Pier).",
  );
  console.log("\nrounds (req/s):\n" + rounds.join("\n"));
  if (errorNotes.length) console.log("\nerrors, as wrk reported them:\n" + errorNotes.join("\n"));
}

let memory: Report["memory"] = null;
if (runMemory) {
  console.log("\n10,000 keep-alive connections, each answered once and held open:");
  const mem = [];
  for (const c of [CONTENDERS[0], CONTENDERS[2]]) {
    mem.push({
      name: c.name,
      ...(await measureConnectionMemory(() => c.start("hello", "/nonexistent", null)!)),
    });
  }
  const memLines = mem.map((m) =>
    `  ${m.name.padEnd(12)} baseline ${(m.baselineKiB / 1024).toFixed(1)} MiB, held ${
      (m.heldKiB / 1024).toFixed(1)
    } MiB: ${m.perConnKiB.toFixed(2)} KiB per connection`
  );
  memLines.push(`  Pier / Deno.serve per connection: ${(mem[0].perConnKiB / mem[1].perConnKiB).toFixed(2)}x`);
  console.log(memLines.join("\n"));
  memory = { lines: memLines, perConnKiB: mem.map((m) => ({ name: m.name, kib: m.perConnKiB })) };
}

let site: SiteReport | null = null;
if (runSiteScenarios) {
  console.log(
    `\nThe site's home page (GET /), new and returning visitors: wrk -t1 -c${SITE_CONNECTIONS} ` +
      `-d${SECONDS}s, ${ROUNDS} interleaved rounds, ${pinningNote()}`,
  );
  try {
    site = await runSite({
      rounds: ROUNDS,
      seconds: SECONDS,
      command: `bench/run.ts ${args.join(" ")}`.trim(),
    });
    console.log("\n" + siteTable(site).join("\n"));
  } catch (err) {
    // The site is the part of the repository most often mid-change: a site that fails to start must not
    // throw away the figures measured before it. The run still fails, and its page section is left as it was.
    console.error(`site scenarios failed: ${(err as Error).message}`);
    Deno.exitCode = 1;
  }
}

let cluster: ClusterReport | null = null;
if (runClusterScenarios) {
  console.log(
    "\nSeveral instances behind nginx (HTTPS), sharing PostgreSQL: 1 and 3 instances, interleaved:",
  );
  cluster = await runCluster({
    adminUrl: CLUSTER_DB!,
    rounds: ROUNDS,
    seconds: SECONDS,
    command: `bench/run.ts ${args.join(" ")}`.trim(),
  });
  console.log("\n" + clusterTable(cluster).join("\n"));
}

let websocket: WsReport | null = null;
if (wsIds.length > 0) {
  console.log("");
  websocket = await runWebSocket(wsIds, {
    rounds: ROUNDS,
    seconds: SECONDS,
    command: `bench/run.ts ${args.join(" ")}`.trim(),
  });
  console.log(webSocketTable(websocket).join("\n"));
}

const after = await machineInfo();
console.log(`\nload average ${after.load} at the end`);

if (WRITE && websocket) {
  await writeWebSocketSection(WRITE, webSocketMarkdown(websocket));
  console.log(`wrote the websocket section of ${WRITE}`);
}

if (WRITE && site) {
  await writeSiteSection(WRITE, siteMarkdown(site));
  console.log(`wrote the site section of ${WRITE}`);
}
if (WRITE && cluster) {
  await writeClusterSection(WRITE, clusterMarkdown(cluster));
  console.log(`wrote the cluster section of ${WRITE}`);
}
if (WRITE && runMain) {
  const nginxVersion = HAS_NGINX
    ? new TextDecoder().decode(
      (await new Deno.Command("nginx", { args: ["-v"], stderr: "piped" }).output()).stderr,
    )
      .trim()
    : "not installed";
  const nodeVersion = HAS_NODE
    ? new TextDecoder().decode(
      (await new Deno.Command("node", { args: ["--version"], stdout: "piped" }).output())
        .stdout,
    ).trim()
    : "not installed";
  const svg = await writeReport(WRITE, {
    command: `bench/run.ts ${args.join(" ")}`.trim(),
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    header,
    machine: before,
    loadAfter: after.load,
    versions: { deno: Deno.version.deno, v8: Deno.version.v8, node: nodeVersion, nginx: nginxVersion },
    pinning: pinningNote(),
    notes,
    table,
    rounds,
    errorNotes,
    rows,
    memory,
  });
  console.log(`wrote ${WRITE} and ${svg}`);
}
