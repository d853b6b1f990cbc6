// Static files, Pier vs nginx on this machine in one run: wrk against a 4 KiB and a 1 MiB file, interleaved
// rounds, then the big-file check (a 512 MiB file to six slow clients while wrk measures other requests).
// Everything listens on 127.0.0.1 free ports, is bounded in time, and is cleaned up at the end.
//
//   deno run --allow-net=127.0.0.1 --allow-run --allow-read --allow-write --allow-env --allow-sys \
//     bench/static_bench.ts [--rounds 3] [--seconds 5] [--connections 50] [--skip-big]

import { startNginx } from "./_harness.ts";

const MAIN = new URL("../app/main.ts", import.meta.url).pathname;

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
const ROUNDS = arg("rounds", 3);
const SECONDS = arg("seconds", 5);
const CONNECTIONS = arg("connections", 50);
const SKIP_BIG = Deno.args.includes("--skip-big");

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listening on ${port}`);
}

/** The start task's flags, read from deno.json, so the bench runs the site as `deno task start` does. */
async function startFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const tokens = String(config.tasks.start).trim().split(/\s+/);
  return tokens.slice(2, tokens.indexOf("app/main.ts"));
}

interface Wrk {
  rps: number;
  p99ms: number;
  errors: string;
}

async function wrk(url: string, seconds: number, connections: number): Promise<Wrk> {
  const { stdout } = await new Deno.Command("wrk", {
    args: ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(text);
  const p99ms = p99 ? Number(p99[1]) * (p99[2] === "us" ? 0.001 : p99[2] === "s" ? 1000 : 1) : NaN;
  const errors = [/Non-2xx or 3xx responses: \d+/, /Socket errors: [^\n]+/].map((r) => r.exec(text)?.[0])
    .filter(Boolean).join("; ");
  return { rps, p99ms, errors };
}

/** Resident memory of a process in KiB, via cat (Deno needs --allow-all to read /proc directly). */
async function rssKiB(pid: number): Promise<number> {
  const { stdout } = await new Deno.Command("cat", { args: [`/proc/${pid}/status`], stdout: "piped" })
    .output();
  return Number(/VmRSS:\s+(\d+)/.exec(new TextDecoder().decode(stdout))?.[1] ?? 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const work = await Deno.makeTempDir({ prefix: "pier-static-bench-" });
await Deno.mkdir(`${work}/static`);
const rand = (n: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
};
await Deno.writeFile(`${work}/static/4k.bin`, rand(4096));
await Deno.writeFile(`${work}/static/1m.bin`, rand(1024 * 1024));

// nginx: one worker, sendfile on, access_log off, its own prefix dir (shared with `deno task bench`);
// not pinned, as nothing else in this bench is.
const nginx = await startNginx(work, `${work}/static`, false);
const nginxPort = nginx.port;

const pierPort = freePort();
const pier = new Deno.Command(Deno.execPath(), {
  args: ["run", ...(await startFlags()), MAIN, "--port", String(pierPort)],
  cwd: work,
  stdout: "null",
  stderr: "inherit",
}).spawn();

// The engine's ceiling: Pier answering the same bytes with the same headers from memory, no file system.
// The gap between it and "pier" is the static layer; the gap between it and nginx is the engine.
const memPort = freePort();
await Deno.writeTextFile(
  `${work}/mem_server.ts`,
  `import { serve } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
const files: Record<string, Uint8Array<ArrayBuffer>> = {
  "/4k.bin": await Deno.readFile("static/4k.bin"),
  "/1m.bin": await Deno.readFile("static/1m.bin"),
};
serve({ hostname: "127.0.0.1", port: ${memPort}, onListen() {} }, (req) => {
  const path = new URL(req.url).pathname;
  return new Response(files[path], { headers: {
    "content-type": "application/octet-stream", "x-content-type-options": "nosniff",
    "etag": '"1000-19ab3c4d5e6"', "last-modified": "Tue, 24 Nov 2026 02:35:00 GMT",
    "cache-control": "public, max-age=600", "accept-ranges": "bytes" } });
});
`,
);
const mem = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net=127.0.0.1",
    "--allow-read=static",
    "--config",
    new URL("../deno.json", import.meta.url).pathname,
    "mem_server.ts",
  ],
  cwd: work,
  stdout: "null",
  stderr: "inherit",
}).spawn();

try {
  await Promise.all([waitForPort(nginxPort), waitForPort(pierPort), waitForPort(memPort)]);
  const servers = { pier: pierPort, nginx: nginxPort, "pier-mem": memPort } as const;
  const files = ["4k.bin", "1m.bin"];
  const results: Record<string, number[]> = {};
  // Warm both (Pier's cache, JIT; nginx's page cache) before measuring.
  for (const [, port] of Object.entries(servers)) {
    for (const f of files) await wrk(`http://127.0.0.1:${port}/${f}`, 1, 10);
  }
  console.log(
    `wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} interleaved rounds, ` +
      `cores: ${navigator.hardwareConcurrency}`,
  );
  for (let round = 1; round <= ROUNDS; round++) {
    for (const f of files) {
      // Alternate who goes first so drift in the shared machine's load hits both.
      const order = round % 2
        ? ["pier", "nginx", "pier-mem"] as const
        : ["pier-mem", "nginx", "pier"] as const;
      for (const name of order) {
        const r = await wrk(`http://127.0.0.1:${servers[name]}/${f}`, SECONDS, CONNECTIONS);
        (results[`${name} ${f}`] ??= []).push(r.rps);
        console.log(
          `round ${round} ${name.padEnd(8)} ${f.padEnd(6)} ${r.rps.toFixed(0).padStart(8)} req/s  p99 ${
            r.p99ms.toFixed(2)
          } ms ${r.errors}`,
        );
      }
    }
  }
  for (const f of files) {
    const p = median(results[`pier ${f}`]);
    const n = median(results[`nginx ${f}`]);
    const m = median(results[`pier-mem ${f}`]);
    console.log(
      `${f}: pier ${p.toFixed(0)} req/s, nginx ${n.toFixed(0)} req/s (medians) -> ratio ${
        (p / n).toFixed(2)
      }x` +
        ` (target >= 0.80x); engine ceiling, same headers from memory: ${m.toFixed(0)} req/s = ${
          (m / n).toFixed(2)
        }x nginx`,
    );
  }

  if (!SKIP_BIG) {
    // 512 MiB to six clients at once, each limited to 40 MB/s so the server must hold back (backpressure)
    // rather than finish early; meanwhile wrk measures other requests' latency.
    const big = `${work}/static/big.bin`;
    {
      const f = await Deno.open(big, { write: true, create: true });
      const chunk = rand(1024 * 1024);
      for (let i = 0; i < 512; i++) await f.write(chunk);
      f.close();
    }
    await wrk(`http://127.0.0.1:${pierPort}/4k.bin`, 1, 10);
    const base = await rssKiB(pier.pid);
    let peak = base;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssKiB(pier.pid));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const started = performance.now();
    const curls = Array.from({ length: 6 }, () =>
      new Deno.Command("curl", {
        args: [
          "-s",
          "-o",
          "/dev/null",
          "--limit-rate",
          "40M",
          "-w",
          "%{http_code} %{size_download}",
          `http://127.0.0.1:${pierPort}/big.bin`,
        ],
        stdout: "piped",
      }).output());
    await new Promise((r) => setTimeout(r, 1000));
    const during = await wrk(`http://127.0.0.1:${pierPort}/4k.bin`, 8, 10);
    const outs = await Promise.all(curls);
    sampling = false;
    await sampler;
    const took = (performance.now() - started) / 1000;
    const codes = outs.map((o) => new TextDecoder().decode(o.stdout)).join(", ");
    console.log(`512 MiB x 6 clients (curl --limit-rate 40M): ${codes} in ${took.toFixed(1)} s`);
    console.log(
      `  server RSS before ${(base / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB, added ${
        ((peak - base) / 1024).toFixed(1)
      } MiB (target < 100 MiB)`,
    );
    console.log(
      `  meanwhile GET /4k.bin (wrk -t1 -c10 -d8s): ${during.rps.toFixed(0)} req/s, p99 ${
        during.p99ms.toFixed(2)
      } ms (target < 50 ms) ${during.errors}`,
    );
    await Deno.remove(big);
  }
} finally {
  pier.kill("SIGTERM");
  mem.kill("SIGTERM");
  await Promise.all([pier.status, nginx.stop(), mem.status]);
  await Deno.remove(work, { recursive: true });
}
