// Static files: maps GET/HEAD under a root folder to files, with validators, ranges and compression.
// It owns the disk half of the path jail (realPath must stay inside the root) and a bounded cache of small
// files. It must never serve a file outside the root, a dotfile or a listing, and never answer a malformed
// target with a 500.
import db from "mime-db";
import { promisify } from "node:util";
import { brotliCompress, constants as zlibConstants, gzip } from "node:zlib";
import type { Handler, ServeHandlerInfo } from "./types.ts";
import { isInside, resolveSafePath } from "./safe_path.ts";

/**
 * A `Cache-Control` value for URL paths matching `pattern` (tested against the served path).
 *
 * @example
 * ```ts
 * import type { CacheControlRule } from "./static.ts";
 * const rule: CacheControlRule = { pattern: /\.woff2$/, value: "public, max-age=31536000, immutable" };
 * ```
 */
export interface CacheControlRule {
  /** Tested against the URL path of the file served, e.g. `/app.3f2a9c1b.js` or `/index.html`. */
  pattern: RegExp;
  /** The `Cache-Control` header value to send. */
  value: string;
}

/**
 * The default `Cache-Control` rules, first match wins: fingerprinted names (`app.3f2a9c1b.js`, eight or
 * more hex digits before the extension) are immutable for a year; HTML revalidates every time (`no-cache`
 * still allows a cheap 304); everything else may be reused for ten minutes.
 *
 * @example
 * ```ts
 * import { DEFAULT_CACHE_CONTROL, serveStatic } from "./static.ts";
 * const handler = serveStatic("static", {
 *   cacheControl: [{ pattern: /^\/downloads\//, value: "no-store" }, ...DEFAULT_CACHE_CONTROL],
 * });
 * ```
 */
export const DEFAULT_CACHE_CONTROL: readonly CacheControlRule[] = [
  { pattern: /\.[0-9a-f]{8,}\.[a-z0-9]+$/i, value: "public, max-age=31536000, immutable" },
  { pattern: /\.html?$/i, value: "no-cache" },
  { pattern: /.*/, value: "public, max-age=600" },
];

/**
 * A refused request, as given to {@link StaticOptions.onSecurityEvent}.
 *
 * @example
 * ```ts
 * import { type SecurityEvent, serveStatic } from "./static.ts";
 * const refused: SecurityEvent[] = [];
 * const handler = serveStatic("static", { onSecurityEvent: (e) => refused.push(e) });
 * ```
 */
export interface SecurityEvent {
  /** The status answered (400, 403 or 404). */
  status: number;
  /** Why it was refused (for the log only, never sent to the client). */
  reason: string;
  /** The client address (`info.remoteAddr.hostname`). */
  client: string;
  /** The request target as the handler received it (path and query). */
  target: string;
}

/**
 * Options for {@link serveStatic} and {@link staticFiles}. Every field has a default; `{}` is valid.
 *
 * @example
 * ```ts
 * import type { StaticOptions } from "./static.ts";
 * const options: StaticOptions = { cacheMaxBytes: 64 * 1024 * 1024, compressMinBytes: 2048 };
 * ```
 */
export interface StaticOptions {
  /** File served for a directory whose URL ends in `/`. Default `index.html`. */
  index?: string;
  /** `Cache-Control` rules, first match wins. Default {@link DEFAULT_CACHE_CONTROL}. */
  cacheControl?: readonly CacheControlRule[];
  /** Compress compressible types on the fly (gzip, brotli). Default true. Siblings are served anyway. */
  compress?: boolean;
  /** Smallest file compressed on the fly: below 1 KiB the headers outweigh the saving. Default 1024. */
  compressMinBytes?: number;
  /**
   * Largest file kept in memory; larger files are streamed from disk. Default 2 MiB: a site's images and
   * bundles are answered from memory in one write (a 1 MiB file costs ~5x less CPU than streaming it),
   * while the whole cache stays within `cacheMaxBytes`.
   */
  cacheMaxFileBytes?: number;
  /** Memory budget of the cache, compressed variants included. Default 32 MiB. */
  cacheMaxBytes?: number;
  /** Most entries (files' metadata) remembered. Default 4096. */
  cacheMaxEntries?: number;
  /**
   * How long a cached file is trusted before it is checked again with a `stat`, in ms. Default 1000: a
   * changed, replaced or deleted file is noticed within a second (nginx's `open_file_cache_valid` makes the
   * same trade, with 60 s). The `stat` is the largest cost of a cache hit (~4 µs of ~12 on the event loop);
   * 0 checks on every request.
   */
  cacheRevalidateMs?: number;
  /** Read size when streaming a large file: one read per pull keeps memory flat. Default 256 KiB. */
  chunkBytes?: number;
  /** Called for every refused target. Default: one `console.warn` line. */
  onSecurityEvent?: (event: SecurityEvent) => void;
}

type Encoding = "br" | "gzip";
type Bytes = Uint8Array<ArrayBuffer>;

interface Sibling {
  real: string;
  size: number;
  mtimeMs: number;
  ino: number | null;
  etag: string;
  body: Bytes | null;
}

interface Entry {
  /** The path the request names (index appended), stat'ed on every hit to notice changes. */
  path: string;
  /** The resolved path of the file (symlinks followed, checked inside the root). */
  real: string;
  ino: number | null;
  dev: number;
  mtimeMs: number;
  size: number;
  etag: string;
  lastModified: string;
  /** Last-Modified in whole seconds, as HTTP dates carry it. */
  lastModifiedSec: number;
  contentType: string;
  compressible: boolean;
  cacheControl: string;
  /** The identity bytes when the file is small enough to keep. */
  body: Bytes | null;
  /** On-the-fly compression in progress (small files only). */
  encoding: Partial<Record<Encoding, Promise<Bytes | null>>>;
  /** On-the-fly compressed variants once done: null when not smaller than the file (or it failed). */
  encoded: Partial<Record<Encoding, Bytes | null>>;
  precompressed: Partial<Record<Encoding, Sibling>>;
  bytes: number;
  /** When the file was last found unchanged (Date.now()); see `cacheRevalidateMs`. */
  checkedAt: number;
  /**
   * Full 200 answers from memory, built once and cloned per request: Deno's `new Response` with six
   * headers costs ~10 µs, a clone ~0.3 µs, and a clone shares the body bytes.
   */
  templates: Map<string, Response>;
}

/** A fresh copy of the entry's template answer for `key`, made by `make` the first time. */
function fromTemplate(entry: Entry, key: string, make: () => Response): Response {
  let t = entry.templates.get(key);
  if (t === undefined) {
    t = make();
    entry.templates.set(key, t);
  }
  return t.clone();
}

type MimeEntry = { source?: string; extensions?: string[]; compressible?: boolean; charset?: string };

// Extension → type, preferring IANA over Apache over nginx sources, as the mime-types package does.
const SOURCE_RANK = ["nginx", "apache", undefined, "iana"];
const TYPES = new Map<string, { mime: string; type: string; compressible: boolean }>();
for (const [type, entry] of Object.entries(db as Record<string, MimeEntry>)) {
  for (const ext of entry.extensions ?? []) {
    const prev = TYPES.get(ext);
    if (prev) {
      const from = SOURCE_RANK.indexOf((db as Record<string, MimeEntry>)[prev.mime].source);
      const to = SOURCE_RANK.indexOf(entry.source);
      if (
        prev.mime !== "application/octet-stream" &&
        (from > to || (from === to && prev.mime.startsWith("application/")))
      ) continue;
    }
    const textual = type.startsWith("text/") || entry.charset?.toUpperCase() === "UTF-8";
    // mime-db marks octet-stream compressible; opaque binaries rarely shrink, so we do not try.
    const compressible = type !== "application/octet-stream" &&
      (entry.compressible === true || type.startsWith("text/"));
    TYPES.set(ext, {
      mime: type,
      type: textual ? `${type}; charset=utf-8` : type,
      compressible,
    });
  }
}

function mimeFor(name: string): { mime: string; type: string; compressible: boolean } {
  const dot = name.lastIndexOf(".");
  const ext = dot >= 0 ? name.slice(dot + 1).toLowerCase() : "";
  return TYPES.get(ext) ??
    { mime: "application/octet-stream", type: "application/octet-stream", compressible: false };
}

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

async function compressBytes(data: Bytes, encoding: Encoding): Promise<Bytes | null> {
  const out: Uint8Array = encoding === "gzip"
    ? await gzipAsync(data, { level: 9 })
    : await brotliAsync(data, {
      params: {
        [zlibConstants.BROTLI_PARAM_QUALITY]: 11,
        [zlibConstants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    });
  // Worth sending only when smaller; the result is computed once per file version and cached.
  return out.length < data.length
    ? new Uint8Array(out.buffer as ArrayBuffer, out.byteOffset, out.length)
    : null;
}

/** Pick an encoding from Accept-Encoding (RFC 9110 §12.5.3): highest q wins, br before gzip on a tie. */
function negotiate(header: string | null, available: readonly Encoding[]): Encoding | null {
  if (!header || available.length === 0) return null;
  let best: Encoding | null = null;
  let bestQ = 0;
  let star = -1;
  const q: Partial<Record<Encoding, number>> = {};
  for (const part of header.split(",")) {
    const [rawName, ...params] = part.split(";");
    const name = rawName.trim().toLowerCase();
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) weight = Number(m[1]);
    }
    if (!Number.isFinite(weight)) weight = 0;
    if (name === "*") star = weight;
    else if (name === "br" || name === "gzip") q[name] = weight;
    else if (name === "x-gzip") q.gzip = q.gzip ?? weight;
  }
  for (const enc of ["br", "gzip"] as const) {
    if (!available.includes(enc)) continue;
    const w = q[enc] ?? (star >= 0 ? star : 0);
    if (w > bestQ) {
      best = enc;
      bestQ = w;
    }
  }
  return best;
}

/** Parse an entity-tag list (If-Match / If-None-Match); `*` is returned as the string "*". */
function parseEtags(header: string): "*" | { weak: boolean; tag: string }[] {
  if (header.trim() === "*") return "*";
  const tags: { weak: boolean; tag: string }[] = [];
  // Commas may appear inside an opaque tag (etagc allows 0x2C), so match tags instead of splitting.
  for (const m of header.matchAll(/(W\/)?("[^"]*")/g)) tags.push({ weak: m[1] !== undefined, tag: m[2] });
  return tags;
}

/** RFC 9110 §8.8.3.2: strong comparison needs both tags strong; weak comparison ignores W/. */
function etagMatches(header: string, etag: string, strong: boolean): boolean {
  const tags = parseEtags(header);
  if (tags === "*") return true;
  return tags.some((t) => t.tag === etag && (!strong || !t.weak));
}

function parseHttpDate(value: string | null): number | null {
  if (value === null) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

type RangeResult = { kind: "none" } | { kind: "range"; start: number; end: number } | {
  kind: "unsatisfiable";
};

/**
 * RFC 9110 §14.1.2: one `bytes=` range gives [start, end] inclusive. Several ranges, other units and bad
 * syntax are ignored (a 200 with the whole file, which the RFC allows).
 */
function parseRange(header: string, size: number): RangeResult {
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return { kind: "none" };
  const specs = m[1].split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (specs.length !== 1) return { kind: "none" };
  const r = /^(\d*)-(\d*)$/.exec(specs[0]);
  if (!r || (r[1] === "" && r[2] === "")) return { kind: "none" };
  if (r[1] === "") {
    const suffix = Number(r[2]);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "range", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(r[1]);
  const last = r[2] === "" ? Infinity : Number(r[2]);
  if (last < start) return { kind: "none" };
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "range", start, end: Math.min(last, size - 1) };
}

/**
 * A stream over [start, end) of a file that reads one chunk per `pull`, so a slow client holds one chunk
 * in memory, not the file. The file is opened on first pull and closed at the end, on error or on cancel.
 * Reads are synchronous on purpose: from the page cache a 256 KiB read takes tens of microseconds, while
 * each async file op pays a ~50 µs thread-pool round trip (nginx without aio blocks on reads the same way).
 */
function fileStream(path: string, start: number, end: number, chunkBytes: number): ReadableStream<Bytes> {
  let file: Deno.FsFile | null = null;
  let pos = start;
  const close = () => {
    if (file) {
      try {
        file.close();
      } catch { /* already closed */ }
      file = null;
    }
  };
  return new ReadableStream<Bytes>({
    pull(controller) {
      try {
        if (file === null) {
          file = Deno.openSync(path, { read: true });
          if (pos > 0) file.seekSync(pos, Deno.SeekMode.Start);
        }
        const want = Math.min(chunkBytes, end - pos);
        if (want <= 0) {
          close();
          controller.close();
          return;
        }
        const buf = new Uint8Array(want);
        const n = file.readSync(buf);
        if (n === null) {
          // The file shrank under us: fail the body so the connection is cut rather than mis-framed.
          close();
          controller.error(new Error(`file shrank while streaming: ${path}`));
          return;
        }
        pos += n;
        controller.enqueue(n === want ? buf : buf.subarray(0, n));
        if (pos >= end) {
          close();
          controller.close();
        }
      } catch (err) {
        close();
        controller.error(err);
      }
    },
    cancel() {
      close();
    },
  }, { highWaterMark: 1 });
}

function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory;
}

function isDenied(err: unknown): boolean {
  return err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied;
}

/** Where the request path starts in a serialized URL (`http://host/p?q`): after the authority. */
function splitUrl(url: string): { pathname: string; search: string } {
  const schemeEnd = url.indexOf("://");
  const pathStart = schemeEnd >= 0 ? url.indexOf("/", schemeEnd + 3) : url.indexOf("/");
  if (pathStart < 0) return { pathname: "/", search: "" };
  const q = url.indexOf("?", pathStart);
  const h = url.indexOf("#", pathStart);
  const stop = q >= 0 ? q : h >= 0 ? h : url.length;
  const searchEnd = h >= 0 && h > stop ? h : url.length;
  return { pathname: url.slice(pathStart, stop), search: q >= 0 ? url.slice(q, searchEnd) : "" };
}

const ALLOW = "GET, HEAD";
/** Longest target or reason written to a log line: an attacker's 8 KB path must not flood the log. */
const MAX_LOGGED = 200;
const clip = (s: string) => s.length <= MAX_LOGGED ? s : `${s.slice(0, MAX_LOGGED)}… (${s.length} chars)`;

/**
 * Create a static-file responder that returns `null` when no file matches, so a router can fall through
 * to its own routes (or its own 404). Methods other than GET and HEAD also give `null`.
 *
 * Refused targets are answered here, never passed on: 400 for a target that cannot be decoded (bad
 * percent-encoding, invalid or overlong UTF-8), 403 for one that tries to leave the root (`..` above the
 * root, NUL and other controls, backslashes), 404 for dotfiles and for symlinks that resolve outside the
 * root (so nothing about the disk outside is revealed). Each refusal logs a security line.
 *
 * @param root The folder served at the site root, e.g. `"static"` (relative to the working directory).
 * @param options Index file, Cache-Control rules, compression and cache limits; all optional.
 * @returns A function from a request and its connection info to a response, or `null` to fall through
 *   (a fresh cache hit answers synchronously, anything else with a promise: `await` the result).
 *
 * @example
 * ```ts ignore
 * import { staticFiles } from "./static.ts";
 * const files = staticFiles("static");
 * Deno.serve(async (req, info) => (await files(req, info)) ?? new Response("Not Found", { status: 404 }));
 * ```
 */
export function staticFiles(
  root: string,
  options: StaticOptions = {},
): (request: Request, info: ServeHandlerInfo) => Response | null | Promise<Response | null> {
  const index = options.index ?? "index.html";
  const cacheRules = options.cacheControl ?? DEFAULT_CACHE_CONTROL;
  const compress = options.compress ?? true;
  const compressMin = options.compressMinBytes ?? 1024;
  const maxFile = options.cacheMaxFileBytes ?? 2 * 1024 * 1024;
  const maxBytes = options.cacheMaxBytes ?? 32 * 1024 * 1024;
  const maxEntries = options.cacheMaxEntries ?? 4096;
  const revalidateMs = options.cacheRevalidateMs ?? 1000;
  const chunkBytes = options.chunkBytes ?? 256 * 1024;
  const onSecurityEvent = options.onSecurityEvent ?? ((e: SecurityEvent) => {
    console.warn(
      `[security] static: ${e.status} ${clip(e.reason)} client=${e.client} target=${
        JSON.stringify(clip(e.target))
      }`,
    );
  });

  // Keyed by the canonical URL path (see miss); insertion order is the LRU order (a hit re-inserts).
  const cache = new Map<string, Entry>();
  let cachedBytes = 0;
  let rootReal: Promise<string> | null = null;

  const forget = (key: string) => {
    const e = cache.get(key);
    if (e) {
      cachedBytes -= e.bytes;
      cache.delete(key);
    }
  };
  const remember = (key: string, entry: Entry) => {
    forget(key);
    cache.set(key, entry);
    cachedBytes += entry.bytes;
    for (const [k] of cache) {
      if (cachedBytes <= maxBytes && cache.size <= maxEntries) break;
      forget(k);
    }
  };
  const account = (key: string, entry: Entry, delta: number) => {
    entry.bytes += delta;
    if (cache.get(key) === entry) {
      cachedBytes += delta;
      for (const [k] of cache) {
        if (cachedBytes <= maxBytes) break;
        if (k !== key) forget(k);
        else break;
      }
    }
  };

  const refuse = (status: number, reason: string, client: string, target: string): Response => {
    onSecurityEvent({ status, reason, client, target });
    const text = status === 400 ? "Bad Request" : status === 403 ? "Forbidden" : "Not Found";
    return new Response(text, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
  };

  const cacheControlFor = (urlPath: string): string => {
    for (const rule of cacheRules) if (rule.pattern.test(urlPath)) return rule.value;
    return "no-cache";
  };

  /** Resolve a candidate file and check it stays in the root; `null` when it is not a servable file. */
  const inspectSibling = async (path: string, base: string): Promise<Sibling | null> => {
    try {
      const real = await Deno.realPath(path);
      if (!isInside(base, real)) return null;
      const st = await Deno.stat(real);
      if (!st.isFile) return null;
      const mtimeMs = st.mtime?.getTime() ?? 0;
      const body = st.size <= maxFile ? await Deno.readFile(real) : null;
      if (body && body.length !== st.size) return null;
      return {
        real,
        size: st.size,
        mtimeMs,
        ino: st.ino,
        etag: `"${st.size.toString(16)}-${Math.floor(mtimeMs).toString(16)}`,
        body,
      };
    } catch {
      return null;
    }
  };

  type Lookup =
    | { kind: "entry"; entry: Entry }
    | { kind: "redirect"; location: string }
    | { kind: "missing" }
    | { kind: "refused"; status: number; reason: string };

  const load = async (segments: string[], trailingSlash: boolean): Promise<Lookup> => {
    rootReal ??= Deno.realPath(root);
    let base: string;
    try {
      base = await rootReal;
    } catch (err) {
      rootReal = null;
      console.error(`static: root ${JSON.stringify(root)} is not readable: ${err}`);
      return { kind: "missing" };
    }
    let path = segments.length ? `${base}/${segments.join("/")}` : base;
    let urlPath = "/" + segments.join("/");
    let real = "";
    let st: Deno.FileInfo;
    // The second half of the jail: a symlink may point anywhere, so the resolved path must stay inside
    // (and must not land on a dotfile). Resolve before any stat so nothing outside is even looked at.
    const jail = async (p: string): Promise<string | null> => {
      const r = await Deno.realPath(p);
      if (!isInside(base, r)) return null;
      if (r.slice(base.length).split("/").some((s) => s.startsWith("."))) return null;
      return r;
    };
    try {
      const resolved = await jail(path);
      if (resolved === null) return { kind: "refused", status: 404, reason: "resolves outside the root" };
      real = resolved;
      st = await Deno.stat(real);
      if (st.isDirectory) {
        if (!trailingSlash) {
          // A relative Location (the last segment plus "/") cannot be turned into an open redirect.
          return { kind: "redirect", location: `${encodeURIComponent(segments[segments.length - 1])}/` };
        }
        path = `${path}/${index}`;
        urlPath = `${urlPath === "/" ? "" : urlPath}/${index}`;
        const resolvedIndex = await jail(path);
        if (resolvedIndex === null) {
          return { kind: "refused", status: 404, reason: "index resolves outside the root" };
        }
        real = resolvedIndex;
        st = await Deno.stat(real);
      } else if (trailingSlash) {
        return { kind: "missing" };
      }
      if (!st.isFile) return { kind: "missing" };
    } catch (err) {
      if (isNotFound(err)) return { kind: "missing" };
      if (isDenied(err)) return { kind: "refused", status: 404, reason: `read not permitted: ${err}` };
      // ENAMETOOLONG, ELOOP and the like: the target is odd, not the server broken.
      // The error's text repeats the path: name the error only.
      return { kind: "refused", status: 404, reason: `lookup failed: ${(err as Error)?.name ?? "error"}` };
    }
    const mtimeMs = st.mtime?.getTime() ?? 0;
    let body: Bytes | null = null;
    if (st.size <= maxFile) {
      try {
        body = await Deno.readFile(real);
      } catch {
        return { kind: "missing" };
      }
      if (body.length !== st.size) body = null; // changing under us: stream it, do not keep it
    }
    const mime = mimeFor(path);
    const entry: Entry = {
      path,
      real,
      ino: st.ino,
      dev: st.dev,
      mtimeMs,
      size: st.size,
      etag: `"${st.size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`,
      lastModified: new Date(mtimeMs).toUTCString(),
      lastModifiedSec: Math.floor(mtimeMs / 1000),
      contentType: mime.type,
      compressible: mime.compressible,
      cacheControl: cacheControlFor(urlPath),
      body,
      encoding: {},
      encoded: {},
      precompressed: {},
      bytes: body?.length ?? 0,
      checkedAt: Date.now(),
      templates: new Map(),
    };
    const [br, gz] = await Promise.all([
      inspectSibling(`${real}.br`, base),
      inspectSibling(`${real}.gz`, base),
    ]);
    if (br) entry.precompressed.br = { ...br, etag: `${br.etag}-br"` };
    if (gz) entry.precompressed.gzip = { ...gz, etag: `${gz.etag}-gz"` };
    entry.bytes += (br?.body?.length ?? 0) + (gz?.body?.length ?? 0);
    return { kind: "entry", entry };
  };

  /**
   * A cached entry is still good when the file has the same identity, size and mtime: one stat per hit.
   * statSync on purpose: a local stat takes ~3 µs, while the async op's round trip costs ~50 µs and was
   * two thirds of a cached response's time (nginx stats synchronously too).
   */
  const fresh = (entry: Entry): boolean => {
    const now = Date.now();
    if (now - entry.checkedAt < revalidateMs) return true;
    try {
      const st = Deno.statSync(entry.path);
      const same = st.isFile && st.size === entry.size && (st.mtime?.getTime() ?? 0) === entry.mtimeMs &&
        st.ino === entry.ino && st.dev === entry.dev;
      if (same) entry.checkedAt = now;
      return same;
    } catch {
      return false;
    }
  };

  const siblingFresh = (s: Sibling): boolean => {
    try {
      const st = Deno.statSync(s.real);
      return st.size === s.size && (st.mtime?.getTime() ?? 0) === s.mtimeMs && st.ino === s.ino;
    } catch {
      return false;
    }
  };

  const miss = async (request: Request, info: ServeHandlerInfo, pathname: string, search: string) => {
    const client = info?.remoteAddr?.hostname ?? "unknown";
    const safe = resolveSafePath(pathname);
    if (!safe.ok) return refuse(safe.status, safe.reason, client, pathname + search);
    // One cache entry per file, however the path was spelled (`/%73tyle.css`, `/a/../style.css`): the key
    // is the canonical encoded path, which a plain request uses as is and which decodes to the same file.
    const key = "/" + safe.segments.map(encodeURIComponent).join("/") +
      (safe.trailingSlash && safe.segments.length > 0 ? "/" : "");
    if (key !== pathname) {
      const entry = cache.get(key);
      if (entry !== undefined && fresh(entry)) return await respond(request, key, entry);
    }
    const found = await load(safe.segments, safe.trailingSlash);
    if (found.kind === "missing") return null;
    if (found.kind === "refused") return refuse(found.status, found.reason, client, pathname + search);
    if (found.kind === "redirect") {
      return new Response(null, { status: 301, headers: { location: found.location + search } });
    }
    remember(key, found.entry);
    return await respond(request, key, found.entry);
  };

  // Not async: a fresh cache hit answers synchronously, which spares the engine an await per request.
  return function staticFiles(
    request: Request,
    info: ServeHandlerInfo,
  ): Response | null | Promise<Response | null> {
    const method = request.method;
    if (method !== "GET" && method !== "HEAD") return null;
    const { pathname, search } = splitUrl(request.url);
    // Keys are canonical paths that passed the jail, so a request spelled exactly so is safe to answer.
    const entry = cache.get(pathname);
    if (entry !== undefined) {
      if (fresh(entry)) {
        // Re-insert: Map order is the LRU order.
        cache.delete(pathname);
        cache.set(pathname, entry);
        return respond(request, pathname, entry);
      }
      forget(pathname);
    }
    return miss(request, info, pathname, search);
  };

  function respond(request: Request, key: string, entry: Entry): Response | Promise<Response> {
    const h = request.headers;
    const head = request.method === "HEAD";
    const rangeHeader = h.get("range");

    // Representation: never compress when a Range is asked for (the range is over the identity bytes).
    let encoding: Encoding | null = null;
    let sibling: Sibling | undefined;
    const varies = entry.compressible || entry.precompressed.br !== undefined ||
      entry.precompressed.gzip !== undefined;
    if (rangeHeader === null && varies) {
      const available: Encoding[] = [];
      for (const enc of ["br", "gzip"] as const) {
        if (entry.precompressed[enc]) available.push(enc);
        else if (compress && entry.compressible && entry.size >= compressMin) {
          // Small files: both, cached. Large files: gzip streamed (brotli per request costs too much).
          if (entry.body !== null || enc === "gzip") available.push(enc);
        }
      }
      encoding = negotiate(h.get("accept-encoding"), available);
      sibling = encoding ? entry.precompressed[encoding] : undefined;
      if (sibling && !siblingFresh(sibling)) {
        // The precompressed file changed: send identity this once; the next request reloads the entry.
        forget(key);
        sibling = undefined;
        encoding = null;
      }
    }
    let encodedBody: Bytes | null = null;
    if (encoding && !sibling && entry.body !== null) {
      const enc = encoding;
      if (!(enc in entry.encoded)) {
        // First request for this variant: compress once (off the event loop), then answer again.
        let p = entry.encoding[enc];
        if (!p) {
          p = compressBytes(entry.body, enc);
          entry.encoding[enc] = p;
          p.then((b) => {
            entry.encoded[enc] = b;
            account(key, entry, b?.length ?? 0);
          }, () => entry.encoded[enc] = null);
        }
        return p.then(() => respond(request, key, entry), () => respond(request, key, entry));
      }
      encodedBody = entry.encoded[enc] ?? null;
      if (encodedBody === null) encoding = null;
    }

    const etag = sibling ? sibling.etag : encoding ? `${entry.etag.slice(0, -1)}-${encoding}"` : entry.etag;
    const headers: Record<string, string> = {
      "content-type": entry.contentType,
      "x-content-type-options": "nosniff",
      "etag": etag,
      "last-modified": entry.lastModified,
      "cache-control": entry.cacheControl,
      "accept-ranges": "bytes",
    };
    if (varies) headers["vary"] = "Accept-Encoding";
    if (encoding) headers["content-encoding"] = encoding;

    // Preconditions in RFC 9110 §13.2.2 order.
    const ifMatch = h.get("if-match");
    if (ifMatch !== null) {
      if (!etagMatches(ifMatch, etag, true)) return precondition(412, headers);
    } else {
      const ius = parseHttpDate(h.get("if-unmodified-since"));
      if (ius !== null && entry.lastModifiedSec > ius) return precondition(412, headers);
    }
    const inm = h.get("if-none-match");
    if (inm !== null) {
      if (etagMatches(inm, etag, false)) return precondition(304, headers);
    } else {
      const ims = parseHttpDate(h.get("if-modified-since"));
      if (ims !== null && entry.lastModifiedSec <= ims) return precondition(304, headers);
    }

    // Range (RFC 9110 §14.2), honouring If-Range (§13.1.5): a mismatch means "send it all".
    let start = 0;
    let end = entry.size - 1;
    let status = 200;
    if (rangeHeader !== null && encoding === null) {
      const ifRange = h.get("if-range");
      let rangeOk = true;
      if (ifRange !== null) {
        const v = ifRange.trim();
        if (v.startsWith('"') || v.startsWith("W/")) rangeOk = !v.startsWith("W/") && v === entry.etag;
        else rangeOk = parseHttpDate(v) === entry.lastModifiedSec;
      }
      if (rangeOk) {
        const r = parseRange(rangeHeader, entry.size);
        if (r.kind === "unsatisfiable") {
          headers["content-range"] = `bytes */${entry.size}`;
          headers["content-type"] = "text/plain; charset=utf-8";
          delete headers["etag"];
          delete headers["last-modified"];
          return new Response(head ? null : "Range Not Satisfiable", { status: 416, headers });
        }
        if (r.kind === "range") {
          start = r.start;
          end = r.end;
          status = 206;
          headers["content-range"] = `bytes ${start}-${end}/${entry.size}`;
        }
      }
    }

    if (encoding) {
      if (sibling) {
        headers["content-length"] = String(sibling.size);
        if (head) return new Response(null, { status, headers });
        return new Response(sibling.body ?? fileStream(sibling.real, 0, sibling.size, chunkBytes), {
          status,
          headers,
        });
      }
      if (encodedBody) {
        headers["content-length"] = String(encodedBody.length);
        return fromTemplate(
          entry,
          `${encoding}:${head}`,
          () => new Response(head ? null : encodedBody, { status, headers }),
        );
      }
      // A large compressible file: gzip while streaming; the length is not known up front.
      if (head) return new Response(null, { status, headers });
      const gz = fileStream(entry.real, 0, entry.size, chunkBytes).pipeThrough<Bytes>(
        new CompressionStream("gzip") as unknown as ReadableWritablePair<Bytes, Bytes>,
      );
      return new Response(gz, { status, headers });
    }

    const length = end - start + 1;
    headers["content-length"] = String(Math.max(0, length));
    if (status === 200 && entry.body !== null) {
      const body = entry.body;
      return fromTemplate(
        entry,
        `identity:${head}`,
        () => new Response(head ? null : body, { status, headers }),
      );
    }
    if (head) return new Response(null, { status, headers });
    if (entry.body !== null) return new Response(entry.body.subarray(start, end + 1), { status, headers });
    return new Response(fileStream(entry.real, start, end + 1, chunkBytes), { status, headers });
  }
}

/** A 304 keeps the validators and caching headers a 200 would carry (RFC 9110 §15.4.5); a 412 is bare. */
function precondition(status: 304 | 412, headers: Record<string, string>): Response {
  if (status === 304) {
    const keep: Record<string, string> = {
      "etag": headers["etag"],
      "last-modified": headers["last-modified"],
      "cache-control": headers["cache-control"],
    };
    if (headers["vary"]) keep["vary"] = headers["vary"];
    return new Response(null, { status, headers: keep });
  }
  return new Response("Precondition Failed", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/**
 * Create a handler that serves the files under `root` at the site root: `root/style.css` is
 * `GET /style.css`, a directory URL ending in `/` serves its `index.html`, and nothing else answers 404.
 * Methods other than GET and HEAD get 405 with `Allow: GET, HEAD`. See {@link staticFiles} for the refusal
 * rules and docs/static.md for the choices (ranges, caching, compression, the permission wall).
 *
 * @param root The folder served at the site root, e.g. `"static"`.
 * @param options Index file, Cache-Control rules, compression and cache limits; all optional.
 * @returns A Deno.serve-compatible handler.
 *
 * @example
 * ```ts ignore
 * import { serveStatic } from "./static.ts";
 * Deno.serve({ port: 8000 }, serveStatic("static"));
 * ```
 */
export function serveStatic(root: string, options: StaticOptions = {}): Handler {
  const files = staticFiles(root, options);
  const notFound = (request: Request) =>
    new Response(request.method === "HEAD" ? null : "Not Found", {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  return function serveStatic(request: Request, info: ServeHandlerInfo): Response | Promise<Response> {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method Not Allowed", {
        status: 405,
        headers: { "allow": ALLOW, "content-type": "text/plain; charset=utf-8" },
      });
    }
    const res = files(request, info);
    if (res instanceof Promise) return res.then((r) => r ?? notFound(request));
    return res ?? notFound(request);
  };
}
