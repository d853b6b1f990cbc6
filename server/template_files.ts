// Templates read from a directory: the I/O half of templates. It reads a template and its includes (the names
// template.ts finds in each source, turned into file names template.ts allows), hands the sources to
// compileTemplate, and caches the result; in development it recompiles when a file's mtime changes.
import { compileTemplate, type Template, templateFileName, templateIncludes } from "./template.ts";

/** Options for {@link Templates}. */
export interface TemplatesOptions {
  /**
   * Development mode: files are checked for changes (mtime) on every render and recompiled, and a
   * missing `{{value}}` throws. Default: false (production: compiled once, missing values render empty).
   */
  dev?: boolean;
}

interface Compiled {
  template: Template;
  /** Every file the template was built from (itself and its includes), with the mtime it had. */
  files: { path: string; mtime: number | null }[];
}

/**
 * Templates read from a directory, compiled once and cached (see {@link compileTemplate} for the syntax).
 *
 * Names are relative to the directory, with `.html` added when they have no extension: `"index"` is
 * `<dir>/index.html`, and `{{> parts/header}}` is `<dir>/parts/header.html`, whichever template includes
 * it. Names with `..`, a leading `/` or a backslash are refused, so a template can never be read from
 * outside the directory.
 *
 * @example
 * ```ts ignore
 * import { Templates } from "./template_files.ts";
 * const templates = new Templates("templates", { dev: true });
 * const res = await templates.response("index", { title: "Home", posts: [] });
 * ```
 */
export class Templates {
  #dir: string;
  #dev: boolean;
  #cache = new Map<string, Promise<Compiled>>();

  /**
   * Use the templates in a directory.
   *
   * @param dir The templates directory.
   * @param options Development mode.
   *
   * @example
   * ```ts
   * import { Templates } from "./template_files.ts";
   * const templates = new Templates("templates", { dev: Deno.env.get("PIER_DEV") === "1" });
   * ```
   */
  constructor(dir: string, options: TemplatesOptions = {}) {
    this.#dir = dir.endsWith("/") ? dir.slice(0, -1) : dir;
    this.#dev = options.dev ?? false;
  }

  /**
   * Get a compiled template, from the cache when it is there (and, in development, still current).
   *
   * @param name The template name, relative to the directory.
   * @returns The compiled template.
   * @throws {TypeError} When the name is not a plain relative name.
   * @throws {Deno.errors.NotFound} When the file or an include is missing.
   * @throws {SyntaxError} When the template is malformed.
   *
   * @example
   * ```ts ignore
   * import { Templates } from "./template_files.ts";
   * const page = await new Templates("templates").get("index");
   * console.log(page({ title: "Home" }));
   * ```
   */
  async get(name: string): Promise<Template> {
    let entry = this.#cache.get(name);
    if (entry && this.#dev && !(await current(await entry.catch(() => null)))) entry = undefined;
    if (!entry) {
      entry = this.#compile(name);
      this.#cache.set(name, entry);
      // A failed compile is not cached: the next request tries again (the file may be fixed by then).
      entry.catch(() => {
        if (this.#cache.get(name) === entry) this.#cache.delete(name);
      });
    }
    return (await entry).template;
  }

  /**
   * Render a template to a string.
   *
   * @param name The template name, relative to the directory.
   * @param data The values for the template.
   * @returns The HTML.
   * @throws {Error} In development, when a `{{value}}` is missing; otherwise as {@link Templates.get}.
   *
   * @example
   * ```ts ignore
   * import { Templates } from "./template_files.ts";
   * const html = await new Templates("templates").render("index", { title: "Home" });
   * ```
   */
  async render(name: string, data?: unknown): Promise<string> {
    return (await this.get(name))(data);
  }

  /**
   * Render a template into an HTML response (`text/html; charset=utf-8` unless `init` sets a type).
   *
   * @param name The template name, relative to the directory.
   * @param data The values for the template.
   * @param init Status and headers for the response.
   * @returns The response.
   *
   * @example
   * ```ts ignore
   * import { Templates } from "./template_files.ts";
   * const templates = new Templates("templates");
   * const notFound = await templates.response("404", { path: "/x" }, { status: 404 });
   * ```
   */
  async response(name: string, data?: unknown, init: ResponseInit = {}): Promise<Response> {
    const html = await this.render(name, data);
    const headers = new Headers(init.headers);
    if (!headers.has("content-type")) headers.set("content-type", "text/html; charset=utf-8");
    return new Response(html, { ...init, headers });
  }

  async #compile(name: string): Promise<Compiled> {
    const files: Compiled["files"] = [];
    // Each file once per compile, however many times it is included; the includes of what was read are
    // read next, until none is new. A cycle ends here (every name is read once) and compileTemplate
    // reports it.
    const sources: Record<string, string> = {};
    let wanted = [name];
    while (wanted.length > 0) {
      const next: string[] = [];
      for (const want of wanted) {
        if (Object.hasOwn(sources, want)) continue;
        const path = `${this.#dir}/${templateFileName(want)}`;
        // Stat before reading: if the file changes in between, the next check sees a newer mtime.
        const info = await Deno.stat(path);
        files.push({ path, mtime: info.mtime?.getTime() ?? null });
        sources[want] = await Deno.readTextFile(path);
        next.push(...templateIncludes(sources[want], want));
      }
      wanted = next;
    }
    // Every source is a possible include, the template's own too (a cycle through it is reported as one).
    return { template: compileTemplate(sources[name], { dev: this.#dev, partials: sources, name }), files };
  }
}

/** Whether every file a compiled template came from still has the mtime it had. */
async function current(compiled: Compiled | null): Promise<boolean> {
  if (!compiled) return false;
  for (const file of compiled.files) {
    try {
      const info = await Deno.stat(file.path);
      if ((info.mtime?.getTime() ?? null) !== file.mtime) return false;
    } catch {
      return false;
    }
  }
  return true;
}
