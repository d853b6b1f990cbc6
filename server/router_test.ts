// Router unit tests beside the module: the verb shorthands from their table. The shared table of matching
// cases is tests/router_test.ts's.
import assert from "node:assert/strict";
import { Router, ROUTER_VERBS } from "./router.ts";
import type { ServeHandlerInfo } from "./types.ts";

const info: ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1234 },
  completed: Promise.resolve(),
};

Deno.test("Router has a shorthand per verb of ROUTER_VERBS, each adding a route for its method", async () => {
  assert.deepEqual([...ROUTER_VERBS], ["get", "post", "put", "delete", "patch"]);
  const router = new Router();
  for (const verb of ROUTER_VERBS) {
    assert.equal(router[verb]("/x", (req) => new Response(req.method)), router, `${verb} chains`);
  }
  for (const verb of ROUTER_VERBS) {
    const method = verb.toUpperCase();
    const res = await router.fetch(new Request("http://localhost/x", { method }), info);
    assert.equal(await res.text(), method);
  }
  assert.deepEqual(router.allowed("/x"), ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
});
