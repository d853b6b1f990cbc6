// conditional.ts's tables, in Go's ServeFileRangeTests manner: each row a request's method and headers and
// the representation's validators, and the answer expected (304, 412, 416, 206 with its bytes, or 200).
// Then the pieces alone. Every test runs with no permission at all: the module does no I/O.
import assert from "node:assert/strict";
import {
  type Answer,
  answerFor,
  checkIfRange,
  checkPreconditions,
  etagMatches,
  fileEtag,
  negotiateEncoding,
  parseEtags,
  parseHttpDate,
  parseRange,
  type Representation,
} from "./conditional.ts";
import { ENCODING_CASES } from "../tests/fixtures/encoding_cases.ts";

/** A test that proves its subject touches nothing: no permission is granted. */
function pure(name: string, fn: () => void) {
  Deno.test({ name, permissions: "none", fn });
}

/** Modified at 12:00:00.250: HTTP dates carry whole seconds, so the .250 never counts. */
const MODIFIED = Date.UTC(2026, 0, 15, 12, 0, 0) + 250;
const LAST_MODIFIED = "Thu, 15 Jan 2026 12:00:00 GMT";
const EARLIER = "Thu, 15 Jan 2026 11:59:59 GMT";
const LATER = "Thu, 15 Jan 2026 12:00:01 GMT";
const SIZE = 26;
const ETAG = fileEtag({ size: SIZE, mtime: new Date(MODIFIED) });
const FILE: Representation = { etag: ETAG, lastModified: MODIFIED, size: SIZE };

interface Row {
  name: string;
  method?: string;
  headers: Record<string, string>;
  /** The representation; FILE when absent. */
  file?: Representation;
  /** The status expected, and for 206 the first and last byte. */
  want: 200 | 304 | 412 | 416 | [206, number, number];
}

const ROWS: Row[] = [
  // Range (RFC 9110 §14.1.2), as Go's ServeFileRangeTests.
  { name: "no Range", headers: {}, want: 200 },
  { name: "first bytes", headers: { range: "bytes=0-4" }, want: [206, 0, 4] },
  { name: "a middle byte", headers: { range: "bytes=2-2" }, want: [206, 2, 2] },
  { name: "last byte", headers: { range: "bytes=25-25" }, want: [206, 25, 25] },
  { name: "open end", headers: { range: "bytes=20-" }, want: [206, 20, 25] },
  { name: "suffix", headers: { range: "bytes=-5" }, want: [206, 21, 25] },
  { name: "suffix longer than the file: all of it", headers: { range: "bytes=-100" }, want: [206, 0, 25] },
  { name: "end past the end: clipped", headers: { range: "bytes=10-1000" }, want: [206, 10, 25] },
  { name: "spaces and case", headers: { range: "BYTES = 1-2" }, want: [206, 1, 2] },
  { name: "start at the end", headers: { range: "bytes=26-" }, want: 416 },
  { name: "start past the end", headers: { range: "bytes=30-40" }, want: 416 },
  { name: "empty suffix", headers: { range: "bytes=-0" }, want: 416 },
  { name: "empty file", headers: { range: "bytes=0-" }, file: { ...FILE, size: 0 }, want: 416 },
  { name: "several ranges: whole, no multipart", headers: { range: "bytes=0-0,5-6" }, want: 200 },
  { name: "last before first", headers: { range: "bytes=5-2" }, want: 200 },
  { name: "another unit", headers: { range: "items=0-1" }, want: 200 },
  { name: "not numbers", headers: { range: "bytes=a-b" }, want: 200 },
  { name: "no positions", headers: { range: "bytes=-" }, want: 200 },
  { name: "no =", headers: { range: "bytes 0-1" }, want: 200 },
  { name: "HEAD ranges as GET does", method: "HEAD", headers: { range: "bytes=0-4" }, want: [206, 0, 4] },
  { name: "POST ignores Range", method: "POST", headers: { range: "bytes=0-4" }, want: 200 },
  { name: "unknown length ignores Range", headers: { range: "bytes=0-4" }, file: { etag: ETAG }, want: 200 },

  // Preconditions in RFC 9110 §13.2.2 order.
  { name: "If-Match matches", headers: { "if-match": ETAG }, want: 200 },
  { name: "If-Match *", headers: { "if-match": "*" }, want: 200 },
  { name: "If-Match in a list", headers: { "if-match": `"nope", ${ETAG}` }, want: 200 },
  { name: "If-Match differs", headers: { "if-match": '"nope"' }, want: 412 },
  { name: "If-Match compares strongly: W/ never matches", headers: { "if-match": `W/${ETAG}` }, want: 412 },
  { name: "If-Match without an ETag: only * holds", headers: { "if-match": ETAG }, file: {}, want: 412 },
  { name: "If-Match * without an ETag", headers: { "if-match": "*" }, file: {}, want: 200 },
  {
    name: "If-Match before If-None-Match",
    headers: { "if-match": '"nope"', "if-none-match": ETAG },
    want: 412,
  },
  {
    name: "If-Match present: If-Unmodified-Since ignored",
    headers: { "if-match": ETAG, "if-unmodified-since": EARLIER },
    want: 200,
  },
  { name: "If-Unmodified-Since earlier", headers: { "if-unmodified-since": EARLIER }, want: 412 },
  {
    name: "If-Unmodified-Since = Last-Modified",
    headers: { "if-unmodified-since": LAST_MODIFIED },
    want: 200,
  },
  { name: "If-Unmodified-Since later", headers: { "if-unmodified-since": LATER }, want: 200 },
  { name: "If-Unmodified-Since not a date", headers: { "if-unmodified-since": "yesterday" }, want: 200 },
  {
    name: "If-Unmodified-Since with no modification time: ignored",
    headers: { "if-unmodified-since": EARLIER },
    file: { etag: ETAG },
    want: 200,
  },
  {
    name: "If-Unmodified-Since before If-None-Match",
    headers: { "if-unmodified-since": EARLIER, "if-none-match": ETAG },
    want: 412,
  },
  { name: "If-None-Match matches", headers: { "if-none-match": ETAG }, want: 304 },
  { name: "If-None-Match compares weakly", headers: { "if-none-match": `W/${ETAG}` }, want: 304 },
  { name: "If-None-Match *", headers: { "if-none-match": "*" }, want: 304 },
  { name: "If-None-Match in a list", headers: { "if-none-match": `"a", ${ETAG}` }, want: 304 },
  { name: "If-None-Match differs", headers: { "if-none-match": '"nope"' }, want: 200 },
  {
    name: "If-None-Match present: If-Modified-Since ignored",
    headers: { "if-none-match": '"nope"', "if-modified-since": LATER },
    want: 200,
  },
  {
    name: "If-None-Match beats an old If-Modified-Since",
    headers: { "if-none-match": ETAG, "if-modified-since": EARLIER },
    want: 304,
  },
  { name: "If-Modified-Since = Last-Modified", headers: { "if-modified-since": LAST_MODIFIED }, want: 304 },
  { name: "If-Modified-Since later", headers: { "if-modified-since": LATER }, want: 304 },
  { name: "If-Modified-Since earlier", headers: { "if-modified-since": EARLIER }, want: 200 },
  { name: "If-Modified-Since not a date", headers: { "if-modified-since": "not a date" }, want: 200 },
  { name: "HEAD: 304 as GET", method: "HEAD", headers: { "if-none-match": ETAG }, want: 304 },
  { name: "POST: If-None-Match match is 412", method: "POST", headers: { "if-none-match": ETAG }, want: 412 },
  {
    name: "POST: If-Modified-Since ignored",
    method: "POST",
    headers: { "if-modified-since": LATER },
    want: 200,
  },
  {
    name: "preconditions before Range: 304",
    headers: { "if-none-match": ETAG, range: "bytes=0-1" },
    want: 304,
  },
  {
    name: "preconditions before Range: 412",
    headers: { "if-match": '"nope"', range: "bytes=0-1" },
    want: 412,
  },
  {
    name: "If-Match passes, then Range",
    headers: { "if-match": ETAG, range: "bytes=0-1" },
    want: [206, 0, 1],
  },

  // If-Range (§13.1.5): a strong tag equal to the current one, or exactly the date, keeps the range.
  { name: "If-Range current tag", headers: { range: "bytes=0-9", "if-range": ETAG }, want: [206, 0, 9] },
  { name: "If-Range old tag", headers: { range: "bytes=0-9", "if-range": '"stale"' }, want: 200 },
  { name: "If-Range weak tag", headers: { range: "bytes=0-9", "if-range": `W/${ETAG}` }, want: 200 },
  {
    name: "If-Range exact date",
    headers: { range: "bytes=0-9", "if-range": LAST_MODIFIED },
    want: [206, 0, 9],
  },
  { name: "If-Range later date", headers: { range: "bytes=0-9", "if-range": LATER }, want: 200 },
  { name: "If-Range earlier date", headers: { range: "bytes=0-9", "if-range": EARLIER }, want: 200 },
  { name: "If-Range not a date", headers: { range: "bytes=0-9", "if-range": "garbage" }, want: 200 },
  {
    name: "If-Range keeps an unsatisfiable range unsatisfiable",
    headers: { range: "bytes=99-", "if-range": ETAG },
    want: 416,
  },
  {
    name: "If-Range without Range changes nothing",
    headers: { "if-range": '"stale"' },
    want: 200,
  },
];

pure("answerFor() follows RFC 9110 §13.2.2, then If-Range and Range, row by row", () => {
  for (const row of ROWS) {
    const request = new Request("http://localhost/file", {
      method: row.method ?? "GET",
      headers: row.headers,
    });
    const want: Answer = typeof row.want === "number"
      ? { status: row.want }
      : { status: 206, start: row.want[1], end: row.want[2] };
    assert.deepEqual(answerFor(request, row.file ?? FILE), want, row.name);
  }
});

pure("checkPreconditions() and checkIfRange() agree with the table's rows", () => {
  for (const row of ROWS) {
    const request = new Request("http://localhost/file", {
      method: row.method ?? "GET",
      headers: row.headers,
    });
    const status = checkPreconditions(request, row.file ?? FILE);
    const want = row.want === 304 || row.want === 412 ? row.want : null;
    assert.equal(status, want, row.name);
    if (status === null && "range" in row.headers && (row.file ?? FILE).size !== undefined) {
      const honoured = checkIfRange(request, row.file ?? FILE);
      assert.equal(
        honoured,
        !("if-range" in row.headers) || Array.isArray(row.want) || row.want === 416,
        row.name,
      );
    }
  }
});

pure("fileEtag() makes one strong tag per file and coding", () => {
  const file = { size: 4096, mtime: new Date(1700000000123) };
  assert.equal(fileEtag(file), '"1000-18bcfe5687b"');
  assert.equal(fileEtag(file, "gzip"), '"1000-18bcfe5687b-gzip"');
  assert.equal(fileEtag(file, "br"), '"1000-18bcfe5687b-br"');
  assert.equal(fileEtag({ size: 0, mtime: null }), '"0-0"');
  // A change of size or of a millisecond changes the tag.
  assert.notEqual(fileEtag({ ...file, size: 4097 }), fileEtag(file));
  assert.notEqual(fileEtag({ ...file, mtime: new Date(1700000000124) }), fileEtag(file));
});

pure("parseEtags() reads *, lists, weak tags and commas inside a tag", () => {
  const table: [string, ReturnType<typeof parseEtags>][] = [
    ["*", "*"],
    [" * ", "*"],
    ['"a"', [{ weak: false, tag: '"a"' }]],
    ['"a", W/"b"', [{ weak: false, tag: '"a"' }, { weak: true, tag: '"b"' }]],
    ['"a,b" , "c"', [{ weak: false, tag: '"a,b"' }, { weak: false, tag: '"c"' }]],
    ['""', [{ weak: false, tag: '""' }]],
    ["unquoted", []],
    ["", []],
  ];
  for (const [value, want] of table) assert.deepEqual(parseEtags(value), want, value);
});

pure("etagMatches() compares strongly by default and weakly when asked (RFC 9110 §8.8.3.2)", () => {
  // [field value, current tag, strong result, weak result]: the RFC's own example table, then lists.
  const table: [string, string, boolean, boolean][] = [
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
    ['"1"', 'W/"1"', false, true],
    ['"x", "1"', '"1"', true, true],
    ["*", '"1"', true, true],
    ["*", 'W/"1"', true, true],
    ['"2"', '"1"', false, false],
  ];
  for (const [value, etag, strong, weak] of table) {
    assert.equal(etagMatches(value, etag), strong, `${value} ~ ${etag} strong`);
    assert.equal(etagMatches(value, etag, { weak: true }), weak, `${value} ~ ${etag} weak`);
  }
});

pure("parseHttpDate() reads the three forms of RFC 9110 §5.6.7 as UTC, and nothing else", () => {
  const day = Date.UTC(1994, 10, 6, 8, 49, 37);
  const year = new Date().getUTCFullYear();
  const yy = (n: number) => String(n % 100).padStart(2, "0");
  const table: [string | null, number | null][] = [
    ["Sun, 06 Nov 1994 08:49:37 GMT", day], // IMF-fixdate
    ["Sunday, 06-Nov-94 08:49:37 GMT", day], // rfc850-date
    ["Sun Nov  6 08:49:37 1994", day], // asctime-date: UTC too (Date.parse reads it in local time)
    ["Wed Nov 16 08:49:37 1994", day + 10 * 86400e3],
    [" Sun, 06 Nov 1994 08:49:37 GMT ", day], // surrounding whitespace is not part of the value
    [new Date(MODIFIED).toUTCString(), MODIFIED - 250], // what we send in Last-Modified
    ["Thu, 29 Feb 2024 00:00:00 GMT", Date.UTC(2024, 1, 29)],
    ["Mon, 06 Nov 1994 08:49:37 GMT", day], // a wrong weekday is not checked, as Go does not
    // Two digits: the latest year with them that is not more than 50 years ahead.
    [`Monday, 01-Jan-${yy(year + 10)} 00:00:00 GMT`, Date.UTC(year + 10, 0, 1)],
    [`Monday, 01-Jan-${yy(year + 60)} 00:00:00 GMT`, Date.UTC(year - 40, 0, 1)],
    ["Sat, 01 Jan 0050 00:00:00 GMT", new Date(0).setUTCFullYear(50, 0, 1)], // not 1950
    [null, null],
    ["", null],
    ["yesterday", null],
    ["1994-11-06", null],
    ["1994", null],
    ["Sun, 06 Nov 1994 08:49:37 +0100", null],
    ["Sun, 06 Nov 1994 08:49:37 gmt", null],
    ["sun, 06 Nov 1994 08:49:37 GMT", null],
    ["Sun, 6 Nov 1994 08:49:37 GMT", null],
    ["Sun, 06 Nov 94 08:49:37 GMT", null],
    ["Sun, 06 Nov 1994 08:49 GMT", null],
    ["Sun, 06-Nov-94 08:49:37 GMT", null], // rfc850 takes the long day name
    ["Wed, 29 Feb 2023 00:00:00 GMT", null],
    ["Sun, 31 Nov 1994 08:49:37 GMT", null],
    ["Sun, 00 Nov 1994 08:49:37 GMT", null],
    ["Sun, 06 Nov 1994 24:00:00 GMT", null],
    ["Sun, 06 Nov 1994 08:60:00 GMT", null],
    ["Sun, 06 Nov 1994 08:49:60 GMT", null],
  ];
  for (const [value, want] of table) assert.equal(parseHttpDate(value), want, String(value));
});

pure("parseRange() gives one range, unsatisfiable, or the whole representation", () => {
  const table: [string, number, ReturnType<typeof parseRange>][] = [
    ["bytes=0-0", 10, { kind: "range", start: 0, end: 0 }],
    ["bytes=9-", 10, { kind: "range", start: 9, end: 9 }],
    ["bytes=-3", 10, { kind: "range", start: 7, end: 9 }],
    ["bytes=-30", 10, { kind: "range", start: 0, end: 9 }],
    ["bytes=2-99", 10, { kind: "range", start: 2, end: 9 }],
    ["bytes= 2-3 ", 10, { kind: "range", start: 2, end: 3 }],
    ["bytes=2-3,", 10, { kind: "range", start: 2, end: 3 }],
    ["bytes=10-", 10, { kind: "unsatisfiable" }],
    ["bytes=-0", 10, { kind: "unsatisfiable" }],
    ["bytes=-5", 0, { kind: "unsatisfiable" }],
    ["bytes=0-", 0, { kind: "unsatisfiable" }],
    ["bytes=0-1,3-4", 10, { kind: "whole" }],
    ["bytes=3-1", 10, { kind: "whole" }],
    ["bytes=-", 10, { kind: "whole" }],
    ["bytes=1--2", 10, { kind: "whole" }],
    ["bytes=+1-2", 10, { kind: "whole" }],
    ["pages=1-2", 10, { kind: "whole" }],
    ["", 10, { kind: "whole" }],
  ];
  for (const [value, size, want] of table) {
    assert.deepEqual(parseRange(value, size), want, `${value} of ${size}`);
  }
});

pure("negotiateEncoding() picks by q, then by the server's order; q=0 refuses; * covers the rest", () => {
  const available = ["br", "gzip"] as const;
  for (const [value, want] of ENCODING_CASES) {
    assert.equal(negotiateEncoding(value, available), want, String(value));
  }
  assert.equal(negotiateEncoding("gzip, br", ["gzip", "br"]), "gzip", "a tie goes to the server's first");
  assert.equal(negotiateEncoding("gzip", []), null);
});
