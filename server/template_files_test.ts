// Templates read from a folder (template_files.ts): names, includes, caching and reloading, on real files.
import assert from "node:assert/strict";
import { Templates } from "./template_files.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pier_templates_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Templates reads files and includes relative to the templates directory", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/parts`);
    await Deno.writeTextFile(`${dir}/index.html`, "{{> parts/header}}<p>{{body}}</p>");
    await Deno.writeTextFile(`${dir}/parts/header.html`, "<h1>{{title}}</h1>{{> parts/nav}}");
    await Deno.writeTextFile(`${dir}/parts/nav.html`, "<nav>{{#links}}<a>{{.}}</a>{{/links}}</nav>");
    const templates = new Templates(dir);
    const html = await templates.render("index", { title: "<T>", body: "b", links: ["x"] });
    assert.equal(html, "<h1>&lt;T&gt;</h1><nav><a>x</a></nav><p>b</p>");
    const res = await templates.response("index", { title: "t", body: "b", links: [] }, { status: 201 });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(await res.text(), "<h1>t</h1><nav></nav><p>b</p>");
  });
});

Deno.test("Templates refuses names that climb out of the directory", async () => {
  await withDir(async (dir) => {
    const templates = new Templates(`${dir}/`);
    for (const name of ["../secret", "/etc/passwd", "a/../../b", "a\\b", "", "a//b"]) {
      await assert.rejects(() => templates.render(name), TypeError, name);
    }
  });
});

Deno.test("Templates in production compiles once and ignores later changes", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/p.html`, "v1 {{x}}");
    const templates = new Templates(dir);
    assert.equal(await templates.render("p", {}), "v1 ");
    await Deno.writeTextFile(`${dir}/p.html`, "v2");
    await Deno.utime(`${dir}/p.html`, new Date(), new Date(Date.now() + 10_000));
    assert.equal(await templates.render("p", {}), "v1 ");
  });
});

Deno.test("Templates in development reloads a template or include whose mtime changed", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/p.html`, "v1 {{> part}}");
    await Deno.writeTextFile(`${dir}/part.html`, "part1");
    const templates = new Templates(dir, { dev: true });
    assert.equal(await templates.render("p", {}), "v1 part1");
    const later = new Date(Date.now() + 10_000);
    await Deno.writeTextFile(`${dir}/part.html`, "part2");
    await Deno.utime(`${dir}/part.html`, later, later);
    assert.equal(await templates.render("p", {}), "v1 part2");
    await Deno.writeTextFile(`${dir}/p.html`, "v2 {{x}}");
    await Deno.utime(`${dir}/p.html`, later, new Date(later.getTime() + 1000));
    await assert.rejects(() => templates.render("p", {}), /no value for \{\{x\}\}/);
    assert.equal(await templates.render("p", { x: "!" }), "v2 !");
  });
});

Deno.test("Templates retries a template that failed to compile", async () => {
  await withDir(async (dir) => {
    const templates = new Templates(dir);
    await assert.rejects(() => templates.render("late"), Deno.errors.NotFound);
    await Deno.writeTextFile(`${dir}/late.html`, "here");
    assert.equal(await templates.render("late"), "here");
  });
});
