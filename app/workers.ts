// `--workers N`: N server Workers sharing one port through SO_REUSEPORT (Linux spreads new connections over
// them), one store in the main thread relayed to each, and a supervisor that restarts a Worker that crashes.
// It owns the Workers' lifetimes; it must never serve a request itself.
import type { SiteConfig } from "./cli.ts";
import { databaseSystem } from "./database.ts";
import { serveStoreRelay } from "./relay.ts";
import type { ServerWorkerCommand, ServerWorkerEvent } from "./server_worker.ts";
import type { StoreBackend } from "./store.ts";

/** The code a server Worker loads: read access to these is needed to start one (and dropped inside it). */
export const CODE_PATHS: readonly URL[] = [
  new URL("./", import.meta.url),
  new URL("../server/", import.meta.url),
  new URL("../mod.ts", import.meta.url),
];

/** Wait this long before restarting a crashed Worker, so a Worker that crashes at once cannot spin. */
const RESTART_DELAY_MS = 500;

/**
 * Whether this process may load the code into Workers (read access to app/, server/ and mod.ts).
 *
 * @returns True when every code path is readable.
 */
export function canStartWorkers(): boolean {
  return CODE_PATHS.every((url) =>
    Deno.permissions.querySync({ name: "read", path: url }).state === "granted"
  );
}

/** Options for {@link startWorkers}. */
export interface WorkersOptions {
  /** How many server Workers. */
  count: number;
  /** The parsed flags (the port may be 0: the first Worker's real port is then given to the others). */
  config: SiteConfig;
  /** PEM texts. */
  tls: { cert?: string; key?: string };
  /** The one store (SQLite or PostgreSQL). */
  store: StoreBackend;
  /** The Worker script. Default app/server_worker.ts; tests give one that crashes. */
  workerUrl?: URL;
}

/** The running Workers. */
export interface WorkerPool {
  /** The shared port. */
  readonly port: number;
  /** How many crashed Workers were restarted so far. */
  readonly restarts: number;
  /** Ask every Worker to shut down gracefully; resolves when all have finished (no restarts after this). */
  shutdown(): Promise<void>;
}

/**
 * Start `count` server Workers on one port and keep them running.
 *
 * @param options Count, config, TLS, store.
 * @returns Once every Worker listens: the pool.
 */
export async function startWorkers(options: WorkersOptions): Promise<WorkerPool> {
  const url = options.workerUrl ?? new URL("./server_worker.ts", import.meta.url);
  const codePaths = CODE_PATHS.map((u) => u.pathname);
  let port = options.config.port;
  let stopping = false;
  let restarts = 0;
  const live = new Map<number, { worker: Worker; finished: Promise<void>; finish(): void }>();

  const spawn = (index: number): Promise<number> => {
    // Own permissions, cloned from this thread's (needs --unstable-worker-options): the Worker then drops its
    // read access to the code without taking it from this thread, which needs it to restart a Worker.
    const worker = new Worker(url, {
      type: "module",
      name: `pier-server-${index}`,
      deno: { permissions: { net: "inherit", read: "inherit", write: "inherit" } },
    } as WorkerOptions);
    const channel = new MessageChannel();
    serveStoreRelay(options.store, channel.port1);
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => finish = resolve);
    live.set(index, { worker, finished, finish });
    return new Promise<number>((listening, failed) => {
      let up = false;
      worker.onmessage = (event: MessageEvent<ServerWorkerEvent>) => {
        if (event.data.type === "listening") {
          up = true;
          listening(event.data.port);
        } else if (event.data.type === "finished") finish();
      };
      worker.onerror = (event) => {
        event.preventDefault();
        console.error(`[workers] server Worker ${index} crashed: ${event.message}`);
        worker.terminate();
        channel.port1.close();
        finish();
        if (!up) {
          failed(new Error(`server Worker ${index} failed to start: ${event.message}`));
          return;
        }
        if (stopping) return;
        restarts++;
        setTimeout(() => {
          if (stopping) return;
          spawn(index).then(
            () => console.log(`[workers] server Worker ${index} restarted`),
            (err) => console.error(`[workers] ${err.message}`),
          );
        }, RESTART_DELAY_MS);
      };
      const start: ServerWorkerCommand = {
        type: "start",
        config: options.config,
        tls: options.tls,
        port,
        storePort: channel.port2,
        database: databaseSystem(options.store),
        codePaths,
      };
      worker.postMessage(start, [channel.port2]);
    });
  };

  // The first Worker picks the port when asked for 0; the others then share it.
  try {
    port = await spawn(0);
    await Promise.all(Array.from({ length: options.count - 1 }, (_, i) => spawn(i + 1)));
  } catch (err) {
    // No half-started pool: a Worker left listening would serve beside whatever the caller falls back to.
    stopping = true;
    for (const { worker } of live.values()) worker.terminate();
    throw err;
  }

  return {
    port,
    get restarts() {
      return restarts;
    },
    async shutdown() {
      stopping = true;
      const all = [...live.values()];
      for (const { worker } of all) worker.postMessage({ type: "shutdown" } satisfies ServerWorkerCommand);
      await Promise.all(all.map((w) => w.finished));
      for (const { worker } of all) worker.terminate();
    },
  };
}
