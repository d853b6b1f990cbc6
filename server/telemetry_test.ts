// telemetry.ts's pure parts: the span attributes Deno.serve takes from a request, and a string body's size
// in UTF-8 counted without encoding it. No permission at all: without OTEL_DENO nothing is instrumented.
import assert from "node:assert/strict";
import { telemetryEnabled, tracer, withSpan } from "./otel.ts";
import { requestAttributes, utf8Length } from "./telemetry.ts";

/** A test that proves its subject touches nothing: no permission is granted. */
function pure(name: string, fn: () => void | Promise<void>) {
  Deno.test({ name, permissions: "none", fn });
}

pure("utf8Length() agrees with TextEncoder, surrogates and lone halves included", () => {
  const encoder = new TextEncoder();
  const samples = [
    "",
    "hello",
    "café",
    "Ελληνικά",
    "日本語",
    "a😀b",
    "\ud83d",
    "x\udc00y",
    "\ud83d\ud83d",
    "€\u0080\u07ff\u0800\uffff",
  ];
  for (const text of samples) {
    assert.equal(utf8Length(text), encoder.encode(text).length, JSON.stringify(text));
  }
});

pure("requestAttributes() takes the method and the URL apart as Deno.serve does", () => {
  assert.deepEqual(
    requestAttributes(new Request("https://example.com:8443/a/caf%C3%A9?q=%20x&r", { method: "PUT" })),
    {
      "http.request.method": "PUT",
      "url.full": "https://example.com:8443/a/caf%C3%A9?q=%20x&r",
      "url.scheme": "https",
      "url.path": "/a/caf%C3%A9",
      "url.query": "q=%20x&r",
    },
  );
  assert.equal(requestAttributes(new Request("http://h/"))["url.query"], "");
});

pure("with OTEL_DENO unset, telemetry is off and withSpan() only runs the call", async () => {
  assert.equal(telemetryEnabled, false);
  assert.equal(tracer("pier"), null);
  assert.equal(await withSpan("op", {}, () => Promise.resolve(42)), 42);
  await assert.rejects(withSpan("op", {}, () => Promise.reject(new Error("no"))), /no/);
});
