// Uploads over a real socket to Pier's serve(): 100-continue refused for a declared size over the limit,
// granted within it, and a client that hangs up mid-file leaves nothing on disk.
import assert from "node:assert/strict";
import { serve } from "../../mod.ts";
import { readMultipart } from "../../server/body.ts";
import { errorResponse } from "../../server/errors.ts";

const BOUNDARY = "----PierSocketTest";
const LIMIT = 1024 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Start a server whose one route reads a multipart upload into `dir`; `settled` counts finished reads. */
function uploadServer(dir: string) {
  const done: Array<() => void> = [];
  let settled = 0;
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    try {
      const { fields, files } = await readMultipart(request, { uploadDir: dir, maxTotalBytes: LIMIT });
      return Response.json({ fields: Object.fromEntries(fields), sizes: files.map((f) => f.size) });
    } catch (err) {
      return errorResponse(err, request);
    } finally {
      settled++;
      done.splice(0).forEach((resolve) => resolve());
    }
  });
  return {
    server,
    /** Resolves once `n` uploads have finished (well or badly) on the server. */
    async settledCount(n: number): Promise<void> {
      while (settled < n) await new Promise<void>((resolve) => done.push(resolve));
    },
  };
}

async function readUntil(conn: Deno.Conn, done: (text: string) => boolean): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  while (!done(text)) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += dec.decode(buf.subarray(0, n));
  }
  return text;
}

const head = (length: number, extra = "") =>
  enc.encode(
    `POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
      `Content-Length: ${length}\r\n${extra}\r\n`,
  );

const multipart = enc.encode(
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\nhi\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n` +
    `${"x".repeat(1000)}\r\n--${BOUNDARY}--\r\n`,
);

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names;
}

Deno.test("readMultipart() on serve(): a declared size over the limit gets 413 and never a 100 Continue", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier_upload_sock_" });
  const { server } = uploadServer(dir);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      await conn.write(head(LIMIT + 1, "Expect: 100-continue\r\n"));
      const reply = await readUntil(conn, (t) => t.includes("\r\n\r\n"));
      assert.match(reply, /^HTTP\/1\.1 413 /);
    } finally {
      conn.close();
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readMultipart() on serve(): a declared size within the limit gets 100 Continue, then the upload", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier_upload_sock_" });
  const { server } = uploadServer(dir);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      await conn.write(head(multipart.length, "Expect: 100-continue\r\nConnection: close\r\n"));
      const interim = await readUntil(conn, (t) => t.includes("\r\n\r\n"));
      assert.match(interim, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
      await conn.write(multipart);
      const reply = await readUntil(conn, () => false); // Connection: close: read to the end
      assert.match(reply, /^HTTP\/1\.1 200 /);
      assert.ok(reply.includes('{"fields":{"title":"hi"},"sizes":[1000]}'), reply);
      assert.equal((await listDir(dir)).length, 1);
    } finally {
      conn.close();
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readMultipart() on serve(): a client that hangs up mid-file leaves nothing on disk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier_upload_sock_" });
  const { server, settledCount } = uploadServer(dir);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    // Promise 100 000 bytes, send the start of a file part, then go away.
    await conn.write(head(100_000));
    await conn.write(multipart.subarray(0, 600));
    // Wait until the file exists on the server, so the hang-up really lands mid-file.
    while ((await listDir(dir)).length === 0) await new Promise((r) => setTimeout(r, 5));
    conn.close();
    await settledCount(1);
    assert.deepEqual(await listDir(dir), []);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
