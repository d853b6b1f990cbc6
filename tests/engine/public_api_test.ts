// The published surface: the main entry point is the server and the framework; the parser's machinery is
// the low-level "./http1" entry point, so a user of `serve()` never meets parser states or events.
import assert from "node:assert/strict";
import * as pier from "../../mod.ts";

Deno.test("mod.ts exports the server and the framework, not the parser's internals", () => {
  for (const name of ["serve", "Router", "serveStatic", "SERVE_DEFAULTS", "DEFAULT_PARSER_LIMITS"]) {
    assert.ok(name in pier, `${name} is exported`);
  }
  for (const name of ["RequestParser", "NEED_DATA", "PAUSED", "STATES", "ProtocolError"]) {
    assert.ok(!(name in pier), `${name} belongs to the ./http1 entry point`);
  }
});

Deno.test("deno.json publishes the parser as the ./http1 entry point", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assert.deepEqual(config.exports, {
    ".": "./mod.ts",
    "./http1": "./server/http1.ts",
    "./sqlite-session": "./server/sqlite_session_store.ts",
  });
  const http1 = await import(new URL(`../../${config.exports["./http1"]}`, import.meta.url).href);
  for (
    const name of ["RequestParser", "NEED_DATA", "PAUSED", "STATES", "ProtocolError", "DEFAULT_PARSER_LIMITS"]
  ) {
    assert.ok(name in http1, `${name} is in ./http1`);
  }
});

Deno.test("deno.json publishes the SQLite session store as ./sqlite-session, outside mod.ts", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const sqlite = await import(new URL(`../../${config.exports["./sqlite-session"]}`, import.meta.url).href);
  assert.ok("SqliteSessionStore" in sqlite);
  assert.ok(!("SqliteSessionStore" in pier), "importing mod.ts never loads node:sqlite's store");
  assert.ok("MemorySessionStore" in pier);
});
