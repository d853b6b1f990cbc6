// Spans for the site's database calls: every operation of the table (app/store_ops.ts) as a child span of the
// request that made it, named by the operation, with the database and the call's duration, never an argument
// or a result (a message, a session id, an address). Chosen once, at start: with tracing off the store is
// handed back untouched, so a call costs nothing more.
import { type SessionStore, SpanKind, telemetryEnabled, withSpan } from "../mod.ts";
import type { SiteStore } from "./site.ts";
import { type SessionOpName, STORE_OP_NAMES, type StoreOps } from "./store_ops.ts";

/** The database behind a store, as OpenTelemetry names it (`db.system.name`). */
export type DatabaseSystem = "sqlite" | "postgresql";

/** Each session operation of the table and the `SessionStore` method it is. */
const SESSION_METHODS = {
  sessionGet: "get",
  sessionSet: "set",
  sessionDestroy: "destroy",
  sessionPrune: "prune",
} as const satisfies Record<SessionOpName, keyof SessionStore>;

/**
 * The store, each operation in a span (`countVisit`, kind client, `db.system.name` and `db.operation.name`);
 * a failure marks the span an error with the StoreError's code. The store itself when tracing is off.
 *
 * @param store The site's store (SQLite's, PostgreSQL's, or a `--workers` relay to one).
 * @param system The database it reaches.
 * @returns A store with the same operations.
 *
 * @example
 * ```ts
 * import { Store } from "./store.ts";
 * import { tracedStore } from "./traced_store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = new Store(`${dir}/site.db`);
 * const traced = tracedStore(store, "sqlite"); // the same object unless OTEL_DENO=true
 * console.log(await traced.visitCount("4f1c")); // 0
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function tracedStore<S extends SiteStore>(store: S, system: DatabaseSystem): S {
  if (!telemetryEnabled) return store;
  const traced = <T>(op: keyof StoreOps, call: () => Promise<T>): Promise<T> =>
    withSpan(op, {
      kind: SpanKind.Client,
      scope: "pier-site",
      attributes: { "db.system.name": system, "db.operation.name": op },
    }, call);
  const calls: Record<string, unknown> = {};
  for (const op of STORE_OP_NAMES) {
    const method: unknown = Reflect.get(store, op);
    if (typeof method !== "function") continue; // a session operation, or one the site does not use
    calls[op] = (...args: unknown[]) => traced(op, () => Reflect.apply(method, store, args));
  }
  const sessions = store.sessions;
  const tracedSessions: Record<string, unknown> = {};
  for (const [op, name] of Object.entries(SESSION_METHODS) as [SessionOpName, keyof SessionStore][]) {
    const method: unknown = sessions[name];
    if (typeof method !== "function") continue;
    tracedSessions[name] = (...args: unknown[]) => traced(op, () => Reflect.apply(method, sessions, args));
  }
  calls.sessions = tracedSessions;
  return calls as S;
}
