// tests/fixtures/corpus_app.ts in plain JavaScript for real `node` (llhttp; never Deno's node:http, which is
// Deno.serve's parser again), on Node's default options: the same routes and answers, so the harness compares
// servers, not apps. Keep it in step with corpus_app.ts: a drift shows up as differences in valid cases.
import { createServer } from "node:http";

const HOME = ["text/html; charset=utf-8", "<!doctype html><title>Pier</title><h1>Hello</h1>\n"];
const PAGES = {
  "/": HOME,
  "/index.html": HOME,
  "/style.css": ["text/css; charset=utf-8", "body { font-family: sans-serif; }\n"],
};
const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ENTITIES[c]);

// Headers are set one by one, not with writeHead(): writeHead() fixes the head before end() knows the body,
// so Node would frame it chunked where Pier and Deno.serve send a length. (For HTTP/1.0 Node still sends no
// length and closes instead; that is Node's own policy, and the page says so.)
function answer(res, status, headers, body) {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.end(body);
}
const methodNotAllowed = (res, allow) => answer(res, 405, { allow }, "Method Not Allowed\n");
/** RFC 9110's methods and PATCH: the only ones the app implements; any other is a 501 (RFC 9110 §9.1). */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"]);

// The app reads the path from request.url, which Pier and Deno.serve build and llhttp does not: build it as
// Deno.serve does (an absolute-form target as it is; else the Host, or "localhost" when it is missing or
// empty, then the target with a slash put in front if it has none), so only the servers differ, not the URL.
function pathOf(req) {
  const target = req.url ?? "";
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return new URL(target).pathname;
  const slash = target.startsWith("/") ? "" : "/";
  return new URL(`http://${req.headers.host || "localhost"}${slash}${target}`).pathname;
}

async function handle(req, res) {
  if (!KNOWN_METHODS.has(req.method)) return answer(res, 501, {}, "Not Implemented\n");
  const path = pathOf(req);
  const page = PAGES[path];
  if (page) {
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(res, "GET, HEAD");
    return answer(res, 200, { "content-type": page[0] }, page[1]);
  }
  const profile = /^\/profile\/([^/]+)$/.exec(path);
  if (profile) {
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(res, "GET, HEAD");
    let name;
    try {
      name = decodeURIComponent(profile[1]);
    } catch {
      return answer(res, 400, {}, "Bad Request\n");
    }
    if (name.includes("\0")) return answer(res, 400, {}, "Bad Request\n");
    return answer(
      res,
      200,
      { "content-type": "text/html; charset=utf-8" },
      `<p>Hello, ${escapeHtml(name)}</p>\n`,
    );
  }
  if (path === "/contact" || path === "/upload") {
    if (req.method !== "POST") return methodNotAllowed(res, "POST");
    const type = req.headers["content-type"] ?? "";
    let bytes = 0;
    for await (const chunk of req) bytes += chunk.length;
    if (path === "/upload" && !/^multipart\/form-data;.*boundary=/i.test(type)) {
      return answer(res, 415, {}, "Unsupported Media Type\n");
    }
    return answer(res, 303, { location: `/thanks?bytes=${bytes}` });
  }
  return answer(res, 404, {}, "Not Found\n");
}

const server = createServer((req, res) => {
  // A thrown error is a 500, as Pier and Deno.serve make of a handler that throws (a Host that is no URL
  // host, say). A body that breaks off mid-way also ends here: then the socket is already gone.
  handle(req, res).catch(() => {
    if (res.headersSent) res.destroy();
    else answer(res, 500, {}, "Internal Server Error\n");
  });
});
server.listen(0, "127.0.0.1", () => console.log(`ready ${server.address().port}`));
// The harness holds our stdin open; if it dies without stopping us (SIGKILL), the pipe closes and we follow.
process.stdin.on("end", () => process.exit(0)).resume();
