// Where Pier's plaintext keep-alive time goes: the same hello handler on a ladder of servers, each adding
// one piece to a canned-bytes Deno.listen loop (bench/ladder/): the floor, the handler contract (Request and
// Response), Pier's parser, then Pier; Deno.serve beside them. wrk keep-alive, interleaved rounds, server
// pinned to CPU 0 and wrk to CPU 1; prints the machine (CPU model, cores, Deno), then each step's req/s and
// CPU µs per request, medians.
//
// Usage: deno run --allow-run --allow-read --allow-net=127.0.0.1 bench/ladder.ts [--rounds 5] [--seconds 4]
import { cpuMs, median } from "./_harness.ts";
import { machineInfo, machineLine } from "./_machine.ts";

const arg = (name: string, fallback: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
};
const ROUNDS = arg("--rounds", 5);
const SECONDS = arg("--seconds", 4);
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const STEPS = [
  ["Deno.serve", "deno_serve.ts"],
  ["floor: canned bytes", "floor.ts"],
  ["+ Request/Response", "contract.ts"],
  ["+ parser", "parser.ts"],
  ["Pier", "pier.ts"],
] as const;

interface Step {
  name: string;
  proc: Deno.ChildProcess;
  port: number;
  rps: number[];
  cpu: number[];
}
const machine = await machineInfo();
console.log(`${machineLine(machine)}, load average ${machine.load} at start`);
const steps: Step[] = [];
try {
  for (const [name, file] of STEPS) {
    const script = new URL(`./ladder/${file}`, import.meta.url).pathname;
    const proc = new Deno.Command("taskset", {
      args: ["-c", "0", Deno.execPath(), "run", "--config", CONFIG, "--allow-net=127.0.0.1", script],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/ready \d+/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${name} exited before listening`);
      text += value;
    }
    reader.releaseLock();
    steps.push({ name, proc, port: Number(/ready (\d+)/.exec(text)![1]), rps: [], cpu: [] });
  }
  const wrk = async (port: number, seconds: number) => {
    const out = await new Deno.Command("taskset", {
      args: ["-c", "1", "wrk", "-t1", "-c50", `-d${seconds}s`, `http://127.0.0.1:${port}/`],
    }).output();
    const m = /(\d+) requests in/.exec(new TextDecoder().decode(out.stdout));
    if (!out.success || !m) throw new Error("wrk failed");
    return Number(m[1]);
  };
  for (const s of steps) await wrk(s.port, 1); // warm up the JIT
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...steps].reverse() : steps;
    for (const s of order) {
      const before = await cpuMs(s.proc.pid);
      const n = await wrk(s.port, SECONDS);
      const after = await cpuMs(s.proc.pid);
      s.rps.push(n / SECONDS);
      s.cpu.push((after - before) * 1000 / n);
    }
  }
  const ref = median(steps[0].rps);
  console.log(`wrk -t1 -c50 -d${SECONDS}s keep-alive, ${ROUNDS} interleaved rounds, medians`);
  console.log("step                    req/s   vs Deno.serve   CPU µs/req");
  for (const s of steps) {
    console.log(
      `${s.name.padEnd(22)}${Math.round(median(s.rps)).toString().padStart(8)}` +
        `${(median(s.rps) / ref).toFixed(2).padStart(14)}x${median(s.cpu).toFixed(2).padStart(13)}`,
    );
  }
} finally {
  for (const s of steps) {
    try {
      s.proc.kill();
      await s.proc.status;
    } catch { /* gone */ }
  }
}
