// Shared pieces of the benchmarks: start a server process pinned to one core, run wrk pinned to the
// other, read the server's CPU time and memory from /proc. Loopback only; every process is stopped.

/** A server process under test. */
export interface ServerProc {
  name: string;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

const CORES = navigator.hardwareConcurrency;
const HAS_TASKSET = await new Deno.Command("taskset", { args: ["-V"], stdout: "null", stderr: "null" })
  .output()
  .then((o) => o.success, () => false);

/** Run `cmd` pinned to `core` when there are two cores or more and taskset exists. */
export function pinned(core: number, cmd: string, args: string[]): [string, string[]] {
  if (!HAS_TASKSET || CORES < 2) return [cmd, args];
  return ["taskset", ["-c", String(core), cmd, ...args]];
}

/** Where the pinning stands, for the report. */
export function pinningNote(): string {
  return HAS_TASKSET && CORES >= 2
    ? `server pinned to CPU 0, wrk to CPU 1 (of ${CORES})`
    : `not pinned (${CORES} core(s), taskset ${HAS_TASKSET ? "present" : "missing"})`;
}

/**
 * Start a server command that prints `ready <port>` on stdout, and wait for that line.
 *
 * @param name A label for the report.
 * @param cmd The program.
 * @param args Its arguments.
 * @param cwd Working directory.
 */
export async function startServer(
  name: string,
  cmd: string,
  args: string[],
  cwd?: string,
): Promise<ServerProc> {
  const [c, a] = pinned(0, cmd, args);
  const child = new Deno.Command(c, { args: a, stdout: "piped", stderr: "inherit", cwd }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = Date.now() + 30_000;
  while (!/ready (\d+)/.test(seen)) {
    if (Date.now() > deadline) throw new Error(`${name}: no "ready" line in 30 s`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`${name}: exited before it was ready`);
    seen += value;
  }
  const port = Number(/ready (\d+)/.exec(seen)![1]);
  // Keep draining stdout so the server never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* closed */ }
  })();
  return {
    name,
    pid: child.pid,
    port,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await child.status;
      clearTimeout(t);
    },
  };
}

/** User + system CPU time of a process, in milliseconds (from /proc/PID/stat). */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name; clock ticks of 10 ms.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident memory of a process, in KiB (VmRSS from /proc/PID/status). */
export async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
}

/** One wrk run's result. */
export interface WrkResult {
  rps: number;
  requests: number;
  cpuUsPerReq: number;
  errors: number;
}

/**
 * Run wrk against a server and measure the server's CPU time over the run.
 *
 * @param server The server.
 * @param path The path to request.
 * @param opts Connections, duration, threads, and an optional Lua script.
 */
export async function wrk(
  server: ServerProc,
  path: string,
  opts: { connections: number; seconds: number; script?: string },
): Promise<WrkResult> {
  const args = ["-t1", `-c${opts.connections}`, `-d${opts.seconds}s`];
  if (opts.script) args.push("-s", opts.script);
  args.push(`http://127.0.0.1:${server.port}${path}`);
  const before = await cpuMs(server.pid);
  const [c, a] = pinned(1, "wrk", args);
  const out = await new Deno.Command(c, { args: a, stdout: "piped", stderr: "piped" }).output();
  const after = await cpuMs(server.pid);
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN);
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = (errs ? Number(errs[1]) : 0) + (sock ? sock.slice(1).reduce((s, n) => s + Number(n), 0) : 0);
  return { rps, requests, cpuUsPerReq: requests > 0 ? (after - before) * 1000 / requests : NaN, errors };
}

/** A Lua script for wrk that sends `depth` requests per write (HTTP pipelining). */
export async function pipelineScript(depth: number): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "pier_pipeline_", suffix: ".lua" });
  await Deno.writeTextFile(
    path,
    `init = function(args)
  local r = {}
  for i = 1, ${depth} do r[i] = wrk.format(nil) end
  req = table.concat(r)
end
request = function() return req end
`,
  );
  return path;
}

/** The median of some numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
