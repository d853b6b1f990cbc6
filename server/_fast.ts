// Fast paths into Deno's own Request/Response objects, the ones Deno.serve uses: a Request whose URL and
// headers are built only when a handler reads them, and a Response's static body read without a stream.
// Everything here is feature-detected once and checked; when Deno's internals differ, the public API is used.
// deno-lint-ignore-file no-explicit-any

/** A request body source for {@link makeRequest}. */
export type BodySource = ReadableStream<Uint8Array> | null;

/** The static body of a Response, when it has one that can be sent without a stream. */
export interface StaticBody {
  /** The bytes or string given to the Response constructor; null for a bodiless response. */
  body: string | Uint8Array | null;
  /**
   * Set when the response is status 200 with no header but (maybe) Content-Type: that content type, or
   * null for none. Then `res.headers` need not be read at all. Undefined otherwise.
   */
  contentType?: string | null;
}

// Deno defines `Request` and `Response` as lazy accessors on the global object, so each use of the global
// name is a getter call; these are read once.
const RequestClass = Request;

const symbolOf = (o: object, description: string): symbol | undefined =>
  Object.getOwnPropertySymbols(o).find((s) => s.description === description);

interface Internals {
  brand: unknown;
  sRequest: symbol;
  sGuard: symbol;
  InnerBody: new (stream: ReadableStream<Uint8Array>) => unknown;
  sResponse: symbol;
  sLazyBody: symbol | undefined;
  sLazyType: symbol | undefined;
  sFastStatus: symbol | undefined;
  sFastBody: symbol | undefined;
  sFastKind: symbol | undefined;
  sFastType: symbol | undefined;
  sFastConsumed: symbol | undefined;
}

/**
 * The inner request object Deno's Request reads from (the shape of `newInnerRequest` in ext/fetch), with the
 * header list built from our flat array only when first read.
 */
class InnerRequest {
  methodInner: string;
  headerListInner: [string, string][] | null = null;
  body: unknown;
  redirectMode = "follow";
  redirectCount = 0;
  clientRid = null;
  blobUrlEntry = null;
  #url: string;
  // Deno's URL lists, made only if its code asks for them (cloning, fetch): most requests never do.
  #urlList: (() => string)[] | null = null;
  #urlListProcessed: string[] | null = null;
  #flat: string[];
  #onCancel: ((cb: () => void) => void) | undefined;
  constructor(
    method: string,
    url: string,
    flat: string[],
    body: unknown,
    onCancel: ((cb: () => void) => void) | undefined,
  ) {
    this.methodInner = method;
    this.#url = url;
    this.#flat = flat;
    this.body = body;
    this.#onCancel = onCancel;
  }
  get urlList(): (() => string)[] {
    if (this.#urlList === null) {
      const url = this.#url;
      this.#urlList = [() => url];
    }
    return this.#urlList;
  }
  set urlList(v: (() => string)[]) {
    this.#urlList = v;
  }
  get urlListProcessed(): string[] {
    return this.#urlListProcessed ??= [this.#url];
  }
  set urlListProcessed(v: string[]) {
    this.#urlListProcessed = v;
  }
  get method(): string {
    return this.methodInner;
  }
  set method(v: string) {
    this.methodInner = v;
  }
  get headerList(): [string, string][] {
    if (this.headerListInner === null) {
      const f = this.#flat;
      const list: [string, string][] = new Array(f.length / 2);
      for (let i = 0; i < f.length; i += 2) list[i / 2] = [f[i], f[i + 1]];
      this.headerListInner = list;
    }
    return this.headerListInner;
  }
  set headerList(v: [string, string][]) {
    this.headerListInner = v;
  }
  url(): string {
    return this.#urlListProcessed === null ? this.#url : this.#urlListProcessed[0];
  }
  currentUrl(): string {
    const list = this.#urlListProcessed;
    return list === null ? this.#url : list[list.length - 1];
  }
  onCancel(cb: () => void): void {
    this.#onCancel?.(cb);
  }
}

function detect(): Internals | null {
  try {
    const tmpl: any = new Request("http://127.0.0.1/", { method: "POST", body: "x" });
    const sBrand = symbolOf(tmpl, "[[webidl.brand]]");
    const sRequest = symbolOf(tmpl, "request");
    const sGuard = symbolOf(tmpl, "headers guard");
    if (!sBrand || !sRequest || !sGuard) return null;
    const InnerBody = tmpl[sRequest]?.body?.constructor;
    const res: any = new Response("x");
    const sResponse = symbolOf(res, "response");
    if (typeof InnerBody !== "function" || !sResponse) return null;
    const internals: Internals = {
      brand: tmpl[sBrand],
      sRequest,
      sGuard,
      InnerBody,
      sResponse,
      sLazyBody: symbolOf(res, "lazy static body"),
      sLazyType: symbolOf(res, "lazy static content type"),
      sFastStatus: symbolOf(res, "serve fast status"),
      sFastBody: symbolOf(res, "serve fast body"),
      sFastKind: symbolOf(res, "serve fast header kind"),
      sFastType: symbolOf(res, "serve fast content type"),
      sFastConsumed: symbolOf(res, "serve fast consumed"),
    };
    if (!selfTest(internals)) return null;
    return internals;
  } catch {
    return null;
  }
}

/** Build requests and responses through the fast paths and check they behave as the public API says. */
function selfTest(k: Internals): boolean {
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new Uint8Array([104, 105]));
      c.close();
    },
  });
  const r = fastRequest(
    k,
    "POST",
    "http://127.0.0.1:1/a?b=c",
    ["host", "127.0.0.1:1", "x-test", "yes"],
    stream,
  );
  if (!(r instanceof Request) || r.method !== "POST" || r.url !== "http://127.0.0.1:1/a?b=c") return false;
  if (r.headers.get("x-test") !== "yes" || !(r.body instanceof ReadableStream)) return false;
  const plain = fastRequest(k, "GET", "http://127.0.0.1:1/", ["host", "127.0.0.1:1"], null);
  if (plain.body !== null || plain.clone().headers.get("host") !== "127.0.0.1:1") return false;
  const a = fastStaticBody(k, new Response("hi"));
  const b = fastStaticBody(k, new Response(new Uint8Array([1, 2]), { status: 201, headers: { "x-a": "1" } }));
  const c = fastStaticBody(k, new Response(null, { status: 204 }));
  const d = fastStaticBody(k, new Response(new ReadableStream()));
  const e = fastStaticBody(k, new Response("{}", { headers: { "content-type": "application/json" } }));
  const h = new Response("x", { status: 201, headers: { "x-a": "1", "content-type": "text/html" } });
  h.headers.set("x-b", "2");
  const list = rawHeaderList(k, h)?.map(([n, v]) => `${n.toLowerCase()}=${v}`).sort().join(",");
  if (list !== "content-type=text/html,x-a=1,x-b=2") return false;
  const used = new Response("gone");
  used.text();
  const sent = new Response("sent");
  if (fastStaticBody(k, sent)?.body !== "sent") return false;
  markUsed(k, sent);
  if (!sent.bodyUsed || fastStaticBody(k, sent) !== null) return false;
  return a?.body === "hi" && a.contentType === "text/plain;charset=UTF-8" && b?.body instanceof Uint8Array &&
    b.body.length === 2 && b.contentType === undefined && c !== null && c.body === null && d === null &&
    e?.contentType === "application/json" && fastStaticBody(k, used) === null;
}

function fastRequest(
  k: Internals,
  method: string,
  url: string,
  flat: string[],
  body: BodySource,
  onCancel?: (cb: () => void) => void,
): Request {
  const req: any = new RequestClass(k.brand as string);
  req[k.sRequest] = new InnerRequest(
    method,
    url,
    flat,
    body === null ? null : new k.InnerBody(body),
    onCancel,
  );
  req[k.sGuard] = "immutable";
  return req;
}

const DEFAULT_TEXT = "text/plain;charset=UTF-8";

function fastStaticBody(k: Internals, res: Response): StaticBody | null {
  const r: any = res;
  // Sent already (by Pier or Deno.serve): the body getter will answer with a used stream.
  if (k.sFastConsumed && r[k.sFastConsumed] === true) return null;
  let body: string | Uint8Array | null;
  const lazy = k.sLazyBody ? r[k.sLazyBody] : undefined;
  if (lazy !== null && lazy !== undefined) {
    // A body given to the constructor and never read (reading res.headers materialises it, see below).
    body = lazy;
  } else {
    const inner = r[k.sResponse];
    if (!inner) return null;
    if (inner.body === null) return { body: null };
    const sos = inner.body.streamOrStatic;
    if (!sos || sos instanceof ReadableStream || sos.consumed !== false) return null;
    if (typeof sos.body !== "string" && !(sos.body instanceof Uint8Array)) return null;
    body = sos.body;
  }
  if (k.sFastStatus && r[k.sFastStatus] === 200 && r[k.sFastBody!] != null) {
    // Deno keeps this only while the headers are untouched and hold at most a Content-Type.
    const kind = r[k.sFastKind!];
    const contentType = kind === 0 ? null : kind === 1 ? DEFAULT_TEXT : r[k.sFastType!];
    if (typeof contentType === "string" || contentType === null) return { body, contentType };
  }
  return { body };
}

/**
 * The response's header list as Deno keeps it (names as given, duplicates as separate entries, which
 * RFC 9110 §5.3 makes equivalent to a combined line), or null without the internals. Reading it skips the
 * sorting and combining that iterating `res.headers` does. Edits made through `res.headers` land in the
 * same list.
 *
 * @param res The handler's response.
 * @returns The [name, value] pairs, or null.
 */
export function headerList(res: Response): readonly (readonly [string, string])[] | null {
  const k = internals;
  if (k === null) return null;
  return rawHeaderList(k, res);
}

function rawHeaderList(k: Internals, res: Response): readonly (readonly [string, string])[] | null {
  const r: any = res;
  const list = r[k.sResponse]?.headerList;
  if (!Array.isArray(list)) return null;
  const lazy = k.sLazyBody ? r[k.sLazyBody] : null;
  if (lazy !== null && lazy !== undefined) {
    // The content type of a body given to the constructor is only added to the list when read.
    const type = (k.sLazyType ? r[k.sLazyType] : null) ?? (typeof lazy === "string" ? DEFAULT_TEXT : null);
    if (type !== null && !list.some((h: [string, string]) => h[0].toLowerCase() === "content-type")) {
      return [...list, ["content-type", type]];
    }
  }
  return list;
}

/** What detection found; it runs once, and switching the fast paths back on reuses it. */
const FOUND: Internals | null = detect();
let internals: Internals | null = FOUND;

/**
 * Build a `Request` for an incoming message. With Deno's internals this costs about a tenth of
 * `new Request()`, because the URL and headers are only materialised when read.
 *
 * @param method The request method.
 * @param url The absolute URL.
 * @param flat Header fields, flattened: name, value, name, value, ...
 * @param body The body stream, or null.
 * @param onCancel Registers a callback to run when the client goes away (aborts `request.signal`).
 * @returns A genuine `Request` with immutable headers.
 */
export function makeRequest(
  method: string,
  url: string,
  flat: string[],
  body: BodySource,
  onCancel?: (cb: () => void) => void,
): Request {
  if (internals !== null) return fastRequest(internals, method, url, flat, body, onCancel);
  const headers = new Headers();
  for (let i = 0; i < flat.length; i += 2) headers.append(flat[i], flat[i + 1]);
  const controller = new AbortController();
  onCancel?.(() => controller.abort());
  return new Request(url, {
    method,
    headers,
    body,
    signal: controller.signal,
    // @ts-ignore: `duplex` is required by fetch for stream bodies but missing from Deno's RequestInit type.
    duplex: "half",
  });
}

/**
 * The body of a response whose body is a string or bytes given to its constructor and not yet read, or
 * `{ body: null }` for a bodiless one; null when the body must be streamed (or the fast path is off).
 * It does not consume the body.
 *
 * @param res The handler's response.
 * @returns The static body, or null.
 */
export function staticBody(res: Response): StaticBody | null {
  if (internals === null) return res.body === null ? { body: null } : null;
  return fastStaticBody(internals, res);
}

/**
 * The response's status, read from Deno's inner response (what the `status` getter returns, without its
 * brand check), or through the getter without the internals.
 *
 * @param res The handler's response.
 * @returns The status code.
 */
export function statusOf(res: Response): number {
  const k = internals;
  if (k === null) return res.status;
  const status = (res as any)[k.sResponse]?.status;
  return typeof status === "number" ? status : res.status;
}

/**
 * After {@link staticBody} returned a body that is about to be sent, mark it used so that a second use
 * of the same Response fails as it would with Deno.serve.
 *
 * @param res The response being sent.
 */
export function markBodyUsed(res: Response): void {
  const k = internals;
  if (k !== null) markUsed(k, res);
}

function markUsed(k: Internals, res: Response): void {
  const r: any = res;
  if (k.sLazyBody && r[k.sLazyBody] != null) {
    // Deno.serve's own mark for a body it sent from the constructor's value: one store, and the body is
    // made (used) only if someone asks for it.
    if (k.sFastConsumed) {
      r[k.sFastConsumed] = true;
      return;
    }
    const inner = r[k.sResponse];
    if (inner) inner.body = new k.InnerBody({ body: r[k.sLazyBody], consumed: true } as any);
    r[k.sLazyBody] = null;
  }
  if (k.sFastStatus) {
    r[k.sFastStatus] = 0;
    r[k.sFastBody!] = null;
  }
  const sos = r[k.sResponse]?.body?.streamOrStatic;
  if (sos && !(sos instanceof ReadableStream)) sos.consumed = true;
}

/** Deno's core ops, reached the way its own `Deno.Conn` does; null when this Deno does not expose them. */
const core: {
  read(rid: number, buf: Uint8Array): Promise<number>;
  write(rid: number, buf: Uint8Array): Promise<number>;
  decode?(buf: Uint8Array): string;
} | null = (() => {
  try {
    const c = (Deno as any)[(Deno as any).internal]?.core;
    return typeof c?.read === "function" ? c : null;
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
 */
export function decodeAscii(bytes: Uint8Array): string {
  return coreDecode !== null ? coreDecode(bytes) : textDecoder.decode(bytes);
}

/**
 * The resource id of a plain TCP connection, for {@link readOp} and {@link writeOp}: they skip
 * `Deno.Conn`'s `read` and `write` wrappers (an extra async function each, and the bookkeeping that
 * `unref()` needs, which the server never uses) and call the same ops, with the same errors. -1 when the
 * internals are off or differ, or the connection is not TCP (TLS keeps its own reader and writer).
 *
 * @param conn The accepted connection.
 * @returns The resource id, or -1.
 */
export function rawRid(conn: Deno.Conn): number {
  if (internals === null || core === null || conn.constructor?.name !== "TcpConn") return -1;
  if (typeof core.write !== "function") return -1;
  const sym = symbolOf(conn, "Deno.internal.rid");
  const rid = sym === undefined ? undefined : (conn as any)[sym];
  return typeof rid === "number" ? rid : -1;
}

/**
 * Read from the connection whose {@link rawRid} is `rid` into `buf`.
 *
 * @param rid From {@link rawRid}, not -1.
 * @param buf Where the bytes go.
 * @returns The bytes read; 0 at the end of the stream.
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
 */
export function writeOp(rid: number, buf: Uint8Array): Promise<number> {
  return core!.write(rid, buf);
}

/**
 * Whether the internal fast paths are active (false on a Deno whose internals differ).
 *
 * @returns True when Deno's internals were found and passed the self-test.
 */
export function fastPathsActive(): boolean {
  return internals !== null;
}

/**
 * Turn the fast paths off or on again, so tests can show the public-API path behaves the same.
 *
 * @param enabled False to use only the public API.
 */
export function setFastPaths(enabled: boolean): void {
  internals = enabled ? FOUND : null;
}
