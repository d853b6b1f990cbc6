// The live reader count with `--workers N`: each server Worker counts the sockets the kernel gave it, and the
// Workers share their counts on a BroadcastChannel, so every socket sees the process's total (SQLite); with
// PostgreSQL, the main thread bridges that channel to LISTEN/NOTIFY, so a plain instance beside it sees the
// Workers' readers and they see its. Sockets from Deno's WebSocket client, each on a fresh connection.
import assert from "node:assert/strict";
import { MAIN, makeFullSiteFixture, REPO } from "../fixtures/site_fixture.ts";
import { type SiteProcess, startProcess, startTaskFlags } from "../fixtures/static_fixture.ts";
import { freshDatabase } from "../fixtures/postgres.ts";

const CODE = ["app", "server", "mod.ts"].map((p) => new URL(p, REPO).pathname).join(",");
/** The flags docs/deploy.md gives for several cores (as tests/site_workers_test.ts). */
const MULTI_FLAGS = [
  "--unstable-net",
  "--unstable-worker-options",
  "--allow-net",
  "--allow-env=DATABASE_URL,PGAPPNAME",
  `--allow-read=static,templates,data,certs,${CODE}`,
  "--allow-write=data",
];
/** Enough sockets that both Workers get some: SO_REUSEPORT spreads connections by their source port. */
const SOCKETS = 8;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function open(port: number) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/live`);
  const state = { socket, last: "" };
  socket.onmessage = (e) => state.last = e.data;
  return state;
}

async function allSee(sockets: { last: string }[], n: number, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!sockets.every((s) => s.last === String(n))) {
    if (performance.now() > end) throw new Error(`not all see ${n}: ${sockets.map((s) => s.last)}`);
    await sleep(20);
  }
}

Deno.test({
  name:
    "live readers with --workers 2 (SQLite): every socket sees the process's total, whichever Worker holds it",
  sanitizeResources: false,
  async fn() {
    const dir = await makeFullSiteFixture();
    const site = await startProcess(dir, MULTI_FLAGS, MAIN, ["--port", "0", "--workers", "2", "--quiet"]);
    const sockets: ReturnType<typeof open>[] = [];
    try {
      for (let i = 0; i < SOCKETS; i++) sockets.push(open(site.port));
      await allSee(sockets, SOCKETS);
      for (const s of sockets.splice(0, 3)) s.socket.close();
      await allSee(sockets, SOCKETS - 3);
    } finally {
      for (const s of sockets) s.socket.close();
      const status = await site.stop();
      assert.equal(status.code, 0, site.output());
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "live readers with --workers 2 and PostgreSQL: the bridge shares the Workers' count with another instance",
  sanitizeResources: false,
  async fn() {
    const db = await freshDatabase();
    if (db === null) return; // not configured outside CI (freshDatabase said SKIPPED); CI throws instead
    const dirs = [await makeFullSiteFixture(), await makeFullSiteFixture()];
    const sites: SiteProcess[] = [];
    const sockets: ReturnType<typeof open>[] = [];
    try {
      sites.push(
        await startProcess(dirs[0], MULTI_FLAGS, MAIN, [
          "--port",
          "0",
          "--workers",
          "2",
          "--quiet",
          "--database",
          db.url,
        ]),
        await startProcess(dirs[1], await startTaskFlags(), MAIN, [
          "--port",
          "0",
          "--quiet",
          "--database",
          db.url,
        ]),
      );
      for (let i = 0; i < SOCKETS; i++) sockets.push(open(sites[0].port));
      sockets.push(open(sites[1].port), open(sites[1].port));
      await allSee(sockets, SOCKETS + 2);
      for (const s of sockets.splice(0, 3)) s.socket.close();
      sockets.splice(-1)[0].socket.close();
      await allSee(sockets, SOCKETS - 2);
    } finally {
      for (const s of sockets) s.socket.close();
      for (const site of sites) await site.stop();
      for (const d of dirs) await Deno.remove(d, { recursive: true });
      await db.drop();
    }
  },
});
