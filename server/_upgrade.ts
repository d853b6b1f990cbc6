// The hand-off after a 101 Switching Protocols (RFC 9110 §7.8, §15.2.2): from then on the connection speaks
// another protocol and belongs to whoever answered the upgrade. A response names its taker here; conn.ts
// looks it up after writing the 101 and knows nothing of WebSocket. Must never import conn.ts or serve.ts.

/** What the server offers a connection it no longer serves as HTTP: its clock, its log, its shutdown. */
export interface TunnelHost {
  /** The coarse clock (ms), advanced by the server's timer. */
  readonly now: number;
  /** True once shutdown began. */
  readonly closing: boolean;
  /** A write that makes no progress for this long is dropped. */
  readonly writeTimeoutMs: number;
  /** Log a failure. */
  log(message: string, error?: unknown): void;
  /**
   * Keep `tunnel` with the server's connections until `tunnel.done`: its deadline is checked on every
   * tick, shutdown asks it to close, and the server is finished only once it is done.
   */
  adopt(tunnel: Tunnel): void;
}

/** A connection taken over after a 101, as the server sees it. */
export interface Tunnel {
  /** When {@link Tunnel.timeout} is due, on the host's clock; 0 for never. */
  readonly deadline: number;
  /** Called by the server's tick once `deadline` has passed. */
  timeout(): void;
  /** The server shuts down gracefully: close soon (a WebSocket sends 1001). */
  shutdown(): void;
  /** Resolves once the connection is closed for good. */
  readonly done: Promise<void>;
}

/** The connection a taker receives. */
export interface SwitchedConnection {
  /** The socket (TCP or TLS). */
  readonly conn: Deno.Conn;
  /** Its resource id for the raw read and write ops (server/_ops.ts), or -1 to use `conn`'s methods. */
  readonly rid: number;
  /**
   * The bytes the client sent behind the request head, which belong to the new protocol; it waits for the
   * read that was in flight, if any. Null when the client has already left.
   */
  readonly head: Promise<Uint8Array | null>;
  /** The server. */
  readonly host: TunnelHost;
}

/** Takes a connection once its 101 is written. */
export type Takeover = (switched: SwitchedConnection) => void;

const takeovers = new WeakMap<Response, Takeover>();

/**
 * Name who takes the connection when `response` (a 101) has been written.
 *
 * @param response The 101 answer a handler will return.
 * @param takeover Called with the connection after the 101 is written.
 *
 * @example
 * ```ts ignore
 * registerTakeover(response, (switched) => session.start(switched));
 * ```
 */
export function registerTakeover(response: Response, takeover: Takeover): void {
  takeovers.set(response, takeover);
}

/**
 * Who takes the connection after `response`, once: the entry is removed.
 *
 * @param response The 101 answer just written.
 * @returns The taker, or undefined when the response names none.
 *
 * @example
 * ```ts ignore
 * takeoverFor(response)?.({ conn, rid, head, host });
 * ```
 */
export function takeoverFor(response: Response): Takeover | undefined {
  const takeover = takeovers.get(response);
  if (takeover !== undefined) takeovers.delete(response);
  return takeover;
}
