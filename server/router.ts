// The router: maps a method and path to a route handler, with middleware around it. It owns matching,
// 404/405/OPTIONS/HEAD (RFC 9110 §9.3) and turning errors into responses; it must never read a body.
// Finding the route for a path is the matcher's job (router_trie.ts by default, any other behind the same
// interface), so this file holds what every matcher shares: HTTP's answers around a match, and middleware.
import { type Context, createContext, type Middleware, type RouteHandler } from "./context.ts";
import { errorResponse } from "./errors.ts";
import { activeSpan, nameRoute, type Span, tracingEnabled } from "./otel.ts";
import { type RouteMatcher, TrieMatcher } from "./router_trie.ts";
import { decodePathOnce } from "./safe_path.ts";
import type { ServeHandlerInfo } from "./types.ts";

/**
 * Methods listed first in `Allow`, in this order, so the header reads the same whatever the route order;
 * other methods follow alphabetically, and OPTIONS comes last.
 */
const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/**
 * Methods the router knows without a route (RFC 9110 §9 and PATCH, RFC 5789): on a path that lacks one, a
 * 405 (or a 404). Any other method is known only if some route has it; else it is a 501 (RFC 9110 §9.1).
 */
const STANDARD_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"]);

/**
 * The methods that have a shorthand on {@link Router}, named in lower case: `router.get(pattern, handler)` is
 * `router.on("GET", pattern, handler)`. One table, so the shorthands are one function and one doc comment.
 *
 * @example
 * ```ts
 * import { ROUTER_VERBS } from "./router.ts";
 * console.log(ROUTER_VERBS.includes("patch")); // true
 * ```
 */
export const ROUTER_VERBS = ["get", "post", "put", "delete", "patch"] as const;

/** RFC 9110 §5.6.2 token: what a method name may be. */
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Handles a request whose path matches routes for other methods only. */
export type MethodNotAllowedHandler = (
  request: Request,
  ctx: Context,
  allow: readonly string[],
) => Response | Promise<Response>;

/** Handles an error thrown by a route, middleware or custom handler. */
export type ErrorHandler = (error: unknown, request: Request, ctx: Context) => Response | Promise<Response>;

/** Options for {@link Router}. */
export interface RouterOptions {
  /** Peers whose `X-Forwarded-*` headers are believed (see `createContext`). Default: loopback only. */
  trustedProxies?: readonly string[];
  /** Answers when no route matches the path. Default: a plain-text 404. */
  notFound?: RouteHandler;
  /**
   * Answers when the path matches only for other methods. Default: a plain-text 405. The router adds the
   * `Allow` header if the handler's response lacks it, since RFC 9110 §15.5.6 requires it.
   */
  methodNotAllowed?: MethodNotAllowedHandler;
  /** Turns a thrown error into a response. Default: `errorResponse` (HttpError status, or a logged 500). */
  onError?: ErrorHandler;
  /**
   * Makes the matcher that holds the routes, once per router. Default: {@link TrieMatcher}, a segment trie
   * per method. Another matcher must take the same patterns and pass the router's shared table of cases
   * (`server/router_cases_test.ts`).
   */
  matcher?: <T>() => RouteMatcher<T>;
}

/** The result of {@link Router.match}. */
export interface RouteMatch {
  /** The matched route's handler. */
  handler: RouteHandler;
  /** The route's parameters, percent-decoded once. */
  params: Record<string, string>;
  /** The route's pattern, as registered. */
  pattern: string;
  /** The route's method: "GET" when a HEAD request fell back to a GET route. */
  method: string;
}

/**
 * Options for {@link Router.use} with a path.
 *
 * @example
 * ```ts
 * import type { UseOptions } from "./router.ts";
 * const homeOnly: UseOptions = { exact: true };
 * ```
 */
export interface UseOptions {
  /**
   * Run only on the paths given, not below them. Default false: a path is a prefix, so `/contact` covers
   * `/contact/thanks` too, and `/` covers every path; an exact `/` is the home page alone.
   */
  exact?: boolean;
}

/** Middleware as added, with the paths it runs on (null for every path). */
interface Layer {
  middleware: Middleware;
  scope: ((path: string) => boolean) | null;
}

/**
 * Which decoded paths a `use(path, ...)` covers. A prefix ends at a segment boundary: `/contact` covers
 * `/contact` and `/contact/...`, never `/contacts`; one that ends in `/` covers what is below it.
 */
function scopeOf(paths: string | readonly string[], options: UseOptions): (path: string) => boolean {
  const list = typeof paths === "string" ? [paths] : [...paths];
  if (list.length === 0) throw new TypeError("Router.use: the list of paths is empty");
  const decoded = list.map((path) => {
    // Written as a URL path; escapes in it are decoded once, as the request's path is.
    const text = typeof path === "string" && path.startsWith("/") ? decodePathOnce(path) : null;
    if (text === null) throw new TypeError(`Router.use: bad path ${JSON.stringify(path)}`);
    return text;
  });
  const exact = new Set(decoded);
  if (options.exact) return (path) => exact.has(path);
  const prefixes = decoded.map((path) => path.endsWith("/") ? path : `${path}/`);
  return (path) => exact.has(path) || prefixes.some((prefix) => path.startsWith(prefix));
}

/** What the router keeps with each route in its matcher. */
interface Route {
  method: string;
  pattern: string;
  handler: RouteHandler;
}

function sortMethods(methods: Iterable<string>): string[] {
  const rank = (m: string) => {
    if (m === "OPTIONS") return METHOD_ORDER.length + 1;
    const i = METHOD_ORDER.indexOf(m);
    return i === -1 ? METHOD_ORDER.length : i;
  };
  return [...methods].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Set a header even on a response whose headers are immutable (`Response.redirect`, a `fetch` result). */
function withHeader(response: Response, name: string, value: string): Response {
  try {
    response.headers.set(name, value);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set(name, value);
    return copy;
  }
}

/** A HEAD response: the GET response's status and headers without its body (RFC 9110 §9.3.2). */
function headResponse(response: Response): Response {
  // Cancel rather than drop the body, so a streaming handler learns that nobody will read it.
  response.body?.cancel().catch(() => {});
  return new Response(null, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * The shorthand methods of {@link Router}, one per name of {@link ROUTER_VERBS}: `get`, `post`, `put`,
 * `delete` and `patch`. Each takes a pattern and a handler, adds the route for its method, upper-cased, and
 * returns the router; a GET route also serves HEAD.
 *
 * @example
 * ```ts
 * import { Router } from "./router.ts";
 * new Router()
 *   .get("/posts", () => Response.json([]))
 *   .post("/posts", () => new Response(null, { status: 201 }))
 *   .delete("/posts/:id", () => new Response(null, { status: 204 }));
 * ```
 */
export type RouterVerbs = {
  /**
   * Add a route for this verb's method, upper-cased: `get(pattern, handler)` is `on("GET", pattern, handler)`
   * (a GET route also serves HEAD).
   *
   * @param pattern The path pattern.
   * @param handler The route handler.
   * @returns The router, for chaining.
   * @throws {TypeError} When the pattern is invalid.
   * @throws {Error} When the router has started matching.
   *
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * new Router().put("/profile/:name", (_req, ctx) => new Response(ctx.params.name));
   * ```
   */
  [Verb in typeof ROUTER_VERBS[number]]: (pattern: string, handler: RouteHandler) => Router;
};

/** {@link Router}'s verb shorthands, declared from {@link ROUTER_VERBS}; assigned below the class. */
export interface Router extends RouterVerbs {}

/**
 * An HTTP router with middleware. Routes are added with `on(method, pattern, handler)`, or with a verb's
 * shorthand: `get`, `post`, `put`, `delete` or `patch` ({@link RouterVerbs}).
 *
 * Patterns: static segments (`/about`), named params (`/profile/:name`), params with a regex constraint
 * on the whole segment (`/post/:id(\d+)`; the regex may not contain `/`), and a trailing wildcard
 * (`/files/*`, which matches `/files/` and anything below it, stored as `params["*"]`). At every segment a
 * static match beats a constrained param, which beats a plain param, which beats a wildcard; the router
 * backtracks when a more specific branch leads nowhere. Params are percent-decoded once; a malformed
 * escape, invalid UTF-8 or NUL in a param is a 400. Static segments match the path exactly as the URL
 * parser leaves it: `/%61bout` is not `/about`. RFC 3986 §6.2.2 calls them equivalent, but middleware that
 * checks `ctx.url.pathname` sees the encoded form, and a router more lenient than that check would let
 * `/%61dmin` past a guard on `/admin`. A guard added with `use("/admin", guard)` compares the decoded path,
 * so it covers both spellings.
 *
 * A path with no route is a 404; a path with routes for other methods only is a 405 with `Allow`; HEAD
 * is served by the GET route with the body dropped; OPTIONS without its own route is a 204 with `Allow`. A
 * method that is neither one of RFC 9110's (or PATCH) nor routed anywhere is a 501: the server does not
 * implement it (RFC 9110 §9.1), whatever the path.
 * Routes and middleware are fixed once the first request is matched: adding one later throws.
 *
 * @example
 * ```ts
 * import { Router } from "./router.ts";
 * const router = new Router()
 *   .get("/", () => new Response("home"))
 *   .get("/post/:id(\\d+)", (_req, ctx) => new Response(`post ${ctx.params.id}`));
 * const remoteAddr = { transport: "tcp" as const, hostname: "127.0.0.1", port: 1 };
 * const info = { remoteAddr, completed: Promise.resolve() };
 * const res = await router.fetch(new Request("http://localhost/post/7"), info);
 * console.log(await res.text()); // "post 7"
 * ```
 */
export class Router {
  #matcher: RouteMatcher<Route>;
  /** Every method some route has: any other that is not standard is a 501. */
  #methods = new Set<string>();
  #layers: Layer[] = [];
  /** Some middleware has a path: requests then decode theirs once, for every scope to read. */
  #scoped = false;
  /** Set by the first match: routes and middleware are fixed from then on. */
  #started = false;
  #options: RouterOptions;

  /**
   * Create an empty router.
   *
   * @param options Trusted proxies, the 404, 405 and error handlers, and the matcher.
   *
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * const router = new Router({ notFound: () => new Response("nothing here", { status: 404 }) });
   * ```
   */
  constructor(options: RouterOptions = {}) {
    this.#options = options;
    this.#matcher = options.matcher ? options.matcher<Route>() : new TrieMatcher<Route>();
  }

  /**
   * The request handler, a `Handler` for `serve()` or `Deno.serve()`. Bound, so it can be passed alone.
   *
   * @param request The request.
   * @param info The connection info, for the context's client address.
   * @returns The response; errors become responses through `onError`, so this never rejects.
   *
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * const router = new Router().get("/", () => new Response("hi"));
   * const remoteAddr = { transport: "tcp" as const, hostname: "127.0.0.1", port: 1 };
   * const info = { remoteAddr, completed: Promise.resolve() };
   * console.log((await router.fetch(new Request("http://localhost/"), info)).status); // 200
   * ```
   */
  readonly fetch = (request: Request, info: ServeHandlerInfo): Promise<Response> =>
    this.#handle(request, info);

  /**
   * Add a route for one or more methods. Method names are case-sensitive (RFC 9110 §9.1), so `"get"` is
   * not GET; a route's own HEAD or OPTIONS wins over the automatic ones.
   *
   * @param method A method name, or several.
   * @param pattern The path pattern.
   * @param handler The route handler.
   * @returns The router, for chaining.
   * @throws {TypeError} When the method or pattern is invalid.
   * @throws {Error} When the same method and pattern were added before, or the router has started matching.
   *
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * new Router().on(["GET", "POST"], "/search", () => new Response("results"));
   * ```
   */
  on(method: string | readonly string[], pattern: string, handler: RouteHandler): this {
    const methods = typeof method === "string" ? [method] : method;
    if (this.#started) {
      throw new Error(`Router: cannot add ${methods.join(",")} ${pattern} after matching started`);
    }
    if (typeof handler !== "function") throw new TypeError(`Route ${pattern}: handler must be a function`);
    for (const m of methods) {
      if (!METHOD_TOKEN.test(m)) throw new TypeError(`Route ${pattern}: invalid method ${JSON.stringify(m)}`);
    }
    for (const m of methods) {
      this.#matcher.add(m, pattern, { method: m, pattern, handler });
      this.#methods.add(m);
    }
    return this;
  }

  /**
   * Add middleware that runs around every request, including 404s, 405s and OPTIONS, in the order
   * added. Calling `next` twice rejects with an Error.
   *
   * @param middleware The middleware.
   * @returns The router, for chaining.
   * @throws {Error} When the router has started matching.
   *
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * new Router().use(async function poweredBy(_req, next) {
   *   const res = await next();
   *   res.headers.set("x-powered-by", "Pier");
   *   return res;
   * });
   * ```
   */
  use(middleware: Middleware): this;
  /**
   * Add middleware that runs only on some paths: in its place among the others, and skipped elsewhere.
   *
   * A path is a prefix on segment boundaries: `/contact` covers `/contact`, `/contact/` and
   * `/contact/thanks`, not `/contacts`; `/admin/` covers what is below `/admin/` but not `/admin`; `/` covers
   * everything. With `{ exact: true }` the middleware runs on the paths given and nothing below them. A list
   * covers each of its paths.
   *
   * Paths are compared decoded once, as the router decodes params (`decodePathOnce`), so `/%63ontact` is in
   * the scope of `/contact`, and an encoded slash counts as a slash: a scope errs towards running. A request
   * path that cannot be decoded (a malformed escape, invalid UTF-8) is compared as it arrived, and so is in
   * a scope only when its raw text is (no route's static segments match it otherwise either).
   *
   * @param path A path written as it reads (`/café`), or several; escapes in it are decoded once too.
   * @param middleware The middleware.
   * @param options `exact`, to run on the paths themselves only.
   * @returns The router, for chaining.
   * @throws {TypeError} When a path does not start with "/" or cannot be decoded, or the list is empty.
   * @throws {Error} When the router has started matching.
   *
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * const noStore = async function noStore(_req: Request, next: () => Promise<Response>) {
   *   const res = await next();
   *   res.headers.set("cache-control", "no-store");
   *   return res;
   * };
   * new Router()
   *   .use("/account", noStore) // /account and everything below it
   *   .use(["/", "/index.html"], noStore, { exact: true }); // the home page, not every path
   * ```
   */
  use(path: string | readonly string[], middleware: Middleware, options?: UseOptions): this;
  use(
    pathOrMiddleware: string | readonly string[] | Middleware,
    middleware?: Middleware,
    options: UseOptions = {},
  ): this {
    if (this.#started) throw new Error("Router: cannot add middleware after matching started");
    const scoped = typeof pathOrMiddleware !== "function";
    const added = scoped ? middleware : pathOrMiddleware;
    if (typeof added !== "function") throw new TypeError("Router: middleware must be a function");
    const scope = scoped ? scopeOf(pathOrMiddleware, options) : null;
    this.#layers.push({ middleware: added, scope });
    this.#scoped ||= scoped;
    return this;
  }

  /**
   * Find the route for a method and path, compiling the routes on first use. HEAD falls back to GET.
   *
   * @param method The request method.
   * @param pathname The URL path, still percent-encoded (as `URL.pathname` gives it).
   * @returns The handler, decoded params and pattern, or null when no route matches.
   * @throws {HttpError} 400 when a param has malformed percent-encoding, invalid UTF-8 or NUL.
   *
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * const router = new Router().get("/profile/:name", () => new Response());
   * console.log(router.match("GET", "/profile/ada%20l")?.params); // { name: "ada l" }
   * ```
   */
  match(method: string, pathname: string): RouteMatch | null {
    this.#started = true;
    let found = this.#matcher.match(method, pathname);
    if (!found && method === "HEAD") found = this.#matcher.match("GET", pathname);
    if (!found) return null;
    const route = found.value;
    return { handler: route.handler, params: found.params, pattern: route.pattern, method: route.method };
  }

  /**
   * The methods that have a route for a path, as `Allow` lists them: with HEAD when GET is there, and
   * OPTIONS when any is. Empty when no route matches the path.
   *
   * @param pathname The URL path, still percent-encoded.
   * @returns The methods, GET first.
   *
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * const router = new Router().get("/a", () => new Response()).post("/a", () => new Response());
   * console.log(router.allowed("/a")); // ["GET", "HEAD", "POST", "OPTIONS"]
   * ```
   */
  allowed(pathname: string): string[] {
    this.#started = true;
    const methods = new Set(this.#matcher.methods(pathname));
    if (methods.size === 0) return [];
    if (methods.has("GET")) methods.add("HEAD");
    methods.add("OPTIONS");
    return sortMethods(methods);
  }

  async #handle(request: Request, info: ServeHandlerInfo): Promise<Response> {
    const ctx = createContext(request, info, { trustedProxies: this.#options.trustedProxies });
    this.#started = true;
    // The request's server span (Pier's or Deno.serve's), taken before any middleware starts its own, so the
    // route names it. With telemetry off this one test is all it costs.
    const serverSpan = tracingEnabled ? activeSpan() : undefined;
    const layers = this.#layers;
    // Decoded once per request, and only when some middleware has a path; undecodable, it stays as it came.
    const pathname = ctx.url.pathname;
    const path = this.#scoped ? decodePathOnce(pathname) ?? pathname : pathname;
    const run = async (i: number): Promise<Response> => {
      while (i < layers.length && layers[i].scope?.(path) === false) i++;
      if (i === layers.length) return await this.#dispatch(request, ctx, serverSpan);
      const { middleware } = layers[i];
      let called = false;
      const next = (): Promise<Response> => {
        if (called) return Promise.reject(new Error(`next() called twice in middleware ${middleware.name}`));
        called = true;
        return run(i + 1);
      };
      return checked(await middleware(request, next, ctx), `middleware ${middleware.name}`);
    };
    let response: Response;
    try {
      response = await run(0);
    } catch (error) {
      response = await this.#error(error, request, ctx);
    }
    // RFC 9110 §9.3.2: a HEAD response carries no content, whoever produced it (a GET route, a 405, an
    // error); the headers stay, so Content-Length still tells the size a GET would send.
    return request.method === "HEAD" && response.body !== null ? headResponse(response) : response;
  }

  /** Route the request; a route's error is answered here, so middleware still sees (and decorates) it. */
  async #dispatch(request: Request, ctx: Context, serverSpan: Span | undefined): Promise<Response> {
    try {
      const pathname = ctx.url.pathname;
      const found = this.match(request.method, pathname);
      if (found) {
        ctx.params = found.params;
        // OpenTelemetry's http.route: the pattern, never the path (which may name a person).
        if (serverSpan !== undefined) nameRoute(serverSpan, request.method, found.pattern);
        return checked(await found.handler(request, ctx), `route ${found.pattern}`);
      }
      if (!STANDARD_METHODS.has(request.method) && !this.#methods.has(request.method)) {
        // RFC 9110 §9.1: a method no route implements is not implemented by this server.
        return new Response("Not Implemented", {
          status: 501,
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      }
      const allow = this.allowed(pathname);
      if (allow.length === 0) {
        return this.#options.notFound
          ? checked(await this.#options.notFound(request, ctx), "notFound")
          : new Response("Not Found", {
            status: 404,
            headers: { "content-type": "text/plain; charset=utf-8" },
          });
      }
      const allowHeader = allow.join(", ");
      // RFC 9110 §9.3.7: OPTIONS on a resource answers with what it supports.
      if (request.method === "OPTIONS") {
        return new Response(null, { status: 204, headers: { allow: allowHeader } });
      }
      if (this.#options.methodNotAllowed) {
        const res = checked(await this.#options.methodNotAllowed(request, ctx, allow), "methodNotAllowed");
        return res.headers.has("allow") ? res : withHeader(res, "allow", allowHeader);
      }
      // RFC 9110 §15.5.6: a 405 MUST carry Allow.
      return new Response("Method Not Allowed", {
        status: 405,
        headers: { allow: allowHeader, "content-type": "text/plain; charset=utf-8" },
      });
    } catch (error) {
      return await this.#error(error, request, ctx);
    }
  }

  async #error(error: unknown, request: Request, ctx: Context): Promise<Response> {
    if (!this.#options.onError) return errorResponse(error, request);
    try {
      return checked(await this.#options.onError(error, request, ctx), "onError");
    } catch (again) {
      // The error handler itself failed: fall back to the default, which cannot throw.
      console.error("Router onError handler threw:", again);
      return errorResponse(error, request);
    }
  }
}

// The verb shorthands, made from the table: one function, where five written out would drift apart.
for (const verb of ROUTER_VERBS) {
  const method = verb.toUpperCase();
  Router.prototype[verb] = function (this: Router, pattern: string, handler: RouteHandler): Router {
    return this.on(method, pattern, handler);
  };
}

/** A handler that returns something else (a string, undefined) is a bug; say which one. */
function checked(value: unknown, who: string): Response {
  if (value instanceof Response) return value;
  throw new TypeError(`${who} returned ${value === null ? "null" : typeof value}, not a Response`);
}
