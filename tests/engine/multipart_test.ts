// Multipart uploads on disk (body.ts over the parser): the files written and their SHA-256, each limit and
// the disk after it, aborts, timeouts, Content-Type checks. The framing at every split, the filenames and
// the parser's errors run in memory, beside the parser (server/multipart_test.ts).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { HttpError } from "../../server/errors.ts";
import { type MultipartOptions, parseMultipart, readMultipart } from "../../server/body.ts";
import { BOUNDARY, FIELD_TEXT, FILE_TEXT, SAMPLE } from "../fixtures/multipart_sample.ts";

const enc = new TextEncoder();

function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      controller.close();
    },
  });
}

/** Split `bytes` at the given offsets (sorted, within bounds) into a stream of chunks. */
function splitAt(bytes: Uint8Array, ...cuts: number[]): ReadableStream<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const c of cuts) {
    chunks.push(bytes.slice(prev, c));
    prev = c;
  }
  chunks.push(bytes.slice(prev));
  return streamOf(...chunks);
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function withUploadDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pier_multipart_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function checkSample(dir: string, stream: ReadableStream<Uint8Array>, label: string): Promise<void> {
  const { fields, files } = await parseMultipart(stream, BOUNDARY, { uploadDir: dir });
  assert.equal(fields.get("title"), FIELD_TEXT, label);
  assert.equal(fields.get("empty"), "", label);
  assert.equal(files.length, 1, label);
  const [file] = files;
  assert.equal(file.field, "doc", label);
  assert.equal(file.filename, "notes.txt", label);
  assert.equal(file.contentType, "text/plain", label);
  assert.equal(file.size, enc.encode(FILE_TEXT).length, label);
  assert.equal(await Deno.readTextFile(file.path), FILE_TEXT, label);
  assert.equal(file.sha256, createHash("sha256").update(FILE_TEXT).digest("hex"), label);
  await Deno.remove(file.path);
}

Deno.test("parseMultipart() writes the sample's file with its SHA-256, whole and one byte per chunk", async () => {
  await withUploadDir(async (dir) => {
    await checkSample(dir, splitAt(SAMPLE), "whole");
    const cuts = Array.from({ length: SAMPLE.length - 1 }, (_, i) => i + 1);
    await checkSample(dir, splitAt(SAMPLE, ...cuts), "one byte per chunk");
    assert.deepEqual(await listDir(dir), []);
  });
});

/** A body of the given parts; each is [headers, content]. */
function body(parts: Array<[string, string | Uint8Array]>, boundary = BOUNDARY): Uint8Array<ArrayBuffer> {
  const out: Uint8Array[] = [];
  for (const [headers, content] of parts) {
    out.push(enc.encode(`--${boundary}\r\n${headers}\r\n\r\n`));
    out.push(typeof content === "string" ? enc.encode(content) : content);
    out.push(enc.encode("\r\n"));
  }
  out.push(enc.encode(`--${boundary}--\r\n`));
  const total = out.reduce((n, c) => n + c.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of out) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

const file = (name: string, filename = "f.bin") =>
  `Content-Disposition: form-data; name="${name}"; filename="${filename}"`;
const field = (name: string) => `Content-Disposition: form-data; name="${name}"`;

interface LimitCase {
  name: string;
  options: Omit<MultipartOptions, "uploadDir">;
  body: Uint8Array;
  status: number;
}

const LIMIT_CASES: LimitCase[] = [
  {
    name: "a file over maxFileBytes",
    options: { maxFileBytes: 1000 },
    body: body([[file("a"), "x".repeat(999)], [file("b"), "y".repeat(1001)]]),
    status: 413,
  },
  {
    name: "more files than maxFiles",
    options: { maxFiles: 2 },
    body: body([[file("a"), "1"], [file("b"), "2"], [file("c"), "3"]]),
    status: 413,
  },
  {
    name: "more fields than maxFields",
    options: { maxFields: 2 },
    body: body([[file("a"), "1"], [field("x"), "1"], [field("y"), "2"], [field("z"), "3"]]),
    status: 413,
  },
  {
    name: "a field over maxFieldBytes",
    options: { maxFieldBytes: 100 },
    body: body([[file("a"), "1"], [field("x"), "v".repeat(101)]]),
    status: 413,
  },
  {
    name: "part headers over maxPartHeaderBytes",
    options: { maxPartHeaderBytes: 200 },
    body: body([[file("a"), "1"], [`${field("x")}\r\nX-Pad: ${"p".repeat(300)}`, "v"]]),
    status: 413,
  },
  {
    name: "a body over maxTotalBytes",
    options: { maxTotalBytes: 4096 },
    body: body([[file("a"), "z".repeat(3000)], [file("b"), "z".repeat(3000)]]),
    status: 413,
  },
  {
    name: "a part without Content-Disposition",
    options: {},
    body: body([[file("a"), "1"], ["Content-Type: text/plain", "v"]]),
    status: 400,
  },
  {
    name: "a Content-Disposition that is not form-data",
    options: {},
    body: body([[file("a"), "1"], ['Content-Disposition: attachment; name="x"', "v"]]),
    status: 400,
  },
  {
    name: "a folded part header (obs-fold)",
    options: {},
    body: body([[file("a"), "1"], [`${field("x")}\r\n X-Folded: yes`, "v"]]),
    status: 400,
  },
  {
    name: "garbage right after a delimiter",
    options: {},
    body: enc.encode(`--${BOUNDARY}\r\n${file("a")}\r\n\r\n1\r\n--${BOUNDARY}garbage\r\n`),
    status: 400,
  },
  {
    name: "a body cut before its closing delimiter",
    options: {},
    body: enc.encode(`--${BOUNDARY}\r\n${file("a")}\r\n\r\npartial file cont`),
    status: 400,
  },
  {
    name: "a body with no delimiter at all",
    options: {},
    body: enc.encode("just some bytes"),
    status: 400,
  },
];

for (const c of LIMIT_CASES) {
  Deno.test(`parseMultipart() answers ${c.status} for ${c.name} and leaves no file on disk`, async () => {
    await withUploadDir(async (dir) => {
      // Also split in the middle so the failure can strike while a file is open.
      const stream = splitAt(c.body, Math.floor(c.body.length / 2));
      await assert.rejects(
        parseMultipart(stream, BOUNDARY, { uploadDir: dir, ...c.options }),
        (err: unknown) => err instanceof HttpError && err.status === c.status,
      );
      assert.deepEqual(await listDir(dir), []);
    });
  });
}

Deno.test("parseMultipart() accepts a body exactly at each limit", async () => {
  await withUploadDir(async (dir) => {
    const exact = body([[file("a"), "x".repeat(1000)], [field("f"), "v".repeat(100)]]);
    const { files, fields } = await parseMultipart(streamOf(exact), BOUNDARY, {
      uploadDir: dir,
      maxFileBytes: 1000,
      maxFiles: 1,
      maxFields: 1,
      maxFieldBytes: 100,
      maxTotalBytes: exact.length,
    });
    assert.equal(files[0].size, 1000);
    assert.equal(fields.get("f")?.length, 100);
  });
});

Deno.test("parseMultipart() removes every partial file when the client aborts mid-file", async () => {
  await withUploadDir(async (dir) => {
    const first = body([[file("a", "done.txt"), "complete file"]]).subarray(
      0,
      -(`--${BOUNDARY}--\r\n`.length),
    );
    const second = enc.encode(`--${BOUNDARY}\r\n${file("b", "half.bin")}\r\n\r\n${"h".repeat(10_000)}`);
    let step = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (step === 0) controller.enqueue(first);
        else if (step === 1) controller.enqueue(second);
        else {
          // Both files exist on disk at this point: one finished, one half-written.
          assert.equal((await listDir(dir)).length, 2);
          controller.error(new Deno.errors.ConnectionReset("client went away"));
        }
        step++;
      },
    }, { highWaterMark: 0 }); // pull only when the parser asks, so the check above sees its progress
    await assert.rejects(
      parseMultipart(stream, BOUNDARY, { uploadDir: dir }),
      (err: unknown) =>
        err instanceof HttpError && err.status === 400 && err.cause instanceof Deno.errors.ConnectionReset,
    );
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("readMultipart() cuts off a body that stops arriving with 408 and removes partial files", async () => {
  await withUploadDir(async (dir) => {
    const head = enc.encode(`--${BOUNDARY}\r\n${file("a")}\r\n\r\nsome bytes then silence`);
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(head);
      },
      cancel() {
        cancelled = true;
      },
    });
    const req = new Request("http://localhost/", {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${BOUNDARY}` },
      body: stream,
    });
    await assert.rejects(
      readMultipart(req, { uploadDir: dir, bodyTimeoutMs: 100 }),
      (err: unknown) => err instanceof HttpError && err.status === 408,
    );
    assert.equal(cancelled, true);
    assert.deepEqual(await listDir(dir), []);
  });
});

interface ContentTypeCase {
  contentType: string | null;
  status: number;
}

const CONTENT_TYPE_CASES: ContentTypeCase[] = [
  { contentType: null, status: 415 },
  { contentType: "application/json", status: 415 },
  { contentType: "multipart/mixed; boundary=abc", status: 415 },
  { contentType: "multipart/form-data", status: 400 },
  { contentType: "multipart/form-data; boundary=", status: 400 },
  { contentType: 'multipart/form-data; boundary="ends with space "', status: 400 },
  { contentType: `multipart/form-data; boundary=${"b".repeat(71)}`, status: 400 },
  { contentType: "multipart/form-data; boundary=semi;colon", status: 400 },
];

for (const c of CONTENT_TYPE_CASES) {
  Deno.test(`readMultipart() answers ${c.status} for Content-Type ${c.contentType}`, async () => {
    await withUploadDir(async (dir) => {
      const headers = new Headers();
      if (c.contentType !== null) headers.set("content-type", c.contentType);
      const req = new Request("http://localhost/", { method: "POST", headers, body: "x" });
      await assert.rejects(
        readMultipart(req, { uploadDir: dir }),
        (err: unknown) => err instanceof HttpError && err.status === c.status,
      );
    });
  });
}

Deno.test("readMultipart() refuses a declared Content-Length over maxTotalBytes before reading", async () => {
  await withUploadDir(async (dir) => {
    let pulled = false;
    const req = new Request("http://localhost/", {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${BOUNDARY}`, "content-length": "5000" },
      body: new ReadableStream({
        pull() {
          pulled = true;
        },
      }, { highWaterMark: 0 }),
    });
    await assert.rejects(
      readMultipart(req, { uploadDir: dir, maxTotalBytes: 4096 }),
      (err: unknown) => err instanceof HttpError && err.status === 413,
    );
    assert.equal(pulled, false);
  });
});

Deno.test("readMultipart() reads what FormData produces", async () => {
  await withUploadDir(async (dir) => {
    const form = new FormData();
    form.append("title", "Holiday ☀");
    form.append("tag", "a");
    form.append("tag", "b");
    form.append("photo", new File([new Uint8Array([0, 1, 2, 255])], "beach.jpg", { type: "image/jpeg" }));
    const req = new Request("http://localhost/", { method: "POST", body: form });
    const { fields, files } = await readMultipart(req, { uploadDir: dir });
    assert.equal(fields.get("title"), "Holiday ☀");
    assert.deepEqual(fields.getAll("tag"), ["a", "b"]);
    assert.equal(files[0].filename, "beach.jpg");
    assert.equal(files[0].contentType, "image/jpeg");
    assert.deepEqual(await Deno.readFile(files[0].path), new Uint8Array([0, 1, 2, 255]));
    // Stored under a random UUID, not the client's name.
    assert.match(files[0].path, /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

Deno.test("parseMultipart() stores a file under a random name in uploadDir, the client's name as metadata", async () => {
  await withUploadDir(async (dir) => {
    const bytes = body([[
      'Content-Disposition: form-data; name="f"; filename="../../etc/passwd"',
      "data",
    ]]);
    const { files } = await parseMultipart(streamOf(bytes), BOUNDARY, { uploadDir: dir });
    assert.equal(files.length, 1);
    assert.equal(files[0].filename, "passwd");
    assert.deepEqual(await listDir(dir), [files[0].path.slice(dir.length + 1)]); // stored once, in dir itself
    assert.match(files[0].path, /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

Deno.test('parseMultipart() drops an empty file input (filename="" and no bytes)', async () => {
  await withUploadDir(async (dir) => {
    const bytes = body([[file("f", ""), ""], [field("x"), "1"]]);
    const { files, fields } = await parseMultipart(streamOf(bytes), BOUNDARY, { uploadDir: dir });
    assert.deepEqual(files, []);
    assert.equal(fields.get("x"), "1");
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("parseMultipart() defaults a file's Content-Type to application/octet-stream", async () => {
  await withUploadDir(async (dir) => {
    const { files } = await parseMultipart(streamOf(body([[file("f"), "x"]])), BOUNDARY, { uploadDir: dir });
    assert.equal(files[0].contentType, "application/octet-stream");
  });
});

Deno.test("readMultipart() keeps the 413 of an engine error that stops the body, and removes partial files", async () => {
  await withUploadDir(async (dir) => {
    // What Pier's engine does when a body crosses its maxBodyBytes: the stream errors with a 413.
    const engineError = Object.assign(new Error("body exceeds the limit"), { status: 413 });
    let step = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (step++ === 0) {
          controller.enqueue(enc.encode(`--${BOUNDARY}\r\n${file("a")}\r\n\r\n${"x".repeat(5000)}`));
        } else controller.error(engineError);
      },
    }, { highWaterMark: 0 });
    const req = new Request("http://localhost/", {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${BOUNDARY}` },
      body: stream,
    });
    await assert.rejects(
      readMultipart(req, { uploadDir: dir }),
      (err: unknown) => err instanceof HttpError && err.status === 413 && err.cause === engineError,
    );
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("readMultipart() accepts a quoted boundary with characters a token cannot hold", async () => {
  await withUploadDir(async (dir) => {
    const boundary = "with space:and=equals";
    const req = new Request("http://localhost/", {
      method: "POST",
      headers: { "content-type": `multipart/form-data; charset=utf-8; boundary="${boundary}"` },
      body: body([[field("x"), "1"], [file("f", "a.txt"), "abc"]], boundary),
    });
    const { fields, files } = await readMultipart(req, { uploadDir: dir });
    assert.equal(fields.get("x"), "1");
    assert.equal(files[0].size, 3);
  });
});
