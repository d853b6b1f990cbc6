// headers.ts's tables: header values split into a token and parameters (RFC 9110 §5.6.6), and RFC 8187
// extended values. Every test runs with no permission at all: the module does no I/O.
import assert from "node:assert/strict";
import { decodeExtValue, parseHeaderValue } from "./headers.ts";

/** A test that proves its subject touches nothing: no permission is granted. */
function pure(name: string, fn: () => void) {
  Deno.test({ name, permissions: "none", fn });
}

interface ValueRow {
  header: string;
  value: string;
  params: Array<[string, string]>;
}

const VALUE_ROWS: ValueRow[] = [
  { header: "text/plain", value: "text/plain", params: [] },
  { header: "  Text/HTML  ", value: "text/html", params: [] },
  { header: "text/plain; charset=utf-8", value: "text/plain", params: [["charset", "utf-8"]] },
  {
    header: "multipart/form-data; boundary=abc",
    value: "multipart/form-data",
    params: [["boundary", "abc"]],
  },
  // Names are case-insensitive (RFC 9110 §5.6.6); values keep their case.
  { header: "a; CharSet=UTF-8", value: "a", params: [["charset", "UTF-8"]] },
  { header: "a;x=1;y=2", value: "a", params: [["x", "1"], ["y", "2"]] },
  { header: "a ;\tx = 1 ; y=2 ", value: "a", params: [["x", "1"], ["y", "2"]] },
  { header: 'a; q="with space"', value: "a", params: [["q", "with space"]] },
  { header: 'a; q="semi;colon"; r=1', value: "a", params: [["q", "semi;colon"], ["r", "1"]] },
  { header: 'a; q="x=y"', value: "a", params: [["q", "x=y"]] },
  { header: 'a; q=""', value: "a", params: [["q", ""]] },
  { header: 'a; q="esc\\"aped"', value: "a", params: [["q", 'esc"aped']] },
  { header: 'a; q="back\\\\slash"', value: "a", params: [["q", "back\\slash"]] },
  // Browsers do not escape the backslashes of a Windows path: they stay.
  {
    header: 'a; filename="C:\\Users\\me\\a.txt"',
    value: "a",
    params: [["filename", "C:\\Users\\me\\a.txt"]],
  },
  { header: 'a; q="unterminated', value: "a", params: [["q", "unterminated"]] },
  { header: "a; flag; x=1", value: "a", params: [["x", "1"]] },
  { header: "a; =novalue; x=1", value: "a", params: [["x", "1"]] },
  { header: "a; x=1; X=2", value: "a", params: [["x", "1"]] },
  { header: "a;", value: "a", params: [] },
  { header: "", value: "", params: [] },
  { header: "; x=1", value: "", params: [["x", "1"]] },
  {
    header: 'form-data; name="f"; filename="a.txt"; filename*=UTF-8\'\'%C3%A9.txt',
    value: "form-data",
    params: [["name", "f"], ["filename", "a.txt"], ["filename*", "UTF-8''%C3%A9.txt"]],
  },
];

for (const row of VALUE_ROWS) {
  pure(`parseHeaderValue() reads ${JSON.stringify(row.header)}`, () => {
    const parsed = parseHeaderValue(row.header);
    assert.equal(parsed.value, row.value);
    assert.deepEqual([...parsed.params], row.params);
  });
}

const EXT_ROWS: Array<[string, string | undefined]> = [
  ["UTF-8''a%20b", "a b"],
  ["UTF-8''%E2%82%AC%20rates.txt", "€ rates.txt"],
  ["utf-8''%C3%A9t%C3%A9.txt", "été.txt"],
  ["UTF-8'en'plain", "plain"], // a language tag is allowed and ignored
  ["iso-8859-1'en'%E9t%E9.txt", "été.txt"],
  ["ISO-8859-1''caf%E9", "café"],
  ["UTF-8''%E2%82", undefined], // truncated UTF-8
  ["UTF-8''%FF%FE", undefined], // not UTF-8
  ["UTF-8''%zz", undefined], // not a percent escape
  ["KOI8-R''%C1", undefined], // a charset RFC 8187 does not require
  ["no-quotes", undefined],
  ["''no-charset", undefined],
];

pure("decodeExtValue() decodes UTF-8 and ISO-8859-1, and nothing it cannot read (RFC 8187 §3.2.1)", () => {
  for (const [ext, want] of EXT_ROWS) assert.equal(decodeExtValue(ext), want, ext);
});
