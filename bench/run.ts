// `deno task bench`: Pier against Deno.serve and node:http with the same hello-world answer, keep-alive
// and pipelined (depth 16), in interleaved rounds so a busy machine slows every server alike; then the
// memory of 10,000 held keep-alive connections. Prints a table of requests/s, server CPU time per request
// and ratios. Needs wrk (Debian). Flags: --rounds N (3), --seconds S (5), --skip-memory.
import { median, pinningNote, pipelineScript, type ServerProc, startServer, wrk } from "./_harness.ts";
import { measureConnectionMemory } from "./conn_memory.ts";

const args = Deno.args;
const flag = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const ROUNDS = flag("--rounds", 3);
const SECONDS = flag("--seconds", 5);
const CONNECTIONS = 50;
const HELLO = new URL("./servers/hello.ts", import.meta.url).pathname;
const NODE_HELLO = new URL("./servers/node_hello.mjs", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

const hasNode = await new Deno.Command("node", { args: ["--version"], stdout: "null", stderr: "null" })
  .output()
  .then((o) => o.success, () => false);

interface Contender {
  name: string;
  start(): Promise<ServerProc>;
}
const deno = (kind: string, name: string): Contender => ({
  name,
  start: () => startServer(name, Deno.execPath(), ["run", "--config", CONFIG, "--allow-net", HELLO, kind]),
});
const contenders: Contender[] = [
  deno("pier", "Pier"),
  deno("deno", "Deno.serve"),
  deno("node", "node:http (Deno)"),
];
if (hasNode) {
  contenders.push({
    name: "node:http (Node.js)",
    start: () => startServer("node", "node", [NODE_HELLO]),
  });
}

const pipeline = await pipelineScript(16);
const scenarios = [
  { name: "plaintext, keep-alive", script: undefined },
  { name: "plaintext, pipelined x16", script: pipeline },
];

console.log(
  `Pier benchmark: wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} interleaved rounds, ${pinningNote()}`,
);
console.log(`Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, ${Deno.build.target}\n`);

const servers: ServerProc[] = [];
try {
  for (const c of contenders) servers.push(await c.start());
  const results = new Map<string, { rps: number[]; cpu: number[]; errors: number }>();
  for (const sc of scenarios) {
    for (const s of servers) {
      // Warm up (JIT, connection setup), not counted.
      await wrk(s, "/", { connections: CONNECTIONS, seconds: 1, script: sc.script });
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of servers) {
        const r = await wrk(s, "/", { connections: CONNECTIONS, seconds: SECONDS, script: sc.script });
        const key = `${sc.name}|${s.name}`;
        const acc = results.get(key) ?? { rps: [], cpu: [], errors: 0 };
        acc.rps.push(r.rps);
        acc.cpu.push(r.cpuUsPerReq);
        acc.errors += r.errors;
        results.set(key, acc);
      }
    }
  }

  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(
    `${pad("scenario", 26)}${pad("server", 22)}${pad("req/s (median)", 16)}${pad("CPU µs/req", 12)}${
      pad("Pier is", 10)
    }errors`,
  );
  for (const sc of scenarios) {
    const pier = median(results.get(`${sc.name}|Pier`)!.rps);
    for (const s of servers) {
      const r = results.get(`${sc.name}|${s.name}`)!;
      const rps = median(r.rps);
      const ratio = s.name === "Pier" ? "" : `${(pier / rps).toFixed(2)}x`;
      console.log(
        `${pad(sc.name, 26)}${pad(s.name, 22)}${pad(Math.round(rps).toString(), 16)}${
          pad(median(r.cpu).toFixed(2), 12)
        }${pad(ratio, 10)}${r.errors}`,
      );
    }
  }
  console.log("\nrounds (req/s):");
  for (const [k, v] of results) console.log(`  ${k}: ${v.rps.map((x) => Math.round(x)).join(", ")}`);
} finally {
  for (const s of servers) await s.stop();
  await Deno.remove(pipeline).catch(() => {});
}

if (!args.includes("--skip-memory")) {
  console.log("\n10,000 keep-alive connections, each answered once and held open:");
  const mem = [];
  for (const c of contenders.slice(0, 2)) {
    mem.push({ name: c.name, ...(await measureConnectionMemory(c.start)) });
  }
  for (const m of mem) {
    console.log(
      `  ${m.name.padEnd(12)} baseline ${(m.baselineKiB / 1024).toFixed(1)} MiB, held ${
        (m.heldKiB / 1024).toFixed(1)
      } MiB: ${m.perConnKiB.toFixed(2)} KiB per connection`,
    );
  }
  console.log(`  Pier / Deno.serve per connection: ${(mem[0].perConnKiB / mem[1].perConnKiB).toFixed(2)}x`);
}
