// The routed dynamic page of `deno task bench`: a Router with 51 routes (static segments, params,
// constrained params) and a page rendered by a compiled template with escaping. Every server in the bench
// runs this same `fetch`, so only the HTTP layer differs between them.
import { compileTemplate, Router } from "../../mod.ts";

/** The path wrk asks for: a route with two params, near the end of the table. */
export const ROUTED_PATH = "/users/ada/posts/42";

const PAGE = compileTemplate(
  `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{title}}</title></head>
<body>
<header><h1>{{title}}</h1><p>by <a href="/users/{{author}}">{{author}}</a></p></header>
<main>
<ul>
{{#items}}<li><a href="/users/{{author}}/posts/{{id}}">{{name}}</a> <small>{{note}}</small></li>
{{/items}}</ul>
</main>
<footer>{{footer}}</footer>
</body>
</html>
`,
  { name: "post" },
);

const RESOURCES = [
  "teams",
  "projects",
  "issues",
  "orgs",
  "repos",
  "tags",
  "files",
  "events",
  "posts",
  "users",
];

/** Build the bench's router: 10 resources x 5 routes, then the page wrk asks for. */
export function routedApp(): Router {
  const router = new Router();
  for (const r of RESOURCES) {
    const say = (what: string) => () => new Response(`${r} ${what}`);
    router.get(`/${r}`, say("list"))
      .get(`/${r}/new`, say("new"))
      .get(`/${r}/:id(\\d+)`, say("show"))
      .get(`/${r}/:id/edit`, say("edit"))
      .post(`/${r}`, say("create"));
  }
  router.get("/users/:name/posts/:id(\\d+)", (_req, ctx) => {
    const { name, id } = ctx.params;
    const items = Array.from({ length: 10 }, (_, i) => ({
      id: Number(id) + i,
      author: name,
      name: `Post ${Number(id) + i}: "quotes" & <tags>`,
      note: i % 2 ? "draft" : "it's published",
    }));
    const html = PAGE({ title: `Post ${id} by ${name}`, author: name, items, footer: "© Pier & co." });
    return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
  });
  return router;
}
