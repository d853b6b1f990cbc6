// The `ws-*` rows of `deno task bench`: WebSocket echo against Pier's upgradeWebSocket and Deno.serve's
// Deno.upgradeWebSocket in the same run, interleaved rounds, each server pinned to CPU 0 and the load client
// (bench/websocket_load.ts, our own: wrk speaks no WebSocket) to CPU 1. Reports messages/s, MB/s of
// messages, the server's CPU time per message, and the bytes on the wire per message (both ways, frames
// and all), which is what compression changes. Loopback only.
import { cpuMs, median, pinned, pinningNote, type ServerProc, startServer } from "./_harness.ts";
import { machineInfo, machineLine } from "./_machine.ts";
import { WEBSOCKET_BEGIN, WEBSOCKET_END } from "./_report.ts";

/** One row: a message size, how many connections keep how many messages in flight, compression offered. */
interface WsScenario {
  id: string;
  label: string;
  bytes: number;
  connections: number;
  window: number;
  deflate: boolean;
}

/** The rows, by id (`--only ws-64,ws-64k,ws-64k-deflate`). */
export const WEBSOCKET_SCENARIOS: readonly WsScenario[] = [
  {
    id: "ws-64",
    label: "echo 64 B, 16 conns x 16 in flight",
    bytes: 64,
    connections: 16,
    window: 16,
    deflate: false,
  },
  {
    id: "ws-64k",
    label: "echo 64 KiB, 4 conns x 4 in flight",
    bytes: 65536,
    connections: 4,
    window: 4,
    deflate: false,
  },
  {
    id: "ws-64k-deflate",
    label: "echo 64 KiB JSON, deflate offered",
    bytes: 65536,
    connections: 4,
    window: 4,
    deflate: true,
  },
];

const ECHO = new URL("./servers/websocket_echo.ts", import.meta.url).pathname;
const LOAD = new URL("./websocket_load.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const SERVERS = [["pier", "Pier"], ["deno", "Deno.serve"]] as const;

/** One server's figures on one row (medians over the rounds). */
export interface WsRow {
  scenario: string;
  server: string;
  messagesPerSecond: number;
  mbPerSecond: number;
  cpuUsPerMessage: number;
  wireBytesPerMessage: number;
  vsPier: number;
  rounds: number[];
}

/** The whole run, for the table and the page. */
export interface WsReport {
  header: string[];
  rows: WsRow[];
  command: string;
}

async function load(port: number, sc: WsScenario, seconds: number) {
  const [cmd, args] = pinned(1, Deno.execPath(), [
    "run",
    "--config",
    CONFIG,
    "--allow-net=127.0.0.1",
    LOAD,
    String(port),
    String(sc.bytes),
    String(sc.connections),
    String(sc.window),
    String(seconds),
    ...(sc.deflate ? ["--deflate"] : []),
  ]);
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "inherit" }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  return JSON.parse(line) as { messages: number; seconds: number; written: number; read: number };
}

/**
 * Run the asked rows.
 *
 * @param ids The row ids to run.
 * @param options Rounds, seconds per round, and the command line for the page.
 */
export async function runWebSocket(
  ids: readonly string[],
  options: { rounds: number; seconds: number; command: string },
): Promise<WsReport> {
  const scenarios = WEBSOCKET_SCENARIOS.filter((s) => ids.includes(s.id));
  const machine = await machineInfo();
  const header = [
    `WebSocket echo: our load client, ${options.seconds} s per run, ${options.rounds} interleaved rounds, ${
      pinningNote().replace("wrk", "the load client")
    }`,
    `${machineLine(machine)}, load average ${machine.load} at start`,
  ];
  const servers: ServerProc[] = [];
  const figures = new Map<string, { mps: number[]; cpu: number[]; wire: number[] }>();
  try {
    for (const [kind, name] of SERVERS) {
      servers.push(
        await startServer(name, Deno.execPath(), [
          "run",
          "--config",
          CONFIG,
          "--allow-net=127.0.0.1",
          ECHO,
          kind,
        ]),
      );
    }
    for (const sc of scenarios) {
      for (const s of servers) await load(s.port, sc, 1); // warm-up, not counted
      for (let round = 0; round < options.rounds; round++) {
        const order = round % 2 ? [...servers].reverse() : servers;
        for (const s of order) {
          const cpuBefore = await cpuMs(s.pid);
          const r = await load(s.port, sc, options.seconds);
          const cpu = await cpuMs(s.pid) - cpuBefore;
          const key = `${sc.id}|${s.name}`;
          const acc = figures.get(key) ?? { mps: [], cpu: [], wire: [] };
          acc.mps.push(r.messages / r.seconds);
          acc.cpu.push(r.messages > 0 ? cpu * 1000 / r.messages : NaN);
          acc.wire.push(r.messages > 0 ? (r.written + r.read) / r.messages : NaN);
          figures.set(key, acc);
        }
      }
    }
  } finally {
    for (const s of servers) await s.stop();
  }
  const rows: WsRow[] = [];
  for (const sc of scenarios) {
    const pier = median(figures.get(`${sc.id}|Pier`)!.mps);
    for (const [, name] of SERVERS) {
      const f = figures.get(`${sc.id}|${name}`)!;
      const mps = median(f.mps);
      rows.push({
        scenario: sc.label,
        server: name,
        messagesPerSecond: mps,
        mbPerSecond: mps * sc.bytes / 1e6,
        cpuUsPerMessage: median(f.cpu),
        wireBytesPerMessage: median(f.wire),
        vsPier: mps / pier,
        rounds: f.mps,
      });
    }
  }
  return { header, rows, command: options.command };
}

/** The rows as a text table. */
export function webSocketTable(report: WsReport): string[] {
  const lines = [
    ...report.header,
    "",
    `${"scenario".padEnd(38)}${"server".padEnd(12)}${"msg/s".padStart(10)}${"MB/s".padStart(9)}${
      "vs Pier".padStart(9)
    }${"CPU µs/msg".padStart(12)}${"wire B/msg".padStart(12)}`,
  ];
  for (const r of report.rows) {
    lines.push(
      `${r.scenario.padEnd(38)}${r.server.padEnd(12)}${
        Math.round(r.messagesPerSecond).toString().padStart(10)
      }${r.mbPerSecond.toFixed(1).padStart(9)}${`${r.vsPier.toFixed(2)}x`.padStart(9)}${
        r.cpuUsPerMessage.toFixed(2).padStart(12)
      }${Math.round(r.wireBytesPerMessage).toString().padStart(12)}`,
    );
  }
  lines.push(
    "",
    "rounds (msg/s):",
    ...report.rows.map((r) => `  ${r.scenario} | ${r.server}: ${r.rounds.map(Math.round).join(", ")}`),
  );
  return lines;
}

/** The page's WebSocket section, markers included. */
export function webSocketMarkdown(report: WsReport): string {
  const rows = report.rows.map((r) =>
    `| ${r.scenario} | ${r.server} | ${Math.round(r.messagesPerSecond)} | ${r.mbPerSecond.toFixed(1)} | ${
      r.vsPier.toFixed(2)
    }x | ${r.cpuUsPerMessage.toFixed(2)} | ${Math.round(r.wireBytesPerMessage)} |`
  );
  return [
    WEBSOCKET_BEGIN,
    "",
    "## WebSocket echo",
    "",
    `\`${report.command}\`: ${report.header.join("; ")}.`,
    "",
    "Every message is echoed; msg/s counts echoes received by the load client (bench/websocket_load.ts), MB/s",
    "is msg/s times the message size, CPU is the server's per message, and wire B/msg the bytes both ways per",
    "echoed message, frames and all. Deno.serve does not agree permessage-deflate, so its deflate row is plain.",
    "",
    "| scenario | server | msg/s | MB/s | vs Pier | CPU µs/msg | wire B/msg |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
    "",
    WEBSOCKET_END,
    "",
  ].join("\n");
}
