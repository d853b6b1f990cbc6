// Deno's core read, write and decode ops, reached the way Deno's own Deno.Conn and TextDecoder reach them:
// a plain TCP connection's reads and writes skip Deno.Conn's wrappers, and ASCII heads skip TextDecoder's
// checks. Found once and self-tested; when this Deno's internals differ, the public API is used instead.
// deno-lint-ignore-file no-explicit-any

/** The ops, as Deno's core object holds them. */
interface CoreOps {
  read(rid: number, buf: Uint8Array): Promise<number>;
  write(rid: number, buf: Uint8Array): Promise<number>;
  decode?(buf: Uint8Array): string;
  resources?(): Record<number, string>;
}

const core: CoreOps | null = (() => {
  try {
    const c = (Deno as any)[(Deno as any).internal]?.core;
    return typeof c?.read === "function" && typeof c?.write === "function" ? c : null;
  } catch {
    return null;
  }
})();

const textDecoder = new TextDecoder();
/** Deno's own UTF-8 decoder op (what `TextDecoder` ends in, without its option checks), if it checks out. */
const coreDecode: ((buf: Uint8Array) => string) | null = (() => {
  const decode = core?.decode;
  if (typeof decode !== "function") return null;
  try {
    const probe = new Uint8Array([71, 69, 84, 32, 47, 32, 72, 84, 84, 80, 47, 49, 46, 49, 13, 10]);
    return decode.call(core, probe.subarray(4, 14)) === "/ HTTP/1.1" ? (b) => decode.call(core, b) : null;
  } catch {
    return null;
  }
})();

/**
 * Decode bytes that are all ASCII (the parser checked) into a string: Deno's decoder op directly, which
 * skips `TextDecoder.decode`'s argument checks (about 50 ns of a request's head), or `TextDecoder`.
 *
 * @param bytes ASCII bytes.
 * @returns The string, one char per byte.
 *
 * @example
 * ```ts
 * import { decodeAscii } from "./_ops.ts";
 * console.log(decodeAscii(new Uint8Array([71, 69, 84]))); // "GET"
 * ```
 */
export function decodeAscii(bytes: Uint8Array): string {
  return coreDecode !== null ? coreDecode(bytes) : textDecoder.decode(bytes);
}

/** The symbol under which a TcpConn keeps its resource id, found on the first connection. */
let ridSymbol: symbol | null = null;
/** Whether the raw ops are used: found, not switched off, and (after the first connection) checked. */
let rawOps = core !== null;
/** Why the raw ops are off, when detection or the self-test failed; null when they work or are untried. */
let rawOpsProblem: string | null = core === null ? "Deno's core read and write ops were not found" : null;

/**
 * The resource id of a plain TCP or Unix connection, for {@link readOp} and {@link writeOp}: they skip
 * `Deno.Conn`'s `read` and `write` wrappers (an extra async function each, and the bookkeeping that
 * `unref()` needs, which the server never uses) and call the same ops, with the same errors. -1 when the
 * ops are off or differ, or the connection is TLS (which keeps its own reader and writer).
 *
 * The symbol is looked up once, on the first connection, and its id checked against Deno's resource table
 * (it must name a "tcpStream", or a "unixStream"); later connections read the id directly.
 *
 * @param conn The accepted connection.
 * @returns The resource id, or -1.
 *
 * @example
 * ```ts ignore
 * const rid = rawRid(conn);
 * const n = rid >= 0 ? await readOp(rid, buf) : await conn.read(buf);
 * ```
 */
export function rawRid(conn: Deno.Conn): number {
  const kind = conn.constructor?.name;
  if (!rawOps || (kind !== "TcpConn" && kind !== "UnixConn")) return -1;
  if (ridSymbol === null) {
    const found = Object.getOwnPropertySymbols(conn).find((s) => s.description === "Deno.internal.rid");
    const rid = found === undefined ? undefined : (conn as any)[found];
    let resource: string | undefined;
    try {
      resource = typeof rid === "number" ? core!.resources?.()[rid] : undefined;
    } catch { /* no resource table: the check fails below */ }
    if (found === undefined || resource !== (kind === "TcpConn" ? "tcpStream" : "unixStream")) {
      rawOps = false;
      rawOpsProblem = "a TCP connection's resource id was not found where Pier looks for it";
      return -1;
    }
    ridSymbol = found;
    return rid as number;
  }
  const rid = (conn as any)[ridSymbol];
  return typeof rid === "number" ? rid : -1;
}

/**
 * Read from the connection whose {@link rawRid} is `rid` into `buf`.
 *
 * @param rid From {@link rawRid}, not -1.
 * @param buf Where the bytes go.
 * @returns The bytes read; 0 at the end of the stream.
 *
 * @example
 * ```ts ignore
 * const n = await readOp(rawRid(conn), new Uint8Array(4096));
 * ```
 */
export function readOp(rid: number, buf: Uint8Array): Promise<number> {
  return core!.read(rid, buf);
}

/**
 * Write (some of) `buf` to the connection whose {@link rawRid} is `rid`.
 *
 * @param rid From {@link rawRid}, not -1.
 * @param buf The bytes to send.
 * @returns How many bytes were written, as `Deno.Conn.write` answers.
 *
 * @example
 * ```ts ignore
 * const n = await writeOp(rawRid(conn), new TextEncoder().encode("HTTP/1.1 204 No Content\r\n\r\n"));
 * ```
 */
export function writeOp(rid: number, buf: Uint8Array): Promise<number> {
  return core!.write(rid, buf);
}

/**
 * Turn the raw ops off (the public `Deno.Conn` methods are used) or on again, if they were found and
 * passed their check. For tests and the "public API" benchmark row.
 *
 * @param enabled False to use only the public API.
 *
 * @example
 * ```ts ignore
 * setRawOps(false);
 * ```
 */
export function setRawOps(enabled: boolean): void {
  rawOps = enabled && core !== null && rawOpsProblem === null;
}

/**
 * Why the raw ops are off because this Deno differs from what Pier knows, or null.
 *
 * @returns A sentence for the startup warning, or null.
 *
 * @example
 * ```ts
 * import { rawOpsFailure } from "./_ops.ts";
 * console.log(rawOpsFailure()); // null on the Deno Pier was built for
 * ```
 */
export function rawOpsFailure(): string | null {
  return rawOpsProblem;
}
