// Router matching among 200 routes, a realistic mix of static pages and REST-style param routes.
// Run: deno bench bench/router_bench.ts. The goal (issue 4) is under 1 µs per match.
import { Router } from "../server/router.ts";
import type { ServeHandlerInfo } from "../server/types.ts";

const RESOURCES = [
  "users",
  "posts",
  "comments",
  "photos",
  "albums",
  "todos",
  "orders",
  "products",
  "carts",
  "invoices",
  "teams",
  "projects",
  "issues",
  "labels",
  "milestones",
  "releases",
  "tags",
  "events",
  "tickets",
  "reviews",
];

const ok = () => new Response("ok");
const router = new Router();
// 20 resources x 9 routes = 180, plus 20 static pages = 200 routes.
for (const r of RESOURCES) {
  router.get(`/api/${r}`, ok);
  router.post(`/api/${r}`, ok);
  router.get(`/api/${r}/search`, ok);
  router.get(`/api/${r}/:id(\\d+)`, ok);
  router.put(`/api/${r}/:id(\\d+)`, ok);
  router.delete(`/api/${r}/:id(\\d+)`, ok);
  router.get(`/api/${r}/:id/history`, ok);
  router.get(`/api/${r}/:id/related/:other`, ok);
  router.get(`/${r}/:slug`, ok);
}
for (let i = 0; i < 19; i++) router.get(`/page-${i}`, ok);
router.get("/static/*", ok);

const PATHS: [string, string][] = [
  ["GET", "/page-7"],
  ["GET", "/api/users"],
  ["GET", "/api/reviews/12345"],
  ["PUT", "/api/orders/42"],
  ["GET", "/api/tickets/99/history"],
  ["GET", "/api/projects/7/related/abc"],
  ["GET", "/issues/hello-world"],
  ["GET", "/static/css/site.css"],
  ["GET", "/api/tags/search"],
  ["GET", "/nowhere/at/all"],
];

// Compile once outside the timed loop, and check every path matches what we expect.
for (const [method, path] of PATHS) {
  if ((router.match(method, path) === null) !== (path === "/nowhere/at/all")) throw new Error(`bad ${path}`);
}

let i = 0;
Deno.bench(
  "Router.match() among 200 routes (mixed static, param, wildcard, miss)",
  { group: "match" },
  () => {
    const [method, path] = PATHS[i++ % PATHS.length];
    router.match(method, path);
  },
);

Deno.bench("Router.match() static route", { group: "match" }, () => {
  router.match("GET", "/page-7");
});

Deno.bench("Router.match() two-param route", { group: "match" }, () => {
  router.match("GET", "/api/projects/7/related/abc");
});

const info: ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  completed: Promise.resolve(),
};
const request = new Request("http://localhost/api/reviews/12345");
Deno.bench("Router.fetch() whole request, for comparison (URL parse, context, handler)", async () => {
  await router.fetch(request, info);
});
