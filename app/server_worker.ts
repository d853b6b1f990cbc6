// A server Worker of `--workers N`: one instance of the site (app/instance.ts) listening with SO_REUSEPORT on
// the shared port, its store calls relayed to the main thread's one database Worker. It owns nothing beyond
// its instance; it must never open the database itself.
//
// Loading this module needs read access to the code (app/, server/, mod.ts), which the start task does not
// grant. Once loaded, the Worker gives that access up (Deno.permissions.revoke) before serving a request, so
// a path bug in a request handler meets the same wall as in the single-process site.
/// <reference lib="deno.worker" />
import type { PierServer } from "../mod.ts";
import type { SiteConfig } from "./cli.ts";
import { startInstance } from "./instance.ts";
import { broadcastBus, ReaderCount, READERS_BROADCAST } from "./readers.ts";
import { StoreRelay } from "./relay.ts";
import type { DatabaseSystem } from "./traced_store.ts";

/** The main thread's messages to a server Worker. */
export type ServerWorkerCommand =
  | {
    type: "start";
    config: SiteConfig;
    tls: { cert?: string; key?: string };
    port: number;
    storePort: MessagePort;
    /** The database behind the relay, for the store's spans. */
    database: DatabaseSystem;
    /** Code folders and files whose read access the Worker drops once loaded. */
    codePaths: string[];
  }
  | { type: "shutdown" };

/** A server Worker's messages to the main thread. */
export type ServerWorkerEvent = { type: "listening"; port: number } | { type: "finished" };

let server: PierServer<Deno.Addr> | null = null;
let readers: ReaderCount | null = null;

self.onmessage = async (event: MessageEvent<ServerWorkerCommand>) => {
  const command = event.data;
  if (command.type === "start") {
    for (const path of command.codePaths) await Deno.permissions.revoke({ name: "read", path });
    // The Workers of this process count their readers together (the main thread bridges them to
    // PostgreSQL when the site has one).
    readers = new ReaderCount({ bus: broadcastBus(READERS_BROADCAST) });
    server = startInstance(command.config, {
      readers,
      store: new StoreRelay(command.storePort),
      database: command.database,
      tls: command.tls,
      port: command.port,
      reusePort: true,
      onListen: (addr) =>
        self.postMessage(
          { type: "listening", port: "port" in addr ? addr.port : 0 } satisfies ServerWorkerEvent,
        ),
    });
  } else if (command.type === "shutdown") {
    await server?.shutdown();
    await readers?.close();
    self.postMessage({ type: "finished" } satisfies ServerWorkerEvent);
  }
};
