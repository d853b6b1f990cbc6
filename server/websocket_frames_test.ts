// The frame parser and writer, in memory: every rule of RFC 6455 §5 fed as bytes, at once and split at every
// offset, and the writer's frames read back. No permissions needed.
import assert from "node:assert/strict";
import {
  closePayload,
  encodeFrame,
  type FrameEvent,
  frameHeadLength,
  FrameParser,
  type FrameParserOptions,
  isValidCloseCode,
  NEED_DATA,
  Opcode,
  unmask,
  Utf8Validator,
  writeFrameHead,
} from "./websocket_frames.ts";
import { joinBytes } from "../tests/fixtures/bytes.ts";

const KEY = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A client frame: masked with KEY unless told otherwise. */
function frame(
  opcode: number,
  payload: Uint8Array | string,
  options: { fin?: boolean; rsv1?: boolean; masked?: boolean } = {},
): Uint8Array {
  const bytes = typeof payload === "string" ? utf8(payload) : payload;
  return encodeFrame(opcode, bytes, {
    fin: options.fin,
    rsv1: options.rsv1,
    mask: options.masked === false ? null : KEY,
  });
}

/** A plain summary of an event, its bytes copied (views die with the next feed). */
type Seen =
  | { type: "text"; text: string }
  | { type: "binary" | "ping" | "pong"; data: number[] }
  | { type: "deflated"; binary: boolean; data: number[] }
  | { type: "close"; code: number; reason: string }
  | { type: "error"; code: number };

function summary(ev: FrameEvent): Seen {
  switch (ev.type) {
    case "text":
      return { type: "text", text: ev.text };
    case "binary":
    case "ping":
    case "pong":
      return { type: ev.type, data: [...ev.data] };
    case "deflated":
      return { type: "deflated", binary: ev.binary, data: [...ev.data] };
    case "close":
      return { type: "close", code: ev.code, reason: ev.reason };
    case "error":
      return { type: "error", code: ev.error.code };
  }
}

function drain(parser: FrameParser, into: Seen[]): void {
  for (;;) {
    const ev = parser.next();
    if (ev === NEED_DATA) return;
    into.push(summary(ev));
    if (ev.type === "error" || ev.type === "close") return;
  }
}

/** Everything `bytes` gives: fed at once, then split at every offset; the results must agree. */
function parse(bytes: Uint8Array, options: FrameParserOptions = {}): Seen[] {
  const whole: Seen[] = [];
  const once = new FrameParser(options);
  once.feed(bytes);
  drain(once, whole);
  // Every offset of a short input; about 60 offsets of a long one, the head's among them.
  const step = bytes.length > 400 ? Math.ceil(bytes.length / 60) : 1;
  for (let cut = 1; cut < bytes.length; cut += cut < 16 ? 1 : step) {
    const split: Seen[] = [];
    const parser = new FrameParser(options);
    parser.feed(bytes.subarray(0, cut));
    drain(parser, split);
    if (split.at(-1)?.type !== "error") {
      parser.feed(bytes.subarray(cut));
      drain(parser, split);
    }
    assert.deepEqual(split, whole, `split at ${cut} of ${bytes.length}`);
  }
  // Byte by byte, through writable()/commit() as a socket does.
  const dribbled: Seen[] = [];
  const parser = new FrameParser(options);
  for (let i = 0; i < bytes.length && dribbled.at(-1)?.type !== "error"; i++) {
    parser.writable()[0] = bytes[i];
    parser.commit(1);
    drain(parser, dribbled);
  }
  assert.deepEqual(dribbled, whole, "byte by byte");
  return whole;
}

Deno.test("FrameParser reads masked text and binary in 7-, 16- and 64-bit lengths", () => {
  for (const n of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    const text = "a".repeat(n);
    assert.deepEqual(parse(frame(Opcode.Text, text)), [{ type: "text", text }], `text ${n}`);
  }
  for (const n of [0, 3, 126, 65536]) {
    const bytes = new Uint8Array(n).map((_, i) => i * 7);
    assert.deepEqual(
      parse(frame(Opcode.Binary, bytes)),
      [{ type: "binary", data: [...bytes] }],
      `binary ${n}`,
    );
  }
});

Deno.test("FrameParser fails with 1002 on an unmasked client frame, and a client parser on a masked one", () => {
  assert.deepEqual(parse(frame(Opcode.Text, "hi", { masked: false })), [{ type: "error", code: 1002 }]);
  assert.deepEqual(parse(frame(Opcode.Text, "hi"), { role: "client" }), [{ type: "error", code: 1002 }]);
  assert.deepEqual(parse(frame(Opcode.Text, "hi", { masked: false }), { role: "client" }), [{
    type: "text",
    text: "hi",
  }]);
});

Deno.test("FrameParser fails with 1002 on reserved bits and reserved opcodes", () => {
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    assert.deepEqual(parse(frame(opcode, "")), [{ type: "error", code: 1002 }], `opcode ${opcode}`);
  }
  for (const bit of [0x40, 0x20, 0x10]) {
    const bytes = frame(Opcode.Text, "hi");
    bytes[0] |= bit;
    assert.deepEqual(parse(bytes), [{ type: "error", code: 1002 }], `RSV bit ${bit.toString(16)}`);
  }
  // With permessage-deflate, RSV1 marks a compressed message, on its first frame only.
  assert.deepEqual(parse(frame(Opcode.Binary, new Uint8Array([1]), { rsv1: true }), { deflate: true }), [{
    type: "deflated",
    binary: true,
    data: [1],
  }]);
  const rsvOnContinuation = joinBytes(
    frame(Opcode.Text, "a", { fin: false, rsv1: true }),
    frame(Opcode.Continuation, "b", { rsv1: true }),
  );
  assert.deepEqual(parse(rsvOnContinuation, { deflate: true }), [{ type: "error", code: 1002 }]);
  assert.deepEqual(parse(frame(Opcode.Ping, "", { rsv1: true }), { deflate: true }), [{
    type: "error",
    code: 1002,
  }]);
});

Deno.test("FrameParser: control frames are at most 125 bytes and never fragmented", () => {
  assert.deepEqual(parse(frame(Opcode.Ping, new Uint8Array(125).fill(1))), [{
    type: "ping",
    data: Array(125).fill(1),
  }]);
  assert.deepEqual(parse(frame(Opcode.Ping, new Uint8Array(126))), [{ type: "error", code: 1002 }]);
  assert.deepEqual(parse(frame(Opcode.Pong, "x", { fin: false })), [{ type: "error", code: 1002 }]);
  assert.deepEqual(parse(frame(Opcode.Close, new Uint8Array(126))), [{ type: "error", code: 1002 }]);
});

Deno.test("FrameParser reassembles fragments, with control frames between them", () => {
  const bytes = joinBytes(
    frame(Opcode.Text, "Hel", { fin: false }),
    frame(Opcode.Ping, "p"),
    frame(Opcode.Continuation, "lo, ", { fin: false }),
    frame(Opcode.Pong, ""),
    frame(Opcode.Continuation, "world"),
    frame(Opcode.Binary, new Uint8Array([1]), { fin: false }),
    frame(Opcode.Continuation, new Uint8Array([2])),
  );
  assert.deepEqual(parse(bytes), [
    { type: "ping", data: [112] },
    { type: "pong", data: [] },
    { type: "text", text: "Hello, world" },
    { type: "binary", data: [1, 2] },
  ]);
});

Deno.test("FrameParser fails with 1002 on a continuation outside a message and a new message inside one", () => {
  assert.deepEqual(parse(frame(Opcode.Continuation, "x")), [{ type: "error", code: 1002 }]);
  assert.deepEqual(parse(joinBytes(frame(Opcode.Text, "a", { fin: false }), frame(Opcode.Text, "b"))), [{
    type: "error",
    code: 1002,
  }]);
  assert.deepEqual(parse(joinBytes(frame(Opcode.Text, "a", { fin: false }), frame(Opcode.Binary, "b"))), [{
    type: "error",
    code: 1002,
  }]);
});

Deno.test("FrameParser validates UTF-8 across fragments and fails early with 1007", () => {
  // "κόσμε" split inside its characters.
  const bytes = utf8("κόσμε");
  assert.deepEqual(
    parse(joinBytes(
      frame(Opcode.Text, bytes.subarray(0, 1), { fin: false }),
      frame(Opcode.Continuation, bytes.subarray(1, 6), { fin: false }),
      frame(Opcode.Continuation, bytes.subarray(6)),
    )),
    [{ type: "text", text: "κόσμε" }],
  );
  // The first fragment is already invalid: the error comes before the second fragment arrives.
  const parser = new FrameParser();
  parser.feed(frame(Opcode.Text, new Uint8Array([0xce, 0xba, 0xc0]), { fin: false }));
  const ev = parser.next();
  assert.ok(ev !== NEED_DATA && ev.type === "error" && ev.error.code === 1007);
  // Invalid inside one large frame, before all of it has arrived.
  const large = new Uint8Array(200_000).fill(0x61);
  large[10] = 0xff;
  const early = new FrameParser();
  early.feed(frame(Opcode.Text, large).subarray(0, 5000));
  const first = early.next();
  assert.ok(first !== NEED_DATA && first.type === "error" && first.error.code === 1007);
  // The same inside a small frame, which is otherwise handed over only once whole.
  const small = new Uint8Array(1000).fill(0x61);
  small[3] = 0xc0;
  const soon = new FrameParser();
  soon.feed(frame(Opcode.Text, small).subarray(0, 20));
  const second = soon.next();
  assert.ok(second !== NEED_DATA && second.type === "error" && second.error.code === 1007);
  // A message ending inside a character, overlongs, surrogates and code points past U+10FFFF.
  for (
    const bad of [[0xce], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [
      0xf5,
    ]]
  ) {
    assert.deepEqual(
      parse(frame(Opcode.Text, new Uint8Array(bad))),
      [{ type: "error", code: 1007 }],
      `${bad}`,
    );
  }
  // A byte-order mark is data.
  assert.deepEqual(parse(frame(Opcode.Text, "\ufeffhi")), [{ type: "text", text: "\ufeffhi" }]);
});

Deno.test("Utf8Validator accepts every valid scalar's encoding and nothing else", () => {
  for (const cp of [0, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff]) {
    const v = new Utf8Validator();
    const bytes = utf8(String.fromCodePoint(cp));
    assert.ok(v.feed(bytes, 0, bytes.length) && v.complete, `U+${cp.toString(16)}`);
  }
  const v = new Utf8Validator();
  assert.equal(v.feed(new Uint8Array([0x80]), 0, 1), false, "a lone continuation byte");
});

Deno.test("FrameParser checks close frames: code, reason, length", () => {
  assert.deepEqual(parse(frame(Opcode.Close, "")), [{ type: "close", code: 1005, reason: "" }]);
  assert.deepEqual(parse(frame(Opcode.Close, closePayload(1000, "bye"))), [{
    type: "close",
    code: 1000,
    reason: "bye",
  }]);
  assert.deepEqual(parse(frame(Opcode.Close, new Uint8Array([3]))), [{ type: "error", code: 1002 }]);
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    const payload = new Uint8Array([code >> 8, code & 0xff]);
    assert.deepEqual(parse(frame(Opcode.Close, payload)), [{ type: "error", code: 1002 }], `code ${code}`);
  }
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
    assert.ok(isValidCloseCode(code), `code ${code}`);
  }
  assert.deepEqual(parse(frame(Opcode.Close, new Uint8Array([0x03, 0xe8, 0xff]))), [{
    type: "error",
    code: 1007,
  }]);
  // Nothing after a close frame is read.
  assert.deepEqual(parse(joinBytes(frame(Opcode.Close, ""), frame(Opcode.Text, "late"))), [{
    type: "close",
    code: 1005,
    reason: "",
  }]);
  assert.throws(() => closePayload(1000, "x".repeat(124)), RangeError);
  assert.throws(() => closePayload(1006), RangeError);
});

Deno.test("FrameParser fails with 1009 over the frame and message limits, before the payload arrives", () => {
  const options = { maxMessageBytes: 1000, maxFrameBytes: 600 };
  assert.deepEqual(parse(frame(Opcode.Binary, new Uint8Array(600)), options).length, 1);
  assert.deepEqual(parse(frame(Opcode.Binary, new Uint8Array(601)), options), [{
    type: "error",
    code: 1009,
  }]);
  const fragments = joinBytes(
    frame(Opcode.Binary, new Uint8Array(600), { fin: false }),
    frame(Opcode.Continuation, new Uint8Array(401)),
  );
  assert.deepEqual(parse(fragments, options), [{ type: "error", code: 1009 }]);
  // A 64-bit length of 2^62: refused from its head alone.
  const head = new Uint8Array([0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, ...KEY]);
  assert.deepEqual(parse(head), [{ type: "error", code: 1009 }]);
  // The most significant bit of a 64-bit length must be 0 (§5.2).
  const top = new Uint8Array([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, ...KEY]);
  assert.deepEqual(parse(top), [{ type: "error", code: 1002 }]);
});

Deno.test("FrameParser keeps returning its error and refuses a step it never takes", () => {
  const parser = new FrameParser();
  parser.feed(frame(Opcode.Continuation, "x"));
  const a = parser.next();
  const b = parser.next();
  assert.equal(a, b);
  assert.equal(parser.state, "Failed");
});

Deno.test("unmask() gives the same bytes word by word as byte by byte, at every alignment and phase", () => {
  const data = new Uint8Array(300).map((_, i) => (i * 31) & 0xff);
  for (let offset = 0; offset < 5; offset++) {
    for (let phase = 0; phase < 4; phase++) {
      const fast = new Uint8Array(320);
      fast.set(data, offset);
      unmask(fast, offset, offset + data.length, KEY, phase);
      const slow = data.map((b, i) => b ^ KEY[(phase + i) & 3]);
      assert.deepEqual(fast.subarray(offset, offset + data.length), slow, `offset ${offset} phase ${phase}`);
    }
  }
});

Deno.test("writeFrameHead() uses the shortest length form and the server's frames are unmasked", () => {
  for (const [n, size] of [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10]]) {
    assert.equal(frameHeadLength(n, false), size);
    const head = new Uint8Array(14);
    assert.equal(writeFrameHead(head, 0, Opcode.Binary, n), size);
    assert.equal(head[1] & 0x80, 0);
  }
  // Read back by a client-side parser.
  const out = joinBytes(
    encodeFrame(Opcode.Text, utf8("hello")),
    encodeFrame(Opcode.Binary, new Uint8Array(70000).fill(9)),
    encodeFrame(Opcode.Close, closePayload(1001, "going")),
  );
  const seen = parse(out, { role: "client" });
  assert.deepEqual(seen[0], { type: "text", text: "hello" });
  assert.equal(seen[1].type, "binary");
  assert.deepEqual(seen[2], { type: "close", code: 1001, reason: "going" });
});
