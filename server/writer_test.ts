// The response writer without a socket: its one framing decision as a table, and what it writes to a sink
// and tells its connection (the Outcome bits) for each shape of answer.
import assert from "node:assert/strict";
import {
  decideFraming,
  Framing,
  type FramingInput,
  keepAliveLines,
  Outcome,
  ResponseWriter,
  type Sink,
  type WriterHost,
} from "./writer.ts";

const DATE = "date: Mon, 30 Nov 2026 00:00:00 GMT\r\n";

Deno.test("decideFraming() follows RFC 9112 §6.3 and RFC 9110 §6.4.1, in order", () => {
  const base: FramingInput = { status: 200, isHead: false, versionMinor: 1, known: -1, declared: -1 };
  const cases: [Partial<FramingInput>, Framing, number, string][] = [
    [{ status: 101 }, Framing.None, -1, "1xx never has content"],
    [{ status: 204, known: 5, declared: 5 }, Framing.None, -1, "204 never has content, nor a length"],
    [{ status: 304, declared: 42 }, Framing.None, 42, "304 may state the length a 200 would have"],
    [{ status: 304 }, Framing.None, -1, "304 without a declared length states none"],
    [{ isHead: true, known: 11 }, Framing.None, 11, "HEAD states the length GET would send"],
    [
      { isHead: true, declared: 42 },
      Framing.None,
      42,
      "HEAD with a bodyless answer states the declared length",
    ],
    [{ isHead: true }, Framing.None, -1, "HEAD of a stream of unknown length states none"],
    [{ known: 5, declared: 9 }, Framing.Length, 5, "a known body is sent with its real length"],
    [{ known: 0 }, Framing.Length, 0, "an empty body is Content-Length: 0"],
    [{ declared: 9 }, Framing.Length, 9, "a stream with a declared length"],
    [{}, Framing.Chunked, -1, "HTTP/1.1, length unknown: chunked"],
    [{ versionMinor: 0 }, Framing.Close, -1, "HTTP/1.0, length unknown: the close ends the body"],
    [{ versionMinor: 0, declared: 3 }, Framing.Length, 3, "HTTP/1.0 with a declared length"],
  ];
  for (const [input, framing, length, why] of cases) {
    assert.deepEqual(decideFraming({ ...base, ...input }), { framing, length }, why);
  }
});

/** A sink that records what is written; `failAfter` writes succeed, then every write fails. */
function recordingSink(failAfter = Infinity) {
  const writes: string[] = [];
  const logged: string[] = [];
  let wrote = 0;
  const sink: Sink = {
    writeAll(bytes) {
      if (writes.length >= failAfter) return Promise.reject(new Deno.errors.BrokenPipe("gone"));
      writes.push(String.fromCharCode(...bytes));
      return Promise.resolve();
    },
    wrote: () => void wrote++,
    streaming() {},
  };
  // No Keep-Alive hint here (its lines are tested in tests/engine/keep_alive_test.ts): heads as before.
  const host: WriterHost = {
    dateLine: DATE,
    keepAlive: keepAliveLines(0),
    log: (message) => void logged.push(message),
  };
  return { sink, host, writes, logged, wrotes: () => wrote };
}

const to11 = { method: "GET", versionMinor: 1 as const };
const to10 = { method: "GET", versionMinor: 0 as const };

Deno.test("ResponseWriter queues whole answers and writes a batch in one write", async () => {
  const { sink, host, writes, wrotes } = recordingSink();
  const writer = new ResponseWriter(sink, host);
  assert.equal(writer.answer(new Response("a"), to11, false), Outcome.Complete);
  assert.equal(writer.answer(new Response("bb", { status: 201, headers: { "x-a": "1" } }), to11, false), 0);
  assert.equal(writer.answer(new Response(null, { status: 204 }), to11, false), 0);
  assert.ok(writer.queued > 0);
  assert.deepEqual(writes, [], "nothing is written before the connection flushes");
  await writer.flush();
  assert.equal(writes.length, 1);
  assert.equal(wrotes(), 1);
  assert.equal(writer.queued, 0);
  const text = writes[0];
  assert.match(
    text,
    /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/plain;charset=UTF-8\r\ndate: .*\r\ncontent-length: 1\r\n\r\na/,
  );
  assert.match(
    text,
    /HTTP\/1\.1 201 Created\r\nx-a: 1\r\ncontent-type: text\/plain;charset=UTF-8\r\ndate: [^\r]*\r\ncontent-length: 2\r\n\r\nbb/i,
  );
  assert.match(text, /HTTP\/1\.1 204 No Content\r\ndate: [^\r]*\r\n\r\n$/);
});

Deno.test("ResponseWriter says connection: close when told, and reports a handler's own close", async () => {
  const { sink, host, writes } = recordingSink();
  const writer = new ResponseWriter(sink, host);
  assert.equal(writer.answer(new Response("x"), to11, true), Outcome.Complete);
  const own = new Response("y", { headers: { connection: "close", "keep-alive": "timeout=5" } });
  assert.equal(writer.answer(own, to11, false), Outcome.HandlerAsked);
  assert.equal(writer.answer(new Response("z"), to10, false), Outcome.Complete);
  await writer.flush();
  const answers = writes[0].split(/(?=HTTP\/1\.1 )/);
  assert.match(answers[0], /\r\nconnection: close\r\n\r\nx$/);
  assert.match(answers[1], /\r\nconnection: close\r\n\r\ny$/);
  assert.doesNotMatch(answers[1], /keep-alive/, "hop-by-hop fields are the server's to write");
  assert.match(answers[2], /\r\nconnection: keep-alive\r\n\r\nz$/, "HTTP/1.0 is told the connection stays");
});

Deno.test("ResponseWriter streams: chunked for 1.1, close-delimited for 1.0, short or failed bodies reported", async () => {
  const slow = (parts: string[], fail?: Error) =>
    new ReadableStream<Uint8Array>({
      async start(c) {
        for (const p of parts) {
          await new Promise((r) => setTimeout(r, 5));
          c.enqueue(new TextEncoder().encode(p));
        }
        if (fail) c.error(fail);
        else c.close();
      },
    });
  let r = recordingSink();
  let writer = new ResponseWriter(r.sink, r.host);
  assert.equal(await writer.answer(new Response(slow(["ab", "c"])), to11, false), Outcome.Complete);
  assert.match(r.writes.join(""), /transfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n$/);

  r = recordingSink();
  writer = new ResponseWriter(r.sink, r.host);
  assert.equal(await writer.answer(new Response(slow(["ab"])), to10, false), Outcome.CloseDelimited);
  assert.match(r.writes.join(""), /connection: close\r\n\r\nab$/);

  r = recordingSink();
  writer = new ResponseWriter(r.sink, r.host);
  const short = new Response(slow(["abc"]), { headers: { "content-length": "10" } });
  assert.equal(await writer.answer(short, to11, false), Outcome.Incomplete);
  assert.deepEqual(r.logged, ["response body ended after 3 of 10 declared bytes"]);

  r = recordingSink();
  writer = new ResponseWriter(r.sink, r.host);
  const long = new Response(slow(["abc", "def"]), { headers: { "content-length": "4" } });
  assert.equal(await writer.answer(long, to11, false), Outcome.Incomplete);
  assert.match(r.writes.join(""), /\r\n\r\nabcd$/, "only the declared bytes are sent");

  r = recordingSink();
  writer = new ResponseWriter(r.sink, r.host);
  assert.equal(
    await writer.answer(new Response(slow(["a"], new Error("disk"))), to11, false),
    Outcome.Incomplete,
  );
  assert.deepEqual(r.logged, ["response body stream failed"]);
});

Deno.test("ResponseWriter reports a failed write without logging it, and stops a cancelled stream", async () => {
  const r = recordingSink(0);
  const writer = new ResponseWriter(r.sink, r.host);
  const big = new Uint8Array(64 * 1024);
  assert.equal(await writer.answer(new Response(big), to11, false), Outcome.WriteFailed);
  assert.deepEqual(r.logged, []);

  const s = recordingSink();
  const streaming = new ResponseWriter(s.sink, s.host);
  let cancelled = false;
  const idle = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode("data: hi\n\n"));
    },
    cancel() {
      cancelled = true;
    },
  });
  const outcome = streaming.answer(new Response(idle), to11, false);
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(streaming.streaming);
  streaming.cancel();
  assert.equal(await outcome, Outcome.WriteFailed);
  assert.ok(cancelled);
  assert.deepEqual(s.logged, [], "a peer that left is not a failure");
});
