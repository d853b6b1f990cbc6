// The home page's live reader count over a WebSocket at /live: each open socket is one reader of the page
// (app/readers.ts), and every socket is sent the total, as a decimal number, whenever it changes. It must not
// become a door: the server sends the number and nothing else, the client may send nothing (a message closes
// its socket), the handshake's Origin must be the site's own, an address and the instance hold a bounded
// number of sockets, and a client that does not read is dropped.
import { upgradeWebSocket } from "../mod.ts";
import type { ReaderCount } from "./readers.ts";

/** Where the page's script opens its socket (static/live.js). */
export const LIVE_PATH = "/live";

/**
 * Sockets one client address may hold. The page opens one; a visitor with many tabs, or a school behind one
 * address, stays under it, while one machine cannot inflate the count past it.
 */
export const MAX_SOCKETS_PER_ADDRESS = 32;

/** Sockets one instance holds at most: each costs a connection and a little memory, and the count is a nicety. */
export const MAX_SOCKETS = 10_000;

/**
 * The largest message a client may send, which it never should: any message closes its socket (1008), and a
 * larger one is refused by the frame parser (1009) before it is buffered. A control frame's payload limit.
 */
const MAX_CLIENT_MESSAGE_BYTES = 125;

/**
 * Changes within this long go to the sockets as one message: a hundred readers arriving at once cost each
 * socket one send, not a hundred. Far inside the page's 2 s budget.
 */
const SEND_DELAY_MS = 100;

/**
 * A socket with this much unsent is not reading (a count is a few bytes, so this is hundreds of updates
 * behind): it is closed rather than allowed to grow.
 */
const MAX_UNSENT_BYTES = 4096;

/** Close codes the route sends (RFC 6455 §7.4.1). */
const POLICY_VIOLATION = 1008;

/** The /live route: its handler, and how many sockets it holds. */
export interface Live {
  /**
   * Answer a GET of {@link LIVE_PATH}: the WebSocket handshake, or a refusal.
   *
   * @param request The handshake.
   * @param clientAddr The client's address (the forwarded one behind a trusted proxy), for the per-address cap.
   */
  handle(request: Request, clientAddr: string): Response;
  /** Sockets open now. */
  readonly sockets: number;
}

/**
 * The live reader count's WebSocket route.
 *
 * @param readers The count this instance contributes to and reads.
 * @returns The route.
 *
 * @example
 * ```ts ignore
 * const live = liveReaders(new ReaderCount());
 * router.get(LIVE_PATH, (request, ctx) => live.handle(request, ctx.clientAddr));
 * ```
 */
export function liveReaders(readers: ReaderCount): Live {
  const sockets = new Map<WebSocket, { sent: number }>();
  const perAddress = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | undefined;

  const flush = () => {
    timer = undefined;
    const total = readers.total;
    for (const [socket, state] of sockets) {
      if (socket.readyState !== WebSocket.OPEN || state.sent === total) continue;
      if (socket.bufferedAmount > MAX_UNSENT_BYTES) {
        socket.close(POLICY_VIOLATION, "not reading");
        continue;
      }
      socket.send(String(total));
      state.sent = total;
    }
  };
  readers.subscribe(() => {
    if (timer === undefined && sockets.size > 0) timer = setTimeout(flush, SEND_DELAY_MS);
  });

  const refuse = (status: number, text: string) =>
    new Response(`${text}\n`, {
      status,
      headers: {
        "content-type": "text/plain; charset=utf-8",
        "retry-after": "60",
        "cache-control": "no-store",
      },
    });

  return {
    get sockets() {
      return sockets.size;
    },
    handle(request, address) {
      const held = perAddress.get(address) ?? 0;
      if (held >= MAX_SOCKETS_PER_ADDRESS) return refuse(429, "Too many live connections from this address");
      if (sockets.size >= MAX_SOCKETS) return refuse(503, "Too many live connections");
      // The handshake decides Origin (the site's own only: cross-site WebSocket hijacking), the version and
      // the key; a refusal (403, 426, 400) comes back as the response and no socket opens.
      const { socket, response } = upgradeWebSocket(request, {
        compress: false, // a few bytes per message: a deflate context per socket would cost more than it saves
        maxMessageBytes: MAX_CLIENT_MESSAGE_BYTES,
      });
      if (response.status !== 101) return response;
      // Counted once open: a 101 that is never written (the client left first) opens nothing and closes nothing.
      let leave: (() => void) | null = null;
      socket.onopen = () => {
        const now = (perAddress.get(address) ?? 0) + 1;
        perAddress.set(address, now);
        // Checked again: handshakes that raced past the check above each open.
        if (now > MAX_SOCKETS_PER_ADDRESS || sockets.size >= MAX_SOCKETS) {
          socket.close(POLICY_VIOLATION, "too many live connections");
          return;
        }
        leave = readers.join();
        sockets.set(socket, { sent: readers.total });
        socket.send(String(readers.total));
      };
      // The page sends nothing: whatever arrives is not from it.
      socket.onmessage = () => socket.close(POLICY_VIOLATION, "the client sends nothing");
      socket.onclose = () => {
        sockets.delete(socket);
        leave?.();
        const left = (perAddress.get(address) ?? 1) - 1;
        if (left <= 0) perAddress.delete(address);
        else perAddress.set(address, left);
      };
      return response;
    },
  };
}
