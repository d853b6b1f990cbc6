// The store across threads, for `--workers`: the main thread owns the one store (SQLite's database Worker, or
// the PostgreSQL pool); each server Worker gets a MessagePort and a StoreRelay that forwards the site's calls.
// It owns only the message protocol; it must never run SQL or decide anything about the data.
import type { SessionData } from "../mod.ts";
import type { SiteStore } from "./site.ts";
import { type NewMessage, type NewUpload, sessionStoreOver, type StoreBackend, StoreError } from "./store.ts";

/** The Store calls a server Worker may make. */
type RelayOp =
  | "sessionGet"
  | "sessionSet"
  | "sessionDestroy"
  | "sessionPrune"
  | "addMessage"
  | "addUpload"
  | "countVisit"
  | "visitCount"
  | "schemaVersion";

interface RelayRequest {
  id: number;
  op: RelayOp;
  args: unknown[];
}

type RelayReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; message: string; code: string };

/**
 * Answer a server Worker's store calls on `port` with the real `store` (main thread side).
 *
 * @param store The one store of the process.
 * @param port This side of the Worker's channel.
 *
 * @example
 * ```ts ignore
 * const channel = new MessageChannel();
 * serveStoreRelay(store, channel.port1);
 * worker.postMessage({ storePort: channel.port2 }, [channel.port2]);
 * ```
 */
export function serveStoreRelay(store: StoreBackend, port: MessagePort): void {
  const ops: Record<RelayOp, (...args: never[]) => Promise<unknown>> = {
    sessionGet: (id: string) => store.sessions.get(id),
    sessionSet: (id: string, data: SessionData, expiresAt: number) => store.sessions.set(id, data, expiresAt),
    sessionDestroy: (id: string) => store.sessions.destroy(id),
    sessionPrune: (now: number) => store.sessions.prune!(now),
    addMessage: (m: NewMessage) => store.addMessage(m),
    addUpload: (u: NewUpload) => store.addUpload(u),
    countVisit: (id: string, createdAt: number, expiresAt: number) =>
      store.countVisit(id, createdAt, expiresAt),
    visitCount: (id: string) => store.visitCount(id),
    schemaVersion: () => store.schemaVersion(),
  };
  port.onmessage = async (event: MessageEvent<RelayRequest>) => {
    const { id, op, args } = event.data;
    let reply: RelayReply;
    try {
      const fn = ops[op] as (...args: unknown[]) => Promise<unknown>;
      if (!fn) throw new StoreError(`Unknown store call ${JSON.stringify(op)}`, "BAD_CALL");
      reply = { id, ok: true, value: await fn(...args) };
    } catch (err) {
      const e = err as Partial<StoreError>;
      reply = { id, ok: false, message: String(e.message ?? err), code: e.code ?? "RELAY" };
    }
    port.postMessage(reply);
  };
}

/**
 * The site's store in a server Worker: every call goes to the main thread over `port` (Worker side).
 * A failure comes back as a {@link StoreError} with the same message and code, so the site's 503 paths work.
 */
export class StoreRelay implements SiteStore {
  /** Sessions, relayed. */
  readonly sessions: SiteStore["sessions"];
  #port: MessagePort;
  #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #nextId = 1;

  /**
   * Relay over `port`.
   *
   * @param port The Worker's side of the channel.
   */
  constructor(port: MessagePort) {
    this.#port = port;
    port.onmessage = (event: MessageEvent<RelayReply>) => {
      const reply = event.data;
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(new StoreError(reply.message, reply.code));
    };
    this.sessions = sessionStoreOver((op, args) => this.#call(op, args));
  }

  /** @inheritdoc */
  addMessage(message: NewMessage): Promise<number> {
    return this.#call("addMessage", [message]) as Promise<number>;
  }

  /** @inheritdoc */
  addUpload(upload: NewUpload): Promise<number> {
    return this.#call("addUpload", [upload]) as Promise<number>;
  }

  /** @inheritdoc */
  countVisit(sessionId: string, createdAt: number, expiresAt: number): Promise<number> {
    return this.#call("countVisit", [sessionId, createdAt, expiresAt]) as Promise<number>;
  }

  /** @inheritdoc */
  visitCount(sessionId: string): Promise<number> {
    return this.#call("visitCount", [sessionId]) as Promise<number>;
  }

  /** @inheritdoc */
  schemaVersion(): Promise<number> {
    return this.#call("schemaVersion", []) as Promise<number>;
  }

  #call(op: RelayOp, args: unknown[]): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#port.postMessage({ id, op, args } satisfies RelayRequest);
    });
  }
}
