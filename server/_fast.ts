// Fast paths into Deno's own Request/Response objects, the ones Deno.serve uses: a Request whose URL and
// headers are built only when a handler reads them, and a Response's static body read without a stream.
// Everything here is feature-detected once and checked; when Deno's internals differ, the public API is used.
// deno-lint-ignore-file no-explicit-any
import { rawOpsFailure, setRawOps } from "./_ops.ts";

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
  problem = "Deno's Request and Response internals were not found where Pier looks for them";
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
    if (!selfTest(internals)) {
      problem = "a Request or Response built through Deno's internals did not behave as the public API says";
      return null;
    }
    problem = null;
    return internals;
  } catch {
    return null;
  }
}

/** Read a request body through the fast path; on a wrong result, use the public API from now on. */
async function checkBodyRead(k: Internals): Promise<void> {
  let ok = false;
  try {
    const body = ReadableStream.from([new Uint8Array([104, 105]), new Uint8Array([33])]);
    const r = fastRequest(k, "POST", "http://127.0.0.1:1/", ["host", "127.0.0.1:1"], body);
    ok = (await r.text()) === "hi!" && r.bodyUsed;
  } catch { /* not ok */ }
  if (!ok) {
    problem = "a request body read through Deno's internals did not give its bytes";
    found = null;
    internals = null;
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
  if (r.headers.get("x-test") !== "yes" || r.body !== stream || r.bodyUsed) return false;
  // request.signal aborts when the connection says the client left (Deno makes the signal lazily).
  let cancel: (() => void) | null = null;
  const watched = fastRequest(k, "GET", "http://127.0.0.1:1/", [], null, (cb) => cancel = cb);
  const signal = watched.signal;
  if (signal.aborted || cancel === null) return false;
  (cancel as () => void)();
  if (!signal.aborted) return false;
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

/** Why the fast paths are off when detection or a self-test failed. */
let problem: string | null = null;
/** What detection found; it runs once, and switching the fast paths back on reuses it. */
let found: Internals | null = detect();
let internals: Internals | null = found;
/** The self-test's asynchronous part: a request body read through the fast path must give its bytes. */
const bodyChecked: Promise<void> = found === null ? Promise.resolve() : checkBodyRead(found);

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

/**
 * Whether the internal fast paths are active (false on a Deno whose internals differ).
 *
 * @returns True when Deno's internals were found and passed the self-test.
 */
export function fastPathsActive(): boolean {
  return internals !== null;
}

/**
 * Turn the fast paths (and the raw socket ops of `_ops.ts`) off or on again, so tests and the benchmark
 * can show the public-API path behaves the same.
 *
 * @param enabled False to use only the public API.
 */
export function setFastPaths(enabled: boolean): void {
  internals = enabled ? found : null;
  setRawOps(enabled);
}

/**
 * Why Pier runs on the public API only, when this Deno's internals differ from what it knows (detection
 * or a self-test failed), or null when the fast paths work. The body-reading part of the self-test is
 * asynchronous, so this waits for it; it settles within microtasks of the module loading.
 *
 * @returns A sentence for the startup warning, or null.
 */
export async function fastPathFailure(): Promise<string | null> {
  await bodyChecked;
  if (found === null) return problem;
  return rawOpsFailure();
}
