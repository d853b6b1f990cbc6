// The store across threads, for `--workers`: the main thread owns the one store (SQLite's database Worker, or
// the PostgreSQL pool); each server Worker gets a MessagePort and a StoreRelay that forwards the site's calls
// over app/_rpc.ts. It owns only which calls cross and how long one may wait; it must never run SQL or decide
// anything about the data.
import { answerCalls, Caller, type Remote } from "./_rpc.ts";
import {
  callsThrough,
  DEFAULT_CALL_TIMEOUT_MS,
  type StoreBackend,
  type StoreCalls,
  StoreError,
} from "./store.ts";
import { type SessionOpName, STORE_OP_NAMES, type StoreOps } from "./store_ops.ts";

/**
 * A relayed call with no answer in this long fails with `TIMEOUT`: later than the main thread's store gives
 * up by itself (at worst an open, then the call, each within {@link DEFAULT_CALL_TIMEOUT_MS}), so a relayed
 * call fails with the store's own reason, and this only ends the wait on a main thread that never answers.
 */
export const RELAY_TIMEOUT_MS: number = 2 * DEFAULT_CALL_TIMEOUT_MS + 1_000;

/**
 * Answer a server Worker's store calls on `port` with the real `store` (main thread side): every operation of
 * the table, and nothing else (`ready` and `close` belong to the main thread).
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
  const { sessions } = store;
  const sessionOps: Pick<Remote<StoreOps>, SessionOpName> = {
    sessionGet: (id) => sessions.get(id),
    sessionSet: (id, data, expiresAt) => sessions.set(id, data, expiresAt),
    sessionDestroy: (id) => sessions.destroy(id),
    sessionPrune: async (now) => await sessions.prune?.(now) ?? 0,
  };
  const handlers: Record<string, (...args: never[]) => unknown> = { ...sessionOps };
  // Every other name is the store's method of that name (StoreBackend derives them from the table).
  for (const op of STORE_OP_NAMES) {
    handlers[op] ??= (...args) => Reflect.apply(Reflect.get(store, op), store, args);
  }
  answerCalls(port, handlers);
}

/** The table's operations, relayed (see the class). */
export interface StoreRelay extends StoreCalls {}

/**
 * The site's store in a server Worker: every operation of the table goes to the main thread over `port`
 * (Worker side). A failure comes back as a {@link StoreError} with the same message and code, so the site's
 * 503 paths work; a call with no answer in {@link RELAY_TIMEOUT_MS} fails with `TIMEOUT`.
 *
 * @example
 * ```ts ignore
 * self.onmessage = (event) => {
 *   const store = new StoreRelay(event.data.storePort);
 *   store.visitCount("4f1c").then(console.log);
 * };
 * ```
 */
export class StoreRelay {
  /**
   * Relay over `port`.
   *
   * @param port The Worker's side of the channel.
   * @param options How long a call may wait (default {@link RELAY_TIMEOUT_MS}).
   */
  constructor(port: MessagePort, options: { timeoutMs?: number } = {}) {
    const caller = new Caller<StoreOps>(port, {
      peer: "the main thread's store",
      timeoutMs: options.timeoutMs ?? RELAY_TIMEOUT_MS,
      error: (message, code) => new StoreError(message, code),
    });
    Object.assign(this, callsThrough((op, args) => caller.call(op, args)));
  }
}
