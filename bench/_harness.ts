// Shared pieces of the benchmarks: start a server process pinned to one core, run wrk pinned to the
// other, read the server's CPU time and memory from /proc, start nginx on a folder. Loopback only; every
// process started here has a stop() and is stopped by the caller. /proc is read through `cat`: Deno asks
// for --allow-all to read /proc directly, and --allow-run is needed for wrk anyway.

/** A server process under test. */
export interface ServerProc {
  name: string;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

const CORES = navigator.hardwareConcurrency;

async function runs(cmd: string, args: string[]): Promise<boolean> {
  return await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output()
    .then((o) => o.success, () => false);
}

const HAS_TASKSET = await runs("taskset", ["-V"]);

/** Whether a program answers `args` successfully (`wrk -v` exits 1, so ask for something that exits 0). */
export function hasProgram(cmd: string, args: string[]): Promise<boolean> {
  return runs(cmd, args);
}

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

/** A free TCP port on 127.0.0.1 (for servers, like nginx, that cannot report the one they got). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitForPort(port: number, name: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${name}: nothing listening on 127.0.0.1:${port} after 15 s`);
}

/** How {@link startServer} learns the port and stops the process. */
export interface StartOptions {
  cwd?: string;
  /** The port the server was told to use; without it, wait for a `ready <port>` line on stdout. */
  port?: number;
  /** The signal for a graceful stop. Default SIGTERM. */
  signal?: Deno.Signal;
  /** Pin to CPU 0. Default true. */
  pin?: boolean;
  /** The whole environment of the process, instead of the bench's (to leave a variable out). */
  env?: Record<string, string>;
}

/**
 * Start a server pinned to CPU 0 and wait until it listens: for a `ready <port>` line on stdout, or, when
 * `options.port` is given, for a connection to that port to succeed.
 *
 * @param name A label for the report.
 * @param cmd The program.
 * @param args Its arguments.
 * @param options Working directory, a known port, the stop signal.
 */
export async function startServer(
  name: string,
  cmd: string,
  args: string[],
  options: StartOptions = {},
): Promise<ServerProc> {
  const [c, a] = options.pin === false ? [cmd, args] : pinned(0, cmd, args);
  const child = new Deno.Command(c, {
    args: a,
    stdout: "piped",
    stderr: "inherit",
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.env !== undefined,
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stop = async () => {
    try {
      child.kill(options.signal ?? "SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await child.status;
    clearTimeout(t);
  };
  let port = options.port ?? 0;
  try {
    if (options.port === undefined) {
      let seen = "";
      const deadline = Date.now() + 30_000;
      while (!/ready (\d+)/.test(seen)) {
        if (Date.now() > deadline) throw new Error(`${name}: no "ready" line in 30 s`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`${name}: exited before it was ready`);
        seen += value;
      }
      port = Number(/ready (\d+)/.exec(seen)![1]);
    } else {
      await waitForPort(options.port, name);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  // Keep draining stdout so the server never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* closed */ }
  })();
  return { name, pid: child.pid, port, stop };
}

async function cat(paths: string[]): Promise<string> {
  const out = await new Deno.Command("cat", { args: paths, stdout: "piped", stderr: "null" }).output();
  return new TextDecoder().decode(out.stdout);
}

/** A process and its descendants (nginx answers from a worker, the child of the pid we started). */
async function processTree(pid: number): Promise<number[]> {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    const children = await cat([`/proc/${all[i]}/task/${all[i]}/children`]);
    for (const c of children.trim().split(/\s+/)) if (c) all.push(Number(c));
  }
  return all;
}

/** User + system CPU time of a process and its children, in milliseconds (from /proc/PID/stat). */
export async function cpuMs(pid: number): Promise<number> {
  const pids = await processTree(pid);
  const text = await cat(pids.map((p) => `/proc/${p}/stat`));
  let ticks = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    const fields = line.slice(line.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name; clock ticks of 10 ms.
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * 10;
}

/** Resident memory of a process, in KiB (VmRSS from /proc/PID/status). */
export async function rssKiB(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+) kB/.exec(await cat([`/proc/${pid}/status`]))?.[1] ?? NaN);
}

/** One wrk run's result. */
export interface WrkResult {
  rps: number;
  requests: number;
  cpuUsPerReq: number;
  /**
   * TCP connections the machine accepted during the run (PassiveOpens in /proc/net/snmp): about `requests`
   * when the server closes after every answer, a handful when it keeps them alive.
   */
  accepted: number;
  /** Non-2xx/3xx answers plus socket errors. */
  errors: number;
  /** Answers wrk counted as errors by their status (4xx and 5xx; wrk's "Non-2xx or 3xx responses"). */
  badStatus: number;
  /** Socket errors: connect, read, write and timeout together. */
  socketErrors: number;
  /** wrk's own words for the errors ("Non-2xx or 3xx responses: 3; Socket errors: ..."), or "". */
  errorText: string;
}

/** TCP connections accepted so far by this machine (network namespace), from /proc/net/snmp. */
async function passiveOpens(): Promise<number> {
  const lines = (await cat(["/proc/net/snmp"])).split("\n").filter((l) => l.startsWith("Tcp:"));
  const names = lines[0]?.split(/\s+/) ?? [];
  return Number(lines[1]?.split(/\s+/)[names.indexOf("PassiveOpens")] ?? NaN);
}

/** How wrk asks: the Lua script, extra header lines, TLS. */
export interface WrkOptions {
  connections: number;
  seconds: number;
  /** A Lua script (see {@link pipelineScript}). */
  script?: string;
  /** Header lines added to every request, e.g. "Connection: close". */
  headers?: string[];
  /** Ask over https:// (wrk does not check the certificate). */
  tls?: boolean;
}

/**
 * Run wrk against a server and measure the server's CPU time over the run.
 *
 * @param server The server.
 * @param path The path to request.
 * @param opts Connections, duration, and an optional Lua script, header lines and TLS.
 */
export async function wrk(server: ServerProc, path: string, opts: WrkOptions): Promise<WrkResult> {
  const args = ["-t1", `-c${opts.connections}`, `-d${opts.seconds}s`];
  if (opts.script) args.push("-s", opts.script);
  for (const h of opts.headers ?? []) args.push("-H", h);
  args.push(`${opts.tls ? "https" : "http"}://127.0.0.1:${server.port}${path}`);
  const before = await cpuMs(server.pid);
  const opensBefore = await passiveOpens();
  const [c, a] = pinned(1, "wrk", args);
  const out = await new Deno.Command(c, { args: a, stdout: "piped", stderr: "piped" }).output();
  const opensAfter = await passiveOpens();
  const after = await cpuMs(server.pid);
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN);
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const badStatus = errs ? Number(errs[1]) : 0;
  const socketErrors = sock ? sock.slice(1).reduce((s, n) => s + Number(n), 0) : 0;
  const errorText = [errs?.[0], sock?.[0]].filter(Boolean).join("; ");
  return {
    rps,
    requests,
    cpuUsPerReq: requests > 0 ? (after - before) * 1000 / requests : NaN,
    accepted: opensAfter - opensBefore,
    errors: badStatus + socketErrors,
    badStatus,
    socketErrors,
    errorText,
  };
}

/**
 * Whether a server closes the connection after answering a request that asks it to (`Connection: close`),
 * by itself: one request on a raw socket, then the socket is read until the server closes it.
 *
 * @param port The server's port on 127.0.0.1.
 * @returns "" when it answered 200 with `Connection: close` and closed within 5 s, else what went wrong.
 */
export async function closesAfterAnswer(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, 5000);
  let text = "";
  try {
    await conn.write(
      new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    );
    const buf = new Uint8Array(4096);
    const decoder = new TextDecoder();
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
  } catch (e) {
    if (!timedOut) {
      conn.close();
      return `the connection failed: ${e}`;
    }
  } finally {
    clearTimeout(timer);
  }
  if (!timedOut) conn.close();
  const head = text.slice(0, text.indexOf("\r\n\r\n"));
  if (!/^HTTP\/1\.1 200 /.test(head)) return `answered ${JSON.stringify(head.split("\r\n")[0] ?? "")}`;
  if (timedOut) return "did not close the connection within 5 s";
  if (!/^connection:\s*close\s*$/im.test(head)) return "closed without a Connection: close header";
  return "";
}

/** A Lua script for wrk that sends `depth` requests per write (HTTP pipelining), written into `dir`. */
export async function pipelineScript(dir: string, depth: number): Promise<string> {
  const path = `${dir}/pipeline_${depth}.lua`;
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

/**
 * A throwaway self-signed certificate for 127.0.0.1 (an EC P-256 key, as most sites use; PEM files), made
 * with openssl in `dir`.
 *
 * @returns The paths of the certificate and of its key.
 */
export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`, key = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256"],
      ...["-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
      ...["-keyout", key, "-out", cert],
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl req failed: ${new TextDecoder().decode(out.stderr)}`);
  return { cert, key };
}

/** Random bytes (getRandomValues fills at most 64 KiB per call). */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

/** Whether nginx is installed. */
export function hasNginx(): Promise<boolean> {
  return hasProgram("nginx", ["-v"]);
}

/**
 * Start nginx serving `root` on a free 127.0.0.1 port: one worker (one core, like the Deno servers),
 * sendfile on, access_log off (or on, in its default format, with `accessLog`), its own prefix folder under
 * `work` so nothing touches /etc or /var.
 *
 * @param work A scratch folder that must be readable by nginx's worker user (made 0755 here).
 * @param root The folder served at `/`.
 * @param pin Pin it to CPU 0 like the other servers. Default true.
 * @param options `accessLog`: write nginx's default access log (to its prefix folder). Default off.
 */
export async function startNginx(
  work: string,
  root: string,
  pin = true,
  options: { accessLog?: boolean } = {},
): Promise<ServerProc> {
  await Deno.chmod(work, 0o755); // the worker may run as nobody
  // With the access log on: nginx's default (the combined format, one buffered write per request), to
  // compare with a server that logs its requests too.
  const prefix = `${work}/nginx${options.accessLog ? "-logged" : ""}`;
  await Deno.mkdir(`${prefix}/logs`, { recursive: true });
  const port = freePort();
  await Deno.writeTextFile(
    `${prefix}/nginx.conf`,
    `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${options.accessLog ? `${prefix}/logs/access.log` : "off"};
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${prefix}/tmp;
  proxy_temp_path ${prefix}/tmp;
  fastcgi_temp_path ${prefix}/tmp;
  uwsgi_temp_path ${prefix}/tmp;
  scgi_temp_path ${prefix}/tmp;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`,
  );
  return await startServer("nginx", "nginx", ["-p", `${prefix}/`, "-c", `${prefix}/nginx.conf`], {
    port,
    signal: "SIGQUIT",
    pin,
  });
}

/** The median of some numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
