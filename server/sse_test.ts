// sse.ts in memory, with no permission: the wire format against the WHATWG parsing rules (a transcription of
// HTML §9.2.6 below reads it back), and the stream's queue, backpressure, heartbeat, write timeout and ends,
// read through the Response body as a server would read it.
import assert from "node:assert/strict";
import { type EventStream, formatEvent, type ServerSentEvent, sse } from "./sse.ts";

/** A test that proves its subject touches nothing: no permission is granted. */
function pure(name: string, fn: () => void | Promise<void>) {
  Deno.test({ name, permissions: "none", fn });
}

/** What a client dispatches: HTML §9.2.6's event stream interpretation, line by line, for these tests. */
interface Dispatched {
  type: string;
  data: string;
  lastEventId: string;
}
function interpret(text: string): { events: Dispatched[]; retry: number | null; comments: number } {
  const events: Dispatched[] = [];
  let data = "", type = "", lastEventId = "", idBuffer = "";
  let retry: number | null = null, comments = 0;
  // Lines end in CRLF, LF or CR; the text after the last line end is an incomplete line, ignored.
  const lines = text.split(/\r\n|\r|\n/);
  lines.pop();
  for (const line of lines) {
    if (line === "") {
      lastEventId = idBuffer;
      if (data === "") {
        type = "";
        continue;
      }
      if (data.endsWith("\n")) data = data.slice(0, -1);
      events.push({ type: type || "message", data, lastEventId });
      data = type = "";
      continue;
    }
    if (line.startsWith(":")) {
      comments++;
      continue;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data += value + "\n";
    else if (field === "id" && !value.includes("\0")) idBuffer = value;
    else if (field === "retry" && /^[0-9]+$/.test(value)) retry = Number(value);
  }
  return { events, retry, comments };
}

pure("formatEvent() writes each field, data one line per line, then the blank line", () => {
  const table: [ServerSentEvent, string][] = [
    [{ data: "hello" }, "data: hello\n\n"],
    [{ data: "" }, "data: \n\n"],
    [{ data: "a\nb" }, "data: a\ndata: b\n\n"],
    [{ data: "a\r\nb\rc\n" }, "data: a\ndata: b\ndata: c\ndata: \n\n"],
    [{ data: " leading space" }, "data:  leading space\n\n"],
    [{ event: "tick", data: "1" }, "event: tick\ndata: 1\n\n"],
    [{ id: 7, data: "x" }, "id: 7\ndata: x\n\n"],
    [{ id: "", data: "x" }, "id: \ndata: x\n\n"],
    [{ retry: 2500 }, "retry: 2500\n\n"],
    [{ comment: "hi" }, ": hi\n\n"],
    [{ comment: "" }, ":\n\n"],
    [{ comment: "two\nlines" }, ": two\n: lines\n\n"],
    [
      { comment: "c", event: "e", id: "i", retry: 0, data: "d" },
      ": c\nevent: e\nid: i\nretry: 0\ndata: d\n\n",
    ],
    [{}, ""],
  ];
  for (const [message, wire] of table) assert.equal(formatEvent(message), wire, JSON.stringify(message));
});

pure(
  "formatEvent() refuses event and id values that would inject fields, and a retry that is no integer",
  () => {
    for (const event of ["a\nb", "a\rb", "x\r\ndata: injected"]) {
      assert.throws(() => formatEvent({ event, data: "x" }), TypeError, JSON.stringify(event));
    }
    for (const id of ["1\n", "\r1", "a\0b", "1\r\nevent: injected"]) {
      assert.throws(() => formatEvent({ id, data: "x" }), TypeError, JSON.stringify(id));
    }
    for (const retry of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
      assert.throws(() => formatEvent({ retry }), RangeError, String(retry));
    }
  },
);

pure("what formatEvent() writes, a client reads back: data with any line ends, types, ids, comments", () => {
  const messages: ServerSentEvent[] = [
    { data: "plain" },
    { event: "multi", id: "1", data: "one\ntwo\r\nthree\rfour" },
    { comment: "not an event\nsecond comment line" },
    { data: "data: fake field\nid: fake" },
    { event: "empty", id: 2, data: "" },
    { data: "  two spaces, ünïcödé, 😀" },
    { retry: 1000 },
  ];
  const parsed = interpret(messages.map(formatEvent).join(""));
  assert.deepEqual(parsed.events, [
    { type: "message", data: "plain", lastEventId: "" },
    { type: "multi", data: "one\ntwo\nthree\nfour", lastEventId: "1" },
    { type: "message", data: "data: fake field\nid: fake", lastEventId: "1" },
    { type: "empty", data: "", lastEventId: "2" },
    { type: "message", data: "  two spaces, ünïcödé, 😀", lastEventId: "2" },
  ]);
  assert.equal(parsed.retry, 1000);
  assert.equal(parsed.comments, 2);
});

const dec = new TextDecoder();
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** Read the body until `until` holds for the text read so far (or the body ends). */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  until: (text: string) => boolean,
): Promise<string> {
  let text = "";
  while (!until(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  return text;
}

/** Run `handler` in sse() and hand back the stream it got, the response and a reader of its body. */
function open(
  init: RequestInit = {},
  options: Parameters<typeof sse>[2] = {},
  handler: (stream: EventStream) => unknown = (s) => s.finished,
) {
  let stream!: EventStream;
  const response = sse(new Request("http://localhost/events", init), (s) => {
    stream = s;
    return handler(s);
  }, options);
  return { stream, response, reader: response.body!.getReader() };
}

pure(
  "sse() answers text/event-stream, not to be stored nor buffered, and hands over Last-Event-ID",
  async () => {
    const { stream, response, reader } = open(
      { headers: { "last-event-id": "41" } },
      { headers: { "x-extra": "1", "content-type": "text/plain" } },
    );
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    assert.equal(response.headers.get("cache-control"), "no-store");
    assert.equal(response.headers.get("x-accel-buffering"), "no");
    assert.equal(response.headers.get("x-extra"), "1");
    assert.equal(response.headers.get("content-length"), null);
    assert.equal(stream.lastEventId, "41");
    stream.close();
    assert.equal((await reader.read()).done, true);
    // No header, or an empty one (browsers send none while the id is ""), is null.
    for (const headers of [{}, { "last-event-id": "" }] as Record<string, string>[]) {
      const other = open({ headers });
      assert.equal(other.stream.lastEventId, null);
      other.stream.close();
      await other.reader.cancel();
    }
  },
);

pure("sse(): messages come out in order, and the stream ends when the handler returns", async () => {
  const { reader } = open({}, {}, async (s) => {
    assert.equal(await s.send({ event: "a", data: "1" }), true);
    await tick();
    await s.comment("between");
    assert.equal(await s.send({ id: 2, data: "x\ny" }), true);
  });
  const text = await readUntil(reader, () => false);
  assert.equal(text, "event: a\ndata: 1\n\n: between\n\nid: 2\ndata: x\ndata: y\n\n");
});

pure(
  "sse(): a handler that throws is reported, its messages before still go out, and the stream ends",
  async () => {
    const reported: unknown[] = [];
    const { stream, reader } = open({}, { onError: (e) => reported.push(e) }, async (s) => {
      await s.send({ data: "before" });
      throw new Error("boom");
    });
    const text = await readUntil(reader, () => false);
    assert.equal(text, "data: before\n\n");
    assert.equal((reported[0] as Error).message, "boom");
    assert.equal(stream.closed, true);
    assert.equal(stream.signal.aborted, true);
  },
);

pure("sse(): send() waits past the high-water mark until the server reads, then resumes", async () => {
  const { stream, reader } = open({}, { highWaterMark: 100, heartbeatMs: 0 });
  const event = { data: "x".repeat(44) }; // 52 bytes on the wire
  assert.equal(await stream.send(event), true); // 52 queued: under the mark
  let second: boolean | undefined;
  stream.send(event).then((ok) => second = ok); // 104 queued: waits
  await tick(10);
  assert.equal(second, undefined, "the second send waits while nothing is read");
  assert.equal(stream.bufferedAmount, 104);
  const first = await reader.read();
  assert.equal(first.value!.length, 104, "what was queued comes out as one chunk");
  await tick();
  assert.equal(second, true);
  assert.equal(stream.bufferedAmount, 0);
  stream.close();
  await reader.cancel();
});

pure(
  "sse(): a producer that does not await is dropped past maxBufferedBytes, and send() then answers false",
  async () => {
    const { stream, reader } = open({}, { highWaterMark: 100, maxBufferedBytes: 1000, heartbeatMs: 0 });
    const answers: Promise<boolean>[] = [];
    for (let i = 0; i < 30; i++) answers.push(stream.send({ data: "y".repeat(42) })); // 50 bytes each
    assert.equal(stream.closed, true, "dropped at the 21st message");
    assert.equal(stream.bufferedAmount, 0, "and its queue let go");
    const settled = await Promise.all(answers);
    assert.deepEqual(settled.slice(0, 2), [true, true]);
    assert.ok(settled.slice(20).every((ok) => ok === false));
    await assert.rejects(reader.read(), /maxBufferedBytes|bytes queued/);
    assert.match(String(stream.signal.reason), /1000 bytes queued/);
  },
);

pure(
  "sse(): a client that takes nothing for writeTimeoutMs is dropped; sends waiting answer false",
  async () => {
    const { stream, reader } = open({}, { highWaterMark: 10, writeTimeoutMs: 60, heartbeatMs: 0 });
    const t0 = performance.now();
    const waiting = stream.send({ data: "more than ten bytes" });
    assert.equal(await waiting, false);
    const waited = performance.now() - t0;
    assert.ok(waited >= 55, `dropped after ${waited} ms`);
    assert.equal(stream.closed, true);
    await assert.rejects(reader.read(), /nothing taken for 60 ms/);
  },
);

pure("sse(): a server that keeps reading is never dropped, however long the stream lasts", async () => {
  const { stream, reader } = open({}, { highWaterMark: 10, writeTimeoutMs: 40, heartbeatMs: 0 });
  const reading = readUntil(reader, () => false);
  for (let i = 0; i < 10; i++) {
    assert.equal(await stream.send({ data: `message ${i}` }), true);
    await tick(15);
  }
  assert.equal(stream.closed, false);
  stream.close();
  assert.equal((await reading).split("\n\n").length, 11);
});

pure("sse(): an idle stream gets a heartbeat comment, a busy one does not", async () => {
  const { stream, reader } = open({}, { heartbeatMs: 30 });
  const first = await reader.read();
  assert.equal(dec.decode(first.value), ": keep-alive\n\n");
  // Sending every 10 ms leaves no silence of 30 ms: no heartbeat among the messages.
  const reading = readUntil(reader, (t) => t.includes("data: 9\n"));
  for (let i = 0; i < 10; i++) {
    await stream.send({ data: String(i) });
    await tick(10);
  }
  assert.doesNotMatch(await reading, /keep-alive/);
  stream.close();
  await reader.cancel();
});

pure(
  "sse(): the server cancelling the body (the client left) ends the stream and wakes the handler",
  async () => {
    let slept: boolean | undefined;
    const { stream, reader } = open({}, {}, async (s) => {
      slept = await s.sleep(60_000);
    });
    await reader.cancel();
    await stream.finished;
    assert.equal(stream.closed, true);
    assert.equal(stream.signal.aborted, true);
    await tick();
    assert.equal(slept, false, "sleep() ended early");
    assert.equal(await stream.send({ data: "late" }), false);
  },
);

pure("sse(): close() sends what is queued, then the body ends", async () => {
  const { stream, reader } = open();
  stream.send({ data: "one" });
  stream.send({ data: "two" });
  stream.close();
  assert.equal(await stream.send({ data: "three" }), false);
  assert.equal(await readUntil(reader, () => false), "data: one\n\ndata: two\n\n");
});
