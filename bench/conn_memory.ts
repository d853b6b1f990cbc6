// Memory per held connection: open 10,000 keep-alive connections to a server, have each answered once,
// keep them all open, and compare the server's resident memory with its baseline. Loopback only.
import { rssKiB, type ServerProc } from "./_harness.ts";

/** How many connections to hold. */
export const HELD_CONNECTIONS = 10_000;
/** Connections opened at once: stays under the listen backlog so no SYN is dropped and retried. */
const BATCH = 100;

const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");

async function openAndAsk(port: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(REQUEST);
  const buf = new Uint8Array(512);
  let got = "";
  while (!got.includes("Hello, World!")) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("server closed a connection it should hold");
    got += new TextDecoder().decode(buf.subarray(0, n));
  }
  return conn;
}

/**
 * Start a server, measure its baseline RSS, hold {@link HELD_CONNECTIONS} answered connections, measure
 * again, and stop it.
 *
 * @param start Starts the server process.
 * @returns Baseline and held RSS in KiB and the cost per connection.
 */
export async function measureConnectionMemory(
  start: () => Promise<ServerProc>,
): Promise<{ baselineKiB: number; heldKiB: number; perConnKiB: number }> {
  const server = await start();
  const conns: Deno.Conn[] = [];
  try {
    // Warm up the server's code paths with a few connections, then let it settle.
    for (const c of await Promise.all(Array.from({ length: 50 }, () => openAndAsk(server.port)))) c.close();
    await new Promise((r) => setTimeout(r, 1000));
    const baselineKiB = await rssKiB(server.pid);
    for (let i = 0; i < HELD_CONNECTIONS; i += BATCH) {
      conns.push(...await Promise.all(Array.from({ length: BATCH }, () => openAndAsk(server.port))));
    }
    await new Promise((r) => setTimeout(r, 2000));
    const heldKiB = await rssKiB(server.pid);
    return { baselineKiB, heldKiB, perConnKiB: (heldKiB - baselineKiB) / HELD_CONNECTIONS };
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await server.stop();
  }
}
