// Table-driven tests of the sans-IO parser. Every case is fed whole, one byte at a time, and split at
// every offset (picohttpparser's discipline): the outcome must never depend on how bytes arrive.
import assert from "node:assert/strict";
import { NEED_DATA, type ParserLimits, PAUSED, RequestParser } from "./http1.ts";
import { type Case, CASES, GET, type Message, POST_HEAD } from "../tests/fixtures/parser_cases.ts";

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

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

Deno.test("RequestParser reuses a repeated head's text only when every byte is the same, across parsers", () => {
  const headOf = (p: RequestParser, raw: string) => {
    p.feed(latin1(raw));
    const ev = p.next();
    assert.ok(typeof ev === "object" && ev.type === "head");
    p.next();
    p.startNextCycle();
    return ev.head;
  };
  const a = new RequestParser();
  const b = new RequestParser();
  const first = headOf(a, "GET /aaaa HTTP/1.1\r\nHost: x\r\nX-N: 1\r\n\r\n");
  // The same length, one byte different, in the middle, at the end, on another parser.
  const second = headOf(b, "GET /aaab HTTP/1.1\r\nHost: x\r\nX-N: 1\r\n\r\n");
  const third = headOf(a, "GET /aaab HTTP/1.1\r\nHost: x\r\nX-N: 2\r\n\r\n");
  const again = headOf(b, "GET /aaab HTTP/1.1\r\nHost: x\r\nX-N: 2\r\n\r\n");
  assert.equal(first.target, "/aaaa");
  assert.equal(second.target, "/aaab");
  assert.deepEqual(third.headers, ["host", "x", "x-n", "2"]);
  assert.deepEqual(again.headers, ["host", "x", "x-n", "2"]);
  assert.equal(headOf(b, "GET /aaaa HTTP/1.1\r\nHost: x\r\nX-N: 1\r\n\r\n").target, "/aaaa");
});

Deno.test("RequestParser gives its buffer back on release(), and a new parser takes it", () => {
  const a = new RequestParser();
  const buffer = a.writable().buffer;
  a.release();
  const b = new RequestParser();
  assert.equal(b.writable().buffer, buffer, "the released buffer is reused");
  b.feed(latin1("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  const ev = b.next();
  assert.ok(typeof ev === "object" && ev.type === "head");
});
