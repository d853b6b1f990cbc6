// app/readers.ts in memory, with no permission: the message grammar, one instance alone, and several sharing
// their counts over a bus that delivers to everyone (the sender too, as PostgreSQL does), late or twice, or
// not at all: arrivals and departures, a newcomer told at once, a goodbye, a crash forgotten after the expiry,
// forged messages, a failing bus, a BroadcastChannel, a bridge, and the PostgreSQL bus listening again. Real
// PostgreSQL and real browsers: readers_postgres_test.ts and live_browser_test.ts.
import assert from "node:assert/strict";
import {
  bridgeBuses,
  broadcastBus,
  type CountBus,
  MAX_INSTANCE_READERS,
  type NotifyListen,
  parseCountMessage,
  postgresBus,
  ReaderCount,
  type ReaderCountOptions,
} from "../../app/readers.ts";

function pure(name: string, fn: () => void | Promise<void>) {
  Deno.test({ name, permissions: "none", fn });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves true once `cond()` holds, polling; false after `ms`. */
async function until(cond: () => boolean, ms = 2000): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/** A bus in memory: every message to every listener, the sender's included, a turn later. */
class Hub {
  readonly listeners = new Set<(m: string) => void>();
  /** Messages dropped while false (the database is down). */
  up = true;
  sent: string[] = [];
  bus(): CountBus {
    return {
      publish: (message) => {
        if (!this.up) return Promise.reject(new Error("bus down"));
        this.sent.push(message);
        for (const listener of [...this.listeners]) setTimeout(() => listener(message), 1);
        return Promise.resolve();
      },
      listen: (onMessage, onReady) => {
        this.listeners.add(onMessage);
        setTimeout(onReady, 1);
        return Promise.resolve(() => {
          this.listeners.delete(onMessage);
          return Promise.resolve();
        });
      },
    };
  }
  /** Say `text` on the bus, as anyone with access to it could. */
  say(text: string): void {
    for (const listener of this.listeners) listener(text);
  }
}

/** Fast timings, so expiry takes a fraction of a second. */
const FAST: ReaderCountOptions = { heartbeatMs: 40, expiryMs: 120, publishDelayMs: 5 };

pure("parseCountMessage() takes the protocol's messages and nothing else", () => {
  const good = { v: 1, id: "2c9f", seq: 3, n: 4, kind: "count" };
  assert.deepEqual(parseCountMessage(JSON.stringify(good)), good);
  for (const kind of ["hello", "bye"]) {
    assert.equal(parseCountMessage(JSON.stringify({ ...good, kind }))?.kind, kind);
  }
  const bad: [string, unknown][] = [
    ["not JSON", "{"],
    ["not an object", 7],
    ["null", null],
    ["another version", { ...good, v: 2 }],
    ["no id", { ...good, id: undefined }],
    ["empty id", { ...good, id: "" }],
    ["id too long", { ...good, id: "x".repeat(65) }],
    ["negative count", { ...good, n: -1 }],
    ["fractional count", { ...good, n: 1.5 }],
    ["count as text", { ...good, n: "4" }],
    ["count over the bound", { ...good, n: MAX_INSTANCE_READERS + 1 }],
    ["fractional seq", { ...good, seq: 0.5 }],
    ["unknown kind", { ...good, kind: "reset" }],
  ];
  for (const [what, value] of bad) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    assert.equal(parseCountMessage(text), null, what);
  }
  assert.equal(parseCountMessage(JSON.stringify({ ...good, id: "x".repeat(600) })), null, "oversized");
});

pure(
  "one instance alone: join and leave, a second leave changes nothing, listeners hear each change",
  async () => {
    const readers = new ReaderCount();
    const heard: number[] = [];
    readers.subscribe((n) => heard.push(n));
    const a = readers.join();
    const b = readers.join();
    assert.equal(readers.total, 2);
    a();
    a();
    assert.equal(readers.total, 1);
    b();
    assert.equal(readers.total, 0);
    assert.deepEqual(heard, [1, 2, 1, 0]);
    await readers.close();
  },
);

pure("two instances on a bus: each sees the other's readers arrive and leave", async () => {
  const hub = new Hub();
  const one = new ReaderCount({ ...FAST, bus: hub.bus() });
  const two = new ReaderCount({ ...FAST, bus: hub.bus() });
  try {
    const leaveOne = one.join();
    const leaveTwo = [two.join(), two.join()];
    assert.ok(await until(() => one.total === 3 && two.total === 3), `${one.total} / ${two.total}`);
    leaveOne();
    leaveTwo[0]();
    assert.ok(await until(() => one.total === 1 && two.total === 1), `${one.total} / ${two.total}`);
    assert.equal(one.local, 0);
    assert.equal(two.local, 1);
    assert.equal(one.instances, 1);
  } finally {
    await one.close();
    await two.close();
  }
});

pure("a burst of arrivals goes out as one message", async () => {
  const hub = new Hub();
  const readers = new ReaderCount({ heartbeatMs: 10_000, publishDelayMs: 20, bus: hub.bus() });
  try {
    await sleep(10); // the hello
    const before = hub.sent.length;
    for (let i = 0; i < 100; i++) readers.join();
    await sleep(60);
    const counts = hub.sent.slice(before).map((m) => parseCountMessage(m)!);
    assert.deepEqual(counts.map((m) => [m.kind, m.n]), [["count", 100]]);
  } finally {
    await readers.close();
  }
});

pure(
  "a newcomer hears the others' counts at once (its hello is answered), not at their next heartbeat",
  async () => {
    const hub = new Hub();
    const slow = { heartbeatMs: 60_000, expiryMs: 180_000, publishDelayMs: 5 };
    const old = new ReaderCount({ ...slow, bus: hub.bus() });
    try {
      old.join();
      old.join();
      await sleep(20);
      const newcomer = new ReaderCount({ ...slow, bus: hub.bus() });
      try {
        assert.ok(await until(() => newcomer.total === 2, 500), `newcomer sees ${newcomer.total}`);
      } finally {
        await newcomer.close();
      }
    } finally {
      await old.close();
    }
  },
);

pure("an instance that says goodbye is forgotten at once; one that crashes, after the expiry", async () => {
  const hub = new Hub();
  // The crashing one's bus: cut, its messages go nowhere (as a killed process's, which says no goodbye).
  let alive = true;
  const inner = hub.bus();
  const cuttable: CountBus = {
    publish: (m) => alive ? inner.publish(m) : Promise.resolve(),
    listen: inner.listen,
  };
  const stays = new ReaderCount({ ...FAST, bus: hub.bus() });
  const leaves = new ReaderCount({ ...FAST, bus: hub.bus() });
  const crashes = new ReaderCount({ ...FAST, bus: cuttable });
  try {
    leaves.join();
    crashes.join();
    crashes.join();
    assert.ok(await until(() => stays.total === 3));
    await leaves.close();
    assert.ok(await until(() => stays.total === 2, 50), "the goodbye is heard at once");
    alive = false;
    const cut = performance.now();
    await sleep(60);
    assert.equal(stays.total, 2, "still counted before the expiry");
    assert.ok(await until(() => stays.total === 0, 1000), `forgotten: ${stays.total}`);
    const after = performance.now() - cut;
    assert.ok(after >= 100, `forgotten ${after} ms after its last message: before the expiry`);
  } finally {
    await stays.close();
    await crashes.close();
  }
});

pure("messages that come twice or late never move the count back", async () => {
  const hub = new Hub();
  const readers = new ReaderCount({ ...FAST, heartbeatMs: 60_000, bus: hub.bus() });
  try {
    await sleep(10);
    const m = (seq: number, n: number) => JSON.stringify({ v: 1, id: "other", seq, n, kind: "count" });
    hub.say(m(5, 4));
    assert.equal(readers.total, 4);
    hub.say(m(3, 9)); // overtaken on the way
    hub.say(m(5, 9)); // a repeat
    assert.equal(readers.total, 4);
    hub.say(m(6, 1));
    assert.equal(readers.total, 1);
  } finally {
    await readers.close();
  }
});

pure(
  "forged messages on the bus: garbage is ignored, and a flood of made-up instances is bounded",
  async () => {
    const hub = new Hub();
    const readers = new ReaderCount({ ...FAST, heartbeatMs: 60_000, bus: hub.bus() });
    try {
      await sleep(10);
      for (
        const text of ["", "{}", "null", '{"v":1,"id":"x","seq":1,"n":-5,"kind":"count"}', "x".repeat(10_000)]
      ) {
        hub.say(text);
      }
      assert.equal(readers.total, 0);
      assert.equal(readers.instances, 0);
      for (let i = 0; i < 3000; i++) {
        hub.say(
          JSON.stringify({ v: 1, id: `fake-${i}`, seq: 1, n: 1, kind: "count" }),
        );
      }
      assert.ok(readers.instances <= 1024, `${readers.instances} instances remembered`);
      // Its own id coming back (PostgreSQL echoes) is not another instance.
      hub.say(JSON.stringify({ v: 1, id: readers.instanceId, seq: 99, n: 50, kind: "count" }));
      assert.ok(readers.total <= 1024);
    } finally {
      await readers.close();
    }
  },
);

pure("a failing bus is reported once per streak, and the local count goes on", async () => {
  const hub = new Hub();
  const errors: unknown[] = [];
  const readers = new ReaderCount({ ...FAST, bus: hub.bus(), onBusError: (e) => errors.push(e) });
  const warn = console.warn;
  const warned: string[] = [];
  console.warn = (...a: unknown[]) => warned.push(a.join(" "));
  try {
    hub.up = false;
    readers.join();
    await sleep(150); // a publish and several heartbeats fail
    assert.equal(errors.length, 1);
    assert.equal(readers.total, 1);
    hub.up = true;
    await sleep(60);
    assert.ok(warned.some((w) => /shared again/.test(w)), warned.join("\n"));
  } finally {
    await readers.close();
    console.warn = warn;
  }
});

pure(
  "a BroadcastChannel bus: Workers of one process (here two counts in one thread) share their counts",
  async () => {
    const name = `pier-readers-test-${crypto.randomUUID()}`;
    const one = new ReaderCount({ ...FAST, bus: broadcastBus(name) });
    const two = new ReaderCount({ ...FAST, bus: broadcastBus(name) });
    try {
      one.join();
      two.join();
      two.join();
      assert.ok(await until(() => one.total === 3 && two.total === 3), `${one.total} / ${two.total}`);
    } finally {
      await one.close();
      await two.close();
    }
    assert.equal(one.total, 1, "a closed count keeps only its own");
  },
);

pure("a bridge joins two buses: instances on either side count each other once", async () => {
  const left = new Hub();
  const right = new Hub();
  const stop = await bridgeBuses(left.bus(), right.bus());
  const a = new ReaderCount({ ...FAST, bus: left.bus() });
  const b = new ReaderCount({ ...FAST, bus: right.bus() });
  try {
    a.join();
    b.join();
    b.join();
    assert.ok(await until(() => a.total === 3 && b.total === 3), `${a.total} / ${b.total}`);
    // Each hub gives every message back to the bridge too (as PostgreSQL does): passed on once, it stops
    // there, so the traffic is the heartbeats' and the totals do not move.
    const sentBefore = left.sent.length + right.sent.length;
    await sleep(200);
    assert.equal(a.total, 3);
    assert.equal(b.total, 3);
    const sent = left.sent.length + right.sent.length - sentBefore;
    // Two counts heartbeating every 40 ms, each message on both hubs: about 20 in 200 ms.
    assert.ok(sent < 40, `${sent} messages in 200 ms: a message is going round the bridge`);
    // Only the protocol crosses.
    const before = right.sent.length;
    left.bus().publish("not ours");
    await sleep(10);
    assert.ok(right.sent.slice(before).every((m) => m !== "not ours"));
  } finally {
    await a.close();
    await b.close();
    await stop();
  }
});

pure(
  "the PostgreSQL bus listens again when its connection closes, or when it hears nothing, not even itself",
  async () => {
    const log: string[] = [];
    let deliver: ((p: string) => void) | null = null;
    let failListen = true;
    let lose = () => {};
    const db: NotifyListen = {
      notify(_channel, payload) {
        log.push("notify");
        setTimeout(() => deliver?.(payload), 1);
        return Promise.resolve();
      },
      listen(_channel, onNotify, onLost) {
        log.push("listen");
        // The first listen fails (the database was down when the site started).
        if (failListen) return Promise.reject(new Error("ECONNREFUSED"));
        deliver = onNotify;
        lose = onLost;
        return Promise.resolve(() => {
          deliver = null;
          log.push("unlisten");
          return Promise.resolve();
        });
      },
    };
    const bus = postgresBus(db, { staleMs: 50 });
    const heard: string[] = [];
    const stop = await bus.listen((m) => heard.push(m), () => heard.push("ready"));
    assert.deepEqual(log, ["listen"]);
    failListen = false;
    // The database is back: the first publish that succeeds listens again.
    await bus.publish("one");
    await sleep(10);
    assert.deepEqual(log, ["listen", "notify", "listen"]);
    assert.ok(heard.includes("ready"), "listening now");
    await bus.publish("two");
    await sleep(10);
    assert.equal(heard.at(-1), "two");
    // The driver lost the listen without saying so: nothing arrives any more, not even our own.
    deliver = null;
    await sleep(60);
    await bus.publish("three");
    await sleep(10);
    assert.deepEqual(log.slice(-2), ["unlisten", "listen"], "stale: it listened again");
    await bus.publish("four");
    await sleep(10);
    assert.equal(heard.at(-1), "four");
    // The connection closes (the database restarted): the next publish listens again, and says it is ready.
    const readyBefore = heard.filter((m) => m === "ready").length;
    lose();
    await bus.publish("five");
    await sleep(10);
    assert.deepEqual(log.slice(-2), ["unlisten", "listen"], "lost: it listened again");
    assert.equal(heard.filter((m) => m === "ready").length, readyBefore + 1, "and asked everyone again");
    await stop();
  },
);
