// The router's matcher: route patterns parsed into one segment trie per method, built on the first match. It
// owns the pattern grammar and decoding params once; it must never see a Request or answer HTTP (404, 405 and
// HEAD are the router's). Any matcher behind the router passes the shared table in router_cases_test.ts.
import { HttpError } from "./errors.ts";

/** A param name: an identifier, so it can be read as `ctx.params.name`. */
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A param segment: `:name` with an optional `(regex)` constraint that must match the whole segment. */
const PARAM_SEGMENT = /^:([^(]*)(?:\((.*)\))?$/;

/** The name under which a trailing `*` stores the rest of the path. */
const WILDCARD = "*";

/**
 * A route found by a {@link RouteMatcher}: the value it was added with, and its params.
 *
 * @example
 * ```ts
 * import type { MatchedRoute } from "./router_trie.ts";
 * const found: MatchedRoute<string> = { value: "profile page", params: { name: "ada" } };
 * console.log(found.params.name); // "ada"
 * ```
 */
export interface MatchedRoute<T> {
  /** What the route was added with (the router adds its handler and pattern). */
  value: T;
  /** The route's params by name, percent-decoded once; a trailing wildcard's is `"*"`. */
  params: Record<string, string>;
}

/**
 * What the router needs of a matcher: routes in, then the route for a method and path out. The router owns
 * the rest (HEAD from GET, 404, 405 and `Allow`, 501), so a matcher answers for the exact method only.
 *
 * Every matcher takes the same patterns (see {@link TrieMatcher}) and must pass the router's shared table of
 * cases (`server/router_cases_test.ts`): the same winner, params and errors for every method and path.
 *
 * @example
 * ```ts
 * import { type RouteMatcher, TrieMatcher } from "./router_trie.ts";
 * const matcher: RouteMatcher<string> = new TrieMatcher();
 * matcher.add("GET", "/profile/:name", "profile page");
 * console.log(matcher.match("GET", "/profile/ada")?.params.name); // "ada"
 * ```
 */
export interface RouteMatcher<T> {
  /**
   * Add a route. A bad pattern throws a TypeError here; a duplicate may throw an Error here or at the first
   * match.
   */
  add(method: string, pattern: string, value: T): void;
  /**
   * The route for exactly this method and path (still percent-encoded, as `URL.pathname` gives it), or null.
   * Throws an {@link HttpError} 400 when a param it would return, or test against a constraint, has a
   * malformed escape, invalid UTF-8 or NUL.
   */
  match(method: string, pathname: string): MatchedRoute<T> | null;
  /** Every method that has a route for this path, in any order; empty when none has. */
  methods(pathname: string): string[];
}

interface Leaf<T> {
  method: string;
  pattern: string;
  value: T;
  /** Param names in path order; a trailing wildcard is named "*". */
  names: string[];
}

interface ParamEdge<T> {
  /** The constraint, anchored; null for a plain param. */
  constraint: RegExp | null;
  /** The constraint source, to tell two edges apart when building the trie. */
  source: string;
  node: Node<T>;
}

interface Node<T> {
  statics: Map<string, Node<T>> | null;
  /** Constrained edges first, then the plain one, so a constraint is the more specific choice. */
  params: ParamEdge<T>[];
  wildcard: Leaf<T> | null;
  route: Leaf<T> | null;
}

type Segment =
  | { kind: "static"; value: string }
  | { kind: "param"; name: string; constraint: RegExp | null; source: string }
  | { kind: "wildcard" };

function newNode<T>(): Node<T> {
  return { statics: null, params: [], wildcard: null, route: null };
}

/**
 * Put a static pattern segment into the form request paths have after URL parsing (RFC 3986 §2.1), so
 * `/café` matches a request for `/caf%C3%A9`.
 */
function canonicalSegment(segment: string): string {
  return new URL(`http://h/${segment}`).pathname.slice(1);
}

function parsePattern(pattern: string): Segment[] {
  if (!pattern.startsWith("/")) throw new TypeError(`Route pattern must start with "/": ${pattern}`);
  const parts = pattern.slice(1).split("/");
  const segments: Segment[] = [];
  const seen = new Set<string>();
  parts.forEach((part, i) => {
    if (part === WILDCARD) {
      if (i !== parts.length - 1) {
        throw new TypeError(`Route pattern ${pattern}: "*" must be the last segment`);
      }
      segments.push({ kind: "wildcard" });
    } else if (part.startsWith(":")) {
      const m = PARAM_SEGMENT.exec(part);
      const name = m?.[1] ?? "";
      if (!PARAM_NAME.test(name)) throw new TypeError(`Route pattern ${pattern}: bad parameter ${part}`);
      if (seen.has(name)) throw new TypeError(`Route pattern ${pattern}: parameter ${name} appears twice`);
      seen.add(name);
      const source = m?.[2];
      let constraint: RegExp | null = null;
      if (source !== undefined) {
        try {
          constraint = new RegExp(`^(?:${source})$`);
        } catch (e) {
          throw new TypeError(
            `Route pattern ${pattern}: bad constraint for ${name}: ${(e as Error).message}`,
          );
        }
      }
      segments.push({ kind: "param", name, constraint, source: source ?? "" });
    } else {
      segments.push({ kind: "static", value: canonicalSegment(part) });
    }
  });
  return segments;
}

/**
 * Percent-decode a param once (RFC 3986 §2.1). Malformed escapes, bytes that are not UTF-8, and NUL are
 * the client's fault (a 400), and a NUL in a name that reaches the file system or a database is a classic
 * injection, so it is refused here for every route.
 */
function decodeParam(raw: string): string {
  if (!raw.includes("%")) return raw;
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, "Malformed percent-encoding in the path");
  }
  if (value.includes("\0")) throw new HttpError(400, "NUL in the path");
  return value;
}

/**
 * The default {@link RouteMatcher}: one segment trie per method, built on the first match (adding a route
 * after that throws). Matching walks it without building strings for static segments.
 *
 * Patterns: static segments (`/about`), named params (`/profile/:name`), params with a regex constraint on
 * the whole segment (`/post/:id(\d+)`; the regex may not contain `/`), and a trailing wildcard (`/files/*`,
 * which matches `/files/` and anything below it, as the param `"*"`). At every segment a static match beats a
 * constrained param, which beats a plain param, which beats a wildcard; the walk backtracks when a more
 * specific branch leads nowhere. Static segments match the path exactly as the URL parser leaves it (the
 * router's documentation says why `/%61bout` is not `/about`). An empty segment is no param's value.
 *
 * @example
 * ```ts
 * import { TrieMatcher } from "./router_trie.ts";
 * const matcher = new TrieMatcher<string>();
 * matcher.add("GET", "/post/:id(\\d+)", "by id");
 * matcher.add("GET", "/post/:slug", "by slug");
 * console.log(matcher.match("GET", "/post/42")?.value); // "by id"
 * console.log(matcher.match("GET", "/post/hello")?.value); // "by slug"
 * ```
 */
export class TrieMatcher<T> implements RouteMatcher<T> {
  #leaves: { leaf: Leaf<T>; segments: Segment[] }[] = [];
  #trees: Map<string, Node<T>> | null = null;

  /**
   * Add a route; the trie is built from every route at the first match.
   *
   * @param method The method, exactly as requests carry it.
   * @param pattern The path pattern.
   * @param value What a match returns.
   * @throws {TypeError} When the pattern is invalid.
   * @throws {Error} When matching has started.
   *
   * @example
   * ```ts
   * import { TrieMatcher } from "./router_trie.ts";
   * new TrieMatcher<number>().add("GET", "/files/*", 1);
   * ```
   */
  add(method: string, pattern: string, value: T): void {
    if (this.#trees) throw new Error(`TrieMatcher: cannot add ${method} ${pattern} after matching started`);
    const segments = parsePattern(pattern);
    const names = segments.flatMap((s) =>
      s.kind === "param" ? [s.name] : s.kind === "wildcard" ? [WILDCARD] : []
    );
    this.#leaves.push({ leaf: { method, pattern, value, names }, segments });
  }

  /**
   * The route for exactly this method and path.
   *
   * @param method The request method.
   * @param pathname The URL path, still percent-encoded.
   * @returns The route's value and decoded params, or null.
   * @throws {HttpError} 400 when a param has malformed percent-encoding, invalid UTF-8 or NUL.
   * @throws {Error} At the first match, when two routes have the same method and pattern shape.
   *
   * @example
   * ```ts
   * import { TrieMatcher } from "./router_trie.ts";
   * const matcher = new TrieMatcher<string>();
   * matcher.add("GET", "/files/*", "files");
   * console.log(matcher.match("GET", "/files/a%20b.txt")?.params); // { "*": "a b.txt" }
   * ```
   */
  match(method: string, pathname: string): MatchedRoute<T> | null {
    const tree = (this.#trees ?? this.#build()).get(method);
    if (!tree) return null;
    const values: string[] = [];
    const leaf = find(tree, pathname, 1, values);
    if (!leaf) return null;
    const params: Record<string, string> = {};
    for (let i = 0; i < leaf.names.length; i++) params[leaf.names[i]] = decodeParam(values[i]);
    return { value: leaf.value, params };
  }

  /**
   * Every method with a route for this path.
   *
   * @param pathname The URL path, still percent-encoded.
   * @returns The methods, in the order their first routes were added.
   *
   * @example
   * ```ts
   * import { TrieMatcher } from "./router_trie.ts";
   * const matcher = new TrieMatcher<number>();
   * matcher.add("GET", "/a", 1);
   * matcher.add("POST", "/a", 2);
   * console.log(matcher.methods("/a")); // ["GET", "POST"]
   * ```
   */
  methods(pathname: string): string[] {
    const methods: string[] = [];
    for (const [method, tree] of this.#trees ?? this.#build()) {
      if (find(tree, pathname, 1, [])) methods.push(method);
    }
    return methods;
  }

  #build(): Map<string, Node<T>> {
    const trees = new Map<string, Node<T>>();
    for (const { leaf, segments } of this.#leaves) {
      let tree = trees.get(leaf.method);
      if (!tree) trees.set(leaf.method, tree = newNode());
      insert(tree, segments, leaf);
    }
    this.#trees = trees;
    return trees;
  }
}

function insert<T>(root: Node<T>, segments: Segment[], leaf: Leaf<T>): void {
  let node = root;
  for (const segment of segments) {
    if (segment.kind === "static") {
      node.statics ??= new Map();
      let child = node.statics.get(segment.value);
      if (!child) node.statics.set(segment.value, child = newNode());
      node = child;
    } else if (segment.kind === "param") {
      let edge = node.params.find((e) => e.source === segment.source);
      if (!edge) {
        edge = { constraint: segment.constraint, source: segment.source, node: newNode() };
        node.params.push(edge);
        // Constrained edges before the plain one; among constrained ones, the order of registration.
        node.params.sort((a, b) => Number(a.constraint === null) - Number(b.constraint === null));
      }
      node = edge.node;
    } else {
      if (node.wildcard) throw duplicate(leaf, node.wildcard);
      node.wildcard = leaf;
      return;
    }
  }
  if (node.route) throw duplicate(leaf, node.route);
  node.route = leaf;
}

function duplicate<T>(leaf: Leaf<T>, existing: Leaf<T>): Error {
  return new Error(
    `Router: ${leaf.method} ${leaf.pattern} duplicates ${existing.method} ${existing.pattern}`,
  );
}

/**
 * Walk the trie from `start` (just past a "/"), most specific branch first, backtracking on a dead end.
 * Raw param values are pushed onto `values` in path order; on failure the array is left as it was.
 */
function find<T>(node: Node<T>, path: string, start: number, values: string[]): Leaf<T> | null {
  if (start > path.length) return node.route;
  let end = path.indexOf("/", start);
  if (end === -1) end = path.length;
  const segment = path.slice(start, end);
  if (node.statics) {
    const child = node.statics.get(segment);
    if (child) {
      const found = find(child, path, end + 1, values);
      if (found) return found;
    }
  }
  // An empty segment ("/a//b", or the "" after a trailing slash) is not a value for a param.
  if (segment !== "") {
    for (const edge of node.params) {
      if (edge.constraint && !edge.constraint.test(decodeParam(segment))) continue;
      values.push(segment);
      const found = find(edge.node, path, end + 1, values);
      if (found) return found;
      values.pop();
    }
  }
  if (node.wildcard) {
    values.push(path.slice(start));
    return node.wildcard;
  }
  return null;
}
