// One server of the conformance harness, as a child process: tests/fixtures/corpus_app.ts on Pier (`pier`)
// or on Deno.serve (`deno`), each with its default options, on 127.0.0.1 and a port the system picks.
// Prints "ready <port>" once listening; runs until killed or until its stdin closes (the harness is gone).
import { serve } from "../../mod.ts";
import { corpusApp } from "../fixtures/corpus_app.ts";

const ready = (addr: Deno.NetAddr) => console.log(`ready ${addr.port}`);
const [kind] = Deno.args;
if (kind === "pier") serve({ hostname: "127.0.0.1", port: 0, onListen: ready }, corpusApp);
else if (kind === "deno") Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ready }, corpusApp);
else {
  console.error("usage: serve_app.ts pier|deno");
  Deno.exit(2);
}
// The harness holds our stdin open; if it dies without stopping us (SIGKILL), the pipe closes and we follow.
Deno.stdin.readable.pipeTo(new WritableStream()).finally(() => Deno.exit(0));
