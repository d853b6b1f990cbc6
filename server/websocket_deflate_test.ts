// permessage-deflate (RFC 7692): the negotiation as a table of offers and answers, and compression round
// trips with context takeover, the tail, and the inflate cap. No permissions needed.
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { type DeflateOptions, MessageDeflate, negotiateDeflate } from "./websocket_deflate.ts";
import { WebSocketProtocolError } from "./websocket_frames.ts";

Deno.test("negotiateDeflate() answers offers per RFC 7692 §7", () => {
  const cases: [string | null, DeflateOptions, string | null][] = [
    [null, {}, null],
    ["", {}, null],
    ["x-webkit-deflate-frame", {}, null],
    ["permessage-deflate", {}, "permessage-deflate"],
    // Chromium's offer.
    ["permessage-deflate; client_max_window_bits", {}, "permessage-deflate"],
    ["permessage-deflate; server_no_context_takeover", {}, "permessage-deflate; server_no_context_takeover"],
    ["permessage-deflate; client_no_context_takeover", {}, "permessage-deflate; client_no_context_takeover"],
    ["permessage-deflate; server_max_window_bits=10", {}, "permessage-deflate; server_max_window_bits=10"],
    ['permessage-deflate; server_max_window_bits="12"', {}, "permessage-deflate; server_max_window_bits=12"],
    // The server's own wishes.
    [
      "permessage-deflate",
      { serverNoContextTakeover: true },
      "permessage-deflate; server_no_context_takeover",
    ],
    [
      "permessage-deflate",
      { clientNoContextTakeover: true },
      "permessage-deflate; client_no_context_takeover",
    ],
    ["permessage-deflate", { serverMaxWindowBits: 11 }, "permessage-deflate; server_max_window_bits=11"],
    [
      "permessage-deflate; client_max_window_bits",
      { clientMaxWindowBits: 10 },
      "permessage-deflate; client_max_window_bits=10",
    ],
    ["permessage-deflate", { clientMaxWindowBits: 10 }, "permessage-deflate"], // not offered: not sent
    // Declined offers: the next one is tried.
    ["permessage-deflate; server_max_window_bits=8, permessage-deflate", {}, "permessage-deflate"],
    ["permessage-deflate; unknown_param, permessage-deflate", {}, "permessage-deflate"],
    ["permessage-deflate; server_no_context_takeover; server_no_context_takeover", {}, null],
    ["permessage-deflate; server_max_window_bits", {}, null],
    ["permessage-deflate; server_max_window_bits=16", {}, null],
    ["permessage-deflate; server_max_window_bits=010", {}, null],
    ["permessage-deflate; client_max_window_bits=7", {}, null],
    ["permessage-deflate; server_no_context_takeover=1", {}, null],
    // Broken grammar: nothing agreed.
    ["permessage-deflate; =", {}, null],
    ['permessage-deflate; server_max_window_bits="10', {}, null],
  ];
  for (const [offer, options, expected] of cases) {
    assert.equal(
      negotiateDeflate(offer, options)?.response ?? null,
      expected,
      `${offer} ${JSON.stringify(options)}`,
    );
  }
});

const PARAMS = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

Deno.test("MessageDeflate round-trips messages, strips the tail, and keeps its context between them", async () => {
  const sender = new MessageDeflate(PARAMS);
  const receiver = new MessageDeflate(PARAMS);
  try {
    const message = new TextEncoder().encode("the same words again and again, ".repeat(20));
    const first = await sender.compress(message);
    const second = await sender.compress(message);
    assert.ok(first.length < message.length / 4);
    assert.ok(second.length < first.length, "the second refers back to the first (context takeover)");
    assert.notDeepEqual([...first.subarray(-4)], [0, 0, 0xff, 0xff]);
    assert.deepEqual(await receiver.decompress(first, 1 << 20), message);
    assert.deepEqual(await receiver.decompress(second, 1 << 20), message);
  } finally {
    sender.close();
    receiver.close();
  }
});

Deno.test("MessageDeflate without context takeover compresses each message alone", async () => {
  const params = { ...PARAMS, serverNoContextTakeover: true };
  const sender = new MessageDeflate(params);
  try {
    const message = new TextEncoder().encode("hello hello hello hello hello");
    const a = await sender.compress(message);
    const b = await sender.compress(message);
    assert.deepEqual(a, b);
    // A fresh raw inflater reads each one alone.
    for (const m of [a, b]) {
      const out = zlib.inflateRawSync(new Uint8Array([...m, 0, 0, 0xff, 0xff]), {
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      });
      assert.deepEqual(new Uint8Array(out), message);
    }
  } finally {
    sender.close();
  }
});

Deno.test("MessageDeflate stops inflating a bomb at the limit with 1009, and refuses bad data with 1007", async () => {
  const bomb = zlib.deflateRawSync(new Uint8Array(10 * 1024 * 1024), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  assert.ok(bomb.length < 20_000);
  const receiver = new MessageDeflate(PARAMS);
  await assert.rejects(
    receiver.decompress(new Uint8Array(bomb.subarray(0, bomb.length - 4)), 1024 * 1024),
    (e) => e instanceof WebSocketProtocolError && e.code === 1009,
  );
  receiver.close();
  const other = new MessageDeflate(PARAMS);
  await assert.rejects(
    other.decompress(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 1024),
    (e) => e instanceof WebSocketProtocolError && e.code === 1007,
  );
  other.close();
});
