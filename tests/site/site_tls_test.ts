// The site over HTTPS as `deno task start --cert certs/cert.pem --key certs/key.pem` serves it: a throwaway
// openssl pair in the fixture's certs/ (inside the start task's read scope), a client that trusts it, keep-alive
// over TLS, Secure __Host- session cookies and HSTS, the plain-HTTP redirect port, and a pair outside the
// scope refused at startup with a message that names the flag.
import assert from "node:assert/strict";
import { makeFullSiteFixture, spawnSite } from "../fixtures/site_fixture.ts";
import { freePort, makeCert } from "../fixtures/prod_fixture.ts";

const TLS_FLAGS = ["--cert", "certs/cert.pem", "--key", "certs/key.pem"];

Deno.test({
  name: "site over TLS: HTTPS with keep-alive, Secure __Host- cookie, HSTS, and a 308 from the HTTP port",
  sanitizeResources: false,
  async fn() {
    const dir = await makeFullSiteFixture();
    const cert = await makeCert(`${dir}/certs`);
    const redirectPort = freePort();
    const site = await spawnSite(dir, [...TLS_FLAGS, "--http-redirect-port", String(redirectPort)]);
    const client = Deno.createHttpClient({ caCerts: [cert.pem] });
    try {
      assert.match(site.output(), new RegExp(`Listening on https://127\\.0\\.0\\.1:${site.port}/`));
      const home = await fetch(`https://localhost:${site.port}/`, { client });
      await home.body?.cancel();
      assert.equal(home.status, 200);
      assert.match(home.headers.get("strict-transport-security") ?? "", /max-age=\d+/);
      const cookie = home.headers.get("set-cookie") ?? "";
      assert.match(cookie, /^__Host-[^=]+=/);
      assert.match(cookie, /;\s*Secure/i);

      // Two requests on one TLS connection: keep-alive over TLS.
      const conn = await Deno.connectTls({ hostname: "localhost", port: site.port, caCerts: [cert.pem] });
      try {
        const d = new TextDecoder();
        const buf = new Uint8Array(8192);
        for (const n of [1, 2]) {
          await conn.write(
            new TextEncoder().encode(`GET /healthz HTTP/1.1\r\nHost: localhost:${site.port}\r\n\r\n`),
          );
          let text = "";
          while (!text.endsWith("ok\n")) {
            const got = await conn.read(buf);
            assert.notEqual(got, null, `connection closed before answer ${n}: ${text}`);
            text += d.decode(buf.subarray(0, got!));
          }
          assert.match(text, /^HTTP\/1\.1 200 /);
          assert.doesNotMatch(text, /connection: close/i);
        }
      } finally {
        conn.close();
      }

      // The plain-HTTP port answers everything with a 308 to the same target over HTTPS.
      const redirect = await fetch(`http://127.0.0.1:${redirectPort}/contact?from=http`, {
        method: "POST",
        redirect: "manual",
        body: "x",
      });
      await redirect.body?.cancel();
      assert.equal(redirect.status, 308);
      assert.equal(redirect.headers.get("location"), `https://127.0.0.1:${site.port}/contact?from=http`);
    } finally {
      client.close();
      const status = await site.kill("SIGTERM");
      assert.ok(status.success, site.output());
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "site over TLS: a certificate outside the start task's read scope (certs/) is refused, naming the flag",
  sanitizeResources: false,
  async fn() {
    const dir = await makeFullSiteFixture();
    const elsewhere = await Deno.makeTempDir({ prefix: "pier-cert-elsewhere-" });
    try {
      const cert = await makeCert(elsewhere);
      await assert.rejects(
        () => spawnSite(dir, ["--cert", cert.certPath, "--key", cert.keyPath]),
        (err: Error) =>
          /cannot read --cert/.test(err.message) && /--allow-read|NotCapable|read access/i.test(err.message),
      );
    } finally {
      await Deno.remove(elsewhere, { recursive: true });
      await Deno.remove(dir, { recursive: true });
    }
  },
});
