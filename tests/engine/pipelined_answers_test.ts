// Pipelined answers are never held back: whenever the connection is about to wait (for a body, a handler or
// the client), the answers it has ready are written first, and a finished answer always goes out before any
// close that a later request causes. Timing is asserted with a generous bound (1 s), not benchmarked.
import assert from "node:assert/strict";
import type { Handler } from "../../server/types.ts";
import { complete, RawConnection, start } from "../fixtures/raw_http.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** Generous: the rule is "at once" (well under 10 ms on loopback); CI machines are slow and shared. */
const PROMPTLY_MS = 1000;

const post = (path: string, declared: number, body: string) =>
  `POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Length: ${declared}\r\n\r\n${body}`;
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;

/** Answers with the path and the length of the body it read. */
const echoLength: Handler = async (req) =>
  new Response(`${new URL(req.url).pathname} read ${(await req.arrayBuffer()).byteLength}`);

Deno.test({
  name: "an answer is written while the next pipelined request's body is still arriving",
  ...opts,
  async fn() {
    const s = start(echoLength);
    const c = await RawConnection.open(s.addr.port);
    try {
      // /a is whole; /b declares 100 bytes and sends 10.
      await c.send(post("/a", 5, "hello") + post("/b", 100, "0123456789"));
      await c.waitFor((t) => complete(t).length === 1, PROMPTLY_MS);
      assert.equal(complete(c.text)[0].body, "/a read 5");
      // The rest of /b's body arrives later: /b is answered on the same connection.
      await c.send("x".repeat(90));
      await c.waitFor((t) => complete(t).length === 2, PROMPTLY_MS);
      assert.equal(complete(c.text)[1].body, "/b read 100");
      assert.equal(c.closed, false);
    } finally {
      await c.close();
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "a finished answer reaches its client before a later request's body timeout closes the connection",
  ...opts,
  async fn() {
    // The site's case: a valid POST /contact was stored and answered 303, then the next pipelined request's
    // body never came; the client must still get its 303 before the close, or it may post again.
    const s = start(async (req) => {
      await req.arrayBuffer();
      return new Response(null, { status: 303, headers: { location: "/thanks" } });
    }, { bodyTimeoutMs: 1000 });
    const c = await RawConnection.open(s.addr.port);
    try {
      await c.send(post("/contact", 5, "a=b&c") + post("/contact", 100, "partial"));
      await c.waitFor((_, closed) => closed, 5000);
      const got = complete(c.text);
      assert.equal(got.length, 1, c.text);
      assert.equal(got[0].status, 303);
      assert.match(got[0].head, /\r\nlocation: \/thanks/);
    } finally {
      await c.close();
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "a pipelined GET /fast is answered at once while GET /slow behind it waits 2 s in its handler",
  ...opts,
  async fn() {
    const s = start(async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/slow") await new Promise((r) => setTimeout(r, 2000));
      return new Response(path);
    });
    const c = await RawConnection.open(s.addr.port);
    try {
      await c.send(get("/fast") + get("/slow"));
      const fastAt = await c.waitFor((t) => complete(t).length >= 1, PROMPTLY_MS);
      assert.equal(complete(c.text)[0].body, "/fast");
      const slowAt = await c.waitFor((t) => complete(t).length === 2, 5000);
      assert.equal(complete(c.text)[1].body, "/slow");
      assert.ok(slowAt - fastAt > 1500, `/slow at ${slowAt} ms, /fast at ${fastAt} ms`);
    } finally {
      await c.close();
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "answers go out before the server drains a body its handler left unread",
  ...opts,
  async fn() {
    // /b's handler answers without reading its body, most of which has not arrived: the server drains it
    // to reuse the connection, and writes both answers before waiting for it.
    const s = start((req) => new Response(new URL(req.url).pathname));
    const c = await RawConnection.open(s.addr.port);
    try {
      await c.send(get("/a") + post("/b", 1000, "0123456789"));
      await c.waitFor((t) => complete(t).length === 2, PROMPTLY_MS);
      assert.deepEqual(complete(c.text).map((a) => a.body), ["/a", "/b"]);
      await c.send("x".repeat(990) + get("/c"));
      await c.waitFor((t) => complete(t).length === 3, PROMPTLY_MS);
      assert.equal(complete(c.text)[2].body, "/c");
    } finally {
      await c.close();
      await s.shutdown();
    }
  },
});

Deno.test({
  name: "a finished answer goes out before the close that a later request's bad framing or limit causes",
  ...opts,
  async fn() {
    const s = start(echoLength, { maxBodyBytes: 1000 });
    try {
      // A chunked body whose bad chunk arrives after a pause.
      let c = await RawConnection.open(s.addr.port);
      try {
        await c.send(
          post("/a", 2, "ok") + "POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        await c.waitFor((t) => complete(t).length === 1, PROMPTLY_MS);
        await c.send("zz\r\n");
        await c.waitFor((_, closed) => closed, PROMPTLY_MS);
        assert.deepEqual(complete(c.text).map((a) => a.status), [200, 400]);
      } finally {
        await c.close();
      }
      // A declared length over the limit, in the same packet as a finished request.
      c = await RawConnection.open(s.addr.port);
      try {
        await c.send(post("/a", 2, "ok") + post("/b", 5000, ""));
        await c.waitFor((_, closed) => closed, PROMPTLY_MS);
        assert.deepEqual(complete(c.text).map((a) => a.status), [200, 413]);
        assert.equal(complete(c.text)[0].body, "/a read 2");
      } finally {
        await c.close();
      }
      // A head that never completes: the answer before it was written long before the 408.
      const slow = start(echoLength, { headerTimeoutMs: 1000 });
      c = await RawConnection.open(slow.addr.port);
      try {
        await c.send(get("/a") + "GET /b HTTP/1.1\r\nHos");
        await c.waitFor((t) => complete(t).length === 1, PROMPTLY_MS);
        await c.waitFor((_, closed) => closed, 5000);
        assert.deepEqual(complete(c.text).map((a) => a.status), [200, 408]);
      } finally {
        await c.close();
        await slow.shutdown();
      }
    } finally {
      await s.shutdown();
    }
  },
});
