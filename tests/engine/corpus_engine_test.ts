// The shared HTTP corpus against the engine through a real socket: every category that concerns the
// HTTP/1.1 layer, in --strict mode, with a fixture app shaped as the corpus expects. Path traversal and
// the site's dynamic routes belong to the static-files and site tests.
import assert from "node:assert/strict";
import { serve } from "../../mod.ts";
import { corpusApp } from "../fixtures/corpus_app.ts";

const RUNNER = new URL("../../../shared/http-corpus/run_corpus.py", import.meta.url).pathname;
const ENGINE_CATEGORIES = [
  "valid",
  "keepalive-pipelining",
  "request-line",
  "http-version",
  "header-syntax",
  "host",
  "content-length",
  "chunked",
  "smuggling",
  "limits",
  "methods",
];

Deno.test({
  name: "the engine passes the corpus's protocol categories in --strict mode over a real socket",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await Deno.stat(RUNNER).catch(() => {
      throw new Error(`corpus runner not found at ${RUNNER}: shared/ must sit beside the repository`);
    });
    const errors: string[] = [];
    const server = serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      // The corpus's keep-alive cases wait for its 3 s read timeout; the server must outlast it.
      idleTimeoutMs: 10_000,
    }, corpusApp);
    const originalError = console.error;
    console.error = (...args: unknown[]) => errors.push(args.map(String).join(" "));
    try {
      for (const category of ENGINE_CATEGORIES) {
        const { code, stdout, stderr } = await new Deno.Command("python3", {
          args: [
            RUNNER,
            "--port",
            String(server.addr.port),
            "--jobs",
            "8",
            "--strict",
            "--category",
            category,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
        assert.equal(code, 0, `corpus category ${category} failed:\n${out}`);
        assert.match(out, /^\d+ passed, 0 failed$/m);
      }
    } finally {
      console.error = originalError;
      await server.shutdown();
    }
    // Hostile input is answered, never logged as a server failure (only 5xx other than 501/505 would be).
    assert.deepEqual(errors.filter((e) => !e.includes("protocol error 5")), []);
  },
});
