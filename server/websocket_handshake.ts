// The opening handshake of RFC 6455 §4.2, decided from a Request: either the 101 answer's headers and what
// was agreed (subprotocol, permessage-deflate), or the refusal to send instead (400, 403, 426). Pure: it
// reads headers and returns values; it never touches a socket, and it never throws for a client's mistake.
import { createHash } from "node:crypto";
import { type DeflateOptions, type DeflateParams, negotiateDeflate } from "./websocket_deflate.ts";
import { crossOriginReason, trustedOriginSet } from "./origin.ts";

/** The GUID every server appends to the key (RFC 6455 §1.3, §4.2.2). */
const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** The only version this server speaks (RFC 6455 §4.2.1 item 6, §11.6). */
export const WEBSOCKET_VERSION = "13";
/**
 * A key is 16 random bytes in base64 (§4.1 item 7): 24 characters, two `=` of padding, and a last data
 * character whose low four bits are zero (the 16th byte fills only its top half).
 */
const KEY_PATTERN = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What a handshake takes from the options of `upgradeWebSocket`. */
export interface HandshakeOptions {
  /** The subprotocol the handler speaks; echoed when the client offered it (§4.2.2 item 5.4). */
  protocol?: string;
  /** permessage-deflate: false to refuse it, or how to use it. Default on. */
  compress?: boolean | DeflateOptions;
  /**
   * Origins allowed besides the server's own (cross-site WebSocket hijacking: a handshake carries the
   * visitor's cookies and is not bound by CORS), or `"*"` for any. Default: the same-origin rule of
   * `crossOriginProtection`.
   */
  trustedOrigins?: readonly string[] | "*";
}

/** The outcome of {@link decideHandshake}. */
export type Handshake =
  | {
    ok: true;
    /** The 101 answer's headers (Upgrade, Connection, Sec-WebSocket-Accept and what was agreed). */
    headers: Headers;
    /** The subprotocol agreed, or "". */
    protocol: string;
    /** The `Sec-WebSocket-Extensions` value sent, or "". */
    extensions: string;
    /** What permessage-deflate agreed, or null. */
    deflate: DeflateParams | null;
  }
  | {
    ok: false;
    /** The refusal to answer with. */
    response: Response;
    /** Why, in words for a log. */
    reason: string;
  };

/**
 * The `Sec-WebSocket-Accept` value for a key (RFC 6455 §4.2.2 item 5.4): base64 of the SHA-1 of the key
 * and the GUID.
 *
 * @param key The client's `Sec-WebSocket-Key`.
 * @returns The accept value.
 *
 * @example
 * ```ts
 * import { acceptKey } from "./websocket_handshake.ts";
 * console.log(acceptKey("dGhlIHNhbXBsZSBub25jZQ==")); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" (RFC 6455 §1.3)
 * ```
 */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + ACCEPT_GUID).digest("base64");
}

/** Whether a comma-separated header (RFC 9110 §5.6.1) lists `token`, case-insensitively. */
function listHas(value: string | null, token: string): boolean {
  if (value === null) return false;
  for (const item of value.split(",")) if (item.trim().toLowerCase() === token) return true;
  return false;
}

function refuse(status: number, reason: string, extra: Record<string, string> = {}): Handshake {
  const text = status === 426 ? "Upgrade Required" : status === 403 ? "Forbidden" : "Bad Request";
  return {
    ok: false,
    reason,
    response: new Response(`${text}: ${reason}\n`, {
      status,
      headers: { "content-type": "text/plain; charset=utf-8", ...extra },
    }),
  };
}

/** What RFC 9110 §15.5.22 and RFC 6455 §4.4 ask a 426 to say: what to upgrade to, and the version. */
const UPGRADE_REQUIRED_HEADERS = {
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-version": WEBSOCKET_VERSION,
};

/** Trusted-origin sets, made once per options array (a server passes the same one on every upgrade). */
const trustedSets = new WeakMap<readonly string[], ReadonlySet<string>>();
const NO_ORIGINS: ReadonlySet<string> = new Set();

/**
 * Decide a WebSocket handshake (RFC 6455 §4.2.1, in order): a GET that asks to upgrade to `websocket`
 * (426 otherwise, naming the upgrade), version 13 (426 with `Sec-WebSocket-Version: 13` otherwise, §4.4),
 * a key of 16 bytes of base64 and no body (400 otherwise), and an origin the same-origin rule accepts (403
 * otherwise). Then the subprotocol and permessage-deflate are agreed.
 *
 * @param request The handshake request.
 * @param options Subprotocol, compression, trusted origins.
 * @returns The 101's headers and what was agreed, or the refusal.
 * @throws {TypeError} Only for a mistake in `options` (a trusted origin that is not an origin).
 *
 * @example
 * ```ts
 * import { decideHandshake } from "./websocket_handshake.ts";
 * const request = new Request("http://localhost/chat", {
 *   headers: {
 *     upgrade: "websocket",
 *     connection: "Upgrade",
 *     "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
 *     "sec-websocket-version": "13",
 *   },
 * });
 * const handshake = decideHandshake(request, {});
 * console.log(handshake.ok && handshake.headers.get("sec-websocket-accept")); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 * ```
 */
export function decideHandshake(request: Request, options: HandshakeOptions): Handshake {
  const headers = request.headers;
  if (!listHas(headers.get("upgrade"), "websocket") || !listHas(headers.get("connection"), "upgrade")) {
    return refuse(426, "not a WebSocket upgrade request", UPGRADE_REQUIRED_HEADERS);
  }
  if (request.method !== "GET") return refuse(400, `a WebSocket handshake is a GET, not ${request.method}`);
  const version = headers.get("sec-websocket-version");
  if (version === null || version.trim() !== WEBSOCKET_VERSION) {
    return refuse(426, `unsupported WebSocket version ${JSON.stringify(version)}`, UPGRADE_REQUIRED_HEADERS);
  }
  const key = headers.get("sec-websocket-key");
  if (key === null || !KEY_PATTERN.test(key.trim())) {
    return refuse(400, "Sec-WebSocket-Key is not 16 bytes of base64");
  }
  const length = headers.get("content-length");
  if (headers.has("transfer-encoding") || (length !== null && length.trim() !== "0")) {
    return refuse(400, "a WebSocket handshake has no body");
  }
  const trustedOption = options.trustedOrigins ?? [];
  if (trustedOption !== "*") {
    let trusted = trustedOption.length === 0 ? NO_ORIGINS : trustedSets.get(trustedOption);
    if (trusted === undefined) trustedSets.set(trustedOption, trusted = trustedOriginSet(trustedOption));
    const reason = crossOriginReason(headers, new URL(request.url).host, trusted);
    if (reason !== null) return refuse(403, reason);
  }

  const answer = new Headers({
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-accept": acceptKey(key.trim()),
  });
  // §4.2.2 item 5.4: at most one of the protocols the client listed, or none.
  let protocol = "";
  const wanted = options.protocol;
  if (wanted !== undefined && TOKEN.test(wanted)) {
    const offered = headers.get("sec-websocket-protocol");
    if (offered !== null && offered.split(",").some((p) => p.trim() === wanted)) {
      protocol = wanted;
      answer.set("sec-websocket-protocol", protocol);
    }
  }
  let extensions = "";
  let deflate: DeflateParams | null = null;
  const compress = options.compress ?? true;
  if (compress !== false) {
    const agreed = negotiateDeflate(
      headers.get("sec-websocket-extensions"),
      compress === true ? {} : compress,
    );
    if (agreed !== null) {
      deflate = agreed.params;
      extensions = agreed.response;
      answer.set("sec-websocket-extensions", extensions);
    }
  }
  return { ok: true, headers: answer, protocol, extensions, deflate };
}
