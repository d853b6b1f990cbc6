import assert from "node:assert/strict";
import { Router } from "./router.ts";
import { crossOriginProtection, DEFAULT_CONTENT_SECURITY_POLICY, securityHeaders } from "./security.ts";
import type { ServeHandlerInfo } from "./types.ts";

const info: ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1234 },
  completed: Promise.resolve(),
};
const remote: ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "198.51.100.7", port: 1234 },
  completed: Promise.resolve(),
};

function csrfRouter(trustedOrigins?: string[]): Router {
  const ok = () => new Response("done");
  return new Router()
    .use(crossOriginProtection({ trustedOrigins }))
    .on(["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"], "/comments", ok);
}

interface CsrfCase {
  why: string;
  method: string;
  url?: string;
  headers: Record<string, string>;
  status: number;
}

/** Requests shaped as browsers (and non-browsers) send them to http://pier.test:8000. */
const CSRF_CASES: CsrfCase[] = [
  {
    why: "same-origin form POST from a modern browser passes",
    method: "POST",
    headers: {
      "sec-fetch-site": "same-origin",
      "sec-fetch-mode": "navigate",
      "sec-fetch-dest": "document",
      origin: "http://pier.test:8000",
      "content-type": "application/x-www-form-urlencoded",
    },
    status: 200,
  },
  {
    why: "same-origin fetch() DELETE passes",
    method: "DELETE",
    headers: { "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors", origin: "http://pier.test:8000" },
    status: 200,
  },
  {
    why: "cross-site form POST is rejected",
    method: "POST",
    headers: {
      "sec-fetch-site": "cross-site",
      "sec-fetch-mode": "navigate",
      origin: "https://evil.example",
      "content-type": "application/x-www-form-urlencoded",
    },
    status: 403,
  },
  {
    why: "cross-site POST is rejected even when Origin was stripped",
    method: "POST",
    headers: { "sec-fetch-site": "cross-site" },
    status: 403,
  },
  {
    why: "same-site POST from a sibling subdomain is rejected",
    method: "POST",
    headers: { "sec-fetch-site": "same-site", origin: "http://blog.pier.test:8000" },
    status: 403,
  },
  {
    why: "user-initiated navigation (Sec-Fetch-Site: none) passes",
    method: "POST",
    headers: { "sec-fetch-site": "none" },
    status: 200,
  },
  {
    why: "Sec-Fetch-Site wins over a matching Origin",
    method: "POST",
    headers: { "sec-fetch-site": "cross-site", origin: "http://pier.test:8000" },
    status: 403,
  },
  { why: "no headers at all (curl, scripts) passes", method: "POST", headers: {}, status: 200 },
  {
    why: "old browser: Origin matching Host passes",
    method: "POST",
    headers: { origin: "http://pier.test:8000" },
    status: 200,
  },
  {
    why: "old browser: Origin matching Host with another scheme passes (the host is what Go compares)",
    method: "POST",
    headers: { origin: "https://pier.test:8000" },
    status: 200,
  },
  {
    why: "old browser: Origin mismatch without Sec-Fetch-Site is rejected",
    method: "POST",
    headers: { origin: "https://evil.example" },
    status: 403,
  },
  {
    why: "old browser: Origin on another port is rejected",
    method: "PUT",
    headers: { origin: "http://pier.test:9000" },
    status: 403,
  },
  {
    why: "Origin: null (sandboxed iframe) is rejected",
    method: "POST",
    headers: { origin: "null" },
    status: 403,
  },
  {
    why: "GET cross-site passes (safe method)",
    method: "GET",
    headers: { "sec-fetch-site": "cross-site", origin: "https://evil.example" },
    status: 200,
  },
  {
    why: "HEAD cross-site passes (safe method)",
    method: "HEAD",
    headers: { "sec-fetch-site": "cross-site" },
    status: 200,
  },
  {
    why: "OPTIONS cross-site passes (safe method)",
    method: "OPTIONS",
    headers: { "sec-fetch-site": "cross-site", origin: "https://evil.example" },
    status: 200,
  },
  {
    why: "PATCH cross-site is rejected",
    method: "PATCH",
    headers: { "sec-fetch-site": "cross-site", origin: "https://evil.example" },
    status: 403,
  },
  {
    why: "Origin host compared case-insensitively",
    method: "POST",
    headers: { origin: "http://PIER.test:8000" },
    status: 200,
  },
  {
    why: "default port: Origin without port matches a Host without port",
    method: "POST",
    url: "http://pier.test/comments",
    headers: { origin: "http://pier.test" },
    status: 200,
  },
];

Deno.test("crossOriginProtection() applies Go's CrossOriginProtection rule to browser-shaped requests", async (t) => {
  const router = csrfRouter();
  for (const c of CSRF_CASES) {
    await t.step(c.why, async () => {
      const req = new Request(c.url ?? "http://pier.test:8000/comments", {
        method: c.method,
        headers: c.headers,
      });
      const res = await router.fetch(req, remote);
      assert.equal(res.status, c.status);
      if (c.status === 403) assert.match(await res.text(), /^Forbidden: cross-origin request/);
      else await res.body?.cancel();
    });
  }
});

Deno.test("crossOriginProtection() lets trusted origins through, and only them", async () => {
  const router = csrfRouter(["https://admin.pier.test"]);
  const send = (headers: Record<string, string>) =>
    router.fetch(new Request("http://pier.test:8000/comments", { method: "POST", headers }), remote);
  assert.equal(
    (await send({ "sec-fetch-site": "same-site", origin: "https://admin.pier.test" })).status,
    200,
  );
  assert.equal((await send({ origin: "https://admin.pier.test" })).status, 200);
  assert.equal((await send({ "sec-fetch-site": "cross-site", origin: "https://evil.example" })).status, 403);
  assert.equal((await send({ "sec-fetch-site": "same-site", origin: "http://admin.pier.test" })).status, 403);
});

Deno.test("crossOriginProtection() refuses trusted origins that browsers never send", () => {
  for (const bad of ["admin.pier.test", "https://admin.pier.test/", "https://a.test/path", "null", ""]) {
    assert.throws(() => crossOriginProtection({ trustedOrigins: [bad] }), TypeError, bad);
  }
});

Deno.test("crossOriginProtection() uses a custom rejection response", async () => {
  const router = new Router()
    .use(crossOriginProtection({ onReject: (_req, reason) => new Response(reason, { status: 400 }) }))
    .post("/x", () => new Response("done"));
  const res = await router.fetch(
    new Request("http://pier.test/x", { method: "POST", headers: { "sec-fetch-site": "cross-site" } }),
    remote,
  );
  assert.equal(res.status, 400);
  assert.equal(await res.text(), "cross-origin request (Sec-Fetch-Site: cross-site)");
});

function headersRouter(options?: Parameters<typeof securityHeaders>[0]): Router {
  return new Router()
    .use(securityHeaders(options))
    .get(
      "/page",
      () => new Response("<p>hi</p>", { headers: { "content-type": "text/html; charset=utf-8" } }),
    )
    .get("/upper", () => new Response("<p>hi</p>", { headers: { "content-type": "TEXT/HTML" } }))
    .get("/json", () => Response.json({ a: 1 }))
    .get("/own", () =>
      new Response("<p>own</p>", {
        headers: {
          "content-type": "text/html",
          "content-security-policy": "default-src 'none'",
          "x-frame-options": "SAMEORIGIN",
        },
      }))
    .get("/redirect", () => Response.redirect("http://pier.test/page", 303));
}

Deno.test("securityHeaders() adds CSP, nosniff, Referrer-Policy and X-Frame-Options to HTML", async () => {
  const res = await headersRouter().fetch(new Request("http://pier.test/page"), remote);
  assert.equal(res.headers.get("content-security-policy"), DEFAULT_CONTENT_SECURITY_POLICY);
  assert.match(res.headers.get("content-security-policy")!, /default-src 'self'/);
  assert.match(res.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
  assert.match(res.headers.get("content-security-policy")!, /base-uri 'self'/);
  assert.match(res.headers.get("content-security-policy")!, /form-action 'self'/);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("referrer-policy"), "same-origin");
  assert.equal(res.headers.get("x-frame-options"), "DENY");
  assert.equal(res.headers.get("strict-transport-security"), null, "no HSTS over plain HTTP (RFC 6797 §7.2)");
  await res.body?.cancel();
});

Deno.test("securityHeaders() recognises text/html whatever its case", async () => {
  const res = await headersRouter().fetch(new Request("http://pier.test/upper"), remote);
  assert.equal(res.headers.get("x-frame-options"), "DENY");
  await res.body?.cancel();
});

Deno.test("securityHeaders() gives non-HTML responses nosniff only", async () => {
  const res = await headersRouter().fetch(new Request("http://pier.test/json"), remote);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("content-security-policy"), null);
  assert.equal(res.headers.get("x-frame-options"), null);
  assert.equal(res.headers.get("referrer-policy"), null);
  await res.body?.cancel();
});

Deno.test("securityHeaders() never overwrites a header the handler set", async () => {
  const res = await headersRouter().fetch(new Request("http://pier.test/own"), remote);
  assert.equal(res.headers.get("content-security-policy"), "default-src 'none'");
  assert.equal(res.headers.get("x-frame-options"), "SAMEORIGIN");
  assert.equal(res.headers.get("referrer-policy"), "same-origin");
  await res.body?.cancel();
});

Deno.test("securityHeaders() sends HSTS only over TLS, directly or via a trusted proxy", async () => {
  const router = headersRouter();
  const direct = await router.fetch(new Request("https://pier.test/json"), remote);
  assert.equal(direct.headers.get("strict-transport-security"), "max-age=31536000");
  await direct.body?.cancel();
  const proxied = await router.fetch(
    new Request("http://pier.test/json", { headers: { "x-forwarded-proto": "https" } }),
    info,
  );
  assert.equal(proxied.headers.get("strict-transport-security"), "max-age=31536000");
  await proxied.body?.cancel();
  const spoofed = await router.fetch(
    new Request("http://pier.test/json", { headers: { "x-forwarded-proto": "https" } }),
    remote,
  );
  assert.equal(spoofed.headers.get("strict-transport-security"), null, "an untrusted peer cannot claim TLS");
  await spoofed.body?.cancel();
});

Deno.test("securityHeaders() works on responses with immutable headers", async () => {
  const res = await headersRouter().fetch(new Request("https://pier.test/redirect"), remote);
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "http://pier.test/page");
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("strict-transport-security"), "max-age=31536000");
});

Deno.test("securityHeaders() options replace or drop headers", async () => {
  const router = headersRouter({
    contentSecurityPolicy: false,
    referrerPolicy: "no-referrer",
    strictTransportSecurity: "max-age=60; includeSubDomains",
  });
  const res = await router.fetch(new Request("https://pier.test/page"), remote);
  assert.equal(res.headers.get("content-security-policy"), null);
  assert.equal(res.headers.get("referrer-policy"), "no-referrer");
  assert.equal(res.headers.get("strict-transport-security"), "max-age=60; includeSubDomains");
  await res.body?.cancel();
});
