// The three servers of the conformance harness, each a child process on 127.0.0.1 and a port the system
// picks: Pier and Deno.serve (serve_app.ts on this Deno) and Node.js's own http server (node_app.mjs on real
// `node`). Whoever starts them must stop them; a failed start stops the ones already running.

/** Which server: the harness's three, in the order of the page's columns. */
export type ServerName = "pier" | "deno" | "node";

/** The servers in column order, with the names the page shows. */
export const SERVERS: readonly { name: ServerName; label: string }[] = [
  { name: "pier", label: "Pier" },
  { name: "deno", label: "Deno.serve" },
  { name: "node", label: "Node.js" },
];

/** A running server process. */
export interface RunningServer {
  name: ServerName;
  port: number;
  /** Kill it (SIGTERM, then SIGKILL after 3 s) and wait until it has exited. */
  stop(): Promise<void>;
}

const HERE = new URL(".", import.meta.url);
const path = (file: string) => new URL(file, HERE).pathname;

/** The program and arguments that run one server. */
function command(name: ServerName): [string, string[]] {
  if (name === "node") return ["node", [path("node_app.mjs")]];
  // `deno` by name, not Deno.execPath(): --allow-run=deno allows the name, while the executable's real path
  // differs from machine to machine (npm puts it under node_modules).
  return ["deno", ["run", "--quiet", "--allow-net=127.0.0.1", path("serve_app.ts"), name]];
}

/** Start one server and wait for its "ready <port>" line. */
async function start(name: ServerName): Promise<RunningServer> {
  const [cmd, args] = command(name);
  // stdin stays open and unused: the server exits when it closes, so even a killed harness leaves no orphan.
  const child = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  let errors = "";
  const stderrDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (text) => void (errors += text) }),
  ).catch(() => {});
  const stop = async () => {
    await child.stdin.close().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 3000);
    await child.status;
    clearTimeout(timer);
    await stderrDone;
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let seen = "";
    const deadline = setTimeout(() => reader.cancel(), 30_000);
    try {
      while (!/ready (\d+)/.test(seen)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`${name} server exited or gave no "ready" line in 30 s:\n${seen}${errors}`);
        seen += value;
      }
    } finally {
      clearTimeout(deadline);
    }
    const port = Number(/ready (\d+)/.exec(seen)![1]);
    // Keep draining stdout so a chatty server never blocks on a full pipe.
    (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })().catch(() => {});
    return { name, port, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Start the three servers; if one fails to start, the others are stopped before the error is thrown.
 *
 * @returns The running servers in column order. Stop them with {@link stopServers} in a `finally`.
 */
export async function startServers(): Promise<RunningServer[]> {
  const started = await Promise.allSettled(SERVERS.map((s) => start(s.name)));
  const running = started.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
  const failed = started.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
  if (failed.length > 0) {
    await stopServers(running);
    throw failed[0];
  }
  return running;
}

/**
 * Stop every server given, waiting for each process to exit.
 *
 * @param servers What {@link startServers} returned.
 */
export async function stopServers(servers: RunningServer[]): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()));
}
