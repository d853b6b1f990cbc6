// Content types by file name, from mime-db (pinned in deno.json): the type a file is sent with, its charset,
// and whether compressing it pays. It owns the extension table; it never reads a file (no Deno.*), so a
// name's type never depends on its bytes (file answers carry nosniff).
import db from "mime-db";

type MimeEntry = { source?: string; extensions?: string[]; compressible?: boolean; charset?: string };

const DB = db as Record<string, MimeEntry>;
const OCTET_STREAM = "application/octet-stream";
/** Server-sent events (WHATWG HTML §9.2): never compressed, see {@link isCompressible}. */
const EVENT_STREAM = "text/event-stream";

// Extension → type, preferring IANA over Apache over nginx sources, as the mime-types package does.
const SOURCE_RANK = ["nginx", "apache", undefined, "iana"];
const BY_EXTENSION = new Map<string, { mime: string; contentType: string }>();
for (const [type, entry] of Object.entries(DB)) {
  for (const ext of entry.extensions ?? []) {
    const prev = BY_EXTENSION.get(ext);
    if (prev) {
      const from = SOURCE_RANK.indexOf(DB[prev.mime].source);
      const to = SOURCE_RANK.indexOf(entry.source);
      if (
        prev.mime !== OCTET_STREAM &&
        (from > to || (from === to && prev.mime.startsWith("application/")))
      ) continue;
    }
    // Text is sent as UTF-8, and so are the types mime-db marks UTF-8 (text/javascript, application/json).
    const textual = type.startsWith("text/") || entry.charset?.toUpperCase() === "UTF-8";
    BY_EXTENSION.set(ext, { mime: type, contentType: textual ? `${type}; charset=utf-8` : type });
  }
}

/**
 * The `Content-Type` to send a file with, by its extension (case-insensitive), from mime-db: IANA's type
 * before Apache's before nginx's when they differ, as the `mime-types` package chooses. Text types and types
 * mime-db marks UTF-8 get `; charset=utf-8`. A name without a known extension is `application/octet-stream`.
 *
 * @param name A file name or path: only what follows its last dot counts.
 * @returns The header value, e.g. `text/css; charset=utf-8`.
 *
 * @example
 * ```ts
 * import { contentTypeFor } from "./mime.ts";
 * contentTypeFor("style.css"); // "text/css; charset=utf-8"
 * contentTypeFor("images/logo.SVG"); // "image/svg+xml"
 * contentTypeFor("README"); // "application/octet-stream"
 * ```
 */
export function contentTypeFor(name: string): string {
  const dot = name.lastIndexOf(".");
  if (dot < 0) return OCTET_STREAM;
  return BY_EXTENSION.get(name.slice(dot + 1).toLowerCase())?.contentType ?? OCTET_STREAM;
}

/**
 * Whether a body of this type is worth compressing: the types mime-db marks compressible, and all `text/*`.
 * `application/octet-stream` never is, although mime-db marks it so: opaque binaries rarely shrink. Nor is
 * `text/event-stream`: a compressor holds bytes back until it has a block's worth, and each server-sent
 * event must reach the client when it is sent.
 * Parameters (`; charset=utf-8`) and case are ignored.
 *
 * @param contentType A `Content-Type` value, e.g. from {@link contentTypeFor}.
 * @returns True when gzip or brotli should be tried.
 *
 * @example
 * ```ts
 * import { isCompressible } from "./mime.ts";
 * isCompressible("text/css; charset=utf-8"); // true
 * isCompressible("image/png"); // false
 * ```
 */
export function isCompressible(contentType: string): boolean {
  const semi = contentType.indexOf(";");
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === OCTET_STREAM || type === EVENT_STREAM) return false;
  return type.startsWith("text/") || (Object.hasOwn(DB, type) && DB[type].compressible === true);
}
