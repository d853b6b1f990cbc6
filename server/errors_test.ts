import assert from "node:assert/strict";
import { errorResponse, HttpError, statusText } from "./errors.ts";
import { captureErrors } from "../tests/fixtures/console.ts";

const CASES: { why: string; error: unknown; status: number; body: string; logged: boolean }[] = [
  {
    why: "HttpError with a message",
    error: new HttpError(404, "No such page"),
    status: 404,
    body: "No such page",
    logged: false,
  },
  {
    why: "HttpError without a message",
    error: new HttpError(403),
    status: 403,
    body: "Forbidden",
    logged: false,
  },
  {
    why: "5xx HttpError hides its message by default",
    error: new HttpError(503, "db at 10.0.0.5 is down"),
    status: 503,
    body: "Service Unavailable",
    logged: true,
  },
  {
    why: "5xx HttpError shown when exposed",
    error: new HttpError(503, "Back at noon", { expose: true }),
    status: 503,
    body: "Back at noon",
    logged: true,
  },
  {
    why: "4xx HttpError hidden when not exposed",
    error: new HttpError(400, "parser state 17", { expose: false }),
    status: 400,
    body: "Bad Request",
    logged: false,
  },
  {
    why: "plain Error is a bare 500",
    error: new Error("secret stack"),
    status: 500,
    body: "Internal Server Error",
    logged: true,
  },
  {
    why: "thrown string is a bare 500",
    error: "oops",
    status: 500,
    body: "Internal Server Error",
    logged: true,
  },
  {
    why: "an Error that only looks like an HttpError is a bare 500",
    error: Object.assign(new Error("fake"), { status: 200, expose: true }),
    status: 500,
    body: "Internal Server Error",
    logged: true,
  },
];

Deno.test("errorResponse() maps thrown values to responses without internals (table)", async (t) => {
  for (const c of CASES) {
    await t.step(c.why, async () => {
      let res!: Response;
      const logged = await captureErrors(() => {
        res = errorResponse(c.error, new Request("http://localhost/x", { method: "POST" }));
        return Promise.resolve();
      });
      assert.equal(res.status, c.status);
      assert.equal(await res.text(), c.body);
      assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
      assert.equal(logged.length, c.logged ? 1 : 0);
      if (c.logged) {
        assert.match(String(logged[0][0]), /POST http:\/\/localhost\/x/);
        assert.equal(logged[0][1], c.error, "the log carries the error itself, so it says why");
      }
    });
  }
});

Deno.test("HttpError carries headers to the response", () => {
  const res = errorResponse(new HttpError(429, "Slow down", { headers: { "retry-after": "10" } }));
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("retry-after"), "10");
});

Deno.test("HttpError refuses statuses that are not errors", () => {
  for (const status of [200, 302, 399, 600, 404.5, NaN]) {
    assert.throws(() => new HttpError(status), RangeError, String(status));
  }
});

Deno.test("HttpError keeps its cause and is an Error", () => {
  const cause = new Error("root");
  const err = new HttpError(502, undefined, { cause });
  assert.ok(err instanceof Error);
  assert.equal(err.name, "HttpError");
  assert.equal(err.cause, cause);
  assert.equal(err.message, "Bad Gateway");
  assert.equal(err.expose, false);
  assert.equal(statusText(599), "Error");
});
