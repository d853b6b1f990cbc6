// The frame-level case table (tests/websocket_cases/frames.jsonl) against Pier's echo server: raw bytes over a
// socket, the server's frames and close code checked by the runner in tests/fixtures/websocket_cases.ts.
import { serve, upgradeWebSocket } from "../../mod.ts";
import { loadCases, runCase } from "../fixtures/websocket_cases.ts";

/** The limits the case table assumes (tests/websocket_cases/README.md). */
export const CASE_SERVER_OPTIONS = {
  maxFrameBytes: 100_000,
  maxMessageBytes: 200_000,
  closeTimeoutMs: 1_000,
  idleTimeout: 0,
};

Deno.test("WebSocket frame cases: every case of tests/websocket_cases/frames.jsonl passes", async (t) => {
  const server = serve({ port: 0, onListen() {} }, (request) => {
    if (new URL(request.url).pathname !== "/echo") return new Response("not found", { status: 404 });
    const { socket, response } = upgradeWebSocket(request, CASE_SERVER_OPTIONS);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => socket.send(e.data);
    return response;
  });
  const failures: string[] = [];
  try {
    for (const c of await loadCases()) {
      await t.step({
        name: c.id,
        fn: async () => {
          const problems = await runCase({ hostname: "127.0.0.1", port: server.addr.port, path: "/echo" }, c);
          if (problems.length > 0) {
            failures.push(c.id);
            throw new Error(`${c.id} [${c.category}, ${c.rfc}]: ${problems.join("; ")}`);
          }
        },
      });
    }
  } finally {
    await server.shutdown();
  }
  if (failures.length > 0) throw new Error(`${failures.length} cases failed: ${failures.join(", ")}`);
});
