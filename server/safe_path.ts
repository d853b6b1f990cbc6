// The path jail's pure half: turn a request's URL path into segments under a root, or refuse it.
// It owns decoding (exactly once) and dot-segment resolution; it never touches the disk, so the symlink
// check (realPath) lives in static.ts. It must never return a path that climbs above the root.

/**
 * The outcome of {@link resolveSafePath}: either the cleaned path below the root, or a refusal with the
 * status to answer and a short reason for the security log.
 *
 * @example
 * ```ts
 * import { resolveSafePath, type SafePath } from "./safe_path.ts";
 * const r: SafePath = resolveSafePath("/images/pier.svg");
 * if (r.ok) console.log(r.segments.join("/")); // "images/pier.svg"
 * ```
 */
export type SafePath =
  | {
    ok: true;
    /** The decoded, cleaned segments below the root (no `""`, `"."` or `".."`). */
    segments: string[];
    /** True when the request path ended in `/` (it names a directory). */
    trailingSlash: boolean;
  }
  | {
    ok: false;
    /** 400 for a target that cannot be decoded, 403 for one refused by policy, 404 for hidden files. */
    status: 400 | 403 | 404;
    /** Why, for the log; never sent to the client. */
    reason: string;
  };

const HEX: Record<string, number> = {};
for (let i = 0; i < 16; i++) {
  HEX[i.toString(16)] = i;
  HEX[i.toString(16).toUpperCase()] = i;
}

const encoder = new TextEncoder();
// fatal: true makes overlong forms (%c0%ae), surrogates and truncated sequences throw (RFC 3629 §3).
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Percent-decode a URL path exactly once into bytes, then into strict UTF-8.
 *
 * @param path The path as it appears in the request URL (still percent-encoded).
 * @returns The decoded string, or `null` when a `%` is not followed by two hex digits or the bytes are not
 *   valid UTF-8 (overlong forms included).
 *
 * @example
 * ```ts
 * import { decodePathOnce } from "./safe_path.ts";
 * console.log(decodePathOnce("/a%20b")); // "/a b"
 * console.log(decodePathOnce("/%c0%ae")); // null: overlong UTF-8
 * console.log(decodePathOnce("/%252e")); // "/%2e": decoded once only
 * ```
 */
export function decodePathOnce(path: string): string | null {
  if (!path.includes("%")) {
    return path;
  }
  const out: number[] = [];
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25) {
      const hi = HEX[path[i + 1]];
      const lo = HEX[path[i + 2]];
      if (hi === undefined || lo === undefined) return null;
      out.push(hi * 16 + lo);
      i += 2;
    } else if (c < 0x80) {
      out.push(c);
    } else {
      // A URL serializer never leaves raw non-ASCII in a path, but a raw target might: keep its UTF-8.
      const cp = path.codePointAt(i)!;
      if (cp > 0xffff) i++;
      out.push(...encoder.encode(String.fromCodePoint(cp)));
    }
  }
  try {
    return strictUtf8.decode(new Uint8Array(out));
  } catch {
    return null;
  }
}

/**
 * Map a request's URL path onto segments below a root, refusing every way out.
 *
 * The path is decoded once (so `%252e` stays the literal `%2e`), control characters (NUL included) and
 * backslashes are refused, dot-segments are resolved (RFC 3986 §5.2.4), and a `..` that would climb above
 * the root is refused. A segment starting with `.` (a dotfile, `.git`, `.env`) is answered 404.
 *
 * @param pathname The URL path, still percent-encoded, e.g. `new URL(req.url).pathname`.
 * @returns The cleaned segments, or a refusal carrying the status to answer.
 *
 * @example
 * ```ts
 * import { resolveSafePath } from "./safe_path.ts";
 * console.log(resolveSafePath("/images/../style.css")); // { ok: true, segments: ["style.css"], ... }
 * console.log(resolveSafePath("/..%2fsecret.txt")); // { ok: false, status: 403, ... }
 * ```
 */
export function resolveSafePath(pathname: string): SafePath {
  if (!pathname.startsWith("/")) {
    return { ok: false, status: 400, reason: "target does not start with /" };
  }
  // A raw backslash is refused before decoding too: some parsers turn it into "/".
  if (pathname.includes("\\")) {
    return { ok: false, status: 403, reason: "backslash in target" };
  }
  const decoded = decodePathOnce(pathname);
  if (decoded === null) {
    return { ok: false, status: 400, reason: "bad percent-encoding or invalid UTF-8" };
  }
  if (decoded.includes("\\")) {
    return { ok: false, status: 403, reason: "encoded backslash in target" };
  }
  // NUL would truncate the path in C; other controls have no place in a file name we publish.
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(decoded)) {
    return { ok: false, status: 403, reason: "control character in target" };
  }
  const segments: string[] = [];
  const parts = decoded.split("/");
  for (const part of parts) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (segments.length === 0) {
        return { ok: false, status: 403, reason: "dot-segment leaves the root" };
      }
      segments.pop();
      continue;
    }
    segments.push(part);
  }
  if (segments.some((s) => s.startsWith("."))) {
    return { ok: false, status: 404, reason: "dotfile" };
  }
  const last = parts[parts.length - 1];
  return { ok: true, segments, trailingSlash: last === "" || last === "." || last === ".." };
}

/**
 * Whether `child` is `root` itself or lies below it. Both must be absolute, resolved paths (as
 * `Deno.realPath` returns them); a sibling that only shares a prefix (`/srv/static2`) is outside.
 *
 * @param root The resolved root directory.
 * @param child The resolved path to check.
 * @returns True when `child` is inside `root`.
 *
 * @example
 * ```ts
 * import { isInside } from "./safe_path.ts";
 * console.log(isInside("/srv/static", "/srv/static/a.css")); // true
 * console.log(isInside("/srv/static", "/srv/static2/a.css")); // false
 * ```
 */
export function isInside(root: string, child: string): boolean {
  if (child === root) return true;
  const base = root.endsWith("/") ? root : root + "/";
  return child.startsWith(base);
}

/**
 * Split a serialized request URL (`http://host/p?q#f`) into its path and query without building a `URL`:
 * the path starts at the first `/` after the authority, and a `#fragment` belongs to neither.
 *
 * @param url The request's URL, e.g. `request.url`.
 * @returns The path as sent (still percent-encoded, `/` when empty) and the query with its `?`, or `""`.
 *
 * @example
 * ```ts
 * import { splitUrl } from "./safe_path.ts";
 * console.log(splitUrl("http://localhost/a%20b?x=1")); // { pathname: "/a%20b", search: "?x=1" }
 * ```
 */
export function splitUrl(url: string): { pathname: string; search: string } {
  const schemeEnd = url.indexOf("://");
  const pathStart = schemeEnd >= 0 ? url.indexOf("/", schemeEnd + 3) : url.indexOf("/");
  if (pathStart < 0) return { pathname: "/", search: "" };
  const q = url.indexOf("?", pathStart);
  const h = url.indexOf("#", pathStart);
  const stop = q >= 0 ? q : h >= 0 ? h : url.length;
  const searchEnd = h >= 0 && h > stop ? h : url.length;
  return { pathname: url.slice(pathStart, stop), search: q >= 0 ? url.slice(q, searchEnd) : "" };
}
