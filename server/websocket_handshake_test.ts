// The opening handshake decided from Requests (RFC 6455 §4.2): what is accepted, what is refused with which
// status, and what is agreed. No permissions needed.
import assert from "node:assert/strict";
import { acceptKey, decideHandshake, type HandshakeOptions } from "./websocket_handshake.ts";

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const GOOD: Record<string, string> = {
  host: "example.com",
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-key": KEY,
  "sec-websocket-version": "13",
};

function decide(headers: Record<string, string | null>, options: HandshakeOptions = {}, method = "GET") {
  const h = new Headers();
  for (const [k, v] of Object.entries({ ...GOOD, ...headers })) if (v !== null) h.set(k, v);
  return decideHandshake(new Request("http://example.com/chat", { method, headers: h }), options);
}

function status(headers: Record<string, string | null>, options: HandshakeOptions = {}, method = "GET") {
  const d = decide(headers, options, method);
  return d.ok ? 101 : d.response.status;
}

Deno.test("acceptKey() computes RFC 6455's own example", () => {
  assert.equal(acceptKey(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("decideHandshake() accepts a well-formed request, tokens in any case and in lists", () => {
  const d = decide({});
  assert.ok(d.ok);
  assert.equal(d.headers.get("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  assert.equal(d.headers.get("upgrade"), "websocket");
  assert.equal(status({ upgrade: "WebSocket", connection: "keep-alive, Upgrade" }), 101);
});

Deno.test("decideHandshake() answers 426 with Sec-WebSocket-Version: 13 to another version or no upgrade", () => {
  for (const version of ["8", "12", "14", "", null, "13, 8"]) {
    const d = decide({ "sec-websocket-version": version });
    assert.ok(!d.ok, `version ${version}`);
    assert.equal(d.response.status, 426);
    assert.equal(d.response.headers.get("sec-websocket-version"), "13");
  }
  const noUpgrade: Record<string, string | null>[] = [
    { upgrade: null },
    { upgrade: "h2c" },
    { connection: "keep-alive" },
    { connection: null },
  ];
  for (const h of noUpgrade) {
    const d = decide(h);
    assert.ok(!d.ok);
    assert.equal(d.response.status, 426);
    assert.equal(d.response.headers.get("upgrade"), "websocket");
  }
});

Deno.test("decideHandshake() answers 400 to a key that is not 16 bytes of base64, a body or another method", () => {
  for (
    const key of [
      null,
      "",
      "abc",
      "dGhlIHNhbXBsZSBub25jZQ",
      "dGhlIHNhbXBsZSBub25jZR==",
      "AAAAAAAAAAAAAAAAAAAAAAA=",
      `${KEY}, ${KEY}`,
      "dGhlIHNhbXBsZSBub25j!Q==",
    ]
  ) {
    assert.equal(status({ "sec-websocket-key": key }), 400, `key ${key}`);
  }
  assert.equal(status({ "content-length": "5" }), 400);
  assert.equal(status({ "transfer-encoding": "chunked" }), 400);
  assert.equal(status({ "content-length": "0" }), 101);
  assert.equal(status({}, {}, "POST"), 400);
});

Deno.test("decideHandshake() refuses a cross-origin browser with 403, and trusts what it is told to", () => {
  assert.equal(status({ origin: "http://example.com" }), 101);
  assert.equal(status({ origin: "https://evil.example" }), 403);
  assert.equal(status({ origin: "null" }), 403);
  assert.equal(status({ "sec-fetch-site": "same-origin", origin: "http://example.com" }), 101);
  assert.equal(status({ "sec-fetch-site": "cross-site", origin: "https://evil.example" }), 403);
  assert.equal(status({ "sec-fetch-site": "same-site", origin: "https://a.example.com" }), 403);
  assert.equal(status({ origin: "https://app.example" }, { trustedOrigins: ["https://app.example"] }), 101);
  assert.equal(status({ origin: "https://evil.example" }, { trustedOrigins: "*" }), 101);
  assert.equal(status({}), 101, "no Origin: not a browser");
  assert.throws(() => decide({}, { trustedOrigins: ["app.example"] }), TypeError);
});

Deno.test("decideHandshake() echoes the handler's subprotocol only when the client offered it", () => {
  const d = decide({ "sec-websocket-protocol": "v1.chat, v2.chat" }, { protocol: "v2.chat" });
  assert.ok(d.ok);
  assert.equal(d.protocol, "v2.chat");
  assert.equal(d.headers.get("sec-websocket-protocol"), "v2.chat");
  const none = decide({ "sec-websocket-protocol": "v1.chat" }, { protocol: "v2.chat" });
  assert.ok(none.ok);
  assert.equal(none.protocol, "");
  assert.equal(none.headers.get("sec-websocket-protocol"), null);
});

Deno.test("decideHandshake() agrees permessage-deflate when offered, unless compress is false", () => {
  const offer = { "sec-websocket-extensions": "permessage-deflate; client_max_window_bits" };
  const d = decide(offer);
  assert.ok(d.ok);
  assert.equal(d.extensions, "permessage-deflate");
  assert.equal(d.headers.get("sec-websocket-extensions"), "permessage-deflate");
  const off = decide(offer, { compress: false });
  assert.ok(off.ok);
  assert.equal(off.extensions, "");
  assert.equal(off.deflate, null);
});
