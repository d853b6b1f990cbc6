// Uploading 200 MiB must add less than 16 MiB to the server's memory. The server runs in its own process
// (tests/fixtures/upload_server.ts) and the body is generated chunk by chunk, never held whole. The upload
// is read into one reused buffer (a BYOB read of the engine's byte stream); what it still adds is mostly V8
// optimizing the upload path for the first time and its young generation growing, not the bytes.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";

const UPLOAD_BYTES = 200 * 1024 * 1024;
const MAX_GROWTH_BYTES = 16 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
const BOUNDARY = "----PierMemoryTest0123456789";
const MiB = 1024 * 1024;

/** A multipart body with one 200 MiB file, produced on demand; `digest()` is its SHA-256 once sent. */
function generatedUpload(): { stream: ReadableStream<Uint8Array>; digest: () => string } {
  const enc = new TextEncoder();
  const head = enc.encode(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nbig one\r\n` +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n` +
      "Content-Type: application/octet-stream\r\n\r\n",
  );
  const tail = enc.encode(`\r\n--${BOUNDARY}--\r\n`);
  const pattern = new Uint8Array(CHUNK_BYTES);
  crypto.getRandomValues(pattern.subarray(0, 65536));
  const hash = createHash("sha256");
  let sent = 0;
  let headSent = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!headSent) {
        headSent = true;
        controller.enqueue(head);
      } else if (sent < UPLOAD_BYTES) {
        const chunk = pattern.slice(0, Math.min(CHUNK_BYTES, UPLOAD_BYTES - sent));
        chunk[0] = sent / CHUNK_BYTES; // vary the chunks a little so a misplaced chunk changes the hash
        hash.update(chunk);
        sent += chunk.length;
        controller.enqueue(chunk);
      } else {
        controller.enqueue(tail);
        controller.close();
      }
    },
  }, { highWaterMark: 0 });
  return { stream, digest: () => hash.digest("hex") };
}

async function readPort(stdout: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited before listening: ${text}`);
    text += value;
  }
  reader.releaseLock();
  return JSON.parse(text.slice(0, text.indexOf("\n"))).port;
}

Deno.test({
  name: "readMultipart() streams a 200 MiB upload to disk adding under 16 MiB to the server's RSS",
  sanitizeResources: false, // the server's stdout stays open until it exits, which the finally awaits
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pier_upload_mem_" });
    const server = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${dir}`,
        `--allow-write=${dir}`,
        fileURLToPath(new URL("../fixtures/upload_server.ts", import.meta.url)),
        dir,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const port = await readPort(server.stdout);
      const base = `http://127.0.0.1:${port}`;
      const contentType = `multipart/form-data; boundary=${BOUNDARY}`;

      // Warm up: code compiled, buffers and pools allocated, so the baseline is the server at work.
      const small = new TextEncoder().encode(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="w.bin"\r\n\r\n` +
          `${"w".repeat(1024 * 1024)}\r\n--${BOUNDARY}--\r\n`,
      );
      const warm = await fetch(`${base}/upload`, {
        method: "POST",
        headers: { "content-type": contentType },
        body: small,
      });
      assert.equal(warm.status, 200, await warm.clone().text());
      for (const f of (await warm.json()).files) await Deno.remove(f.path);
      const before = (await (await fetch(`${base}/rss`)).json()).rss as number;

      const upload = generatedUpload();
      const started = performance.now();
      const res = await fetch(`${base}/upload`, {
        method: "POST",
        headers: { "content-type": contentType },
        body: upload.stream,
      });
      const took = performance.now() - started;
      assert.equal(res.status, 200, await res.clone().text());
      const report = await res.json();
      const growth = report.peakRss - before;
      console.log(
        `200 MiB upload in ${(took / 1000).toFixed(2)} s: server RSS before ${
          (before / MiB).toFixed(1)
        } MiB, ` +
          `peak ${(report.peakRss / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`,
      );
      assert.equal(report.files.length, 1);
      assert.equal(report.files[0].size, UPLOAD_BYTES);
      assert.equal(report.files[0].sha256, upload.digest());
      assert.equal((await Deno.stat(report.files[0].path)).size, UPLOAD_BYTES);
      assert.ok(growth < MAX_GROWTH_BYTES, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    } finally {
      server.kill("SIGTERM");
      await server.stdout.cancel().catch(() => {});
      await server.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
