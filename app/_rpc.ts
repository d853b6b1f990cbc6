// Calls between threads over a Worker, a Worker's `self` or a MessagePort: ids, the calls in flight, a
// timeout per call, one reply shape (the value, or the error's message and code). It knows no operation and
// no store; answerCalls() must use nothing from this module's scope: the SQLite Worker receives it as text.

/**
 * One end of a channel: a Worker seen from outside, a Worker's own `self`, or a MessagePort.
 *
 * @example
 * ```ts
 * import type { Endpoint } from "./_rpc.ts";
 * const end: Endpoint = new MessageChannel().port1;
 * end.onmessage = null;
 * ```
 */
export interface Endpoint {
  /** Send one message (structured-cloned). */
  postMessage(message: unknown): void;
  /** Receives the other side's messages. */
  onmessage: ((event: MessageEvent) => void) | null;
}

/**
 * A call as it travels.
 *
 * @example
 * ```ts
 * import type { Call } from "./_rpc.ts";
 * const call: Call = { id: 1, op: "visitCount", args: ["4f1c"] };
 * console.log(call.op);
 * ```
 */
export interface Call {
  /** Matches the reply to its call; unique per caller. */
  id: number;
  /** The operation's name. */
  op: string;
  /** Its arguments. */
  args: unknown[];
}

/**
 * The answer to one {@link Call}: the value, or the error's message and code.
 *
 * @example
 * ```ts
 * import type { Reply } from "./_rpc.ts";
 * const reply: Reply = { id: 1, ok: false, message: "database is locked", code: "ERR_SQLITE_ERROR" };
 * console.log(reply.ok);
 * ```
 */
export type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; message: string; code: string };

/**
 * A table of operations as another thread answers them: the same arguments, the result as a promise.
 *
 * @example
 * ```ts
 * import type { Remote } from "./_rpc.ts";
 * type Counter = Remote<{ add(n: number): number }>; // { add(n: number): Promise<number> }
 * const counter: Counter = { add: (n) => Promise.resolve(n + 1) };
 * console.log(await counter.add(1)); // 2
 * ```
 */
export type Remote<Ops> = {
  [Op in keyof Ops]: Ops[Op] extends (...args: infer Args) => infer Result
    ? (...args: Args) => Promise<Awaited<Result>>
    : never;
};

/**
 * Answer the calls that arrive at `endpoint` from a table of handlers, one reply per call. A handler may
 * return a value or a promise; what it throws goes back as its message and its `code` (a DOMException's
 * name; `ERROR` when it has none); a name the table does not have as its own property goes back as `BAD_OP`.
 *
 * A synchronous handler runs to completion before the next message is read, so calls are answered in
 * arrival order (the SQLite Worker relies on it).
 *
 * @param endpoint Where calls arrive and replies go.
 * @param handlers Operation name to function.
 *
 * @example
 * ```ts
 * import { answerCalls } from "./_rpc.ts";
 * const { port1, port2 } = new MessageChannel();
 * answerCalls(port1, { add: (n: number) => n + 1 });
 * port2.postMessage({ id: 1, op: "add", args: [1] });
 * port2.onmessage = (event) => {
 *   console.log(event.data); // { id: 1, ok: true, value: 2 }
 *   port1.close();
 * };
 * ```
 */
export function answerCalls(endpoint: Endpoint, handlers: object): void {
  const failure = (id: number, err: unknown): Reply => ({
    id,
    ok: false,
    message: err instanceof Error ? err.message : String(err),
    // node:sqlite's and StoreError's codes are strings; a DOMException's is a number, its name says more.
    code: typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
      ? err.code
      : err instanceof DOMException
      ? err.name
      : "ERROR",
  });
  endpoint.onmessage = async (event: MessageEvent<Call>) => {
    const { id, op, args } = event.data;
    let reply: Reply;
    try {
      // Own properties only: "constructor" or "toString" is no operation.
      const handler: unknown = Object.hasOwn(handlers, op) ? Reflect.get(handlers, op) : undefined;
      if (typeof handler !== "function") {
        throw Object.assign(new Error(`Unknown operation ${JSON.stringify(op)}`), { code: "BAD_OP" });
      }
      reply = { id, ok: true, value: await Reflect.apply(handler, handlers, args) };
    } catch (err) {
      reply = failure(id, err);
    }
    try {
      endpoint.postMessage(reply);
    } catch (err) {
      // A value that cannot be cloned: the caller still gets an answer.
      endpoint.postMessage(failure(id, err));
    }
  };
}

/** Options for {@link Caller}. */
export interface CallerOptions {
  /** Who answers, for the timeout's message: "the database Worker". */
  peer: string;
  /** A call with no reply in this long fails with code `TIMEOUT`; a late reply is then ignored. */
  timeoutMs: number;
  /** The error a failed call rejects with, from a message and a code (the caller's own class). */
  error(message: string, code: string): Error;
  /** Told after a call timed out (already rejected) with its error: the owner may replace what is stuck. */
  onTimeout?(error: Error): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * The calling side over one endpoint: each call gets an id and a timer, and settles from the reply with that
 * id, on its timeout, or when the owner gives up on the endpoint ({@link Caller.failAll}). `Ops` is the table
 * of operations the other side answers; it limits the names.
 *
 * @example
 * ```ts
 * import { answerCalls, Caller } from "./_rpc.ts";
 * const { port1, port2 } = new MessageChannel();
 * answerCalls(port1, { add: (n: number) => n + 1 });
 * const caller = new Caller<{ add(n: number): number }>(port2, {
 *   peer: "the adder",
 *   timeoutMs: 1000,
 *   error: (message, code) => Object.assign(new Error(message), { code }),
 * });
 * console.log(await caller.call("add", [1])); // 2
 * port1.close();
 * ```
 */
export class Caller<Ops> {
  #endpoint: Endpoint;
  #options: CallerOptions;
  #pending = new Map<number, Pending>();
  #nextId = 1;

  /**
   * Call over `endpoint` (this takes its `onmessage`).
   *
   * @param endpoint The channel's calling end.
   * @param options Timeout, errors.
   */
  constructor(endpoint: Endpoint, options: CallerOptions) {
    this.#endpoint = endpoint;
    this.#options = options;
    endpoint.onmessage = (event: MessageEvent<Reply>) => {
      const reply = event.data;
      const pending = this.#pending.get(reply.id);
      if (!pending) return; // timed out or failed already
      this.#pending.delete(reply.id);
      clearTimeout(pending.timer);
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(options.error(reply.message, reply.code));
    };
  }

  /**
   * Call one operation.
   *
   * @param op Its name.
   * @param args Its arguments (structured-cloned).
   * @returns The other side's value; rejects with `options.error(...)`: its error, `TIMEOUT`, or `BAD_CALL`
   * for arguments that cannot be sent.
   */
  call(op: keyof Ops & string, args: unknown[]): Promise<unknown> {
    const id = this.#nextId++;
    const { peer, timeoutMs, error, onTimeout } = this.#options;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        const timedOut = error(`No answer from ${peer} in ${timeoutMs} ms`, "TIMEOUT");
        reject(timedOut);
        onTimeout?.(timedOut);
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      try {
        this.#endpoint.postMessage({ id, op, args } satisfies Call);
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(error(`Could not send ${op}: ${err instanceof Error ? err.message : err}`, "BAD_CALL"));
      }
    });
  }

  /**
   * Fail every call in flight with `error`: the other side is gone or being replaced.
   *
   * @param error What they reject with.
   */
  failAll(error: Error): void {
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(error);
    }
  }
}

/**
 * An object with one method per name, each forwarding its arguments to `send`: the calling side of a table,
 * typed by the table.
 *
 * @param names Every name of `Ops`.
 * @param send Makes one call.
 * @returns The methods.
 *
 * @example
 * ```ts
 * import { remote } from "./_rpc.ts";
 * const add = (_op: string, args: unknown[]) => Promise.resolve(Number(args[0]) + 1);
 * const adder = remote<{ add(n: number): number }>(["add"], add);
 * console.log(await adder.add(1)); // 2
 * ```
 */
export function remote<Ops>(
  names: readonly (keyof Ops & string)[],
  send: (op: keyof Ops & string, args: unknown[]) => Promise<unknown>,
): Remote<Ops> {
  const methods = Object.fromEntries(names.map((op) => [op, (...args: unknown[]) => send(op, args)]));
  // The one step the compiler cannot check: each method resolves with what the other side answered for its
  // name, and the other side's table says that is the operation's result (checked there, with `satisfies`).
  return methods as Remote<Ops>;
}
