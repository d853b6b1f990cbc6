// The WebSocket echo server of the `ws-*` benchmark rows: Pier's upgradeWebSocket or Deno.serve's
// Deno.upgradeWebSocket, each echoing every message as it came. Prints "ready <port>".
//   deno run --allow-net=127.0.0.1 bench/servers/websocket_echo.ts pier|deno
import { serve, upgradeWebSocket } from "../../mod.ts";

const kind = Deno.args[0];
const onListen = (addr: Deno.NetAddr) => console.log(`ready ${addr.port}`);

if (kind === "pier") {
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen }, (request) => {
    const { socket, response } = upgradeWebSocket(request, { idleTimeout: 0 });
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => socket.send(e.data);
    return response;
  });
  Deno.addSignalListener("SIGTERM", () => server.shutdown().then(() => Deno.exit(0)));
} else if (kind === "deno") {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: 0 });
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => socket.send(e.data);
    return response;
  });
  Deno.addSignalListener("SIGTERM", () => server.shutdown().then(() => Deno.exit(0)));
} else {
  console.error("usage: websocket_echo.ts pier|deno");
  Deno.exit(2);
}
