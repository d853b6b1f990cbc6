// app/_rpc.ts over a real MessageChannel: values and errors come back in the one reply shape, an unknown name
// is BAD_OP, a call with no answer fails with TIMEOUT (and its late answer is ignored), failAll settles every
// call in flight, what cannot be cloned fails the call rather than the thread, calls are answered in order.
// Then the `--workers` relay over it, in one thread: every operation of the table reaches the real store.
import assert from "node:assert/strict";
import { answerCalls, Caller, type CallerOptions, remote } from "../../app/_rpc.ts";
import { serveStoreRelay, StoreRelay } from "../../app/relay.ts";
import { Store, StoreError } from "../../app/store.ts";

class TestError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

interface Ops {
  add(n: number): number;
  later(ms: number): Promise<string>;
  fail(code: string | null): never;
  clone(): unknown;
}

/** Both ends of a channel, the answering one with `handlers`; closed after `fn`. */
async function withChannel<Table = Ops>(
  handlers: object,
  fn: (caller: Caller<Table>) => Promise<void>,
  options: Partial<CallerOptions> = {},
): Promise<void> {
  const { port1, port2 } = new MessageChannel();
  answerCalls(port1, handlers);
  const caller = new Caller<Table>(port2, {
    peer: "the test side",
    timeoutMs: 2000,
    error: (message, code) => new TestError(message, code),
    ...options,
  });
  try {
    await fn(caller);
  } finally {
    port1.close();
    port2.close();
  }
}

const handlers = {
  add: (n: number) => n + 1,
  later: (ms: number) => new Promise((resolve) => setTimeout(() => resolve(`after ${ms}`), ms)),
  fail(code: string | null) {
    throw code === null ? new Error("plain") : Object.assign(new Error("coded"), { code });
  },
  clone: () => () => {},
};

Deno.test("a call resolves with the handler's value, sync or async", async () => {
  await withChannel(handlers, async (caller) => {
    assert.equal(await caller.call("add", [1]), 2);
    assert.equal(await caller.call("later", [5]), "after 5");
  });
});

Deno.test("a thrown error comes back with its message and code (ERROR when it has none)", async () => {
  await withChannel(handlers, async (caller) => {
    await assert.rejects(caller.call("fail", ["ERR_SQLITE_ERROR"]), {
      message: "coded",
      code: "ERR_SQLITE_ERROR",
    });
    await assert.rejects(caller.call("fail", [null]), (err: unknown) => {
      assert.ok(err instanceof TestError);
      assert.equal(err.code, "ERROR");
      return true;
    });
  });
});

Deno.test("a name the table does not own is BAD_OP, inherited ones included", async () => {
  await withChannel<Record<string, () => unknown>>(handlers, async (caller) => {
    await assert.rejects(caller.call("nothing", []), { code: "BAD_OP" });
    await assert.rejects(caller.call("constructor", []), { code: "BAD_OP" });
    await assert.rejects(caller.call("toString", []), { code: "BAD_OP" });
  });
});

Deno.test("no answer in time: TIMEOUT, the owner told, a late answer dropped, then calls work", async () => {
  const told: Error[] = [];
  await withChannel(handlers, async (caller) => {
    await assert.rejects(caller.call("later", [300]), (err: unknown) => {
      assert.ok(err instanceof TestError);
      assert.equal(err.code, "TIMEOUT");
      assert.equal(err.message, "No answer from the test side in 100 ms");
      return true;
    });
    assert.equal(told.length, 1);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the late answer arrives and is dropped
    assert.equal(await caller.call("add", [2]), 3);
  }, { timeoutMs: 100, onTimeout: (err) => told.push(err) });
});

Deno.test("failAll() rejects every call in flight with the given error", async () => {
  await withChannel(handlers, async (caller) => {
    const calls = [caller.call("later", [50]), caller.call("later", [60])];
    caller.failAll(new TestError("gone", "WORKER_DIED"));
    for (const call of calls) await assert.rejects(call, { code: "WORKER_DIED" });
    await new Promise((resolve) => setTimeout(resolve, 100));
  });
});

Deno.test("what cannot be cloned fails the call, not the thread: BAD_CALL, DataCloneError", async () => {
  await withChannel(handlers, async (caller) => {
    await assert.rejects(caller.call("add", [() => 1]), { code: "BAD_CALL" });
    await assert.rejects(caller.call("clone", []), { code: "DataCloneError" });
  });
});

Deno.test("synchronous handlers answer in arrival order", async () => {
  const seen: number[] = [];
  await withChannel({ add: (n: number) => (seen.push(n), n) }, async (caller) => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => caller.call("add", [i])));
    assert.deepEqual(answers, seen);
    assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i));
  });
});

Deno.test("remote() makes one method per name, each a call", async () => {
  await withChannel(handlers, async (caller) => {
    const ops = remote<Ops>(["add", "later"], (op, args) => caller.call(op, args));
    assert.equal(await ops.add(41), 42);
    assert.equal(await ops.later(1), "after 1");
    assert.deepEqual(Object.keys(ops), ["add", "later"]);
  });
});

Deno.test("StoreRelay reaches the real store for every operation; failures come as StoreErrors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier-relay-" });
  const store = new Store(`${dir}/site.db`);
  const { port1, port2 } = new MessageChannel();
  serveStoreRelay(store, port1);
  const relay = new StoreRelay(port2);
  try {
    const id = crypto.randomUUID();
    assert.equal(await relay.countVisit(id, 1000, 9000), 1);
    assert.equal(await relay.visitCount(id), 1);
    await relay.sessions.set(id, { values: { n: 1 }, createdAt: 1000, lastSeenAt: 2000 }, 9000);
    assert.deepEqual(await relay.sessions.get(id), {
      data: { values: { n: 1 }, createdAt: 1000, lastSeenAt: 2000 },
      expiresAt: 9000,
    });
    await relay.sessions.destroy(id);
    assert.equal(await relay.sessions.get(id), undefined);
    await relay.sessions.set(id, { values: {}, createdAt: 1000, lastSeenAt: 1000 }, 9000);
    assert.equal(await relay.sessions.prune!(10_000), 1);
    const message = {
      name: "Ada",
      email: "ada@example.com",
      message: "Hi",
      clientAddr: "::1",
      sessionId: null,
    };
    const messageId = await relay.addMessage(message);
    assert.deepEqual((await relay.listMessages()).map((m) => [m.id, m.name]), [[messageId, "Ada"]]);
    const upload = {
      storedName: crypto.randomUUID(),
      originalName: "a.txt",
      size: 3,
      contentType: "text/plain",
      sha256: "",
      description: "",
      clientAddr: "::1",
      sessionId: null,
    };
    const uploadId = await relay.addUpload(upload);
    assert.deepEqual((await relay.listUploads(1)).map((u) => [u.id, u.originalName]), [[uploadId, "a.txt"]]);
    assert.equal(await relay.schemaVersion(), await store.schemaVersion());
    await store.close();
    await assert.rejects(
      relay.visitCount(id),
      (err: unknown) => err instanceof StoreError && err.code === "CLOSED",
    );
  } finally {
    port1.close();
    port2.close();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
