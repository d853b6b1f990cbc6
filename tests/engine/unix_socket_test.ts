// serve({ path }) on a Unix socket, checked in a child process (tests/fixtures/unix_socket_checks.ts) run
// with exactly the permissions a Unix socket needs: Deno 2.9 wants --allow-net=unix:PATH for the exact path
// (no prefix), which the test task's --allow-net=127.0.0.1,localhost cannot name for a temporary folder.
import assert from "node:assert/strict";

const CHECKS = new URL("../fixtures/unix_socket_checks.ts", import.meta.url).pathname;

/** Run one check of unix_socket_checks.ts on a socket in a fresh folder; its assertion, if any, fails here. */
async function check(name: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pier-unix-" });
  const path = `${dir}/pier.sock`;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--allow-net=unix:${path}`,
        `--allow-read=${dir}`,
        `--allow-write=${dir}`,
        "--allow-run=curl,python3",
        CHECKS,
        name,
        path,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const d = new TextDecoder();
    assert.ok(out.success, `${name}:\n${d.decode(out.stdout)}${d.decode(out.stderr)}`);
    assert.match(d.decode(out.stdout), new RegExp(`^${name} ok$`, "m"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "serve({ path }) answers on a Unix socket, tells the handler a Unix peer, and removes the file at shutdown",
  () => check("serves"),
);

Deno.test(
  "removeStaleSocket() removes a socket nobody answers on, and keeps a live one or a plain file",
  () => check("stale"),
);
