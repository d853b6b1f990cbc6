// Urlencoded form tests: a table of bodies against the limits, plus streaming and timeout behaviour.
import assert from "node:assert/strict";
import { HttpError } from "./errors.ts";
import { parseUrlEncoded, readChunks, type UrlEncodedLimits } from "./body.ts";

const FORM = "application/x-www-form-urlencoded";

function formRequest(body: BodyInit | null, contentType: string | null = FORM): Request {
  const headers = new Headers();
  if (contentType !== null) headers.set("content-type", contentType);
  return new Request("http://localhost/", { method: "POST", headers, body });
}

interface Case {
  name: string;
  body: string;
  contentType?: string | null;
  limits?: UrlEncodedLimits;
  /** The expected fields as [name, value] pairs, or the expected error status. */
  expect: Array<[string, string]> | number;
}

const CASES: Case[] = [
  { name: "simple fields", body: "a=1&b=two", expect: [["a", "1"], ["b", "two"]] },
  {
    name: "repeated names in order",
    body: "t=x&t=y&u=z&t=w",
    expect: [["t", "x"], ["t", "y"], ["u", "z"], ["t", "w"]],
  },
  { name: "plus as space and percent escapes", body: "q=a+b%2Bc%20d", expect: [["q", "a b+c d"]] },
  { name: "UTF-8 escapes", body: "city=K%C3%B8benhavn", expect: [["city", "København"]] },
  { name: "raw UTF-8", body: "city=København", expect: [["city", "København"]] },
  { name: "a name without =", body: "flag&x=1", expect: [["flag", ""], ["x", "1"]] },
  { name: "empty fields skipped", body: "&&a=1&&", expect: [["a", "1"]] },
  { name: "an empty body", body: "", expect: [] },
  {
    name: "charset parameter allowed",
    body: "a=1",
    contentType: `${FORM}; charset=UTF-8`,
    expect: [["a", "1"]],
  },
  {
    name: "media type case-insensitive",
    body: "a=1",
    contentType: "Application/X-WWW-Form-Urlencoded",
    expect: [["a", "1"]],
  },
  {
    name: "exactly maxBytes",
    body: "a=" + "x".repeat(98),
    limits: { maxBytes: 100 },
    expect: [["a", "x".repeat(98)]],
  },
  { name: "one byte over maxBytes", body: "a=" + "x".repeat(99), limits: { maxBytes: 100 }, expect: 413 },
  {
    name: "exactly maxFields",
    body: "a=1&b=2&c=3",
    limits: { maxFields: 3 },
    expect: [["a", "1"], ["b", "2"], ["c", "3"]],
  },
  { name: "one field over maxFields", body: "a=1&b=2&c=3&d=4", limits: { maxFields: 3 }, expect: 400 },
  { name: "empty fields count toward maxFields", body: "&&&&", limits: { maxFields: 3 }, expect: 400 },
  {
    name: "exactly maxFieldBytes",
    body: "a=12345678&b=1",
    limits: { maxFieldBytes: 10 },
    expect: [["a", "12345678"], ["b", "1"]],
  },
  { name: "a field over maxFieldBytes", body: "a=123456789&b=1", limits: { maxFieldBytes: 10 }, expect: 400 },
  {
    name: "a long name over maxFieldBytes",
    body: "x".repeat(11),
    limits: { maxFieldBytes: 10 },
    expect: 400,
  },
  { name: "a bad percent escape", body: "a=%zz", expect: 400 },
  { name: "a truncated percent escape", body: "a=%4", expect: 400 },
  { name: "an escape that is not UTF-8", body: "a=%FF", expect: 400 },
  { name: "wrong Content-Type", body: "a=1", contentType: "text/plain", expect: 415 },
  {
    name: "multipart Content-Type",
    body: "a=1",
    contentType: "multipart/form-data; boundary=x",
    expect: 415,
  },
  { name: "no Content-Type", body: "a=1", contentType: null, expect: 415 },
];

for (const c of CASES) {
  Deno.test(`parseUrlEncoded() with ${c.name}`, async () => {
    const req = formRequest(c.body, c.contentType === undefined ? FORM : c.contentType);
    if (typeof c.expect === "number") {
      const status = c.expect;
      await assert.rejects(
        parseUrlEncoded(req, c.limits),
        (err: unknown) => err instanceof HttpError && err.status === status,
      );
    } else {
      const params = await parseUrlEncoded(req, c.limits);
      assert.deepEqual([...params], c.expect);
    }
  });
}

Deno.test("parseUrlEncoded() rejects raw bytes that are not UTF-8 with 400", async () => {
  const req = formRequest(new Uint8Array([0x61, 0x3d, 0xff, 0xfe]));
  await assert.rejects(
    parseUrlEncoded(req),
    (err: unknown) => err instanceof HttpError && err.status === 400,
  );
});

/** A stream that yields `chunk` forever and counts how many chunks were pulled. */
function endless(chunk: Uint8Array): { stream: ReadableStream<Uint8Array>; pulls: () => number } {
  let n = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      n++;
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
  return { stream, pulls: () => n };
}

Deno.test("parseUrlEncoded() stops reading an endless body at maxBytes", async () => {
  const { stream, pulls } = endless(new TextEncoder().encode("a=1&".repeat(256))); // 1 KiB per chunk
  await assert.rejects(
    parseUrlEncoded(formRequest(stream), { maxBytes: 10 * 1024, maxFields: 1e9 }),
    (err: unknown) => err instanceof HttpError && err.status === 413,
  );
  assert.equal(pulls(), 11);
});

Deno.test("parseUrlEncoded() stops reading at the first field over maxFieldBytes", async () => {
  const { stream, pulls } = endless(new Uint8Array(1024).fill(0x78)); // one endless field of 'x'
  await assert.rejects(
    parseUrlEncoded(formRequest(stream), { maxFieldBytes: 4096 }),
    (err: unknown) => err instanceof HttpError && err.status === 400,
  );
  assert.equal(pulls(), 5);
});

Deno.test("parseUrlEncoded() refuses a declared Content-Length over maxBytes without reading", async () => {
  const { stream, pulls } = endless(new Uint8Array(1));
  const req = new Request("http://localhost/", {
    method: "POST",
    headers: { "content-type": FORM, "content-length": "2000" },
    body: stream,
  });
  await assert.rejects(
    parseUrlEncoded(req, { maxBytes: 1000 }),
    (err: unknown) => err instanceof HttpError && err.status === 413,
  );
  assert.equal(pulls(), 0);
});

Deno.test("parseUrlEncoded() answers 408 when the body stops arriving", async () => {
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("a=1&b="));
    },
    cancel() {
      cancelled = true;
    },
  });
  await assert.rejects(
    parseUrlEncoded(formRequest(stream), { bodyTimeoutMs: 50 }),
    (err: unknown) => err instanceof HttpError && err.status === 408,
  );
  assert.equal(cancelled, true);
});

Deno.test("readChunks() restarts its timer with each chunk, so a slow steady body is read whole", async () => {
  let n = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise((r) => setTimeout(r, 30));
      if (n++ === 5) controller.close();
      else controller.enqueue(new Uint8Array([n]));
    },
  }, { highWaterMark: 0 });
  const got: number[] = [];
  // 6 chunks at 30 ms each take 180 ms in all, more than the 100 ms allowed for any single one.
  for await (const chunk of readChunks(stream, 100)) got.push(...chunk);
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
});

Deno.test("readChunks() counts only the time a read waits, never the time spent on a chunk", async () => {
  let n = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (n++ === 3) controller.close();
      else controller.enqueue(new Uint8Array([n]));
    },
  }, { highWaterMark: 0 });
  const got: number[] = [];
  for await (const chunk of readChunks(stream, 100)) {
    got.push(...chunk);
    await new Promise((r) => setTimeout(r, 250)); // a slow disk, say: longer than the timeout each time
  }
  assert.deepEqual(got, [1, 2, 3]);

  // And after such a pause, a read that then waits too long is still cut off.
  let cancelled = false;
  const stalls = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([1]));
    },
    cancel() {
      cancelled = true;
    },
  });
  const started = performance.now();
  await assert.rejects(
    (async () => {
      for await (const _ of readChunks(stalls, 100)) await new Promise((r) => setTimeout(r, 250));
    })(),
    (err: unknown) => err instanceof HttpError && err.status === 408,
  );
  assert.ok(performance.now() - started >= 340, "the 408 came a timeout after the pause, not during it");
  assert.equal(cancelled, true);
});

Deno.test("parseUrlEncoded() answers 400 when the client aborts mid-body, and the engine's status when it has one", async () => {
  for (
    const [error, status] of [[new Deno.errors.ConnectionReset("gone"), 400], [
      Object.assign(new Error("too big"), { status: 413 }),
      413,
    ]] as const
  ) {
    let step = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (step++ === 0) controller.enqueue(new TextEncoder().encode("a=1&b="));
        else controller.error(error);
      },
    }, { highWaterMark: 0 });
    await assert.rejects(
      parseUrlEncoded(formRequest(stream)),
      (err: unknown) => err instanceof HttpError && err.status === status && err.cause === error,
    );
  }
});
