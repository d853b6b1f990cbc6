import assert from "node:assert/strict";
import { compileTemplate, escapeHtml, templateFileName, templateIncludes } from "./template.ts";

/** What an attacker puts in a value, and what must reach the page. */
const ESCAPE_CASES: [input: unknown, escaped: string][] = [
  ["plain", "plain"],
  ["", ""],
  ["<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"],
  ["Tom & Jerry", "Tom &amp; Jerry"],
  ['" onmouseover="alert(1)', "&quot; onmouseover=&quot;alert(1)"],
  ["' onfocus='alert(1)", "&#39; onfocus=&#39;alert(1)"],
  ["&amp;", "&amp;amp;"],
  ["<<>>", "&lt;&lt;&gt;&gt;"],
  ["caf\u00e9 \u{1F600}", "caf\u00e9 \u{1F600}"],
  ["{{name}}", "{{name}}"],
  [42, "42"],
  [0, "0"],
  [false, "false"],
  [null, ""],
];

Deno.test("{{value}} HTML-escapes & < > \" ' (table)", async (t) => {
  const tpl = compileTemplate('<a title="{{v}}">{{v}}</a>');
  for (const [input, escaped] of ESCAPE_CASES) {
    await t.step(JSON.stringify(input), () => {
      assert.equal(tpl({ v: input }), `<a title="${escaped}">${escaped}</a>`);
      if (typeof input === "string") assert.equal(escapeHtml(input), escaped);
    });
  }
});

Deno.test("{{{value}}} inserts trusted HTML unescaped", () => {
  const tpl = compileTemplate("<div>{{{html}}}</div><p>{{html}}</p>");
  assert.equal(tpl({ html: "<b>hi</b>" }), "<div><b>hi</b></div><p>&lt;b&gt;hi&lt;/b&gt;</p>");
});

Deno.test("a value's text is never parsed as a template", () => {
  const tpl = compileTemplate("{{a}}");
  assert.equal(tpl({ a: "{{{b}}}", b: "<x>" }), "{{{b}}}");
});

const RENDER_CASES: { why: string; source: string; data: unknown; want: string }[] = [
  { why: "text only", source: "hello", data: {}, want: "hello" },
  { why: "spaces inside tags", source: "{{ name }}", data: { name: "a" }, want: "a" },
  { why: "dotted names", source: "{{user.name}}", data: { user: { name: "Ada" } }, want: "Ada" },
  { why: "comments dropped", source: "a{{! not shown }}b", data: {}, want: "ab" },
  {
    why: "section over a list",
    source: "<ul>{{#items}}<li>{{title}}</li>{{/items}}</ul>",
    data: { items: [{ title: "a" }, { title: "<b>" }] },
    want: "<ul><li>a</li><li>&lt;b&gt;</li></ul>",
  },
  {
    why: "{{.}} in a list of strings",
    source: "{{#tags}}[{{.}}]{{/tags}}",
    data: { tags: ["x", "<y>"] },
    want: "[x][&lt;y&gt;]",
  },
  {
    why: "outer names in scope inside a section",
    source: "{{#items}}{{site}}:{{n}} {{/items}}",
    data: { site: "pier", items: [{ n: 1 }, { n: 2 }] },
    want: "pier:1 pier:2 ",
  },
  {
    why: "inner name shadows outer",
    source: "{{#items}}{{n}}{{/items}}{{n}}",
    data: { n: "out", items: [{ n: "in" }] },
    want: "inout",
  },
  {
    why: "nested sections",
    source: "{{#posts}}{{title}}({{#tags}}{{.}},{{/tags}}){{/posts}}",
    data: { posts: [{ title: "a", tags: ["x", "y"] }, { title: "b", tags: [] }] },
    want: "a(x,y,)b()",
  },
  { why: "empty list renders nothing", source: "a{{#items}}x{{/items}}b", data: { items: [] }, want: "ab" },
  { why: "false renders nothing", source: "{{#on}}x{{/on}}", data: { on: false }, want: "" },
  { why: "true renders once", source: "{{#on}}x{{/on}}", data: { on: true }, want: "x" },
  { why: "missing section renders nothing", source: "{{#error}}{{error}}{{/error}}", data: {}, want: "" },
  {
    why: "object section pushes its fields",
    source: "{{#user}}{{name}}{{/user}}",
    data: { user: { name: "Ada" } },
    want: "Ada",
  },
  {
    why: "inverted section on an empty list",
    source: "{{#items}}x{{/items}}{{^items}}none{{/items}}",
    data: { items: [] },
    want: "none",
  },
  { why: "inverted section on a truthy value", source: "{{^on}}off{{/on}}", data: { on: 1 }, want: "" },
  {
    why: "prototype properties are not values",
    source: "[{{constructor}}][{{toString}}][{{__proto__}}]",
    data: {},
    want: "[][][]",
  },
];

Deno.test("compileTemplate() renders names, sections and comments (table)", async (t) => {
  for (const c of RENDER_CASES) {
    await t.step(c.why, () => assert.equal(compileTemplate(c.source)(c.data), c.want));
  }
});

Deno.test("a missing value is an Error in development and empty in production", () => {
  const source = "<p>{{title}}</p>\n<p>{{user.name}}</p>";
  assert.equal(compileTemplate(source)({}), "<p></p>\n<p></p>");
  assert.throws(
    () => compileTemplate(source, { dev: true, name: "page" })({}),
    /page, line 1: no value for \{\{title\}\}/,
  );
  assert.throws(
    () => compileTemplate(source, { dev: true, name: "page" })({ title: "t", user: {} }),
    /page, line 2: no value for \{\{user.name\}\}/,
  );
  assert.equal(
    compileTemplate(source, { dev: true })({ title: null, user: { name: "" } }),
    "<p></p>\n<p></p>",
  );
});

const SYNTAX_ERRORS: [source: string, error: RegExp][] = [
  ["{{name", /line 1: unclosed tag/],
  ["a\nb\n{{{raw}}", /line 3: unclosed tag/],
  ["{{#a}}x", /\{\{#a\}\} is never closed/],
  ["{{/a}}", /closes no section/],
  ["{{#a}}{{/b}}", /\{\{\/b\}\} closes \{\{#a\}\}/],
  ["{{a b}}", /bad name "a b"/],
  ["{{& a}}", /bad name/],
  ["{{}}", /bad name ""/],
  ["{{> ../secret}}", /bad include name/],
  ["{{> /etc/passwd}}", /bad include name/],
  ["{{> missing}}", /no include named missing/],
];

Deno.test("compileTemplate() reports malformed templates with the line", async (t) => {
  for (const [source, error] of SYNTAX_ERRORS) {
    await t.step(JSON.stringify(source), () => {
      assert.throws(() => compileTemplate(source), (e: unknown) => {
        assert.ok(e instanceof SyntaxError);
        assert.match(e.message, error);
        return true;
      });
    });
  }
});

Deno.test("compileTemplate() includes partials with the same data in scope", () => {
  const tpl = compileTemplate("{{> header}}<main>{{#items}}{{> item}}{{/items}}</main>", {
    partials: { header: "<h1>{{title}}</h1>", item: "<p>{{name}}</p>" },
  });
  assert.equal(
    tpl({ title: "T", items: [{ name: "a" }, { name: "b" }] }),
    "<h1>T</h1><main><p>a</p><p>b</p></main>",
  );
});

Deno.test("compileTemplate() stops an include cycle", () => {
  assert.throws(() => compileTemplate("{{> a}}", { partials: { a: "{{> b}}", b: "{{> a}}" } }), /a cycle\?/);
});

Deno.test("templateIncludes() names each include once, in order, sections included", () => {
  assert.deepEqual(
    templateIncludes("{{> header}}<main>{{#a}}{{> item}}{{/a}}{{^b}}{{> none}}{{/b}}</main>{{> header}}"),
    [
      "header",
      "item",
      "none",
    ],
  );
  assert.deepEqual(templateIncludes("<p>{{x}}</p>"), []);
  assert.throws(() => templateIncludes("{{> a", "page"), /page/);
});

Deno.test("templateFileName() adds .html to a bare name and refuses names that could leave the folder", () => {
  assert.equal(templateFileName("index"), "index.html");
  assert.equal(templateFileName("parts/header"), "parts/header.html");
  assert.equal(templateFileName("feed.xml"), "feed.xml");
  for (const bad of ["../secret", "/etc/passwd", "a\\b", "a/../b", "", "a//b", "."]) {
    assert.throws(() => templateFileName(bad), TypeError, bad);
  }
});
