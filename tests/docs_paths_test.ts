// The docs name only files that exist: every repository path README.md and docs/*.md mention (in prose, in
// backticks, in code blocks) and every relative link they hold. It reads the docs and stats paths; it judges
// nothing else about them.
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);

/** The repository's top folders whose paths the docs name, and its files named bare. */
const FOLDERS = ["app", "server", "tests", "bench", "docs", "static", "templates", ".ci"];
const ROOT_FILES = ["nginx.conf", "deno.json", "mod.ts", "README.md", "LICENSE"];

/**
 * Paths a doc may name that are not in the repository: made at run time or by a task, on purpose. Each with
 * why; keep it short.
 */
const NOT_IN_REPOSITORY: Record<string, string> = {
  // The attacks of docs/static.md: tests/fixtures/static_fixture.ts makes both in a temporary copy of static/.
  "static/../secret.txt": "the secret the path jail and the permission wall must keep",
  "static/images/escape-link": "the symlink out of static/ that only the realPath check stops",
};

/**
 * A repository path: one of the top folders then a path, or a root file, standing on its own (not the tail of
 * `/srv/pier/app/...` or of a URL's `/static/...`, not a word inside another).
 */
const PATH = new RegExp(
  String.raw`(?<![\w./~-])(?:(?:${FOLDERS.map((f) => f.replace(".", "\\.")).join("|")})/[\w./@+-]*|` +
    String.raw`(?:${ROOT_FILES.map((f) => f.replace(".", "\\.")).join("|")})(?![\w-]|\.\w))`,
  "g",
);

/** `[text](target)` links whose target is relative (no scheme, not only an anchor). */
const LINK = /\]\(([^)\s]+)\)/g;

/** The docs: README.md and every docs/*.md. */
function docs(): string[] {
  const names = [...Deno.readDirSync(new URL("docs/", ROOT))]
    .filter((entry) => entry.isFile && entry.name.endsWith(".md"))
    .map((entry) => `docs/${entry.name}`);
  return ["README.md", ...names.sort()];
}

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

/**
 * The repository paths a text names, each once, as written but for sentence punctuation after it and a
 * `:line` or `#anchor` suffix.
 */
export function namedPaths(text: string): string[] {
  const found = new Set<string>();
  for (const [match] of text.matchAll(PATH)) {
    found.add(match.replace(/[.:]+$/, "").replace(/:\d+$/, ""));
  }
  return [...found];
}

/** The relative link targets of a Markdown text, without their anchors. */
export function relativeLinks(text: string): string[] {
  const found = new Set<string>();
  for (const [, target] of text.matchAll(LINK)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("#")) continue;
    found.add(target.replace(/#.*$/, ""));
  }
  return [...found];
}

Deno.test("namedPaths() finds repository paths and nothing else", () => {
  const text = "See `app/store.ts`, then docs/deploy.md. Run `deno run app/main.ts --data /srv/pier/app/x` " +
    "and open http://127.0.0.1:8000/static/style.css; `server/conn.ts:120`, nginx.conf and nginx.conf.bak, " +
    "myapp/x.ts, `tests/*_test.ts`, deno.json's tasks, `mod.ts`.";
  assert.deepEqual(namedPaths(text), [
    "app/store.ts",
    "docs/deploy.md",
    "app/main.ts",
    "server/conn.ts",
    "nginx.conf",
    "tests/",
    "deno.json",
    "mod.ts",
  ]);
});

Deno.test("relativeLinks() keeps relative targets, without anchors", () => {
  const text = "[a](docs/site.md#layout) [b](https://example.com/app/x.ts) [c](#top) [d](benchmarks.svg)";
  assert.deepEqual(relativeLinks(text), ["docs/site.md", "benchmarks.svg"]);
});

Deno.test("README.md and docs/*.md name only paths that exist", () => {
  const missing: string[] = [];
  for (const doc of docs()) {
    const text = Deno.readTextFileSync(new URL(doc, ROOT));
    for (const path of namedPaths(text)) {
      if (!(path in NOT_IN_REPOSITORY) && !exists(new URL(path, ROOT))) missing.push(`${doc}: ${path}`);
    }
    // A link resolves from the doc's own folder, as a Markdown viewer resolves it.
    const folder = new URL(doc.includes("/") ? doc.slice(0, doc.lastIndexOf("/") + 1) : "", ROOT);
    for (const target of relativeLinks(text)) {
      if (!exists(new URL(target, folder))) missing.push(`${doc}: link (${target})`);
    }
  }
  assert.deepEqual(missing, [], `docs name paths that do not exist:\n  ${missing.join("\n  ")}`);
});
