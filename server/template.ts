// HTML templates: a small subset of Mustache, compiled once into a tree and rendered by walking it.
// Values are HTML-escaped unless the template asks for raw output in so many braces. Pure: sources in,
// templates out; reading them from a directory (by names that cannot climb out of it) is template_files.ts.

/** Deep enough for page > layout > header > nav, shallow enough to stop an include cycle quickly. */
const MAX_INCLUDE_DEPTH = 16;

/** Template names: slash-separated words, an optional extension; no `..`, no absolute path, no backslash. */
const TEMPLATE_NAME = /^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*(?:\.[A-Za-z0-9]+)?$/;

/** A value name: `.` for the current item, or dotted identifiers (`user.name`). */
const VALUE_NAME = /^(?:\.|[A-Za-z_$][\w$-]*(?:\.[A-Za-z_$0-9][\w$-]*)*)$/;

/** The extension added to a template name that has none. */
const DEFAULT_EXTENSION = ".html";

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};
const ESCAPE_CHARS = /[&<>"']/g;

type Node =
  | string
  | { kind: "value"; name: string; path: string[]; raw: boolean; line: number }
  | { kind: "section"; name: string; path: string[]; inverted: boolean; children: Node[] }
  | { kind: "partial"; name: string; line: number; children: Node[] };

/**
 * A compiled template: data in, HTML out.
 *
 * @example
 * ```ts
 * import { compileTemplate, type Template } from "./template.ts";
 * const greet: Template = compileTemplate("<p>Hello, {{name}}!</p>");
 * console.log(greet({ name: "Ada" })); // "<p>Hello, Ada!</p>"
 * ```
 */
export type Template = (data?: unknown) => string;

/** Options for {@link compileTemplate}. */
export interface CompileTemplateOptions {
  /** Development mode: a missing `{{value}}` throws instead of rendering empty. Default: false. */
  dev?: boolean;
  /** Sources for `{{> name}}` includes, by name. */
  partials?: Readonly<Record<string, string>>;
  /** The template's name, for error messages. Default: "template". */
  name?: string;
}

/**
 * Escape text for HTML element content and quoted attribute values: `& < > " '`.
 *
 * @param text The text.
 * @returns The escaped text.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./template.ts";
 * console.log(escapeHtml(`<a href="x">Tom & Jerry's</a>`));
 * // "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
 * ```
 */
export function escapeHtml(text: string): string {
  // Most values need no escaping: test first, so they are returned without building a new string.
  ESCAPE_CHARS.lastIndex = 0;
  if (!ESCAPE_CHARS.test(text)) return text;
  return text.replace(ESCAPE_CHARS, (c) => ESCAPES[c]);
}

/** Split a template source into text and tags, and nest the sections. Partials are left unresolved. */
function parse(source: string, templateName: string): Node[] {
  const root: Node[] = [];
  const stack: { name: string; line: number; children: Node[] }[] = [];
  let out = root;
  let pos = 0;
  let line = 1;
  const fail = (message: string, at: number): never => {
    throw new SyntaxError(`Template ${templateName}, line ${at}: ${message}`);
  };
  while (pos < source.length) {
    const open = source.indexOf("{{", pos);
    if (open === -1) {
      out.push(source.slice(pos));
      break;
    }
    if (open > pos) out.push(source.slice(pos, open));
    line += countLines(source, pos, open);
    const raw = source.startsWith("{{{", open);
    const close = source.indexOf(raw ? "}}}" : "}}", open);
    if (close === -1) fail(`unclosed tag ${JSON.stringify(source.slice(open, open + 20))}`, line);
    const body = source.slice(open + (raw ? 3 : 2), close).trim();
    const tagLine = line;
    line += countLines(source, open, close);
    pos = close + (raw ? 3 : 2);

    const sigil = raw ? "{" : body[0];
    const name = raw || "!#^/>".includes(sigil) ? (raw ? body : body.slice(1).trim()) : body;
    if (sigil === "!") continue;
    if (sigil === ">") {
      if (!TEMPLATE_NAME.test(name)) fail(`bad include name ${JSON.stringify(name)}`, tagLine);
      out.push({ kind: "partial", name, line: tagLine, children: [] });
      continue;
    }
    if (!VALUE_NAME.test(name)) fail(`bad name ${JSON.stringify(name)} in {{${body}}}`, tagLine);
    const path = name === "." ? [] : name.split(".");
    if (sigil === "#" || sigil === "^") {
      const children: Node[] = [];
      out.push({ kind: "section", name, path, inverted: sigil === "^", children });
      stack.push({ name, line: tagLine, children: out });
      out = children;
    } else if (sigil === "/") {
      const top = stack.pop();
      if (!top) fail(`{{/${name}}} closes no section`, tagLine);
      if (top!.name !== name) fail(`{{/${name}}} closes {{#${top!.name}}} from line ${top!.line}`, tagLine);
      out = top!.children;
    } else {
      out.push({ kind: "value", name, path, raw, line: tagLine });
    }
  }
  const open = stack.pop();
  if (open) fail(`{{#${open.name}}} is never closed`, open.line);
  return root;
}

function countLines(source: string, from: number, to: number): number {
  let n = 0;
  for (let i = source.indexOf("\n", from); i !== -1 && i < to; i = source.indexOf("\n", i + 1)) n++;
  return n;
}

/** Visit every include node, depth-first, so a loader can fill in its children. */
function partials(nodes: Node[]): Extract<Node, { kind: "partial" }>[] {
  const found: Extract<Node, { kind: "partial" }>[] = [];
  for (const node of nodes) {
    if (typeof node === "string" || node.kind === "value") continue;
    if (node.kind === "partial") found.push(node);
    else found.push(...partials(node.children));
  }
  return found;
}

/** Properties of the object prototype (`constructor`, `toString`...) are not template values. */
function has(frame: unknown, key: string): boolean {
  if (frame === null || (typeof frame !== "object" && typeof frame !== "function")) return false;
  return Object.hasOwn(frame, key) || (key in frame && !(key in Object.prototype));
}

/** Mustache lookup: the first frame, innermost out, that has the first key; then down the rest. */
function lookup(stack: unknown[], path: string[]): unknown {
  if (path.length === 0) return stack[stack.length - 1];
  let value: unknown = undefined;
  for (let i = stack.length - 1; i >= 0; i--) {
    if (has(stack[i], path[0])) {
      value = (stack[i] as Record<string, unknown>)[path[0]];
      break;
    }
  }
  for (let i = 1; i < path.length && value !== undefined; i++) {
    value = has(value, path[i]) ? (value as Record<string, unknown>)[path[i]] : undefined;
  }
  return value;
}

function renderNodes(nodes: Node[], stack: unknown[], dev: boolean, name: string): string {
  let out = "";
  for (const node of nodes) {
    if (typeof node === "string") {
      out += node;
    } else if (node.kind === "value") {
      const value = lookup(stack, node.path);
      if (value === undefined) {
        if (dev) throw new Error(`Template ${name}, line ${node.line}: no value for {{${node.name}}}`);
        continue;
      }
      if (value === null) continue;
      const text = String(value);
      out += node.raw ? text : escapeHtml(text);
    } else if (node.kind === "partial") {
      out += renderNodes(node.children, stack, dev, node.name);
    } else {
      // Sections test their value without complaint when it is missing: `{{#error}}` is how a page
      // says "only if there is an error".
      const value = lookup(stack, node.path);
      const empty = !value || (Array.isArray(value) && value.length === 0);
      if (node.inverted) {
        if (empty) out += renderNodes(node.children, stack, dev, name);
      } else if (!empty) {
        const items = Array.isArray(value) ? value : [value];
        for (const item of items) {
          stack.push(item);
          try {
            out += renderNodes(node.children, stack, dev, name);
          } finally {
            stack.pop();
          }
        }
      }
    }
  }
  return out;
}

function toTemplate(nodes: Node[], dev: boolean, name: string): Template {
  return (data?: unknown) => renderNodes(nodes, [data], dev, name);
}

/**
 * Compile a template from a string. The syntax is a subset of Mustache:
 *
 * - `{{name}}`: the value, HTML-escaped (`& < > " '`); `{{user.name}}` follows properties; `{{.}}` is the
 *   current item. A missing value is an Error in development mode and empty otherwise; null is empty.
 * - `{{{name}}}`: the value as is, for HTML you trust (never for user input).
 * - `{{#items}}…{{/items}}`: repeated for each item of a list, with the item's fields in scope; rendered
 *   once for any other truthy value, not at all for a falsy one or an empty list.
 * - `{{^items}}…{{/items}}`: rendered only when `items` is falsy or an empty list.
 * - `{{> header}}`: includes another template, rendered with the same data in scope.
 * - `{{! comment }}`: left out of the output.
 *
 * Unlike Mustache, lines holding only a section tag are kept (whitespace in HTML rarely matters), and
 * delimiters cannot be changed.
 *
 * @param source The template text.
 * @param options Development mode, include sources and a name for errors.
 * @returns The compiled template.
 * @throws {SyntaxError} On an unclosed tag or section, a mismatched close, a bad name or a missing include.
 *
 * @example
 * ```ts
 * import { compileTemplate } from "./template.ts";
 * const list = compileTemplate("<ul>{{#items}}<li>{{title}}</li>{{/items}}</ul>");
 * console.log(list({ items: [{ title: "a<b" }, { title: "c" }] })); // "<ul><li>a&lt;b</li><li>c</li></ul>"
 * ```
 */
export function compileTemplate(source: string, options: CompileTemplateOptions = {}): Template {
  const name = options.name ?? "template";
  const nodes = parse(source, name);
  const sources = options.partials ?? {};
  const resolve = (nodes: Node[], depth: number) => {
    for (const include of partials(nodes)) {
      if (depth >= MAX_INCLUDE_DEPTH) {
        throw new SyntaxError(`Template ${name}: includes nested over ${MAX_INCLUDE_DEPTH} deep (a cycle?)`);
      }
      if (!Object.hasOwn(sources, include.name)) {
        throw new SyntaxError(`Template ${name}, line ${include.line}: no include named ${include.name}`);
      }
      include.children = parse(sources[include.name], include.name);
      resolve(include.children, depth + 1);
    }
  };
  resolve(nodes, 0);
  return toTemplate(nodes, options.dev ?? false, name);
}

/**
 * The names a template includes (`{{> name}}`), each once, in the order they first appear: what a loader
 * must read before {@link compileTemplate} can resolve them.
 *
 * @param source The template text.
 * @param name The template's name, for error messages. Default: "template".
 * @returns The included names.
 * @throws {SyntaxError} When the template is malformed.
 *
 * @example
 * ```ts
 * import { templateIncludes } from "./template.ts";
 * console.log(templateIncludes("{{> header}}<main>{{#a}}{{> item}}{{/a}}</main>{{> header}}"));
 * // ["header", "item"]
 * ```
 */
export function templateIncludes(source: string, name = "template"): string[] {
  return [...new Set(partials(parse(source, name)).map((include) => include.name))];
}

/**
 * The file a template name refers to, relative to the templates directory: the name with `.html` added
 * when it has no extension. Names with `..`, a leading `/` or a backslash are refused, so a loader never
 * reads outside its directory.
 *
 * @param name The template name (`"index"`, `"parts/header"`).
 * @returns The relative file name.
 * @throws {TypeError} When the name is not a plain relative name.
 *
 * @example
 * ```ts
 * import { templateFileName } from "./template.ts";
 * console.log(templateFileName("parts/header")); // "parts/header.html"
 * ```
 */
export function templateFileName(name: string): string {
  if (!TEMPLATE_NAME.test(name)) throw new TypeError(`Bad template name ${JSON.stringify(name)}`);
  return /\.[A-Za-z0-9]+$/.test(name) ? name : name + DEFAULT_EXTENSION;
}
