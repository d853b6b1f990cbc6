// Table-driven tests of the sans-IO parser. Every case is fed whole, one byte at a time, and split at
// every offset (picohttpparser's discipline): the outcome must never depend on how bytes arrive.
import assert from "node:assert/strict";
import { NEED_DATA, type ParserLimits, PAUSED, RequestParser } from "../server/http1.ts";

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

interface Message {
  method: string;
  target: string;
  versionMinor: number;
  headers: string[];
  framing: string;
  keepAlive: boolean;
  expectContinue: boolean;
  body: string;
}
type Outcome = { messages: Partial<Message>[]; error?: number; complete: boolean };

/** Feed the chunks, collect messages (restarting after each), stop at an error. */
function run(chunks: Uint8Array[], limits: Partial<ParserLimits> = {}): Outcome {
  const p = new RequestParser(limits);
  const messages: Partial<Message>[] = [];
  let cur: Partial<Message> | null = null;
  let body = "";
  for (const chunk of chunks) {
    p.feed(chunk);
    for (;;) {
      const ev = p.next();
      if (ev === NEED_DATA) break;
      if (ev === PAUSED) {
        if (cur && cur.keepAlive === false) return { messages, complete: false };
        p.startNextCycle();
        continue;
      }
      if (ev.type === "error") return { messages, error: ev.error.status, complete: false };
      if (ev.type === "head") {
        const h = ev.head;
        cur = {
          method: h.method,
          target: h.target,
          versionMinor: h.versionMinor,
          headers: h.headers,
          framing: h.framing.kind === "length" ? `length:${h.framing.n}` : h.framing.kind,
          keepAlive: h.keepAlive,
          expectContinue: h.expectContinue,
        };
        body = "";
      } else if (ev.type === "data") {
        body += String.fromCharCode(...ev.data);
      } else if (ev.type === "end") {
        messages.push({ ...cur!, body });
        cur = null;
      }
    }
  }
  return { messages, complete: cur === null };
}

interface Case {
  name: string;
  raw: string;
  /** Expected messages (checked field by field) when the input is valid. */
  messages?: Partial<Message>[];
  /** Expected error status. */
  error?: number;
  limits?: Partial<ParserLimits>;
}

const GET = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
const POST_HEAD = "POST /f HTTP/1.1\r\nHost: a\r\n";

const CASES: Case[] = [
  // --- valid messages ---
  {
    name: "simple GET",
    raw: GET,
    messages: [{
      method: "GET",
      target: "/",
      versionMinor: 1,
      headers: ["host", "a"],
      framing: "none",
      body: "",
    }],
  },
  { name: "leading empty line is ignored (RFC 9112 §2.2)", raw: "\r\n" + GET, messages: [{ method: "GET" }] },
  {
    name: "names are lower-cased, values lose surrounding OWS, empty values kept",
    raw: "GET / HTTP/1.1\r\nhOsT: a\r\nX-Pad:  \t padded \t \r\nX-Empty:\r\nX_U: 1\r\n\r\n",
    messages: [{ headers: ["host", "a", "x-pad", "padded", "x-empty", "", "x_u", "1"] }],
  },
  {
    // Known names come from a table matched ignoring case; near misses must keep their own spelling.
    name: "known names in any case, and names one fold away from a known one",
    raw: "GET / HTTP/1.1\r\nHOST: a\r\nUser-AGENT: u\r\nCONTENT-length: 0\r\nHos^: 1\r\nHos~: 2\r\n" +
      "Hosts: 3\r\nH0st: 4\r\nUser_Agent: 5\r\nAccept~: 6\r\nX-Forwarded-For: 7\r\nte: 8\r\n\r\n",
    messages: [{
      headers: [
        "host",
        "a",
        "user-agent",
        "u",
        "content-length",
        "0",
        "hos^",
        "1",
        "hos~",
        "2",
        "hosts",
        "3",
        "h0st",
        "4",
        "user_agent",
        "5",
        "accept~",
        "6",
        "x-forwarded-for",
        "7",
        "te",
        "8",
      ],
      framing: "none",
    }],
  },
  {
    name: "obs-text in a value is kept byte for byte",
    raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9 \xff\r\n\r\n",
    messages: [{ headers: ["host", "a", "x-name", "caf\xe9 \xff"] }],
  },
  {
    name: "Content-Length body",
    raw: POST_HEAD + "Content-Length: 5\r\n\r\nhello",
    messages: [{ method: "POST", framing: "length:5", body: "hello" }],
  },
  {
    name: "Content-Length with leading zeros",
    raw: POST_HEAD + "Content-Length: 005\r\n\r\nhello",
    messages: [{ framing: "length:5", body: "hello" }],
  },
  {
    name: "Content-Length 0 is no body",
    raw: POST_HEAD + "Content-Length: 0\r\n\r\n",
    messages: [{ framing: "none" }],
  },
  {
    name: "chunked with extensions, upper-case hex, zeros and a trailer",
    raw: POST_HEAD +
      'Transfer-Encoding: Chunked\r\n\r\n5;a=b ; c="d;e" ;f\r\nhello\r\n00A\r\n0123456789\r\n0\r\nX-T: 1\r\nContent-Length: 99\r\n\r\n',
    messages: [{ framing: "chunked", body: "hello0123456789" }],
  },
  {
    name: "pipelined requests come out in order",
    raw: GET + POST_HEAD + "Content-Length: 2\r\n\r\nhi" + "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
    messages: [{ target: "/" }, { target: "/f", body: "hi" }, { target: "/3" }],
  },
  {
    name: "HTTP/1.0 without Host closes by default",
    raw: "GET / HTTP/1.0\r\n\r\n",
    messages: [{ versionMinor: 0, keepAlive: false }],
  },
  {
    name: "HTTP/1.0 keep-alive persists",
    raw: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    messages: [{ versionMinor: 0, keepAlive: true }],
  },
  {
    name: "Connection: close in a list, any case",
    raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n",
    messages: [{ keepAlive: false }],
  },
  {
    name: "HTTP/1.2 is treated as 1.1 (RFC 9112 §2.3)",
    raw: "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    messages: [{ versionMinor: 1 }],
  },
  {
    name: "Expect: 100-continue with a body",
    raw: POST_HEAD + "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
    messages: [{ expectContinue: true, body: "x" }],
  },
  {
    name: "Expect is ignored in HTTP/1.0 (RFC 9110 §10.1.1)",
    raw: "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    messages: [{ expectContinue: false, body: "x" }],
  },
  {
    name: "absolute-form target",
    raw: "GET http://a:8080/x?y HTTP/1.1\r\nHost: other\r\n\r\n",
    messages: [{ target: "http://a:8080/x?y" }],
  },
  {
    name: "asterisk-form for OPTIONS",
    raw: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    messages: [{ target: "*" }],
  },
  {
    name: "Host with port and IPv6 literal",
    raw: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    messages: [{ headers: ["host", "[::1]:8080"] }],
  },
  {
    name: "unknown but well-formed method parses (the server answers 501)",
    raw: "get / HTTP/1.1\r\nHost: a\r\n\r\n",
    messages: [{ method: "get" }],
  },
  {
    name: "braces and pipes in a query, as browsers send them",
    raw: "GET /s?q={a}|^ HTTP/1.1\r\nHost: a\r\n\r\n",
    messages: [{ target: "/s?q={a}|^" }],
  },

  // --- request line ---
  { name: "bare LF ends the request line", raw: "GET / HTTP/1.1\nHost: a\r\n\r\n", error: 400 },
  { name: "bare CR in the request line", raw: "GET / HTTP/1.1\rHost: a\r\n\r\n", error: 400 },
  { name: "two spaces after the method", raw: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "tab as separator", raw: "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "trailing space after the version", raw: "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", error: 400 },
  { name: "missing version", raw: "GET /\r\nHost: a\r\n\r\n", error: 400 },
  { name: "missing target", raw: "GET HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "space in the target", raw: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "DEL in the target", raw: "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "raw non-ASCII in the target", raw: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "backslash in the target", raw: "GET /a\\..\\b HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "fragment in the target", raw: "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "NUL in the method", raw: "G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "non-token method", raw: "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "empty method", raw: " / HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "target without a leading slash", raw: "GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "authority-form outside CONNECT", raw: "GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "asterisk-form outside OPTIONS", raw: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "TLS bytes on the plain port", raw: "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", error: 400 },
  { name: "HTTP/2.0 gets 505", raw: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", error: 505 },
  { name: "HTTP/0.9 gets 505", raw: "GET / HTTP/0.9\r\nHost: a\r\n\r\n", error: 505 },
  { name: "lower-case http name", raw: "GET / http/1.1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "two-digit minor", raw: "GET / HTTP/1.10\r\nHost: a\r\n\r\n", error: 400 },
  { name: "missing minor", raw: "GET / HTTP/1\r\nHost: a\r\n\r\n", error: 400 },
  { name: "HTTPS as the protocol name", raw: "GET / HTTPS/1.1\r\nHost: a\r\n\r\n", error: 400 },

  // --- field lines ---
  { name: "space before the colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n", error: 400 },
  { name: "tab before the colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A\t: 1\r\n\r\n", error: 400 },
  { name: "no colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A 1\r\n\r\n", error: 400 },
  { name: "empty name", raw: "GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", error: 400 },
  { name: "NUL in a name", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-\0A: 1\r\n\r\n", error: 400 },
  { name: "non-ASCII in a name", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-\xc3\xa9: 1\r\n\r\n", error: 400 },
  { name: "obs-fold (RFC 9112 §5.2)", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", error: 400 },
  { name: "whitespace before the first field", raw: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", error: 400 },
  { name: "NUL in a value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n", error: 400 },
  { name: "bare CR in a value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", error: 400 },
  { name: "control byte in a value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n", error: 400 },
  { name: "DEL in a value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7fb\r\n\r\n", error: 400 },
  { name: "bare LF ending a field line", raw: "GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n", error: 400 },
  { name: "bare LF ending the head", raw: "GET / HTTP/1.1\r\nHost: a\r\n\n", error: 400 },

  // --- Host ---
  { name: "HTTP/1.1 without Host", raw: "GET / HTTP/1.1\r\n\r\n", error: 400 },
  { name: "two Host fields, even equal", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", error: 400 },
  { name: "empty Host", raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n", error: 400 },
  { name: "Host with a space", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", error: 400 },
  { name: "Host with a slash", raw: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", error: 400 },
  { name: "Host with userinfo", raw: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", error: 400 },
  { name: "Host with a bad port", raw: "GET / HTTP/1.1\r\nHost: a:8a\r\n\r\n", error: 400 },
  { name: "Host with a port over 65535", raw: "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", error: 400 },
  { name: "Host with an unclosed IPv6 literal", raw: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", error: 400 },
  { name: "Host as a list", raw: "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", error: 400 },
  { name: "absolute-form still needs Host", raw: "GET http://a/ HTTP/1.1\r\n\r\n", error: 400 },
  {
    name: "absolute-form with a bad authority",
    raw: "GET http://a b/ HTTP/1.1\r\nHost: a\r\n\r\n",
    error: 400,
  },

  // --- Content-Length (RFC 9110 §8.6) ---
  ...["+5", "-5", "0x5", "5e0", "5.0", "", "5 5", "5a", "\xa05", "\u0665"].map((v) => ({
    name: `Content-Length ${JSON.stringify(v)} is invalid`,
    raw: POST_HEAD + `Content-Length: ${v}\r\n\r\nhello`,
    error: 400,
  })),
  {
    name: "differing duplicate Content-Length",
    raw: POST_HEAD + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
    error: 400,
  },
  {
    name: "equal duplicate Content-Length",
    raw: POST_HEAD + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
    error: 400,
  },
  { name: "Content-Length list", raw: POST_HEAD + "Content-Length: 5, 5\r\n\r\nhello", error: 400 },
  {
    name: "Content-Length that overflows",
    raw: POST_HEAD + "Content-Length: 99999999999999999999\r\n\r\n",
    error: 413,
  },
  {
    name: "Content-Length over the body limit",
    raw: POST_HEAD + "Content-Length: 11\r\n\r\n",
    error: 413,
    limits: { maxBodyBytes: 10 },
  },
  {
    name: "Content-Length at the body limit",
    raw: POST_HEAD + "Content-Length: 3\r\n\r\nabc",
    messages: [{ body: "abc" }],
    limits: { maxBodyBytes: 3 },
  },

  // --- Transfer-Encoding (RFC 9112 §6.1) ---
  {
    name: "both Transfer-Encoding and Content-Length",
    raw: POST_HEAD + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    error: 400,
  },
  {
    name: "Transfer-Encoding in HTTP/1.0",
    raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    error: 400,
  },
  { name: "xchunked", raw: POST_HEAD + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", error: 400 },
  { name: "identity", raw: POST_HEAD + "Transfer-Encoding: identity\r\n\r\n", error: 400 },
  { name: "chunked not final", raw: POST_HEAD + "Transfer-Encoding: chunked, gzip\r\n\r\n", error: 400 },
  {
    name: "chunked twice",
    raw: POST_HEAD + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    error: 400,
  },
  { name: "quoted chunked", raw: POST_HEAD + 'Transfer-Encoding: "chunked"\r\n\r\n', error: 400 },
  { name: "chunked with a parameter", raw: POST_HEAD + "Transfer-Encoding: chunked;q=1\r\n\r\n", error: 400 },
  { name: "empty list element", raw: POST_HEAD + "Transfer-Encoding: , chunked\r\n\r\n", error: 400 },
  {
    name: "gzip then chunked is 501",
    raw: POST_HEAD + "Transfer-Encoding: gzip, chunked\r\n\r\n",
    error: 501,
  },
  {
    name: "an unknown coding then chunked is 400",
    raw: POST_HEAD + "Transfer-Encoding: foo, chunked\r\n\r\n",
    error: 400,
  },
  {
    name: "vertical tab around chunked",
    raw: POST_HEAD + "Transfer-Encoding: \x0bchunked\r\n\r\n",
    error: 400,
  },

  // --- chunked framing (RFC 9112 §7.1) ---
  ...["0x5", "+5", "-5", "5 ", " 5", "g", "", "5 \t"].map((size) => ({
    name: `chunk size ${JSON.stringify(size)} is invalid`,
    raw: POST_HEAD + `Transfer-Encoding: chunked\r\n\r\n${size}\r\nhello\r\n0\r\n\r\n`,
    error: 400,
  })),
  {
    name: "chunk size overflow",
    raw: POST_HEAD + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
    error: 413,
  },
  {
    name: "chunk data longer than its size",
    raw: POST_HEAD + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    error: 400,
  },
  {
    name: "chunk data without CRLF",
    raw: POST_HEAD + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
    error: 400,
  },
  {
    name: "bare LF after the chunk size",
    raw: POST_HEAD + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
    error: 400,
  },
  {
    name: "chunk extension with an empty name",
    raw: POST_HEAD + "Transfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n0\r\n\r\n",
    error: 400,
  },
  {
    name: "chunk extension with an open quote",
    raw: POST_HEAD + 'Transfer-Encoding: chunked\r\n\r\n5;a="x\r\nhello\r\n0\r\n\r\n',
    error: 400,
  },
  {
    name: "trailer line without a colon",
    raw: POST_HEAD + "Transfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
    error: 400,
  },
  {
    name: "chunked body over the limit",
    raw: POST_HEAD + "Transfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n",
    error: 413,
    limits: { maxBodyBytes: 5 },
  },

  // --- Expect ---
  {
    name: "unknown expectation gets 417",
    raw: POST_HEAD + "Expect: something\r\nContent-Length: 1\r\n\r\nx",
    error: 417,
  },

  // --- limits ---
  {
    name: "target over the limit gets 414",
    raw: `GET /${"a".repeat(100)} HTTP/1.1\r\nHost: a\r\n\r\n`,
    error: 414,
    limits: { maxRequestLineBytes: 64 },
  },
  { name: "overlong method gets 501", raw: `${"M".repeat(40)} / HTTP/1.1\r\nHost: a\r\n\r\n`, error: 501 },
  {
    name: "head over the limit gets 431",
    raw: `GET / HTTP/1.1\r\nHost: a\r\nX: ${"v".repeat(300)}\r\n\r\n`,
    error: 431,
    limits: { maxHeadBytes: 256 },
  },
  {
    name: "too many fields get 431",
    raw: "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
    error: 431,
    limits: { maxHeaderCount: 3 },
  },
  {
    name: "chunk line over the limit gets 400",
    raw: POST_HEAD + `Transfer-Encoding: chunked\r\n\r\n5;x=${"y".repeat(100)}\r\n`,
    error: 400,
    limits: { maxChunkLineBytes: 64 },
  },
  {
    name: "trailer over the limit gets 431",
    raw: POST_HEAD + `Transfer-Encoding: chunked\r\n\r\n0\r\nX: ${"y".repeat(100)}\r\n\r\n`,
    error: 431,
    limits: { maxTrailerBytes: 64 },
  },
];

function check(c: Case, out: Outcome, how: string): void {
  if (c.error !== undefined) {
    assert.equal(
      out.error,
      c.error,
      `${c.name} (${how}): expected error ${c.error}, got ${JSON.stringify(out)}`,
    );
    return;
  }
  assert.equal(out.error, undefined, `${c.name} (${how}): unexpected error ${out.error}`);
  assert.ok(out.complete, `${c.name} (${how}): message incomplete`);
  assert.equal(out.messages.length, c.messages!.length, `${c.name} (${how}): message count`);
  c.messages!.forEach((want, i) => {
    for (const [k, v] of Object.entries(want)) {
      assert.deepEqual(out.messages[i][k as keyof Message], v, `${c.name} (${how}): message ${i} field ${k}`);
    }
  });
}

for (const c of CASES) {
  Deno.test(`RequestParser: ${c.name}`, () => {
    const bytes = latin1(c.raw);
    check(c, run([bytes], c.limits), "whole");
    check(c, run(Array.from(bytes, (b) => new Uint8Array([b])), c.limits), "byte by byte");
    for (let k = 1; k < bytes.length; k++) {
      check(c, run([bytes.subarray(0, k), bytes.subarray(k)], c.limits), `split at ${k}`);
    }
  });
}

Deno.test("RequestParser needs data until the last byte of a head, then pauses after the message", () => {
  const p = new RequestParser();
  const bytes = latin1(GET);
  for (let i = 0; i < bytes.length - 1; i++) {
    p.feed(bytes.subarray(i, i + 1));
    assert.equal(p.next(), NEED_DATA, `after byte ${i}`);
  }
  p.feed(bytes.subarray(bytes.length - 1));
  const ev = p.next();
  assert.ok(typeof ev === "object" && ev.type === "head");
  assert.deepEqual(p.next(), { type: "end" });
  assert.equal(p.next(), PAUSED);
  assert.equal(p.next(), PAUSED);
  assert.equal(p.state, "DONE");
  p.startNextCycle();
  assert.equal(p.state, "IDLE");
});

Deno.test("RequestParser examines each head byte once however the bytes are split (linear slowloris cost)", () => {
  const head = latin1(`GET / HTTP/1.1\r\nHost: a\r\n${"X-Long: 0123456789\r\n".repeat(90)}\r\n`);
  const p = new RequestParser();
  for (let i = 0; i < head.length; i++) {
    p.feed(head.subarray(i, i + 1));
    const ev = p.next();
    if (i < head.length - 1) assert.equal(ev, NEED_DATA);
  }
  assert.equal(p.scanned, head.length);
});

Deno.test("RequestParser keeps returning the same error, and refuses an illegal transition", () => {
  const p = new RequestParser();
  p.feed(latin1("GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n"));
  const first = p.next();
  assert.ok(typeof first === "object" && first.type === "error" && first.error.status === 400);
  assert.equal(p.next(), first);
  assert.equal(p.state, "ERROR");
  assert.throws(() => p.startNextCycle(), /illegal parser transition: "next_cycle" in state ERROR/);
});

Deno.test("RequestParser data events hand out body bytes without waiting for the whole body", () => {
  const p = new RequestParser();
  p.feed(latin1(POST_HEAD + "Content-Length: 10\r\n\r\nabc"));
  assert.equal((p.next() as { type: string }).type, "head");
  const d = p.next();
  assert.ok(typeof d === "object" && d.type === "data");
  assert.equal(String.fromCharCode(...d.data), "abc");
  assert.equal(p.bodyRemaining, 7);
  assert.equal(p.next(), NEED_DATA);
});

Deno.test("RequestParser grows its buffer only for a large head and shrinks it after", () => {
  const p = new RequestParser();
  const big = latin1(`GET / HTTP/1.1\r\nHost: a\r\nX: ${"v".repeat(20000)}\r\n\r\n`);
  let off = 0;
  let ev;
  while ((ev = p.next()) === NEED_DATA) {
    const w = p.writable();
    const n = Math.min(w.length, big.length - off);
    w.set(big.subarray(off, off + n));
    p.commit(n);
    off += n;
  }
  assert.ok(typeof ev === "object" && ev.type === "head");
  assert.equal(ev.head.headers[3].length, 20000);
  p.next();
  p.startNextCycle();
  assert.equal(p.writable().length, 4096, "back to the small buffer once idle");
});
