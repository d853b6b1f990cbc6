// WebSocket framing (RFC 6455 §5): bytes in, messages and control frames out, and the bytes of frames to
// send. It owns the frame grammar, masking, fragmentation, UTF-8 validation of text and the size limits;
// it must never touch a socket, a timer or `Deno`, so every rule can be tested by feeding bytes.
// A rule broken is an error carrying the close code to send (1002, 1007, 1009), never a guess.

/**
 * Frame opcodes (RFC 6455 §5.2, §11.8). 3-7 and 11-15 are reserved: a frame with one fails with 1002.
 *
 * @example
 * ```ts
 * import { Opcode } from "./websocket_frames.ts";
 * console.log(Opcode.Text); // 1
 * ```
 */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
/** One of {@link Opcode}. */
export type Opcode = typeof Opcode[keyof typeof Opcode];

/**
 * Close codes (RFC 6455 §7.4.1) that this layer and the socket send or report.
 *
 * @example
 * ```ts
 * import { CloseCode } from "./websocket_frames.ts";
 * console.log(CloseCode.MessageTooBig); // 1009
 * ```
 */
export const CloseCode = {
  /** The purpose of the connection is fulfilled. */
  Normal: 1000,
  /** The server is going down (graceful shutdown), or a peer stopped answering pings. */
  GoingAway: 1001,
  /** The peer broke the protocol (framing, masking, opcodes, control frames). */
  ProtocolError: 1002,
  /** Never sent: reported when a close frame carried no code. */
  NoStatus: 1005,
  /** Never sent: reported when the connection ended without a close frame. */
  Abnormal: 1006,
  /** A text message (or a close reason) that is not UTF-8 (RFC 6455 §8.1). */
  InvalidPayload: 1007,
  /** The handshake was refused by policy, or a peer sent data it was told not to. */
  PolicyViolation: 1008,
  /** A frame or message over the limits. */
  MessageTooBig: 1009,
  /** The server failed (an exception while handling the connection). */
  InternalError: 1011,
} as const;

/** Largest payload of a control frame (RFC 6455 §5.5): its length must fit the 7-bit form. */
export const MAX_CONTROL_PAYLOAD = 125;
/** Largest close reason: a control payload less the two bytes of the code (RFC 6455 §5.5.1). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Whether `code` may travel in a close frame (RFC 6455 §7.4): 1000-1003 and 1007-1014 (1004 is reserved,
 * 1005, 1006 and 1015 are for reporting only), and 3000-4999 (registered and private use).
 *
 * @param code The code.
 * @returns True when it may be sent and accepted.
 *
 * @example
 * ```ts
 * import { isValidCloseCode } from "./websocket_frames.ts";
 * console.log(isValidCloseCode(1000), isValidCloseCode(1005)); // true false
 * ```
 */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999);
}

/**
 * A broken rule of the protocol. `code` is the close code to send before closing the connection.
 *
 * @example
 * ```ts
 * import { WebSocketProtocolError } from "./websocket_frames.ts";
 * const e = new WebSocketProtocolError(1002, "unmasked client frame");
 * console.log(e.code, e.message);
 * ```
 */
export class WebSocketProtocolError extends Error {
  /** The close code this error asks for: 1002, 1007 or 1009. */
  readonly code: number;
  /**
   * @param code The close code to send.
   * @param message What was wrong, for the log and the close reason.
   */
  constructor(code: number, message: string) {
    super(message);
    this.name = "WebSocketProtocolError";
    this.code = code;
  }
}

/** Limits and negotiated facts a {@link FrameParser} enforces. */
export interface FrameParserOptions {
  /**
   * Which side reads: a server requires every frame masked, a client requires none masked (RFC 6455
   * §5.1). Default "server".
   */
  role?: "server" | "client";
  /** Largest payload of one frame; more fails with 1009. Default: `maxMessageBytes`. */
  maxFrameBytes?: number;
  /** Largest message (all its fragments; compressed size for a deflated one); more fails with 1009. */
  maxMessageBytes?: number;
  /**
   * permessage-deflate was negotiated (RFC 7692 §6): RSV1 is allowed on a message's first frame and marks
   * it compressed. Without it, RSV1 fails with 1002.
   */
  deflate?: boolean;
  /**
   * Decode bytes already validated as UTF-8 into a string (no check needed). Default: `TextDecoder`. The
   * socket passes a faster one; the parser stays free of any runtime API.
   */
  decodeUtf8?: (bytes: Uint8Array) => string;
}

/**
 * The defaults of {@link FrameParserOptions}' limits, each with its reason.
 *
 * @example
 * ```ts
 * import { FRAME_DEFAULTS } from "./websocket_frames.ts";
 * console.log(FRAME_DEFAULTS.maxMessageBytes); // 16777216
 * ```
 */
export const FRAME_DEFAULTS: Readonly<{ maxMessageBytes: number }> = Object.freeze({
  /** 16 MiB: far above any chat or game message, small enough that a hostile peer cannot exhaust memory. */
  maxMessageBytes: 16 * 1024 * 1024,
});

/** A parser event: a whole message, a control frame, or the error that ends the connection. */
export type FrameEvent =
  /** A whole text message, validated as UTF-8 and decoded. */
  | { type: "text"; text: string }
  /** A whole binary message: a view of the parser's memory, valid until the next `feed` or `writable`. */
  | { type: "binary"; data: Uint8Array }
  /**
   * A whole message sent compressed (RSV1, RFC 7692): its deflated bytes without the `00 00 ff ff` tail,
   * for the caller to inflate; a view like `binary`'s. `binary` tells its kind (text must still be checked).
   */
  | { type: "deflated"; binary: boolean; data: Uint8Array }
  /** A ping; answer with a pong carrying the same payload (RFC 6455 §5.5.2). A view like `binary`'s. */
  | { type: "ping"; data: Uint8Array }
  /** A pong. A view like `binary`'s. */
  | { type: "pong"; data: Uint8Array }
  /** A close frame: its code (1005 when it had none) and reason. No event follows. */
  | { type: "close"; code: number; reason: string }
  /** A broken rule; the same error is returned forever. */
  | { type: "error"; error: WebSocketProtocolError };

/** Returned by {@link FrameParser.next} when it needs more bytes. */
export const NEED_DATA = "need-data" as const;

// The message-level state machine (RFC 6455 §5.4): between messages, inside a fragmented one, closed (a
// close frame was read: nothing after it is parsed, §5.5.1), or failed.
const State = { Idle: 0, Fragmented: 1, Closed: 2, Failed: 3 } as const;
type State = typeof State[keyof typeof State];
const STATE_NAMES = ["Idle", "Fragmented", "Closed", "Failed"] as const;
/** What a frame does to the message state, from its opcode and FIN bit. */
const Step = {
  /** A text or binary frame without FIN: a fragmented message starts. */
  Start: 0,
  /** A text or binary frame with FIN: a whole message. */
  Whole: 1,
  /** A continuation frame without FIN. */
  More: 2,
  /** A continuation frame with FIN: the fragmented message ends. */
  Finish: 3,
  /** Ping or pong: allowed between fragments (§5.4), the state does not change. */
  Control: 4,
  /** A close frame. */
  Close: 5,
  /** A broken rule. */
  Error: 6,
} as const;
type Step = typeof Step[keyof typeof Step];
const STEP_NAMES = ["start", "whole", "more", "finish", "control", "close", "error"] as const;
/** The peer broke the fragmentation rules of §5.4: the step is refused with 1002. */
const REFUSED = -1;
/** A step the parser never takes from this state: a bug here, not the peer's. */
const ILLEGAL = -2;
/** Every step, `TRANSITIONS[state * 7 + step]`: the next state, REFUSED (1002) or ILLEGAL. */
// deno-fmt-ignore
const TRANSITIONS: readonly (State | typeof REFUSED | typeof ILLEGAL)[] = [
  // start             whole       more              finish      control           close         error
  State.Fragmented,    State.Idle, REFUSED,          REFUSED,    State.Idle,       State.Closed, State.Failed, // Idle
  REFUSED,             REFUSED,    State.Fragmented, State.Idle, State.Fragmented, State.Closed, State.Failed, // Fragmented
  ILLEGAL,             ILLEGAL,    ILLEGAL,          ILLEGAL,    ILLEGAL,          ILLEGAL,      ILLEGAL,      // Closed
  ILLEGAL,             ILLEGAL,    ILLEGAL,          ILLEGAL,    ILLEGAL,          ILLEGAL,      ILLEGAL,      // Failed
];

/**
 * Data frames up to this size are processed whole, once all of their bytes are in the buffer: a message in
 * one such frame is handed over as a view, without a copy. Larger frames are processed as their bytes
 * arrive, so the buffer never holds more than this plus one read.
 */
const WHOLE_FRAME_BYTES = 64 * 1024;
/** The read buffer's size between messages: one read of a busy socket. */
const INITIAL_BUFFER = 16 * 1024;
/** Least room offered to a read before pending bytes are moved to the front. */
const MIN_READ_ROOM = 4 * 1024;
/** Most bytes a frame head takes: 2, then 8 of length, then 4 of mask (§5.2). */
const MAX_HEAD_BYTES = 14;
/** Below this many bytes, unmasking byte by byte is cheaper than setting up the word view. */
const WORD_UNMASK_MIN = 32;
/** The host stores a Uint32 little-endian (all that Deno runs on; checked, so another host still works). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const EMPTY = new Uint8Array(0);

const utf8Fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// ignoreBOM: a message's leading U+FEFF is data, and an echo must give it back.
const plainDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const decodeWithTextDecoder = (bytes: Uint8Array): string => plainDecoder.decode(bytes);

/**
 * An incremental UTF-8 validator (RFC 3629 §4): fed bytes in pieces, it fails at the first byte that no
 * valid sequence can have there (overlongs, surrogates and code points above U+10FFFF included), so a
 * text message split over frames is refused as soon as it goes wrong (RFC 6455 §8.1). A fatal
 * `TextDecoder` does the same, but costs several times more per message.
 *
 * @example
 * ```ts
 * import { Utf8Validator } from "./websocket_frames.ts";
 * const v = new Utf8Validator();
 * console.log(v.feed(new Uint8Array([0xce]), 0, 1), v.complete); // true false (a sequence is open)
 * console.log(v.feed(new Uint8Array([0xba]), 0, 1), v.complete); // true true ("κ")
 * ```
 */
export class Utf8Validator {
  /** Continuation bytes still expected. */
  #need = 0;
  /** The range allowed for the next continuation byte (narrower right after E0, ED, F0, F4). */
  #low = 0x80;
  #high = 0xbf;

  /** True when no sequence is open: the bytes so far end on a character boundary. */
  get complete(): boolean {
    return this.#need === 0;
  }

  /** Forget everything fed: ready for the next message. */
  reset(): void {
    this.#need = 0;
    this.#low = 0x80;
    this.#high = 0xbf;
  }

  /**
   * Check `buf[start, end)`, continuing from the bytes fed before.
   *
   * @param buf The bytes.
   * @param start First byte.
   * @param end One past the last.
   * @returns False at the first invalid byte (the validator must then be reset before reuse).
   */
  feed(buf: Uint8Array, start: number, end: number): boolean {
    let need = this.#need;
    let low = this.#low;
    let high = this.#high;
    for (let i = start; i < end; i++) {
      const b = buf[i];
      if (need === 0) {
        if (b < 0x80) continue;
        if (b < 0xc2) return false; // a continuation byte, or C0/C1 (overlong)
        if (b < 0xe0) need = 1;
        else if (b < 0xf0) {
          need = 2;
          if (b === 0xe0) low = 0xa0; // overlong 3-byte forms
          else if (b === 0xed) high = 0x9f; // UTF-16 surrogates
        } else if (b < 0xf5) {
          need = 3;
          if (b === 0xf0) low = 0x90; // overlong 4-byte forms
          else if (b === 0xf4) high = 0x8f; // above U+10FFFF
        } else return false;
      } else {
        if (b < low || b > high) return false;
        need--;
        low = 0x80;
        high = 0xbf;
      }
    }
    this.#need = need;
    this.#low = low;
    this.#high = high;
    return true;
  }
}

/**
 * Unmask `buf[start, end)` in place (RFC 6455 §5.3): XOR with the 4-byte key, starting at key byte
 * `phase`. The aligned middle is done a 32-bit word at a time, which is what makes receiving fast.
 *
 * @param buf The bytes.
 * @param start First byte to unmask.
 * @param end One past the last.
 * @param key The masking key (4 bytes).
 * @param phase Which key byte applies to `buf[start]` (the payload offset modulo 4).
 *
 * @example
 * ```ts
 * import { unmask } from "./websocket_frames.ts";
 * const key = new Uint8Array([1, 2, 3, 4]);
 * const bytes = new Uint8Array([1 ^ 104, 2 ^ 105]);
 * unmask(bytes, 0, 2, key, 0);
 * console.log(new TextDecoder().decode(bytes)); // "hi"
 * ```
 */
export function unmask(buf: Uint8Array, start: number, end: number, key: Uint8Array, phase: number): void {
  let i = start;
  if (end - start >= WORD_UNMASK_MIN && LITTLE_ENDIAN) {
    // Bytes up to the first 4-byte-aligned address, one by one.
    const misalign = (buf.byteOffset + i) & 3;
    if (misalign !== 0) {
      const stop = i + (4 - misalign);
      for (; i < stop; i++) buf[i] ^= key[(phase + i - start) & 3];
    }
    const p = phase + i - start;
    const word = key[p & 3] | key[(p + 1) & 3] << 8 | key[(p + 2) & 3] << 16 | key[(p + 3) & 3] << 24;
    const words = (end - i) >>> 2;
    const view = new Int32Array(buf.buffer, buf.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] ^= word;
    i += words << 2;
  }
  for (; i < end; i++) buf[i] ^= key[(phase + i - start) & 3];
}

/**
 * A sans-IO WebSocket frame reader: `feed()` bytes (or read into `writable()` and `commit()`), then call
 * `next()` until it answers `"need-data"`. It reassembles fragmented messages, answers text as validated
 * strings, and fails on the first broken rule with the close code to send.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameParser, NEED_DATA, Opcode } from "./websocket_frames.ts";
 * const parser = new FrameParser();
 * const key = new Uint8Array([9, 8, 7, 6]);
 * parser.feed(encodeFrame(Opcode.Text, new TextEncoder().encode("hello"), { mask: key }));
 * const ev = parser.next();
 * if (ev !== NEED_DATA && ev.type === "text") console.log(ev.text); // "hello"
 * ```
 */
export class FrameParser {
  readonly #serverSide: boolean;
  readonly #maxFrame: number;
  readonly #maxMessage: number;
  readonly #deflate: boolean;
  readonly #decodeUtf8: (bytes: Uint8Array) => string;
  readonly #utf8 = new Utf8Validator();
  #state: State = State.Idle;
  #error: { type: "error"; error: WebSocketProtocolError } | null = null;
  #buf: Uint8Array = new Uint8Array(INITIAL_BUFFER);
  #start = 0;
  #end = 0;
  // The frame being read, once its head is parsed (#inFrame).
  #inFrame = false;
  #fin = false;
  #opcode = 0;
  #compressed = false;
  #key = new Uint8Array(4);
  #masked = false;
  /** Payload bytes of the current frame not yet consumed. */
  #payloadLeft = 0;
  /** Payload bytes of the current frame consumed so far (the masking phase). */
  #payloadDone = 0;
  /** Processed whole once all its bytes are buffered (control frames, and data frames up to the bound). */
  #whole = false;
  // The message being assembled across frames (or across reads of one large frame).
  #messageBinary = false;
  #messageCompressed = false;
  #messageBytes = 0;
  /** Bytes of the message assembled so far (text is validated as it arrives, so it fails early, §8.1). */
  #assembly: Uint8Array = EMPTY;

  /**
   * @param options Role, limits and whether permessage-deflate was negotiated.
   */
  constructor(options: FrameParserOptions = {}) {
    this.#serverSide = (options.role ?? "server") === "server";
    this.#maxMessage = options.maxMessageBytes ?? FRAME_DEFAULTS.maxMessageBytes;
    this.#maxFrame = Math.min(options.maxFrameBytes ?? this.#maxMessage, this.#maxMessage);
    this.#deflate = options.deflate ?? false;
    this.#decodeUtf8 = options.decodeUtf8 ?? decodeWithTextDecoder;
  }

  /** The message state: "Idle", "Fragmented", "Closed" (a close frame was read) or "Failed". */
  get state(): string {
    return STATE_NAMES[this.#state];
  }

  /** Bytes received and not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  #go(step: Step): boolean {
    const to = TRANSITIONS[this.#state * 7 + step];
    if (to === ILLEGAL) {
      throw new Error(`illegal frame step: "${STEP_NAMES[step]}" in state ${STATE_NAMES[this.#state]}`);
    }
    if (to === REFUSED) return false;
    this.#state = to;
    return true;
  }

  #fail(code: number, message: string): { type: "error"; error: WebSocketProtocolError } {
    this.#go(Step.Error);
    this.#error = { type: "error", error: new WebSocketProtocolError(code, message) };
    this.#assembly = EMPTY;
    return this.#error;
  }

  /**
   * Append received bytes (copied).
   *
   * @param bytes What arrived from the peer.
   */
  feed(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) {
      const room = this.writable();
      const n = Math.min(room.length, bytes.length - off);
      room.set(bytes.subarray(off, off + n));
      this.#end += n;
      off += n;
    }
  }

  /**
   * A region to read into without copying; follow with {@link FrameParser.commit}. Views from earlier
   * events are invalid afterwards.
   *
   * @returns A writable view at the end of the received data.
   */
  writable(): Uint8Array {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    // What must fit whole from the first pending byte: a frame head, or a frame processed whole.
    const need = this.#inFrame && this.#whole ? this.#payloadLeft : MAX_HEAD_BYTES;
    const buf = this.#buf;
    if (buf.length - this.#start < need || (this.#start > 0 && buf.length - this.#end < MIN_READ_ROOM)) {
      // Move what is pending to the front, into a larger buffer when a whole frame needs one.
      const pending = this.#end - this.#start;
      const size = Math.max(buf.length, need + MIN_READ_ROOM);
      if (size > buf.length) {
        const to = new Uint8Array(size);
        to.set(buf.subarray(this.#start, this.#end));
        this.#buf = to;
      } else buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = pending;
    }
    return this.#buf.subarray(this.#end);
  }

  /**
   * Give back a buffer that a large frame made grow, when nothing is pending (the socket calls it when
   * the connection goes quiet), so an idle connection holds only the small one.
   */
  trim(): void {
    if (this.#start === this.#end && !this.#inFrame && this.#buf.length > INITIAL_BUFFER) {
      this.#buf = new Uint8Array(INITIAL_BUFFER);
      this.#start = this.#end = 0;
    }
  }

  /**
   * Mark `n` bytes of the last {@link FrameParser.writable} region as received.
   *
   * @param n How many bytes the read produced.
   */
  commit(n: number): void {
    this.#end += n;
  }

  /**
   * The next event, or `"need-data"`. After a close frame, `"need-data"` forever (what follows a close is
   * not read, RFC 6455 §5.5.1); after an error, the same error forever.
   *
   * @returns The event.
   */
  next(): FrameEvent | typeof NEED_DATA {
    for (;;) {
      const state = this.#state;
      if (state === State.Closed) return NEED_DATA;
      if (state === State.Failed) return this.#error!;
      if (!this.#inFrame) {
        const head = this.#readHead();
        if (head !== null) return head;
        if (!this.#inFrame) return NEED_DATA;
      }
      const ev = this.#readPayload();
      if (ev !== null) return ev;
      if (this.#inFrame) return NEED_DATA;
    }
  }

  /**
   * Parse a frame head (RFC 6455 §5.2) if all of it is here. Null with `#inFrame` set when done, null
   * without it when more bytes are needed, or an error.
   */
  #readHead(): FrameEvent | null {
    const buf = this.#buf;
    const at = this.#start;
    const avail = this.#end - at;
    if (avail < 2) return null;
    const b0 = buf[at];
    const b1 = buf[at + 1];
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    const control = opcode >= 0x8;
    // §5.2: an opcode not defined fails the connection.
    if ((opcode > Opcode.Binary && opcode < Opcode.Close) || opcode > Opcode.Pong) {
      return this.#fail(1002, `reserved opcode ${opcode}`);
    }
    // §5.2: RSV bits must be 0 unless an extension gives them a meaning. RFC 7692 §6: RSV1 marks a
    // compressed message, on its first frame only (never a continuation or a control frame).
    if ((b0 & 0x30) !== 0) return this.#fail(1002, "RSV2 or RSV3 set without an extension");
    const rsv1 = (b0 & 0x40) !== 0;
    if (rsv1 && (!this.#deflate || control || opcode === Opcode.Continuation)) {
      return this.#fail(
        1002,
        this.#deflate ? "RSV1 set on a control or continuation frame" : "RSV1 set without permessage-deflate",
      );
    }
    // §5.1: a client masks every frame; a server never does.
    if (masked !== this.#serverSide) {
      return this.#fail(1002, masked ? "masked server frame" : "unmasked client frame");
    }
    // §5.5: control frames are never fragmented and carry at most 125 bytes.
    if (control) {
      if (!fin) return this.#fail(1002, "fragmented control frame");
      if (len7 > MAX_CONTROL_PAYLOAD) return this.#fail(1002, "control frame longer than 125 bytes");
    }
    const headLength = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
    if (avail < headLength) return null;
    let length = len7;
    let p = at + 2;
    if (len7 === 126) {
      length = buf[p] << 8 | buf[p + 1];
      p += 2;
    } else if (len7 === 127) {
      const high = (buf[p] << 24 | buf[p + 1] << 16 | buf[p + 2] << 8 | buf[p + 3]) >>> 0;
      const low = (buf[p + 4] << 24 | buf[p + 5] << 16 | buf[p + 6] << 8 | buf[p + 7]) >>> 0;
      // §5.2: the most significant bit of a 64-bit length must be 0.
      if (high >= 0x80000000) return this.#fail(1002, "64-bit length with its top bit set");
      // Anything beyond 2^53 is far beyond any limit; keep the number exact up to there.
      length = high >= 0x200000 ? Number.MAX_SAFE_INTEGER : high * 0x100000000 + low;
      p += 8;
    }
    // The message-level rules (§5.4), from the table.
    const step = control
      ? (opcode === Opcode.Close ? Step.Close : Step.Control)
      : opcode === Opcode.Continuation
      ? (fin ? Step.Finish : Step.More)
      : (fin ? Step.Whole : Step.Start);
    if (length > this.#maxFrame) return this.#fail(1009, `frame of ${length} bytes over the limit`);
    if (!control) {
      const total = (step === Step.Whole || step === Step.Start ? 0 : this.#messageBytes) + length;
      if (total > this.#maxMessage) return this.#fail(1009, `message of ${total}+ bytes over the limit`);
    }
    if (step !== Step.Close && !this.#go(step)) {
      return this.#fail(
        1002,
        opcode === Opcode.Continuation
          ? "continuation frame outside a fragmented message"
          : "new data frame inside a fragmented message",
      );
    }
    if (masked) {
      const key = this.#key;
      key[0] = buf[p];
      key[1] = buf[p + 1];
      key[2] = buf[p + 2];
      key[3] = buf[p + 3];
      p += 4;
    }
    this.#start = p;
    this.#inFrame = true;
    this.#fin = fin;
    this.#opcode = opcode;
    this.#masked = masked;
    this.#payloadLeft = length;
    this.#payloadDone = 0;
    this.#whole = control || length <= WHOLE_FRAME_BYTES;
    if (step === Step.Start || step === Step.Whole) {
      this.#messageBinary = opcode === Opcode.Binary;
      this.#messageCompressed = rsv1;
      this.#messageBytes = 0;
    }
    this.#compressed = this.#messageCompressed;
    return null;
  }

  /** Consume the current frame's payload: an event when a message or control frame is complete. */
  #readPayload(): FrameEvent | null {
    const left = this.#payloadLeft;
    const avail = this.#end - this.#start;
    if (this.#whole) {
      if (avail < left) return null; // wait for all of it (writable() makes room)
      const start = this.#start;
      const end = start + left;
      if (this.#masked) unmask(this.#buf, start, end, this.#key, 0);
      this.#start = end;
      this.#inFrame = false;
      this.#payloadLeft = 0;
      const data = this.#buf.subarray(start, end);
      const opcode = this.#opcode;
      if (opcode >= Opcode.Close) return this.#control(opcode, data);
      // A message in this one frame: handed over as a view, or as a string.
      if (opcode !== Opcode.Continuation && this.#fin) {
        this.#messageBytes = left;
        if (this.#compressed) return { type: "deflated", binary: this.#messageBinary, data };
        if (this.#messageBinary) return { type: "binary", data };
        return this.#wholeText(start, end);
      }
      return this.#append(data, this.#fin);
    }
    // A large frame: take what is here, unmasked in place, and wait for the rest.
    if (avail === 0) return null;
    const n = Math.min(avail, left);
    const start = this.#start;
    if (this.#masked) unmask(this.#buf, start, start + n, this.#key, this.#payloadDone & 3);
    this.#start += n;
    this.#payloadDone += n;
    this.#payloadLeft -= n;
    const done = this.#payloadLeft === 0;
    if (done) this.#inFrame = false;
    return this.#append(this.#buf.subarray(start, start + n), done && this.#fin);
  }

  /** A text message in one frame: validated (§8.1), then decoded. */
  #wholeText(start: number, end: number): FrameEvent {
    const utf8 = this.#utf8;
    if (!utf8.feed(this.#buf, start, end) || !utf8.complete) {
      return this.#fail(1007, "text message is not valid UTF-8");
    }
    return { type: "text", text: this.#decodeUtf8(this.#buf.subarray(start, end)) };
  }

  /** Add payload bytes to the message being assembled; the message event when `last`. */
  #append(data: Uint8Array, last: boolean): FrameEvent | null {
    const text = !this.#messageBinary && !this.#compressed;
    if (text) {
      // Checked as it arrives: invalid UTF-8 fails at its first bad byte, not at the message's end.
      const utf8 = this.#utf8;
      if (this.#messageBytes === 0) utf8.reset();
      if (!utf8.feed(data, 0, data.length) || (last && !utf8.complete)) {
        utf8.reset();
        return this.#fail(1007, "text message is not valid UTF-8");
      }
    }
    const used = this.#messageBytes;
    this.#messageBytes += data.length;
    if (this.#assembly.length < this.#messageBytes) {
      // Grow by doubling (bounded by the message limit, checked at each frame head).
      const size = Math.min(Math.max(this.#messageBytes, this.#assembly.length * 2, 1024), this.#maxMessage);
      const next = new Uint8Array(size);
      next.set(this.#assembly.subarray(0, used));
      this.#assembly = next;
    }
    this.#assembly.set(data, used);
    if (!last) return null;
    const whole = this.#assembly.subarray(0, this.#messageBytes);
    // The assembly buffer is handed over with the event; the next message starts a new one.
    this.#assembly = EMPTY;
    if (text) return { type: "text", text: this.#decodeUtf8(whole) };
    if (this.#compressed) return { type: "deflated", binary: this.#messageBinary, data: whole };
    return { type: "binary", data: whole };
  }

  /** A complete control frame (§5.5). */
  #control(opcode: number, data: Uint8Array): FrameEvent {
    if (opcode === Opcode.Ping) {
      this.#go(Step.Control);
      return { type: "ping", data };
    }
    if (opcode === Opcode.Pong) {
      this.#go(Step.Control);
      return { type: "pong", data };
    }
    // §5.5.1: a close body is empty, or a 2-byte code then a UTF-8 reason.
    if (data.length === 1) return this.#fail(1002, "close frame with a 1-byte body");
    let code: number = CloseCode.NoStatus;
    let reason = "";
    if (data.length >= 2) {
      code = data[0] << 8 | data[1];
      if (!isValidCloseCode(code)) return this.#fail(1002, `close code ${code} is not allowed on the wire`);
      try {
        reason = utf8Fatal.decode(data.subarray(2));
      } catch {
        return this.#fail(1007, "close reason is not valid UTF-8");
      }
    }
    this.#go(Step.Close);
    return { type: "close", code, reason };
  }
}

/** How {@link encodeFrame} and {@link writeFrameHead} build a frame. */
export interface FrameOptions {
  /** The final fragment of its message. Default true. */
  fin?: boolean;
  /** Set RSV1: the message is compressed (RFC 7692 §6; first frame only). Default false. */
  rsv1?: boolean;
  /** A client's 4-byte masking key (RFC 6455 §5.3); servers send unmasked frames. Default none. */
  mask?: Uint8Array | null;
}

/**
 * How many bytes the head of a frame takes (RFC 6455 §5.2).
 *
 * @param length The payload length.
 * @param masked Whether a masking key follows.
 * @returns 2 to 14.
 *
 * @example
 * ```ts
 * import { frameHeadLength } from "./websocket_frames.ts";
 * console.log(frameHeadLength(64, false), frameHeadLength(65536, true)); // 2 14
 * ```
 */
export function frameHeadLength(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length <= 0xffff ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Write a frame head into `into` at `at`, with the shortest length form (§5.2 requires the minimal one).
 *
 * @param into Where to write ({@link frameHeadLength} bytes from `at` must fit).
 * @param at The offset.
 * @param opcode The opcode.
 * @param length The payload length.
 * @param options FIN, RSV1, the masking key.
 * @returns The number of bytes written.
 *
 * @example
 * ```ts
 * import { Opcode, writeFrameHead } from "./websocket_frames.ts";
 * const head = new Uint8Array(14);
 * const n = writeFrameHead(head, 0, Opcode.Text, 5);
 * console.log(head.subarray(0, n)); // Uint8Array [129, 5]
 * ```
 */
export function writeFrameHead(
  into: Uint8Array,
  at: number,
  opcode: number,
  length: number,
  options: FrameOptions = {},
): number {
  const mask = options.mask ?? null;
  into[at] = (options.fin === false ? 0 : 0x80) | (options.rsv1 ? 0x40 : 0) | opcode;
  const maskBit = mask !== null ? 0x80 : 0;
  let p = at + 2;
  if (length < 126) {
    into[at + 1] = maskBit | length;
  } else if (length <= 0xffff) {
    into[at + 1] = maskBit | 126;
    into[p++] = length >>> 8;
    into[p++] = length & 0xff;
  } else {
    into[at + 1] = maskBit | 127;
    const high = Math.floor(length / 0x100000000);
    into[p++] = high >>> 24;
    into[p++] = (high >>> 16) & 0xff;
    into[p++] = (high >>> 8) & 0xff;
    into[p++] = high & 0xff;
    into[p++] = length >>> 24;
    into[p++] = (length >>> 16) & 0xff;
    into[p++] = (length >>> 8) & 0xff;
    into[p++] = length & 0xff;
  }
  if (mask !== null) {
    into[p++] = mask[0];
    into[p++] = mask[1];
    into[p++] = mask[2];
    into[p++] = mask[3];
  }
  return p - at;
}

/**
 * A whole frame as bytes: head and payload (masked when a key is given; `payload` is left untouched).
 *
 * @param opcode The opcode.
 * @param payload The payload.
 * @param options FIN, RSV1, the masking key.
 * @returns The frame.
 *
 * @example
 * ```ts
 * import { encodeFrame, Opcode } from "./websocket_frames.ts";
 * const frame = encodeFrame(Opcode.Ping, new Uint8Array([1, 2]));
 * console.log(frame); // Uint8Array [137, 2, 1, 2]
 * ```
 */
export function encodeFrame(opcode: number, payload: Uint8Array, options: FrameOptions = {}): Uint8Array {
  const mask = options.mask ?? null;
  const headLength = frameHeadLength(payload.length, mask !== null);
  const frame = new Uint8Array(headLength + payload.length);
  writeFrameHead(frame, 0, opcode, payload.length, options);
  frame.set(payload, headLength);
  if (mask !== null) unmask(frame, headLength, frame.length, mask, 0);
  return frame;
}

/**
 * The payload of a close frame (RFC 6455 §5.5.1): the code, then the reason in UTF-8.
 *
 * @param code A code for the wire ({@link isValidCloseCode}), or 1005 for an empty body.
 * @param reason At most 123 bytes of UTF-8.
 * @returns The payload.
 * @throws {RangeError} When the code may not be sent or the reason is too long.
 *
 * @example
 * ```ts
 * import { closePayload } from "./websocket_frames.ts";
 * console.log(closePayload(1000, "bye")); // Uint8Array [3, 232, 98, 121, 101]
 * ```
 */
export function closePayload(code: number, reason = ""): Uint8Array {
  if (code === CloseCode.NoStatus) {
    if (reason !== "") throw new RangeError("a close without a code cannot carry a reason");
    return EMPTY;
  }
  if (!isValidCloseCode(code)) throw new RangeError(`close code ${code} may not be sent`);
  const text = new TextEncoder().encode(reason);
  if (text.length > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(`close reason of ${text.length} bytes (at most ${MAX_CLOSE_REASON_BYTES})`);
  }
  const payload = new Uint8Array(2 + text.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return payload;
}
