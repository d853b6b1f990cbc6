// Ladder step 4: Pier itself, serve() with the same handler.
import { serve } from "../../mod.ts";
serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeoutMs: 600_000,
  onListen: (a) => console.log(`ready ${a.port}`),
}, () => new Response("Hello, World!"));
