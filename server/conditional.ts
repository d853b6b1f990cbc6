// Validators, preconditions and byte ranges (RFC 9110 §8.8, §13, §14) and content-coding negotiation
// (§12.5.3), as pure functions over header values: what a GET or HEAD of one representation should answer.
// It keeps no state and must never touch the disk or the network (no Deno.*): callers bring the validators.

/**
 * One entity tag of an `If-Match` or `If-None-Match` list (RFC 9110 §8.8.3).
 *
 * @example
 * ```ts
 * import type { EntityTag } from "./conditional.ts";
 * const tag: EntityTag = { weak: true, tag: '"v1"' }; // W/"v1"
 * ```
 */
export interface EntityTag {
  /** True when the tag carried the `W/` prefix. */
  weak: boolean;
  /** The opaque tag with its double quotes, e.g. `"1a2b-18c"`. */
  tag: string;
}

/**
 * A representation's validators (RFC 9110 §8.8), which preconditions are evaluated against. A missing
 * validator makes the conditions that need it be ignored, as §13.1.3 and §13.1.4 say.
 *
 * @example
 * ```ts
 * import type { Validators } from "./conditional.ts";
 * const validators: Validators = { etag: '"1a2b-18c"', lastModified: Date.UTC(2026, 0, 1) };
 * ```
 */
export interface Validators {
  /** The current entity tag as sent in `ETag`: `"1a2b-18c"`, or `W/"..."` when weak. */
  etag?: string;
  /** The modification time in ms since the epoch, as sent in `Last-Modified` (compared in whole seconds). */
  lastModified?: number;
}

/**
 * A representation as {@link answerFor} sees it: its validators and its length in bytes. Without a `size`
 * (a body compressed while it streams) a `Range` is ignored.
 *
 * @example
 * ```ts
 * import type { Representation } from "./conditional.ts";
 * const file: Representation = { etag: '"1000-18c"', lastModified: Date.UTC(2026, 0, 1), size: 4096 };
 * ```
 */
export interface Representation extends Validators {
  /** The length of the representation's bytes; omit it when unknown. */
  size?: number;
}

/**
 * The part of a `Request` these functions read; a `Request` is one.
 *
 * @example
 * ```ts
 * import type { ConditionalRequest } from "./conditional.ts";
 * const request: ConditionalRequest = new Request("http://localhost/", { headers: { range: "bytes=0-9" } });
 * ```
 */
export type ConditionalRequest = Pick<Request, "method" | "headers">;

/**
 * What {@link parseRange} makes of a `Range` value: one satisfiable range (`start` and `end` inclusive), an
 * unsatisfiable one (answer 416), or `"whole"` when the header is to be ignored and the whole representation
 * sent with 200.
 *
 * @example
 * ```ts
 * import { type ByteRange, parseRange } from "./conditional.ts";
 * const range: ByteRange = parseRange("bytes=0-99", 4096); // { kind: "range", start: 0, end: 99 }
 * ```
 */
export type ByteRange =
  | { kind: "whole" }
  | { kind: "range"; start: number; end: number }
  | { kind: "unsatisfiable" };

/**
 * The status (and, for 206, the bytes) that {@link answerFor} decides.
 *
 * @example
 * ```ts
 * import { type Answer, answerFor } from "./conditional.ts";
 * const answer: Answer = answerFor(new Request("http://localhost/"), { etag: '"a"' }); // { status: 200 }
 * ```
 */
export type Answer =
  | { status: 200 }
  | { status: 206; start: number; end: number }
  | { status: 304 }
  | { status: 412 }
  | { status: 416 };

// Shared answers: the common outcomes allocate nothing per request.
const OK: Answer = Object.freeze({ status: 200 });
const NOT_MODIFIED: Answer = Object.freeze({ status: 304 });
const FAILED: Answer = Object.freeze({ status: 412 });
const UNSATISFIABLE: Answer = Object.freeze({ status: 416 });
const WHOLE: ByteRange = Object.freeze({ kind: "whole" });
const NONE: ByteRange = Object.freeze({ kind: "unsatisfiable" });

/**
 * The strong entity tag of a file's bytes, made from its size and modification time:
 * `"<size hex>-<mtime ms hex>"`, and `"<size hex>-<mtime ms hex>-<coding>"` for a content-coded
 * representation of it, which is different bytes and so needs its own tag (RFC 9110 §8.8.3). A
 * precompressed sibling file gets the tag of its own size and time with its coding.
 *
 * @param file The file's size and modification time, e.g. a `Deno.FileInfo`.
 * @param coding The content coding (`"gzip"`, `"br"`) of the representation; omit it for the file itself.
 * @returns The quoted tag, ready for the `ETag` header.
 *
 * @example
 * ```ts
 * import { fileEtag } from "./conditional.ts";
 * const file = { size: 4096, mtime: new Date(1700000000000) };
 * fileEtag(file); // '"1000-18bcfe56800"'
 * fileEtag(file, "gzip"); // '"1000-18bcfe56800-gzip"'
 * ```
 */
export function fileEtag(file: { size: number; mtime: Date | null }, coding?: string): string {
  const tag = `${file.size.toString(16)}-${Math.floor(file.mtime?.getTime() ?? 0).toString(16)}`;
  return coding === undefined ? `"${tag}"` : `"${tag}-${coding}"`;
}

/**
 * Parse an `If-Match` or `If-None-Match` value (RFC 9110 §13.1.1): `*`, or a list of entity tags.
 * Unquoted garbage between tags is skipped.
 *
 * @param value The field value.
 * @returns `"*"`, or the tags in the order given.
 *
 * @example
 * ```ts
 * import { parseEtags } from "./conditional.ts";
 * parseEtags('"a", W/"b"'); // [{ weak: false, tag: '"a"' }, { weak: true, tag: '"b"' }]
 * parseEtags(" * "); // "*"
 * ```
 */
export function parseEtags(value: string): "*" | EntityTag[] {
  if (value.trim() === "*") return "*";
  const tags: EntityTag[] = [];
  // A comma may appear inside an opaque tag (etagc allows 0x2C), so match tags instead of splitting.
  for (const m of value.matchAll(/(W\/)?("[^"]*")/g)) tags.push({ weak: m[1] !== undefined, tag: m[2] });
  return tags;
}

/**
 * Whether an `If-Match` or `If-None-Match` value names `etag` (RFC 9110 §8.8.3.2). Strong comparison, the
 * default and what `If-Match` uses, needs both tags strong; weak comparison, for `If-None-Match`, ignores
 * `W/`. `*` matches any current representation.
 *
 * @param value The field value, e.g. `"a", W/"b"`.
 * @param etag The representation's current tag, as sent in `ETag`.
 * @param options `weak: true` for weak comparison.
 * @returns True when one of the listed tags matches.
 *
 * @example
 * ```ts
 * import { etagMatches } from "./conditional.ts";
 * etagMatches('W/"a"', '"a"'); // false: If-Match compares strongly
 * etagMatches('W/"a"', '"a"', { weak: true }); // true: If-None-Match compares weakly
 * ```
 */
export function etagMatches(value: string, etag: string, options: { weak?: boolean } = {}): boolean {
  const tags = parseEtags(value);
  if (tags === "*") return true;
  const weak = options.weak ?? false;
  const ownWeak = etag.startsWith("W/");
  const own = ownWeak ? etag.slice(2) : etag;
  if (!weak && ownWeak) return false;
  return tags.some((t) => t.tag === own && (weak || !t.weak));
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTH = MONTHS.join("|");
const DAY = "Mon|Tue|Wed|Thu|Fri|Sat|Sun";
const LONG_DAY = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday";
const TIME = "(?<hour>\\d\\d):(?<minute>\\d\\d):(?<second>\\d\\d)";
// RFC 9110 §5.6.7: IMF-fixdate, and the two obsolete forms a recipient must still accept.
const DATE_FORMS = [
  // Sun, 06 Nov 1994 08:49:37 GMT
  new RegExp(`^(?:${DAY}), (?<day>\\d\\d) (?<month>${MONTH}) (?<year>\\d{4}) ${TIME} GMT$`),
  // Sunday, 06-Nov-94 08:49:37 GMT
  new RegExp(`^(?:${LONG_DAY}), (?<day>\\d\\d)-(?<month>${MONTH})-(?<year>\\d\\d) ${TIME} GMT$`),
  // Sun Nov  6 08:49:37 1994
  new RegExp(`^(?:${DAY}) (?<month>${MONTH}) (?<day> \\d|\\d\\d) ${TIME} (?<year>\\d{4})$`),
];

/**
 * Parse an HTTP date (RFC 9110 §5.6.7): IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), or one of the
 * obsolete forms recipients must accept, rfc850-date (`Sunday, 06-Nov-94 08:49:37 GMT`, a two-digit year
 * more than 50 years ahead meaning the century before) and asctime-date (`Sun Nov  6 08:49:37 1994`). All
 * are UTC, whatever the machine's time zone. Anything else, an impossible day included, is not a date: a
 * precondition with it is ignored, as §13.1.3 and §13.1.4 say.
 *
 * @param value The field value.
 * @returns Milliseconds since the epoch (whole seconds), or `null` when it is not an HTTP date.
 *
 * @example
 * ```ts
 * import { parseHttpDate } from "./conditional.ts";
 * parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"); // 784111777000
 * parseHttpDate("Sun Nov  6 08:49:37 1994"); // 784111777000
 * parseHttpDate("1994-11-06"); // null
 * ```
 */
export function parseHttpDate(value: string | null): number | null {
  if (value === null) return null;
  const text = value.trim();
  for (const form of DATE_FORMS) {
    const { day, month, year, hour, minute, second } = form.exec(text)?.groups ?? {};
    if (day === undefined) continue;
    let fullYear = Number(year);
    if (year.length === 2) {
      const now = new Date().getUTCFullYear();
      fullYear += now - (now % 100);
      if (fullYear > now + 50) fullYear -= 100;
    }
    const date = new Date(0);
    // setUTCFullYear, not Date.UTC, which reads years below 100 as 19xx.
    date.setUTCFullYear(fullYear, MONTHS.indexOf(month), Number(day));
    date.setUTCHours(Number(hour), Number(minute), Number(second));
    const valid = date.getUTCDate() === Number(day) && Number(hour) < 24 && Number(minute) < 60 &&
      Number(second) < 60;
    return valid ? date.getTime() : null;
  }
  return null;
}

/** A modification time in whole seconds, the precision of an HTTP date. */
function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * Evaluate a request's preconditions against the current representation, in RFC 9110 §13.2.2 order:
 * `If-Match` (strong comparison), or else `If-Unmodified-Since`, may fail with 412; then `If-None-Match`
 * (weak comparison), or else `If-Modified-Since` (GET and HEAD only), may answer 304, or 412 for other
 * methods. A date that does not parse is ignored. `If-Range` is the next step: {@link checkIfRange}.
 *
 * @param request The request (its method and headers).
 * @param validators The current representation's `ETag` and modification time.
 * @returns 304 (Not Modified), 412 (Precondition Failed), or `null` to go on with the request.
 *
 * @example
 * ```ts
 * import { checkPreconditions } from "./conditional.ts";
 * const request = new Request("http://localhost/", { headers: { "if-none-match": '"a"' } });
 * checkPreconditions(request, { etag: '"a"' }); // 304
 * ```
 */
export function checkPreconditions(request: ConditionalRequest, validators: Validators): 304 | 412 | null {
  const headers = request.headers;
  const { etag, lastModified } = validators;
  // Steps 1 and 2 (§13.1.1, §13.1.4): If-Unmodified-Since counts only without If-Match.
  const ifMatch = headers.get("if-match");
  if (ifMatch !== null) {
    if (etag === undefined ? ifMatch.trim() !== "*" : !etagMatches(ifMatch, etag)) return 412;
  } else if (lastModified !== undefined) {
    const since = parseHttpDate(headers.get("if-unmodified-since"));
    if (since !== null && seconds(lastModified) > seconds(since)) return 412;
  }
  // Steps 3 and 4 (§13.1.2, §13.1.3): If-Modified-Since counts only without If-None-Match, on GET and HEAD.
  const method = request.method;
  const safe = method === "GET" || method === "HEAD";
  const ifNoneMatch = headers.get("if-none-match");
  if (ifNoneMatch !== null) {
    const matched = etag === undefined
      ? ifNoneMatch.trim() === "*"
      : etagMatches(ifNoneMatch, etag, { weak: true });
    if (matched) return safe ? 304 : 412;
  } else if (safe && lastModified !== undefined) {
    const since = parseHttpDate(headers.get("if-modified-since"));
    if (since !== null && seconds(lastModified) <= seconds(since)) return 304;
  }
  return null;
}

/**
 * Whether a `Range` may be honoured, by `If-Range` (RFC 9110 §13.1.5, step 5 of §13.2.2): always when the
 * request has no `If-Range`; otherwise only when it names the current representation, by a strong `ETag`
 * equal to the current one (a weak tag never matches) or by a date exactly equal to its modification time.
 * When false, the whole representation is sent with 200.
 *
 * @param request The request (its headers).
 * @param validators The current representation's `ETag` and modification time.
 * @returns True when the range applies.
 *
 * @example
 * ```ts
 * import { checkIfRange } from "./conditional.ts";
 * const request = new Request("http://localhost/", { headers: { range: "bytes=0-9", "if-range": '"old"' } });
 * checkIfRange(request, { etag: '"new"' }); // false: send it all
 * ```
 */
export function checkIfRange(request: ConditionalRequest, validators: Validators): boolean {
  const value = request.headers.get("if-range");
  if (value === null) return true;
  const v = value.trim();
  // An entity-tag starts with a DQUOTE or W/; anything else is read as a date.
  if (v.startsWith('"') || v.startsWith("W/")) return !v.startsWith("W/") && v === validators.etag;
  const date = parseHttpDate(v);
  return date !== null && validators.lastModified !== undefined &&
    seconds(date) === seconds(validators.lastModified);
}

/**
 * Parse a `Range` value (RFC 9110 §14.1.2) against a representation of `size` bytes. One `bytes=` range
 * gives its first and last byte, clipped to the end; a suffix (`bytes=-n`) longer than the representation
 * gives all of it. A range starting at or past the end, `bytes=-0`, and any range of an empty representation
 * are unsatisfiable. Several ranges, other units and bad syntax give `"whole"`: a 200 with everything, which
 * §14.2 allows (no `multipart/byteranges`).
 *
 * @param value The field value, e.g. `bytes=0-99`.
 * @param size The representation's length in bytes.
 * @returns The range to send, `"unsatisfiable"` (416) or `"whole"` (200).
 *
 * @example
 * ```ts
 * import { parseRange } from "./conditional.ts";
 * parseRange("bytes=-10", 100); // { kind: "range", start: 90, end: 99 }
 * parseRange("bytes=0-0,5-6", 100); // { kind: "whole" }
 * parseRange("bytes=100-", 100); // { kind: "unsatisfiable" }
 * ```
 */
export function parseRange(value: string, size: number): ByteRange {
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(value);
  if (!m) return WHOLE;
  const specs = m[1].split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (specs.length !== 1) return WHOLE;
  const r = /^(\d*)-(\d*)$/.exec(specs[0]);
  if (!r || (r[1] === "" && r[2] === "")) return WHOLE;
  if (r[1] === "") {
    const suffix = Number(r[2]);
    if (suffix === 0 || size === 0) return NONE;
    return { kind: "range", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(r[1]);
  const last = r[2] === "" ? Infinity : Number(r[2]);
  if (last < start) return WHOLE;
  if (start >= size) return NONE;
  return { kind: "range", start, end: Math.min(last, size - 1) };
}

/**
 * Decide what a GET or HEAD of a representation answers: the preconditions in RFC 9110 §13.2.2 order
 * ({@link checkPreconditions}), then `If-Range` ({@link checkIfRange}) and `Range` ({@link parseRange}).
 * HEAD honours a range too, so that it sends the headers GET would. A representation without a `size`
 * (a body compressed while it streams) ignores `Range`; so do other methods.
 *
 * @param request The request (its method and headers).
 * @param representation The current validators and length.
 * @returns 304 or 412 from the preconditions; else 416, 206 with the first and last byte, or 200.
 *
 * @example
 * ```ts
 * import { answerFor } from "./conditional.ts";
 * const request = new Request("http://localhost/", { headers: { range: "bytes=0-9" } });
 * answerFor(request, { etag: '"a"', size: 100 }); // { status: 206, start: 0, end: 9 }
 * ```
 */
export function answerFor(request: ConditionalRequest, representation: Representation): Answer {
  // A Request's method and headers are getters with checks: read each once (this runs on every hit).
  const read: ConditionalRequest = { method: request.method, headers: request.headers };
  const status = checkPreconditions(read, representation);
  if (status !== null) return status === 304 ? NOT_MODIFIED : FAILED;
  const { size } = representation;
  if (size === undefined || (read.method !== "GET" && read.method !== "HEAD")) return OK;
  const value = read.headers.get("range");
  if (value === null || !checkIfRange(read, representation)) return OK;
  const range = parseRange(value, size);
  if (range.kind === "unsatisfiable") return UNSATISFIABLE;
  if (range.kind === "whole") return OK;
  return { status: 206, start: range.start, end: range.end };
}

/**
 * Pick a content coding from an `Accept-Encoding` value (RFC 9110 §12.5.3): the highest `q` wins, the
 * earlier of `available` on a tie; `q=0` refuses a coding; `*` stands for the codings not named; `x-gzip`
 * is `gzip`. `null` means identity: no header, nothing acceptable, or nothing available.
 *
 * @param value The `Accept-Encoding` field value, or `null` when absent.
 * @param available The codings the server can send, most preferred first, lower case.
 * @returns One of `available`, or `null` for identity.
 *
 * @example
 * ```ts
 * import { negotiateEncoding } from "./conditional.ts";
 * negotiateEncoding("gzip, br", ["br", "gzip"]); // "br"
 * negotiateEncoding("br;q=0, *", ["br", "gzip"]); // "gzip"
 * negotiateEncoding("identity", ["br", "gzip"]); // null
 * ```
 */
export function negotiateEncoding<T extends string>(value: string | null, available: readonly T[]): T | null {
  if (!value || available.length === 0) return null;
  const weights = new Map<string, number>();
  let star = -1;
  for (const part of value.split(",")) {
    const [rawName, ...params] = part.split(";");
    const name = rawName.trim().toLowerCase();
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) weight = Number(m[1]);
    }
    if (!Number.isFinite(weight)) weight = 0;
    if (name === "*") star = weight;
    else if (name === "x-gzip") {
      if (!weights.has("gzip")) weights.set("gzip", weight);
    } else weights.set(name, weight);
  }
  let best: T | null = null;
  let bestWeight = 0;
  for (const coding of available) {
    const weight = weights.get(coding) ?? (star >= 0 ? star : 0);
    if (weight > bestWeight) {
      best = coding;
      bestWeight = weight;
    }
  }
  return best;
}
