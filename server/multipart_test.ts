// multipart.ts's tables, in memory, in picohttpparser's manner: every body is fed whole, one byte at a time
// and split at every offset (the sample also at every pair of offsets around its delimiters), and must give
// the same parts, or the same error, however it is split. No file and no permission: the parser does no I/O.
// Files, limits on disk and their cleanup are tests/engine/multipart_test.ts's.
import assert from "node:assert/strict";
import {
  isValidBoundary,
  MultipartError,
  type MultipartEvent,
  MultipartParser,
  type MultipartParserOptions,
  NEED_DATA,
  sanitizeFilename,
} from "./multipart.ts";
import { BOUNDARY, FIELD_TEXT, FILE_TEXT, SAMPLE } from "../tests/fixtures/multipart_sample.ts";

/** A test that proves its subject touches nothing: no permission is granted. */
function pure(name: string, fn: () => void) {
  Deno.test({ name, permissions: "none", fn });
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A part as the table expects it: its head, and its content as text. */
interface Part {
  name: string;
  filename: string | null;
  contentType: string | null;
  content: string;
}

/** What a body parses to: its parts, or the status of its error. */
type Outcome = Part[] | number;

/**
 * Parse `body` fed in pieces cut at `cuts` (sorted). Each piece is copied into a scratch buffer that is
 * overwritten once the parser answers need-data, so a parser that kept a view of fed bytes gets garbage.
 */
function parse(body: Uint8Array, cuts: readonly number[], options?: MultipartParserOptions): Outcome {
  const parser = new MultipartParser(BOUNDARY, options);
  const parts: Part[] = [];
  let content: string[] = [];
  let done = 0;
  const drain = (): number | null => {
    for (let ev = parser.next(); ev !== NEED_DATA; ev = parser.next()) {
      switch (ev.type) {
        case "part-start": {
          const { name, filename, contentType } = ev.part;
          parts.push({ name, filename, contentType, content: "" });
          content = [];
          break;
        }
        case "data":
          assert.ok(ev.data.length > 0, "a data event carries bytes");
          content.push(String.fromCharCode(...ev.data)); // bytes as they are: decoded once the part ends
          break;
        case "part-end":
          parts[parts.length - 1].content = dec.decode(
            Uint8Array.from(content.join(""), (c) => c.charCodeAt(0)),
          );
          break;
        case "done":
          done++;
          break;
        case "error":
          assert.ok(ev.error instanceof MultipartError);
          assert.equal(parser.next(), ev, "an error is answered forever");
          return ev.error.status;
      }
    }
    return null;
  };
  let from = 0;
  for (const cut of [...cuts, body.length]) {
    const scratch = body.slice(from, cut);
    parser.feed(scratch);
    from = cut;
    const status = drain();
    if (status !== null) return status;
    scratch.fill(0xaa);
  }
  parser.end();
  const status = drain();
  if (status !== null) return status;
  assert.equal(done, 1, "one done event");
  assert.equal(parser.state, "DONE");
  return parts;
}

/** The body of `parts`, each [headers, content], closed; `boundary` and the ends can be changed. */
function body(
  parts: Array<[string, string]>,
  { preamble = "", epilogue = "", boundary = BOUNDARY } = {},
): Uint8Array<ArrayBuffer> {
  let text = preamble;
  for (const [headers, content] of parts) text += `--${boundary}\r\n${headers}\r\n\r\n${content}\r\n`;
  return enc.encode(`${text}--${boundary}--\r\n${epilogue}`);
}

const field = (name: string) => `Content-Disposition: form-data; name="${name}"`;
const file = (name: string, filename = "f.bin") =>
  `Content-Disposition: form-data; name="${name}"; filename="${filename}"`;
const text = (name: string, content: string): Part => ({ name, filename: null, contentType: null, content });

const SAMPLE_PARTS: Part[] = [
  text("title", FIELD_TEXT),
  { name: "doc", filename: "notes.txt", contentType: "text/plain", content: FILE_TEXT },
  text("empty", ""),
];

interface Case {
  name: string;
  body: Uint8Array;
  options?: MultipartParserOptions;
  want: Outcome;
}

const CASES: Case[] = [
  {
    name: "the sample (preamble, padding, a file, an empty field, epilogue)",
    body: SAMPLE,
    want: SAMPLE_PARTS,
  },
  {
    name: "a body that starts with its first delimiter",
    body: body([[field("a"), "1"]]),
    want: [text("a", "1")],
  },
  {
    name: "a close delimiter with nothing after it",
    body: enc.encode(`--${BOUNDARY}\r\n${field("a")}\r\n\r\nx\r\n--${BOUNDARY}--`),
    want: [text("a", "x")],
  },
  { name: "an empty part", body: body([[field("a"), ""]]), want: [text("a", "")] },
  {
    name: "content that ends in CR, LF or dashes just before the delimiter",
    body: body([[field("a"), "x\r"], [field("b"), "y\n"], [field("c"), "--"], [field("d"), "\r\n"]]),
    want: [text("a", "x\r"), text("b", "y\n"), text("c", "--"), text("d", "\r\n")],
  },
  {
    name: "the boundary inside content without CRLF before it",
    body: body([[field("a"), `x--${BOUNDARY}--\r\ny`]]),
    want: [text("a", `x--${BOUNDARY}--\r\ny`)],
  },
  {
    name: "a longer boundary sharing the real one's start, inside content",
    body: body([[field("a"), `\r\n--${BOUNDARY.slice(0, -1)}\r\nz`]]),
    want: [text("a", `\r\n--${BOUNDARY.slice(0, -1)}\r\nz`)],
  },
  {
    name: "a Content-Type, trimmed",
    body: body([[`${file("f", "a.png")}\r\nContent-Type:  image/png `, "PNG"]]),
    want: [{ name: "f", filename: "a.png", contentType: "image/png", content: "PNG" }],
  },
  {
    name: "the first of a repeated header",
    body: body([[`${field("first")}\r\n${field("second")}`, "v"]]),
    want: [text("first", "v")],
  },
  {
    name: "a file part without Content-Type: null, left to the caller",
    body: body([[file("f"), "x"]]),
    want: [{ name: "f", filename: "f.bin", contentType: null, content: "x" }],
  },
  {
    name: "a header block exactly at maxPartHeaderBytes",
    body: body([[`${field("a")}\r\nX-Pad: ${"p".repeat(64 - field("a").length - 9)}`, "v"]]),
    options: { maxPartHeaderBytes: 64 },
    want: [text("a", "v")],
  },
  {
    name: "a header block one byte over maxPartHeaderBytes",
    body: body([[`${field("a")}\r\nX-Pad: ${"p".repeat(64 - field("a").length - 8)}`, "v"]]),
    options: { maxPartHeaderBytes: 64 },
    want: 413,
  },
  {
    name: "a header block far over maxPartHeaderBytes, never ending",
    body: enc.encode(`--${BOUNDARY}\r\n${field("a")}\r\nX-Pad: ${"p".repeat(500)}`),
    options: { maxPartHeaderBytes: 64 },
    want: 413,
  },
  {
    name: "transport padding over maxPartHeaderBytes",
    body: enc.encode(`--${BOUNDARY}${" ".repeat(65)}\r\n${field("a")}\r\n\r\nv\r\n--${BOUNDARY}--`),
    options: { maxPartHeaderBytes: 64 },
    want: 413,
  },
  { name: "a body with no delimiter at all", body: enc.encode("just some bytes"), want: 400 },
  { name: "an empty body", body: new Uint8Array(0), want: 400 },
  {
    name: "a body cut before its close delimiter",
    body: enc.encode(`--${BOUNDARY}\r\n${file("a")}\r\n\r\npartial file cont`),
    want: 400,
  },
  {
    name: "a body cut inside a header block",
    body: enc.encode(`--${BOUNDARY}\r\n${field("a")}\r\n`),
    want: 400,
  },
  {
    name: "garbage right after a delimiter",
    body: enc.encode(`--${BOUNDARY}\r\n${file("a")}\r\n\r\n1\r\n--${BOUNDARY}garbage\r\n`),
    want: 400,
  },
  { name: "a single dash after a delimiter", body: enc.encode(`--${BOUNDARY}-x\r\n`), want: 400 },
  { name: "padding before the closing dashes", body: enc.encode(`--${BOUNDARY} --\r\n`), want: 400 },
  {
    name: "a bare LF ending the delimiter line",
    body: enc.encode(`--${BOUNDARY}\n${field("a")}\r\n\r\nv\r\n--${BOUNDARY}--`),
    want: 400,
  },
  { name: "a part without Content-Disposition", body: body([["Content-Type: text/plain", "v"]]), want: 400 },
  { name: "a part with no header at all", body: body([["", "v"]]), want: 400 },
  {
    name: "a Content-Disposition that is not form-data",
    body: body([['Content-Disposition: attachment; name="x"', "v"]]),
    want: 400,
  },
  {
    name: "a form-data part without a name",
    body: body([["Content-Disposition: form-data", "v"]]),
    want: 400,
  },
  {
    name: "a folded part header (obs-fold)",
    body: body([[`${field("x")}\r\n X-Folded: yes`, "v"]]),
    want: 400,
  },
  { name: "a header line without a colon", body: body([[`${field("x")}\r\nno colon`, "v"]]), want: 400 },
];

/** Every offset of `body`, as one cut each: the two-chunk splits. */
function everySplit(length: number): number[][] {
  return Array.from({ length: length + 1 }, (_, i) => [i]);
}

for (const c of CASES) {
  pure(`MultipartParser reads ${c.name} the same whole, per byte and split at every offset`, () => {
    const label = (how: string) => `${c.name}, ${how}`;
    assert.deepEqual(parse(c.body, [], c.options), c.want, label("whole"));
    const bytes = Array.from({ length: Math.max(0, c.body.length - 1) }, (_, i) => i + 1);
    assert.deepEqual(parse(c.body, bytes, c.options), c.want, label("one byte at a time"));
    for (const cuts of everySplit(c.body.length)) {
      assert.deepEqual(parse(c.body, cuts, c.options), c.want, label(`cut at ${cuts}`));
    }
  });
}

/** Offsets at which the delimiter `\r\n--boundary` starts in `bytes`. */
function delimiterOffsets(bytes: Uint8Array): number[] {
  const needle = enc.encode(`--${BOUNDARY}`);
  const out: number[] = [];
  for (let i = 0; i + needle.length <= bytes.length; i++) {
    if (needle.every((b, j) => bytes[i + j] === b)) out.push(i - 2);
  }
  return out;
}

pure("MultipartParser reads the sample at every three-chunk split around each delimiter", () => {
  const window = `\r\n--${BOUNDARY}\r\n`.length + 4;
  let runs = 0;
  for (const at of delimiterOffsets(SAMPLE)) {
    const lo = Math.max(0, at - 4);
    const hi = Math.min(SAMPLE.length, at + window);
    for (let a = lo; a <= hi; a++) {
      for (let b = a; b <= hi; b++) {
        assert.deepEqual(parse(SAMPLE, [a, b]), SAMPLE_PARTS, `cuts at ${a}, ${b}`);
        runs++;
      }
    }
  }
  assert.ok(runs > 1000, `expected many splits, ran ${runs}`);
});

interface FilenameCase {
  disposition: string;
  filename: string;
}

const FILENAME_CASES: FilenameCase[] = [
  { disposition: 'filename="plain.txt"', filename: "plain.txt" },
  { disposition: 'filename="résumé 日本.pdf"', filename: "résumé 日本.pdf" }, // raw UTF-8, RFC 7578 §5.1
  { disposition: "filename*=UTF-8''%E2%82%AC%20rates.txt", filename: "€ rates.txt" },
  { disposition: "filename=\"fallback.txt\"; filename*=utf-8''%C3%A9t%C3%A9.txt", filename: "été.txt" },
  { disposition: "filename*=UTF-8''%C3%A9t%C3%A9.txt; filename=\"fallback.txt\"", filename: "été.txt" },
  { disposition: "filename*=iso-8859-1'en'%E9t%E9.txt", filename: "été.txt" },
  { disposition: "filename=\"fallback.txt\"; filename*=UTF-8''%FF%FE", filename: "fallback.txt" },
  { disposition: "filename=\"fallback.txt\"; filename*=KOI8-R''%C1", filename: "fallback.txt" },
  { disposition: 'filename="../../etc/passwd"', filename: "passwd" },
  { disposition: 'filename="C:\\Users\\me\\evil.exe"', filename: "evil.exe" },
  { disposition: "filename*=UTF-8''..%2F..%2Fescape.sh", filename: "escape.sh" },
  { disposition: 'filename="a\\"quoted\\".txt"', filename: 'a"quoted".txt' },
  { disposition: 'filename="tab\there.txt"', filename: "tabhere.txt" },
  { disposition: 'filename=".."', filename: "" },
  { disposition: 'filename=""', filename: "" },
  { disposition: "filename*=KOI8-R''%C1", filename: "" }, // still a file, just without a name
  { disposition: "filename=bare.txt", filename: "bare.txt" },
];

pure("MultipartParser gives each part's filename decoded and stripped to a safe name", () => {
  for (const c of FILENAME_CASES) {
    const bytes = body([[`Content-Disposition: form-data; name="f"; ${c.disposition}`, "data"]]);
    const parts = parse(bytes, []);
    assert.ok(Array.isArray(parts), c.disposition);
    assert.equal(parts[0].filename, c.filename, c.disposition);
  }
});

pure("MultipartParser gives a part's headers: names lower-cased, values trimmed, the first of a name", () => {
  const parser = new MultipartParser(BOUNDARY);
  parser.feed(
    body([[`${file("f", "a.png")}\r\nContent-Type:  image/png \r\nX-Note: hi\r\nx-note: again`, "PNG"]]),
  );
  const start = parser.next();
  assert.ok(typeof start === "object" && start.type === "part-start");
  assert.deepEqual(Object.fromEntries(start.part.headers), {
    "content-disposition": 'form-data; name="f"; filename="a.png"',
    "content-type": "image/png",
    "x-note": "hi",
  });
});

pure("MultipartParser hands out views of the bytes fed, not copies", () => {
  const content = new Uint8Array(1024 * 1024).fill(0x61);
  const head = enc.encode(`--${BOUNDARY}\r\n${file("f")}\r\n\r\n`);
  const tail = enc.encode(`\r\n--${BOUNDARY}--\r\n`);
  const whole = new Uint8Array(head.length + content.length + tail.length);
  whole.set(head);
  whole.set(content, head.length);
  whole.set(tail, head.length + content.length);
  const parser = new MultipartParser(BOUNDARY);
  parser.feed(whole);
  const events: MultipartEvent[] = [];
  for (let ev = parser.next(); ev !== NEED_DATA; ev = parser.next()) events.push(ev);
  assert.deepEqual(events.map((e) => e.type), ["part-start", "data", "part-end", "done"]);
  const data = events[1] as { type: "data"; data: Uint8Array };
  assert.equal(data.data.buffer, whole.buffer);
  assert.equal(data.data.length, content.length);
});

pure(
  "MultipartParser holds less than a delimiter of a large part, however it is split, in linear time",
  () => {
    // 512 KiB of content one byte per feed: a parser that rescanned what it holds per feed would take minutes.
    const size = 512 * 1024;
    const delimiterLength = `\r\n--${BOUNDARY}`.length;
    const parser = new MultipartParser(BOUNDARY);
    const one = new Uint8Array(1);
    let received = 0;
    let held = 0;
    const drain = () => {
      for (let ev = parser.next(); ev !== NEED_DATA; ev = parser.next()) {
        assert.notEqual(ev.type, "error");
        if (ev.type === "data") received += ev.data.length;
      }
      held = Math.max(held, parser.buffered);
    };
    parser.feed(enc.encode(`--${BOUNDARY}\r\n${file("f", "big.bin")}\r\n\r\n`));
    drain();
    const started = performance.now();
    for (let i = 0; i < size; i++) {
      one[0] = 0x41 + (i % 26);
      parser.feed(one);
      drain();
    }
    for (const b of enc.encode(`\r\n--${BOUNDARY}--\r\n`)) {
      one[0] = b;
      parser.feed(one);
      drain();
    }
    parser.end();
    drain();
    const took = performance.now() - started;
    assert.equal(received, size);
    assert.equal(parser.state, "DONE");
    assert.ok(held < delimiterLength, `held ${held} bytes`);
    assert.ok(took < 10_000, `took ${took} ms`);
  },
);

pure("MultipartParser steps through its states, ignores the epilogue and answers an error forever", () => {
  const parser = new MultipartParser("b");
  const seen: string[] = [parser.state];
  const step = () => {
    for (let ev = parser.next(); ev !== NEED_DATA; ev = parser.next()) {
      seen.push(`${ev.type}:${parser.state}`);
    }
  };
  for (
    const piece of [
      "pre\r\n--b",
      "\r\nContent-Disposition: form-data; name=x\r\n",
      "\r\nv",
      "\r\n--b--",
      "epi",
    ]
  ) {
    parser.feed(enc.encode(piece));
    step();
    seen.push(parser.state);
  }
  parser.end();
  step();
  assert.deepEqual(seen, [
    "PREAMBLE",
    "AFTER_DELIMITER",
    "HEADERS",
    "part-start:BODY",
    "BODY",
    "data:BODY",
    "part-end:AFTER_DELIMITER",
    "done:DONE",
    "DONE",
    "DONE",
  ]);

  const broken = new MultipartParser("b");
  broken.feed(enc.encode("--b!"));
  const error = broken.next();
  assert.ok(typeof error === "object" && error.type === "error" && error.error.status === 400);
  assert.equal(broken.state, "ERROR");
  assert.equal(broken.next(), error);
});

pure("MultipartParser refuses a feed before need-data, a feed after end(), and an invalid boundary", () => {
  const parser = new MultipartParser("b");
  parser.feed(enc.encode("--b\r\nContent-Disposition: form-data; name=x\r\n\r\nv"));
  assert.throws(() => parser.feed(enc.encode("more")), /before next\(\) answered need-data/);
  while (parser.next() !== NEED_DATA);
  parser.end();
  assert.throws(() => parser.feed(enc.encode("more")), /after end\(\)/);
  assert.throws(
    () => new MultipartParser("semi;colon"),
    (err: unknown) => err instanceof MultipartError && err.status === 400,
  );
});

pure("isValidBoundary() follows RFC 2046 §5.1.1", () => {
  const table: Array<[string, boolean]> = [
    ["a", true],
    ["b".repeat(70), true],
    ["b".repeat(71), false],
    ["", false],
    ["with space inside", true],
    ["ends in space ", false],
    ["'()+_,-./:=?", true],
    ["semi;colon", false],
    ['quote"', false],
    ["ünïcode", false],
  ];
  for (const [b, ok] of table) assert.equal(isValidBoundary(b), ok, b);
});

pure("sanitizeFilename() keeps the last segment of either separator, without control characters", () => {
  const table: Array<[string, string]> = [
    ["dir/sub\\file.txt", "file.txt"],
    ["C:\\Users\\me\\..\\cv.pdf", "cv.pdf"],
    ["../../etc/passwd", "passwd"],
    ["nul\x00byte.txt", "nulbyte.txt"],
    ["trailing/", ""],
    ["..", ""],
    [" . ", ""],
    ["  spaced.txt ", "spaced.txt"],
  ];
  for (const [name, want] of table) assert.equal(sanitizeFilename(name), want, name);
});
