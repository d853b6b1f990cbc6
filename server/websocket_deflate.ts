// permessage-deflate (RFC 7692): the negotiation (a pure function of the client's offer and the server's
// options) and the compression of whole messages with node:zlib's raw deflate and Z_SYNC_FLUSH. It owns the
// tail handling, context takeover and the inflated-size cap; it must never touch a socket or `Deno`.
import zlib from "node:zlib";
import { CloseCode, WebSocketProtocolError } from "./websocket_frames.ts";

/**
 * How the server uses permessage-deflate. Every field has a default; `{}` is a good configuration.
 *
 * @example
 * ```ts
 * import type { DeflateOptions } from "./websocket_deflate.ts";
 * const lowMemory: DeflateOptions = { serverNoContextTakeover: true, serverMaxWindowBits: 10 };
 * ```
 */
export interface DeflateOptions {
  /** The server's own messages shorter than this many bytes are sent uncompressed. Default 128. */
  threshold?: number;
  /**
   * Start each of the server's messages with an empty window (RFC 7692 §7.1.1.1): less memory kept
   * between messages, worse compression. Default false (a client's request for it is always honoured).
   */
  serverNoContextTakeover?: boolean;
  /** Ask the client to do the same (§7.1.1.2). Default false. */
  clientNoContextTakeover?: boolean;
  /**
   * The server's LZ77 window, 9 to 15 bits (§7.1.2.1): a smaller one takes less memory per socket.
   * Default 15. (zlib cannot deflate with 8, so an offer asking for 8 is declined.)
   */
  serverMaxWindowBits?: number;
  /** Ask the client for a window of at most this many bits, when it offers to take one (§7.1.2.2). */
  clientMaxWindowBits?: number;
  /** zlib's compression level, 0-9. Default 6 (zlib's own). */
  level?: number;
}

/**
 * The defaults of {@link DeflateOptions}, each with its reason.
 *
 * @example
 * ```ts
 * import { DEFLATE_DEFAULTS } from "./websocket_deflate.ts";
 * console.log(DEFLATE_DEFAULTS.threshold); // 128
 * ```
 */
export const DEFLATE_DEFAULTS: Readonly<{ threshold: number; windowBits: number; level: number }> = Object
  .freeze({
    /**
     * Below 128 bytes deflate saves a few bytes at most (its block and the flush cost about 6) while it
     * costs a zlib round trip per message.
     */
    threshold: 128,
    /** zlib's largest window: the best compression, 32 KiB of history per direction. */
    windowBits: 15,
    /** zlib's default trade between speed and size. */
    level: 6,
  });

/** What was agreed for a connection (RFC 7692 §7.1). */
export interface DeflateParams {
  /** The server resets its compressor after each message. */
  serverNoContextTakeover: boolean;
  /** The client resets its compressor after each message: so does the server's decompressor. */
  clientNoContextTakeover: boolean;
  /** The server's window bits (9-15). */
  serverMaxWindowBits: number;
  /** The client's window bits as agreed (15 when not limited). */
  clientMaxWindowBits: number;
}

/** One parsed offer of the header: the extension's name and its parameters in order. */
interface Offer {
  name: string;
  params: [string, string | null][];
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parse `Sec-WebSocket-Extensions` (RFC 6455 §9.1): offers separated by commas, parameters by
 * semicolons, values as tokens or quoted strings. Null when the header breaks the grammar.
 */
function parseExtensions(header: string): Offer[] | null {
  const offers: Offer[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const token = (): string | null => {
    const from = i;
    while (i < n && !' \t,;="'.includes(header[i])) i++;
    const t = header.slice(from, i);
    return TOKEN.test(t) ? t : null;
  };
  for (;;) {
    skipSpace();
    if (i < n && header[i] === ",") { // empty list elements are allowed (RFC 9110 §5.6.1)
      i++;
      continue;
    }
    if (i >= n) break;
    const name = token();
    if (name === null) return null;
    const offer: Offer = { name: name.toLowerCase(), params: [] };
    skipSpace();
    while (i < n && header[i] === ";") {
      i++;
      skipSpace();
      const key = token();
      if (key === null) return null;
      skipSpace();
      let value: string | null = null;
      if (i < n && header[i] === "=") {
        i++;
        skipSpace();
        if (header[i] === '"') {
          const close = header.indexOf('"', i + 1);
          if (close < 0) return null;
          value = header.slice(i + 1, close);
          i = close + 1;
          // §9.1: a quoted value must still be a token once unquoted.
          if (!TOKEN.test(value)) return null;
        } else {
          value = token();
          if (value === null) return null;
        }
        skipSpace();
      }
      offer.params.push([key.toLowerCase(), value]);
    }
    offers.push(offer);
    skipSpace();
    if (i < n && header[i] !== ",") return null;
  }
  return offers;
}

/** A window-bits value as RFC 7692 §7.1.2 writes it: 8 to 15, decimal, no leading zero. */
function windowBits(value: string | null): number | null {
  return value !== null && /^(?:8|9|1[0-5])$/.test(value) ? Number(value) : null;
}

/**
 * Accept one permessage-deflate offer, or decline it (null) when it has an unknown, repeated or invalid
 * parameter (RFC 7692 §7: the server must then not accept that offer) or asks for what zlib cannot do.
 */
function acceptOffer(
  offer: Offer,
  options: DeflateOptions,
): { params: DeflateParams; response: string } | null {
  const seen = new Set<string>();
  let serverNoContext = options.serverNoContextTakeover ?? false;
  const clientNoContext = options.clientNoContextTakeover ?? false;
  let serverBits = options.serverMaxWindowBits ?? DEFLATE_DEFAULTS.windowBits;
  let clientBits = DEFLATE_DEFAULTS.windowBits;
  let serverBitsAsked = false;
  let clientBitsOffered = false;
  for (const [key, value] of offer.params) {
    if (seen.has(key)) return null;
    seen.add(key);
    switch (key) {
      case "server_no_context_takeover":
        if (value !== null) return null;
        serverNoContext = true;
        break;
      case "client_no_context_takeover":
        if (value !== null) return null;
        break; // the client will reset anyway; nothing changes for us but the response
      case "server_max_window_bits": {
        const bits = windowBits(value);
        if (bits === null) return null;
        serverBitsAsked = true;
        serverBits = Math.min(serverBits, bits);
        break;
      }
      case "client_max_window_bits": {
        if (value !== null) {
          const bits = windowBits(value);
          if (bits === null) return null;
          clientBits = bits;
        }
        clientBitsOffered = true;
        break;
      }
      default:
        return null;
    }
  }
  // zlib's raw deflate makes a window of 8 into 9: a client limited to 8 could not inflate it.
  if (serverBits < 9) return null;
  let response = "permessage-deflate";
  if (serverNoContext) response += "; server_no_context_takeover";
  const clientNoContextAgreed = clientNoContext || seen.has("client_no_context_takeover");
  if (clientNoContextAgreed) response += "; client_no_context_takeover";
  if (serverBitsAsked || serverBits < DEFLATE_DEFAULTS.windowBits) {
    response += `; server_max_window_bits=${serverBits}`;
  }
  if (clientBitsOffered && options.clientMaxWindowBits !== undefined) {
    clientBits = Math.min(clientBits, Math.max(8, Math.min(15, options.clientMaxWindowBits)));
    response += `; client_max_window_bits=${clientBits}`;
  }
  return {
    params: {
      serverNoContextTakeover: serverNoContext,
      clientNoContextTakeover: clientNoContextAgreed,
      serverMaxWindowBits: serverBits,
      clientMaxWindowBits: clientBits,
    },
    response,
  };
}

/**
 * Choose the first permessage-deflate offer of a client's `Sec-WebSocket-Extensions` that the server can
 * accept (RFC 7692 §5, §7), and the header value to answer with.
 *
 * @param header The request's `Sec-WebSocket-Extensions`, or null.
 * @param options The server's wishes.
 * @returns The agreed parameters and the response header value, or null when nothing is agreed.
 *
 * @example
 * ```ts
 * import { negotiateDeflate } from "./websocket_deflate.ts";
 * const agreed = negotiateDeflate("permessage-deflate; client_max_window_bits", {});
 * console.log(agreed?.response); // "permessage-deflate"
 * ```
 */
export function negotiateDeflate(
  header: string | null,
  options: DeflateOptions = {},
): { params: DeflateParams; response: string } | null {
  if (header === null || header === "") return null;
  const offers = parseExtensions(header);
  if (offers === null) return null;
  for (const offer of offers) {
    if (offer.name !== "permessage-deflate") continue;
    const accepted = acceptOffer(offer, options);
    if (accepted !== null) return accepted;
  }
  return null;
}

/** The end of every sync-flushed deflate block: stripped when sending, added back when receiving (§7.2.1). */
const TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

/** Output over the cap: the inflate is stopped at once (a bomb is not inflated to its end). */
class OverLimit extends Error {}

/** One zlib stream used for one message at a time, and what it has produced for the current one. */
class ZlibChannel {
  readonly stream: zlib.DeflateRaw | zlib.InflateRaw;
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  /** Most output bytes for the current operation; more and it fails. */
  #cap = Infinity;
  #settle: ((error: unknown) => void) | null = null;
  constructor(stream: zlib.DeflateRaw | zlib.InflateRaw) {
    this.stream = stream;
    stream.on("data", (chunk: Uint8Array) => {
      this.#bytes += chunk.length;
      if (this.#bytes > this.#cap) this.#settle?.(new OverLimit());
      else this.#chunks.push(chunk);
    });
    stream.on("error", (e: unknown) => this.#settle?.(e));
  }

  /** Write `parts`, flush with Z_SYNC_FLUSH, and give back everything produced (or fail). */
  run(parts: Uint8Array[], cap: number): Promise<Uint8Array> {
    this.#chunks = [];
    this.#bytes = 0;
    this.#cap = cap;
    return new Promise((resolve, reject) => {
      const stream = this.stream;
      this.#settle = (error) => {
        this.#settle = null;
        this.#chunks = [];
        stream.destroy(); // unusable now: stop its work
        reject(error);
      };
      for (const part of parts) stream.write(part);
      stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        if (this.#settle === null) return; // failed meanwhile
        this.#settle = null;
        const chunks = this.#chunks;
        this.#chunks = [];
        const out = new Uint8Array(this.#bytes);
        let at = 0;
        for (const c of chunks) {
          out.set(c, at);
          at += c.length;
        }
        resolve(out);
      });
    });
  }
}

/**
 * The compressor and decompressor of one connection (RFC 7692 §7.2), made when first needed: a socket
 * that never sends or receives a compressed message holds no zlib memory. Calls of each direction must
 * not overlap (the socket runs them in message order).
 *
 * @example
 * ```ts
 * import { MessageDeflate } from "./websocket_deflate.ts";
 * const params = {
 *   serverNoContextTakeover: false,
 *   clientNoContextTakeover: false,
 *   serverMaxWindowBits: 15,
 *   clientMaxWindowBits: 15,
 * };
 * const sender = new MessageDeflate(params);
 * const packed = await sender.compress(new TextEncoder().encode("hello hello hello"));
 * const receiver = new MessageDeflate(params);
 * console.log(new TextDecoder().decode(await receiver.decompress(packed, 1024))); // "hello hello hello"
 * sender.close();
 * receiver.close();
 * ```
 */
export class MessageDeflate {
  readonly params: DeflateParams;
  readonly #level: number;
  #deflate: ZlibChannel | null = null;
  #inflate: ZlibChannel | null = null;

  /**
   * @param params What was agreed.
   * @param level zlib's compression level (default 6).
   */
  constructor(params: DeflateParams, level: number = DEFLATE_DEFAULTS.level) {
    this.params = params;
    this.#level = level;
  }

  /**
   * Compress one message: the deflate blocks without their `00 00 ff ff` tail (§7.2.1).
   *
   * @param data The message.
   * @returns The payload to send with RSV1 set.
   */
  async compress(data: Uint8Array): Promise<Uint8Array> {
    const channel = this.#deflate ??= new ZlibChannel(zlib.createDeflateRaw({
      level: this.#level,
      windowBits: this.params.serverMaxWindowBits,
    }));
    const out = await channel.run([data], Infinity);
    if (this.params.serverNoContextTakeover) channel.stream.reset();
    // A sync flush always ends with an empty stored block; a payload without one would be a zlib change.
    const n = out.length;
    if (n >= 4 && out[n - 4] === 0 && out[n - 3] === 0 && out[n - 2] === 0xff && out[n - 1] === 0xff) {
      return out.subarray(0, n - 4);
    }
    return out;
  }

  /**
   * Decompress one message: the payload with the tail added back (§7.2.2), inflated to at most `maxBytes`
   * (a decompression bomb stops there).
   *
   * @param data The payload received (RSV1 set on its first frame).
   * @param maxBytes Most bytes the message may inflate to.
   * @returns The message.
   * @throws {WebSocketProtocolError} 1009 over `maxBytes`, 1007 when the data is not deflate.
   */
  async decompress(data: Uint8Array, maxBytes: number): Promise<Uint8Array> {
    const channel = this.#inflate ??= new ZlibChannel(zlib.createInflateRaw({
      // A larger window than the client's inflates its stream just as well (§7.1.2.2).
      windowBits: DEFLATE_DEFAULTS.windowBits,
    }));
    let out: Uint8Array;
    try {
      out = await channel.run([data, TAIL], maxBytes);
    } catch (e) {
      this.#inflate = null;
      if (e instanceof OverLimit) {
        throw new WebSocketProtocolError(CloseCode.MessageTooBig, "message inflates over the size limit");
      }
      throw new WebSocketProtocolError(CloseCode.InvalidPayload, "compressed message is not valid deflate");
    }
    if (this.params.clientNoContextTakeover) channel.stream.reset();
    return out;
  }

  /** Free the zlib streams. */
  close(): void {
    this.#deflate?.stream.destroy();
    this.#inflate?.stream.destroy();
    this.#deflate = this.#inflate = null;
  }
}
