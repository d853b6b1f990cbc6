// The live reader count: how many home pages are open right now, across every instance of the site. It owns
// the sharing protocol: each instance publishes its own count on a bus (PostgreSQL LISTEN/NOTIFY between
// instances, a BroadcastChannel between the Workers of one process) with its id, a sequence number and a
// heartbeat, sums the counts it hears from the others, and forgets an instance that stops heartbeating. It must
// never carry anything about a reader but the number, nor believe a message beyond its shape and bounds.

/**
 * How instances hear each other: a channel every instance publishes to and listens on. A message may come
 * back to its sender, more than once, or late; the protocol copes with all three.
 *
 * @example
 * ```ts
 * import type { CountBus } from "./readers.ts";
 * const silent: CountBus = {
 *   publish: () => Promise.resolve(),
 *   listen: () => Promise.resolve(() => Promise.resolve()),
 * };
 * ```
 */
export interface CountBus {
  /** Send `message` to every instance listening. Rejects when the bus is down (it is tried again later). */
  publish(message: string): Promise<void>;
  /**
   * Hear every message. `onReady` is called once listening, and again after each reconnection, when this
   * instance may have missed messages.
   *
   * @returns A function that stops listening.
   */
  listen(onMessage: (message: string) => void, onReady: () => void): Promise<() => Promise<void>>;
}

/**
 * One message of the protocol, as JSON: `{"v":1,"id":…,"seq":…,"n":…,"kind":…}`. `hello` asks every other
 * instance to answer with its count now (sent on start and after a reconnection); `count` is an instance's
 * count (on a change, as a heartbeat, or answering a hello); `bye` says the instance is going.
 */
export interface CountMessage {
  /** The protocol version: 1. */
  v: 1;
  /** The sender: a random id per instance start. */
  id: string;
  /** The sender's message number, increasing: an older or repeated message is ignored. */
  seq: number;
  /** The sender's own readers. */
  n: number;
  /** What the message is for. */
  kind: "hello" | "count" | "bye";
}

/** The longest instance id accepted from the bus: a UUID is 36 characters. */
const MAX_ID_LENGTH = 64;
/**
 * The largest count one instance may claim: the live route's own cap on sockets is far below it, so a larger
 * number is a bug or a forgery on the bus, not readers.
 */
export const MAX_INSTANCE_READERS = 1_000_000;
/** The most other instances remembered: a flood of made-up ids on the bus cannot grow memory past it. */
const MAX_INSTANCES = 1024;
const KINDS: ReadonlySet<string> = new Set(["hello", "count", "bye"]);

/**
 * Read a message from the bus, or null when it is not one of ours in every detail (a bus is shared ground: a
 * psql session can NOTIFY anything on the channel).
 *
 * @param text The payload.
 * @returns The message, or null.
 *
 * @example
 * ```ts
 * import { parseCountMessage } from "./readers.ts";
 * parseCountMessage('{"v":1,"id":"a","seq":1,"n":2,"kind":"count"}')?.n; // 2
 * parseCountMessage('{"v":1,"id":"a","seq":1,"n":-2,"kind":"count"}'); // null
 * ```
 */
export function parseCountMessage(text: string): CountMessage | null {
  if (text.length > 512) return null;
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof m !== "object" || m === null) return null;
  const { v, id, seq, n, kind } = m as Record<string, unknown>;
  if (v !== 1 || typeof id !== "string" || id === "" || id.length > MAX_ID_LENGTH) return null;
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) return null;
  if (!Number.isSafeInteger(n) || (n as number) < 0 || (n as number) > MAX_INSTANCE_READERS) return null;
  if (typeof kind !== "string" || !KINDS.has(kind)) return null;
  return { v, id, seq: seq as number, n: n as number, kind: kind as CountMessage["kind"] };
}

/** Options for {@link ReaderCount}; every field has a default. */
export interface ReaderCountOptions {
  /** How instances hear each other; null (the default) for one instance alone. */
  bus?: CountBus | null;
  /** This instance's id on the bus. Default: a random UUID. */
  instanceId?: string;
  /** The count is published again this often even when unchanged: proof of life. Default 5 s. */
  heartbeatMs?: number;
  /** An instance not heard from for this long is forgotten (it crashed). Default 15 s. */
  expiryMs?: number;
  /** Changes within this long go out as one message (a burst of arrivals is one NOTIFY). Default 50 ms. */
  publishDelayMs?: number;
  /** Told when the bus fails (a publish or a listen). Default: `console.warn`, once per failure streak. */
  onBusError?: (error: unknown) => void;
}

/**
 * The defaults of {@link ReaderCountOptions}, each with its reason.
 *
 * @example
 * ```ts
 * import { READER_COUNT_DEFAULTS } from "./readers.ts";
 * console.log(READER_COUNT_DEFAULTS.expiryMs); // 15000
 * ```
 */
export const READER_COUNT_DEFAULTS: Readonly<
  { heartbeatMs: number; expiryMs: number; publishDelayMs: number }
> = Object.freeze({
  /** One NOTIFY per instance every 5 s costs PostgreSQL nothing, and bounds how long a lost one matters. */
  heartbeatMs: 5_000,
  /** Three heartbeats: one late or lost message never drops a live instance; a crash costs 15 s at most. */
  expiryMs: 15_000,
  /** Far inside the page's 2 s budget, long enough to make a burst of arrivals one message. */
  publishDelayMs: 50,
});

/** What is known of another instance. */
interface Peer {
  n: number;
  seq: number;
  heardAt: number;
}

/**
 * The number of readers, here and on every instance heard on the bus. `join()` for each reader that arrives
 * (its returned function when it leaves); `subscribe()` to hear the total change. Without a bus it is this
 * instance's count alone (SQLite: one instance).
 *
 * @example
 * ```ts
 * import { ReaderCount } from "./readers.ts";
 * const readers = new ReaderCount();
 * const leave = readers.join();
 * console.log(readers.total); // 1
 * leave();
 * await readers.close();
 * ```
 */
export class ReaderCount {
  /** This instance's id on the bus. */
  readonly instanceId: string;
  readonly #bus: CountBus | null;
  readonly #heartbeatMs: number;
  readonly #expiryMs: number;
  readonly #publishDelayMs: number;
  readonly #onBusError: (error: unknown) => void;
  readonly #peers = new Map<string, Peer>();
  readonly #listeners = new Set<(total: number) => void>();
  #local = 0;
  #seq = 0;
  #lastTotal = 0;
  #publishTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #stopListening: Promise<(() => Promise<void>) | null> = Promise.resolve(null);
  #busFailing = false;
  #closed = false;

  /**
   * Start counting; with a bus, start listening and heartbeating at once.
   *
   * @param options The bus, the id, the timings.
   */
  constructor(options: ReaderCountOptions = {}) {
    this.instanceId = options.instanceId ?? crypto.randomUUID();
    this.#bus = options.bus ?? null;
    this.#heartbeatMs = options.heartbeatMs ?? READER_COUNT_DEFAULTS.heartbeatMs;
    this.#expiryMs = options.expiryMs ?? READER_COUNT_DEFAULTS.expiryMs;
    this.#publishDelayMs = options.publishDelayMs ?? READER_COUNT_DEFAULTS.publishDelayMs;
    this.#onBusError = options.onBusError ??
      ((e) => console.warn(`[readers] the count is not shared right now: ${(e as Error)?.message ?? e}`));
    if (this.#bus === null) return;
    const bus = this.#bus;
    this.#stopListening = bus.listen((text) => this.#hear(text), () => this.#publish("hello")).then(
      (stop) => {
        this.#busWorks();
        return stop;
      },
      (e) => {
        this.#busFailed(e);
        return null;
      },
    );
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), this.#heartbeatMs);
  }

  /** Readers on this instance. */
  get local(): number {
    return this.#local;
  }

  /** Readers everywhere: this instance's and every live instance's heard on the bus. */
  get total(): number {
    let total = this.#local;
    for (const peer of this.#peers.values()) total += peer.n;
    return total;
  }

  /** Other instances heard from and not expired. */
  get instances(): number {
    return this.#peers.size;
  }

  /**
   * A reader arrived.
   *
   * @returns Call it when the reader leaves (more calls do nothing).
   */
  join(): () => void {
    this.#local++;
    this.#changed();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#local--;
      this.#changed();
    };
  }

  /**
   * Hear the total whenever it changes.
   *
   * @param listener Called with the new total.
   * @returns A function that stops it.
   */
  subscribe(listener: (total: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Stop: say goodbye on the bus (the others forget this instance at once instead of after the expiry), stop
   * listening and the timers.
   *
   * @returns When done (a bus that does not answer is not waited for past its own timeouts).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#publishTimer);
    clearInterval(this.#heartbeatTimer);
    this.#listeners.clear();
    this.#peers.clear();
    if (this.#bus === null) return;
    await this.#bus.publish(this.#message("bye")).catch(() => {});
    const stop = await this.#stopListening;
    await stop?.().catch(() => {});
  }

  #message(kind: CountMessage["kind"]): string {
    const message: CountMessage = { v: 1, id: this.instanceId, seq: ++this.#seq, n: this.#local, kind };
    return JSON.stringify(message);
  }

  /** This instance's count changed: tell the listeners, and the bus soon (once for a burst). */
  #changed(): void {
    this.#notify();
    if (this.#bus === null || this.#closed || this.#publishTimer !== undefined) return;
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      this.#publish("count");
    }, this.#publishDelayMs);
  }

  #publish(kind: CountMessage["kind"]): void {
    if (this.#bus === null || this.#closed) return;
    this.#bus.publish(this.#message(kind)).then(() => this.#busWorks(), (e) => this.#busFailed(e));
  }

  /** The heartbeat: forget silent instances, then say this one is alive. */
  #heartbeat(): void {
    const now = performance.now();
    let forgot = false;
    for (const [id, peer] of this.#peers) {
      if (now - peer.heardAt > this.#expiryMs) {
        this.#peers.delete(id);
        forgot = true;
      }
    }
    if (forgot) this.#notify();
    this.#publish("count");
  }

  #hear(text: string): void {
    if (this.#closed) return;
    const message = parseCountMessage(text);
    if (message === null || message.id === this.instanceId) return;
    const peer = this.#peers.get(message.id);
    // Repeated or overtaken (a bridge may deliver a message twice, or late): the newer one stands.
    if (peer !== undefined && message.seq <= peer.seq) return;
    if (message.kind === "bye") this.#peers.delete(message.id);
    else if (peer !== undefined) {
      peer.n = message.n;
      peer.seq = message.seq;
      peer.heardAt = performance.now();
    } else if (this.#peers.size < MAX_INSTANCES) {
      this.#peers.set(message.id, { n: message.n, seq: message.seq, heardAt: performance.now() });
    }
    // A newcomer (or one that reconnected) asks: answer now, not at the next heartbeat.
    if (message.kind === "hello") this.#publish("count");
    this.#notify();
  }

  #notify(): void {
    const total = this.total;
    if (total === this.#lastTotal) return;
    this.#lastTotal = total;
    for (const listener of this.#listeners) {
      try {
        listener(total);
      } catch (e) {
        console.error("[readers] a count listener failed:", e);
      }
    }
  }

  #busWorks(): void {
    if (this.#busFailing) console.warn("[readers] the count is shared again");
    this.#busFailing = false;
  }

  #busFailed(e: unknown): void {
    // Once per streak: a database that is down for a minute is one line, not twelve.
    if (this.#busFailing) return;
    this.#busFailing = true;
    this.#onBusError(e);
  }
}

/** The BroadcastChannel the Workers of one process (`--workers N`) share their counts on. */
export const READERS_BROADCAST = "pier-readers";

/**
 * A bus between the Workers of one process (`--workers N`): a BroadcastChannel, which delivers to every other
 * Worker's channel of the same name, never back to the sender.
 *
 * @param name The channel's name.
 * @returns The bus.
 *
 * @example
 * ```ts
 * import { broadcastBus, ReaderCount } from "./readers.ts";
 * const readers = new ReaderCount({ bus: broadcastBus("pier-readers-example") });
 * await readers.close();
 * ```
 */
export function broadcastBus(name: string): CountBus {
  // One channel object for both directions: a BroadcastChannel never delivers to the object that posted,
  // so this bus does not hear its own messages (a bridge then cannot send one back to where it came from).
  const channel = new BroadcastChannel(name);
  return {
    publish(message) {
      try {
        channel.postMessage(message);
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e); // closed
      }
    },
    listen(onMessage, onReady) {
      channel.onmessage = (event) => {
        if (typeof event.data === "string") onMessage(event.data);
      };
      queueMicrotask(onReady);
      return Promise.resolve(() => {
        channel.close();
        return Promise.resolve();
      });
    },
  };
}

/**
 * Join two buses: what is heard on one is published on the other, both ways. The main thread of
 * `--workers N` with PostgreSQL bridges its Workers' BroadcastChannel to LISTEN/NOTIFY, so each Worker counts
 * as an instance among all the others. Each message is passed on once: one that comes back (PostgreSQL
 * delivers a NOTIFY to its sender too) has a sequence number already passed, and stops there.
 *
 * @param a One bus.
 * @param b The other.
 * @returns A function that stops the bridge.
 *
 * @example
 * ```ts ignore
 * const stop = await bridgeBuses(broadcastBus("pier-readers"), postgresBus(store));
 * ```
 */
export async function bridgeBuses(a: CountBus, b: CountBus): Promise<() => Promise<void>> {
  // The newest message number passed on per sender. A bus may give a message back (PostgreSQL delivers a
  // NOTIFY to every listener, this bridge's included): passing it on again would send it around forever.
  const passed = new Map<string, number>();
  const pass = (to: CountBus) => (text: string) => {
    // Only the protocol goes across, never whatever else a bus carries.
    const message = parseCountMessage(text);
    if (message === null || message.seq <= (passed.get(message.id) ?? -1)) return;
    passed.delete(message.id); // re-inserted last: the map's order is the senders' recency
    passed.set(message.id, message.seq);
    if (passed.size > MAX_INSTANCES) passed.delete(passed.keys().next().value!);
    to.publish(text).catch(() => {});
  };
  const stopA = await a.listen(pass(b), () => {});
  const stopB = await b.listen(pass(a), () => {});
  return async () => {
    await Promise.all([stopA(), stopB()]);
  };
}

/** What {@link postgresBus} needs of a PostgreSQL store: NOTIFY, and LISTEN on a connection of its own. */
export interface NotifyListen {
  /** `SELECT pg_notify(channel, payload)`. */
  notify(channel: string, payload: string): Promise<void>;
  /**
   * `LISTEN channel` on its own connection; `onLost` when that connection closes. Resolves, once listening,
   * with a function that stops and closes it.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onLost: () => void,
  ): Promise<() => Promise<void>>;
}

/** The channel the instances' counts travel on. */
export const READERS_CHANNEL = "pier_readers";

/**
 * A bus over PostgreSQL `LISTEN/NOTIFY` (the instances of `--database postgres://…`). It listens on a
 * connection of its own. When that connection closes (the database restarted or went away), the next publish
 * that succeeds, at the latest the next heartbeat once the database is back, listens again, and this instance
 * says hello to hear everyone's counts. A listen lost without notice is noticed too: PostgreSQL delivers a
 * NOTIFY to its sender as well, so hearing nothing for `staleMs`, not even its own heartbeats, means it is
 * gone.
 *
 * @param db The store's NOTIFY and LISTEN.
 * @param options The channel, and how long without hearing anything means the listen is lost.
 * @returns The bus.
 *
 * @example
 * ```ts ignore
 * const readers = new ReaderCount({ bus: postgresBus(store) });
 * ```
 */
export function postgresBus(
  db: NotifyListen,
  options: { channel?: string; staleMs?: number } = {},
): CountBus {
  const channel = options.channel ?? READERS_CHANNEL;
  const staleMs = options.staleMs ?? READER_COUNT_DEFAULTS.expiryMs;
  let heardAt = performance.now();
  let listening: { onMessage: (m: string) => void; onReady: () => void } | null = null;
  let stop: (() => Promise<void>) | null = null;
  /** Not listening now (the connection closed, or the last attempt failed): the next publish that works retries. */
  let lost = false;
  let relistening = false;
  /** Which listen is the current one: a connection closing after it was replaced is no loss. */
  let generation = 0;
  const relisten = async () => {
    if (relistening || listening === null) return;
    relistening = true;
    try {
      const previous = stop;
      stop = null;
      await previous?.().catch(() => {});
      const { onMessage, onReady } = listening;
      const mine = ++generation;
      stop = await db.listen(channel, (payload) => {
        heardAt = performance.now();
        onMessage(payload);
      }, () => {
        if (mine === generation) lost = true;
      });
      heardAt = performance.now();
      lost = false;
      // Messages sent while not listening are lost: ask everyone again.
      onReady();
    } catch (e) {
      lost = true;
      throw e;
    } finally {
      relistening = false;
    }
  };
  return {
    async publish(message) {
      await db.notify(channel, message);
      // The database answers: listen again if the listen is gone, or silent for too long (not even our own
      // heartbeats came back).
      if (listening !== null && (lost || performance.now() - heardAt > staleMs)) relisten().catch(() => {});
    },
    async listen(onMessage, onReady) {
      listening = { onMessage, onReady };
      // A database down at start is not the end: the publishes fail meanwhile (and say so), and the first
      // one that succeeds listens.
      await relisten().catch(() => {});
      return async () => {
        listening = null;
        const current = stop;
        stop = null;
        await current?.();
      };
    },
  };
}
