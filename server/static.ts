// Static files: maps GET/HEAD under a root folder to files. It owns the lookup, the disk half of the path
// jail (realPath must stay inside the root), a bounded cache of small files and the response; validators,
// ranges and negotiation are conditional.ts's, types are mime.ts's. It must never serve a file outside the
// root, a dotfile or a listing, and never answer a malformed target with a 500.
import { promisify } from "node:util";
import { brotliCompress, constants as zlibConstants, gzip } from "node:zlib";
import type { Handler, ServeHandlerInfo } from "./types.ts";
import { answerFor, fileEtag, negotiateEncoding, type Representation } from "./conditional.ts";
import { contentTypeFor, isCompressible } from "./mime.ts";
import { isInside, resolveSafePath, splitUrl } from "./safe_path.ts";

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
  /** The client address (`info.remoteAddr.hostname`, or `unix:` on a Unix socket). */
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

/** A precompressed sibling (`file.br`, `file.gz`), checked inside the root when its file was loaded. */
interface Sibling {
  real: string;
  size: number;
  mtimeMs: number;
  ino: number | null;
  body: Bytes | null;
  /** Its own tag (its size and time, with the coding) and the original's modification time. */
  representation: Representation;
}

interface Entry {
  /** Its key in the cache: the canonical encoded URL path (see `miss`). */
  key: string;
  /** The path the request names (index appended), stat'ed on a hit to notice changes. */
  path: string;
  /** The resolved path of the file (symlinks followed, checked inside the root). */
  real: string;
  ino: number | null;
  dev: number;
  mtimeMs: number;
  size: number;
  /** The Last-Modified header. */
  lastModified: string;
  contentType: string;
  cacheControl: string;
  /** Validators and length of the file's own bytes. */
  identity: Representation;
  /** Validators of the codings made on the fly; no size, as a Range is never served compressed. */
  variants: Record<Encoding, Representation>;
  /** True when the answer depends on Accept-Encoding (compressible, or a sibling exists): Vary is sent. */
  varies: boolean;
  /** The codings that can be sent, brotli first: siblings, and on-the-fly ones where they are allowed. */
  available: Encoding[];
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
   * Full 200 answers from memory by coding and method (see `TEMPLATE`), built once and cloned per
   * request: Deno's `new Response` with six headers costs ~10 µs, a clone ~0.3 µs, and a clone shares the
   * body bytes.
   */
  templates: Map<string, Response>;
}

/** The options with their defaults filled in. */
interface Settings {
  index: string;
  cacheRules: readonly CacheControlRule[];
  compress: boolean;
  compressMin: number;
  maxFile: number;
  maxBytes: number;
  maxEntries: number;
  revalidateMs: number;
  chunkBytes: number;
  onSecurityEvent: (event: SecurityEvent) => void;
}

/** One responder's state: its root, its settings and the files it has looked up. */
interface FileCache {
  root: string;
  settings: Settings;
  /** Keyed by the canonical URL path (see `miss`); insertion order is the LRU order (a hit re-inserts). */
  entries: Map<string, Entry>;
  /** The entries' bytes, compressed variants included. */
  bytes: number;
  /** The root's real path, resolved on the first lookup (and again after a failure). */
  rootReal: Promise<string> | null;
}

const ALLOW = "GET, HEAD";
const CODINGS = ["br", "gzip"] as const;
/** The names of an entry's templates, made once rather than per request. */
const TEMPLATE = {
  GET: { identity: "identity GET", br: "br GET", gzip: "gzip GET" },
  HEAD: { identity: "identity HEAD", br: "br HEAD", gzip: "gzip HEAD" },
} as const;
/** Longest target or reason written to a log line: an attacker's 8 KB path must not flood the log. */
const MAX_LOGGED = 200;
const clip = (s: string) => s.length <= MAX_LOGGED ? s : `${s.slice(0, MAX_LOGGED)}… (${s.length} chars)`;

function createCache(root: string, options: StaticOptions): FileCache {
  const settings: Settings = {
    index: options.index ?? "index.html",
    cacheRules: options.cacheControl ?? DEFAULT_CACHE_CONTROL,
    compress: options.compress ?? true,
    compressMin: options.compressMinBytes ?? 1024,
    maxFile: options.cacheMaxFileBytes ?? 2 * 1024 * 1024,
    maxBytes: options.cacheMaxBytes ?? 32 * 1024 * 1024,
    maxEntries: options.cacheMaxEntries ?? 4096,
    revalidateMs: options.cacheRevalidateMs ?? 1000,
    chunkBytes: options.chunkBytes ?? 256 * 1024,
    onSecurityEvent: options.onSecurityEvent ?? ((e: SecurityEvent) => {
      console.warn(
        `[security] static: ${e.status} ${clip(e.reason)} client=${e.client} target=${
          JSON.stringify(clip(e.target))
        }`,
      );
    }),
  };
  return { root, settings, entries: new Map(), bytes: 0, rootReal: null };
}

// ------------------------------------------------------------------------------------------- the cache

function forget(cache: FileCache, key: string): void {
  const e = cache.entries.get(key);
  if (e) {
    cache.bytes -= e.bytes;
    cache.entries.delete(key);
  }
}

function remember(cache: FileCache, entry: Entry): void {
  forget(cache, entry.key);
  cache.entries.set(entry.key, entry);
  cache.bytes += entry.bytes;
  for (const [k] of cache.entries) {
    if (cache.bytes <= cache.settings.maxBytes && cache.entries.size <= cache.settings.maxEntries) break;
    forget(cache, k);
  }
}

/** A compressed variant was added to `entry`: count its bytes, evicting older entries (not it) to fit. */
function account(cache: FileCache, entry: Entry): void {
  const delta = bytesOf(entry) - entry.bytes;
  entry.bytes += delta;
  if (cache.entries.get(entry.key) === entry) {
    cache.bytes += delta;
    for (const [k] of cache.entries) {
      if (cache.bytes <= cache.settings.maxBytes) break;
      if (k !== entry.key) forget(cache, k);
      else break;
    }
  }
}

/** The memory an entry holds: the file, its siblings and its compressed variants. */
function bytesOf(entry: Entry): number {
  const { body, precompressed, encoded } = entry;
  const siblings = (precompressed.br?.body?.length ?? 0) + (precompressed.gzip?.body?.length ?? 0);
  return (body?.length ?? 0) + siblings + (encoded.br?.length ?? 0) + (encoded.gzip?.length ?? 0);
}

/**
 * A cached entry is still good when the file has the same identity, size and mtime. It is trusted for
 * `cacheRevalidateMs`, then checked with one stat. statSync on purpose: a local stat takes ~3 µs, while the
 * async op's round trip costs ~50 µs and was two thirds of a cached response's time (nginx stats
 * synchronously too).
 */
function fresh(cache: FileCache, entry: Entry): boolean {
  const now = Date.now();
  if (now - entry.checkedAt < cache.settings.revalidateMs) return true;
  try {
    const st = Deno.statSync(entry.path);
    const same = st.isFile && st.size === entry.size && (st.mtime?.getTime() ?? 0) === entry.mtimeMs &&
      st.ino === entry.ino && st.dev === entry.dev;
    if (same) entry.checkedAt = now;
    return same;
  } catch {
    return false;
  }
}

function siblingFresh(s: Sibling): boolean {
  try {
    const st = Deno.statSync(s.real);
    return st.size === s.size && (st.mtime?.getTime() ?? 0) === s.mtimeMs && st.ino === s.ino;
  } catch {
    return false;
  }
}

/** Keep `response` as the entry's template `name` and answer with a copy of it. */
function keepTemplate(entry: Entry, template: { name: string; response: Response }): Response {
  entry.templates.set(template.name, template.response);
  return template.response.clone();
}

// ------------------------------------------------------------------------------------------- the lookup

type Lookup =
  | { kind: "entry"; entry: Entry }
  | { kind: "redirect"; location: string }
  | { kind: "missing" }
  | { kind: "refused"; status: number; reason: string };

function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory;
}

function isDenied(err: unknown): boolean {
  return err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied;
}

function cacheControlFor(rules: readonly CacheControlRule[], urlPath: string): string {
  for (const rule of rules) if (rule.pattern.test(urlPath)) return rule.value;
  return "no-cache";
}

/**
 * The second half of the jail: a symlink may point anywhere, so the resolved path must stay inside the
 * root and must not land on a dotfile; `null` when it does not. Resolved before any stat, so nothing outside
 * is even looked at.
 */
async function jail(base: string, path: string): Promise<string | null> {
  const r = await Deno.realPath(path);
  if (!isInside(base, r)) return null;
  if (r.slice(base.length).split("/").some((s) => s.startsWith("."))) return null;
  return r;
}

/** Resolve a precompressed sibling and check it stays in the root; `null` when it is not a servable file. */
async function inspectSibling(
  cache: FileCache,
  sibling: { base: string; path: string; coding: Encoding; lastModified: number },
): Promise<Sibling | null> {
  try {
    const real = await Deno.realPath(sibling.path);
    if (!isInside(sibling.base, real)) return null;
    const st = await Deno.stat(real);
    if (!st.isFile) return null;
    const body = st.size <= cache.settings.maxFile ? await Deno.readFile(real) : null;
    if (body && body.length !== st.size) return null;
    return {
      real,
      size: st.size,
      mtimeMs: st.mtime?.getTime() ?? 0,
      ino: st.ino,
      body,
      representation: { etag: fileEtag(st, sibling.coding), lastModified: sibling.lastModified },
    };
  } catch {
    return null;
  }
}

/**
 * Find the file a cleaned path names, through the disk half of the jail, and read it when it is small.
 * `key` is the canonical path the entry will be cached under.
 */
async function lookup(
  cache: FileCache,
  target: { key: string; segments: string[]; trailingSlash: boolean },
): Promise<Lookup> {
  const { key, segments, trailingSlash } = target;
  const { index, maxFile, compress, compressMin } = cache.settings;
  cache.rootReal ??= Deno.realPath(cache.root);
  let base: string;
  try {
    base = await cache.rootReal;
  } catch (err) {
    cache.rootReal = null;
    console.error(`static: root ${JSON.stringify(cache.root)} is not readable: ${err}`);
    return { kind: "missing" };
  }
  let path = segments.length ? `${base}/${segments.join("/")}` : base;
  let urlPath = "/" + segments.join("/");
  let real = "";
  let st: Deno.FileInfo;
  try {
    const resolved = await jail(base, path);
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
      const resolvedIndex = await jail(base, path);
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
  const contentType = contentTypeFor(path);
  const compressible = isCompressible(contentType);
  const [br, gzip] = await Promise.all([
    inspectSibling(cache, { base, path: `${real}.br`, coding: "br", lastModified: mtimeMs }),
    inspectSibling(cache, { base, path: `${real}.gz`, coding: "gzip", lastModified: mtimeMs }),
  ]);
  const precompressed: Partial<Record<Encoding, Sibling>> = {};
  if (br) precompressed.br = br;
  if (gzip) precompressed.gzip = gzip;
  const available: Encoding[] = [];
  for (const coding of CODINGS) {
    if (precompressed[coding]) available.push(coding);
    else if (compress && compressible && st.size >= compressMin) {
      // Small files: both, cached. Large files: gzip streamed (brotli per request costs too much).
      if (body !== null || coding === "gzip") available.push(coding);
    }
  }
  const entry: Entry = {
    key,
    path,
    real,
    ino: st.ino,
    dev: st.dev,
    mtimeMs,
    size: st.size,
    lastModified: new Date(mtimeMs).toUTCString(),
    contentType,
    cacheControl: cacheControlFor(cache.settings.cacheRules, urlPath),
    identity: { etag: fileEtag(st), lastModified: mtimeMs, size: st.size },
    variants: {
      br: { etag: fileEtag(st, "br"), lastModified: mtimeMs },
      gzip: { etag: fileEtag(st, "gzip"), lastModified: mtimeMs },
    },
    varies: compressible || br !== null || gzip !== null,
    available,
    body,
    encoding: {},
    encoded: {},
    precompressed,
    bytes: 0,
    checkedAt: Date.now(),
    templates: new Map(),
  };
  entry.bytes = bytesOf(entry);
  return { kind: "entry", entry };
}

function refuse(cache: FileCache, event: SecurityEvent): Response {
  cache.settings.onSecurityEvent(event);
  const status = event.status;
  const text = status === 400 ? "Bad Request" : status === 403 ? "Forbidden" : "Not Found";
  return new Response(text, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/** Not in the cache under the path as spelled: clean the path, then look it up (or find it cached). */
async function miss(
  cache: FileCache,
  exchange: { request: Request; info: ServeHandlerInfo },
): Promise<Response | null> {
  const { request, info } = exchange;
  const { pathname, search } = splitUrl(request.url);
  const addr = info?.remoteAddr;
  const client = addr === undefined ? "unknown" : "hostname" in addr ? addr.hostname : `${addr.transport}:`;
  const target = pathname + search;
  const safe = resolveSafePath(pathname);
  if (!safe.ok) return refuse(cache, { status: safe.status, reason: safe.reason, client, target });
  // One cache entry per file, however the path was spelled (`/%73tyle.css`, `/a/../style.css`): the key
  // is the canonical encoded path, which a plain request uses as is and which decodes to the same file.
  const key = "/" + safe.segments.map(encodeURIComponent).join("/") +
    (safe.trailingSlash && safe.segments.length > 0 ? "/" : "");
  if (key !== pathname) {
    const entry = cache.entries.get(key);
    if (entry !== undefined && fresh(cache, entry)) return await respond(cache, { request, entry });
  }
  const found = await lookup(cache, { key, segments: safe.segments, trailingSlash: safe.trailingSlash });
  if (found.kind === "missing") return null;
  if (found.kind === "refused") {
    return refuse(cache, { status: found.status, reason: found.reason, client, target });
  }
  if (found.kind === "redirect") {
    return new Response(null, { status: 301, headers: { location: found.location + search } });
  }
  remember(cache, found.entry);
  return await respond(cache, { request, entry: found.entry });
}

// ----------------------------------------------------------------------------------------- the response

/**
 * Answer a request from a cache entry: pick the representation (never compressed when a Range is asked
 * for: the range is over the identity bytes), let conditional.ts decide the status, then send the bytes
 * from memory (a copy of a prepared answer when whole), a sibling, or a stream from disk.
 */
function respond(
  cache: FileCache,
  exchange: { request: Request; entry: Entry },
): Response | Promise<Response> {
  const { request, entry } = exchange;
  const h = request.headers;
  const head = request.method === "HEAD";

  let encoding: Encoding | null = null;
  let sibling: Sibling | undefined;
  if (entry.varies && h.get("range") === null) {
    encoding = negotiateEncoding(h.get("accept-encoding"), entry.available);
    sibling = encoding ? entry.precompressed[encoding] : undefined;
    if (sibling && !siblingFresh(sibling)) {
      // The precompressed file changed: send identity this once; the next request reloads the entry.
      forget(cache, entry.key);
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
          account(cache, entry);
        }, () => entry.encoded[enc] = null);
      }
      const again = () => respond(cache, exchange);
      return p.then(again, again);
    }
    encodedBody = entry.encoded[enc] ?? null;
    if (encodedBody === null) encoding = null;
  }

  const representation = sibling
    ? sibling.representation
    : encoding
    ? entry.variants[encoding]
    : entry.identity;
  const answer = answerFor(request, representation);
  // The whole file from memory, as most hits are: a copy of the answer prepared the first time.
  const memory = encoding === null ? entry.body : encodedBody;
  const name = answer.status === 200 && memory !== null && !sibling
    ? TEMPLATE[head ? "HEAD" : "GET"][encoding ?? "identity"]
    : null;
  if (name !== null) {
    const template = entry.templates.get(name);
    if (template !== undefined) return template.clone();
  }

  const headers: Record<string, string> = {
    "content-type": entry.contentType,
    "x-content-type-options": "nosniff",
    "etag": representation.etag!,
    "last-modified": entry.lastModified,
    "cache-control": entry.cacheControl,
    "accept-ranges": "bytes",
  };
  if (entry.varies) headers["vary"] = "Accept-Encoding";
  if (encoding) headers["content-encoding"] = encoding;
  if (answer.status === 304 || answer.status === 412) return precondition(answer.status, headers);
  if (answer.status === 416) {
    headers["content-range"] = `bytes */${entry.size}`;
    headers["content-type"] = "text/plain; charset=utf-8";
    delete headers["etag"];
    delete headers["last-modified"];
    return new Response(head ? null : "Range Not Satisfiable", { status: 416, headers });
  }
  if (name !== null) {
    headers["content-length"] = String(memory!.length);
    return keepTemplate(entry, {
      name,
      response: new Response(head ? null : memory, { status: 200, headers }),
    });
  }
  const { chunkBytes } = cache.settings;
  if (answer.status === 200) {
    const file = sibling ?? entry;
    if (encoding !== null && sibling === undefined) {
      // A large compressible file: gzip while streaming; the length is not known up front.
      if (head) return new Response(null, { status: 200, headers });
      const gz = fileStream(entry.real, { start: 0, end: entry.size, chunkBytes }).pipeThrough<Bytes>(
        new CompressionStream("gzip") as unknown as ReadableWritablePair<Bytes, Bytes>,
      );
      return new Response(gz, { status: 200, headers });
    }
    headers["content-length"] = String(file.size);
    if (head) return new Response(null, { status: 200, headers });
    const body = file.body ?? fileStream(file.real, { start: 0, end: file.size, chunkBytes });
    return new Response(body, { status: 200, headers });
  }
  const { start, end } = answer;
  headers["content-range"] = `bytes ${start}-${end}/${entry.size}`;
  headers["content-length"] = String(end - start + 1);
  if (head) return new Response(null, { status: 206, headers });
  if (entry.body !== null) return new Response(entry.body.subarray(start, end + 1), { status: 206, headers });
  return new Response(fileStream(entry.real, { start, end: end + 1, chunkBytes }), { status: 206, headers });
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

/**
 * A stream over [start, end) of a file that reads one chunk per `pull`, so a slow client holds one chunk
 * in memory, not the file. The file is opened on first pull and closed at the end, on error or on cancel.
 * Reads are synchronous on purpose: from the page cache a 256 KiB read takes tens of microseconds, while
 * each async file op pays a ~50 µs thread-pool round trip (nginx without aio blocks on reads the same way).
 */
function fileStream(
  path: string,
  span: { start: number; end: number; chunkBytes: number },
): ReadableStream<Bytes> {
  const { end, chunkBytes } = span;
  let file: Deno.FsFile | null = null;
  let pos = span.start;
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

// --------------------------------------------------------------------------------------- entry points

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
  const cache = createCache(root, options);
  // Not async: a fresh cache hit answers synchronously, which spares the engine an await per request.
  return function staticFiles(request, info) {
    const method = request.method;
    if (method !== "GET" && method !== "HEAD") return null;
    const { pathname } = splitUrl(request.url);
    // Keys are canonical paths that passed the jail, so a request spelled exactly so is safe to answer.
    const entry = cache.entries.get(pathname);
    if (entry !== undefined) {
      if (fresh(cache, entry)) {
        // Re-insert: Map order is the LRU order.
        cache.entries.delete(pathname);
        cache.entries.set(pathname, entry);
        return respond(cache, { request, entry });
      }
      forget(cache, pathname);
    }
    return miss(cache, { request, info });
  };
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
