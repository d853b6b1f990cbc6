// The repository's nginx.conf, run by the real nginx in front of the real site: only ports and paths change,
// through the substitution table in nginx.conf's header comment (each entry must be found, so the two cannot
// drift). Checks what a deployment relies on: pages proxied, static files served by nginx itself, the
// contact POST, uploads at and over the limit, the client address the app sees, forged X-Forwarded-For.
// nginx is a CI dependency (.ci/run installs it): this test never skips.
import assert from "node:assert/strict";
import { MAIN, makeFullSiteFixture, spawnSite } from "../fixtures/site_fixture.ts";
import { startProcess, startTaskFlags } from "../fixtures/static_fixture.ts";
import { freePort, makeCert, rawFrom } from "../fixtures/prod_fixture.ts";
import { NGINX_CONF, nginxConfFor, runNginx } from "../fixtures/nginx_fixture.ts";

const MiB = 1024 * 1024;
/** client_max_body_size in nginx.conf: 25 MiB + the site's 64 KiB multipart slack. */
const NGINX_BODY_CAP = 25 * MiB + 64 * 1024;

Deno.test({
  name:
    "nginx: the repository's nginx.conf in front of the site (TLS, static, forms, uploads, client address)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const siteDir = await makeFullSiteFixture();
    const ngDir = await Deno.makeTempDir({ prefix: "pier-nginx-" });
    // When the test runs as root, nginx's workers run as www-data (the `user` line) and must reach these.
    await Deno.chmod(siteDir, 0o755);
    await Deno.chmod(ngDir, 0o755);
    const cert = await makeCert(`${siteDir}/certs`);
    // A big, unmistakable static file: nginx serves it; the app's log must not see it.
    await Deno.writeTextFile(`${siteDir}/static/only-nginx.txt`, "served by nginx\n".repeat(100));

    const site = await spawnSite(siteDir, ["--idle-timeout", "75s"]);
    const httpsPort = freePort();
    const httpPort = freePort();
    const conf = nginxConfFor(await Deno.readTextFile(NGINX_CONF), {
      https: httpsPort,
      http: httpPort,
      app: site.port,
      certDir: `${siteDir}/certs`,
      staticDir: `${siteDir}/static`,
      prefix: ngDir,
    });
    const nginx = await runNginx(ngDir, conf, httpsPort).catch(async (err) => {
      await site.kill("SIGTERM");
      await Deno.remove(ngDir, { recursive: true });
      await Deno.remove(siteDir, { recursive: true });
      throw err;
    });
    const client = Deno.createHttpClient({ caCerts: [cert.pem] });
    const base = `https://localhost:${httpsPort}`;
    const appLog = () => site.output().split("\n").filter((l) => / (GET|POST|HEAD) \//.test(l));
    try {
      // 1. The home page, proxied: the app decided it is HTTPS (X-Forwarded-Proto), so HSTS and a
      // Secure __Host- cookie; nginx tells no version.
      const home = await fetch(`${base}/`, { client });
      const html = await home.text();
      assert.equal(home.status, 200);
      assert.match(html, /<html/i);
      assert.equal(home.headers.get("server"), "nginx");
      assert.match(home.headers.get("strict-transport-security") ?? "", /max-age=\d+/);
      const cookie = home.headers.get("set-cookie") ?? "";
      assert.match(cookie, /^__Host-/);
      assert.match(cookie, /;\s*Secure/i);

      // 2. A static file nginx serves itself: long cache headers, and the app never saw the request.
      const file = await fetch(`${base}/only-nginx.txt`, { client });
      assert.equal(file.status, 200);
      assert.equal(await file.text(), "served by nginx\n".repeat(100));
      assert.match(file.headers.get("cache-control") ?? "", /max-age=604800/);
      assert.ok(file.headers.get("expires"));
      const css = await fetch(`${base}/style.css`, { client });
      assert.equal(css.status, 200);
      assert.equal(css.headers.get("content-encoding"), "gzip", "gzip for text/css");
      await css.body?.cancel();
      // A missing static-looking file falls through to the app's 404 page.
      const missing = await fetch(`${base}/nope.css`, { client });
      assert.equal(missing.status, 404);
      assert.match(await missing.text(), /<html/i);

      // 3. The contact POST, from a browser on the same origin, with a forged X-Forwarded-For that nginx
      // replaces: the app records 127.0.0.1, the address nginx saw, not the forged one.
      const post = await fetch(`${base}/contact`, {
        client,
        method: "POST",
        redirect: "manual",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          origin: base,
          "x-forwarded-for": "203.0.113.7",
          cookie: cookie.split(";")[0],
        },
        body: new URLSearchParams({ name: "Ada", email: "ada@example.com", message: "Through nginx" }),
      });
      await post.body?.cancel();
      assert.equal(post.status, 303);
      assert.equal(post.headers.get("location"), "/contact/thanks");

      // 4. The client address: a visitor at 127.0.0.2 (python3 binds it) through nginx is seen as 127.0.0.2
      // although the app's TCP peer is nginx (127.0.0.1), and the forged header is not believed.
      const viaNginx = await rawFrom(
        "127.0.0.2",
        httpsPort,
        `GET /profile/via-nginx HTTP/1.1\r\nHost: localhost:${httpsPort}\r\nX-Forwarded-For: 203.0.113.8\r\n` +
          "Connection: close\r\n\r\n",
        cert.certPath,
      );
      assert.match(viaNginx, /^HTTP\/1\.1 200/);
      // 5. The same forged header sent straight to the app from 127.0.0.2, a peer it does not trust: ignored.
      const direct = await rawFrom(
        "127.0.0.2",
        site.port,
        `GET /profile/direct HTTP/1.1\r\nHost: 127.0.0.1:${site.port}\r\nX-Forwarded-For: 203.0.113.9\r\n` +
          "X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
      );
      assert.match(direct, /^HTTP\/1\.1 200/);
      assert.doesNotMatch(direct, /strict-transport-security/i, "X-Forwarded-Proto from an untrusted peer");

      // 6. Uploads: a file at the limit goes through nginx to the app; a body over nginx's cap is refused
      // by nginx with 413 on its Content-Length, before the app sees a byte.
      const upload = new FormData();
      upload.set("description", "exactly 25 MiB");
      upload.set("file", new File([new Uint8Array(25 * MiB).fill(0x61)], "limit.bin"));
      const atLimit = await fetch(`${base}/upload`, {
        client,
        method: "POST",
        headers: { origin: base },
        body: upload,
      });
      const atLimitText = await atLimit.text();
      assert.equal(atLimit.status, 200, atLimitText.slice(0, 300));
      assert.match(atLimitText, /26214400/);
      const over = await rawOverLimit(httpsPort, cert.pem, NGINX_BODY_CAP + 1);
      assert.match(over, /^HTTP\/1\.1 413/);
      assert.match(over, /server: nginx/i);

      // 7. The rate limit on POSTs (10 a minute, burst 5): a run of empty contact forms (422 from the app, no
      // write) meets nginx's 429 within a few tries; reading the form is not limited.
      const statuses: number[] = [];
      for (let i = 0; i < 10 && !statuses.includes(429); i++) {
        const res = await fetch(`${base}/contact`, {
          client,
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", origin: base },
          body: "name=&email=&message=",
        });
        await res.body?.cancel();
        statuses.push(res.status);
      }
      assert.ok(statuses.includes(429), `no 429 in ${statuses}`);
      assert.ok(statuses.slice(0, -1).every((s) => s === 422), String(statuses));
      const form = await fetch(`${base}/contact`, { client });
      await form.body?.cancel();
      assert.equal(form.status, 200);

      // 8. The health check through nginx, and the plain-HTTP port's redirect.
      const health = await fetch(`${base}/healthz`, { client });
      assert.equal(health.status, 200);
      assert.equal(await health.text(), "ok\n");
      const redirect = await fetch(`http://127.0.0.1:${httpPort}/contact?x=1`, { redirect: "manual" });
      await redirect.body?.cancel();
      assert.equal(redirect.status, 308);
      assert.equal(redirect.headers.get("location"), "https://127.0.0.1/contact?x=1");

      // The app's access log, read last: what it saw and with which client address. The log is written in
      // batches (every 250 ms): wait for the batch holding the last request the app answered, /healthz.
      const deadline = Date.now() + 5_000;
      while (!appLog().some((l) => / GET \/healthz /.test(l)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const lines = appLog();
      const line = (re: RegExp) =>
        lines.find((l) => re.test(l)) ?? assert.fail(`no ${re} in:\n${lines.join("\n")}`);
      assert.match(line(/ POST \/contact 303 /), / 127\.0\.0\.1 POST/);
      assert.match(line(/ GET \/profile\/via-nginx /), / 127\.0\.0\.2 GET/);
      assert.match(line(/ GET \/profile\/direct /), / 127\.0\.0\.2 GET/);
      assert.ok(
        !lines.some((l) => /only-nginx|style\.css/.test(l)),
        `the app served a static file:\n${lines}`,
      );
      assert.ok(!lines.some((l) => /203\.0\.113\./.test(l)), "a forged address reached the log");
      assert.equal(
        lines.filter((l) => / POST \/upload /.test(l)).length,
        1,
        "the over-limit upload reached the app",
      );
    } finally {
      client.close();
      await nginx.stop();
      await site.kill("SIGTERM");
      await Deno.remove(ngDir, { recursive: true });
      await Deno.remove(siteDir, { recursive: true });
    }
  },
});

/** The start task's flags with its one Unix socket (/run/pier/pier.sock) moved to `path`, as deploy.md says. */
async function flagsForSocket(path: string): Promise<string[]> {
  const flags = (await startTaskFlags()).map((f) => f.replace("/run/pier/pier.sock", path));
  assert.ok(flags.filter((f) => f.includes(path)).length === 2, "read and write on the socket, nothing more");
  return flags;
}

Deno.test({
  name:
    "nginx: the repository's nginx.conf over the site's Unix socket (--unix), which outlives a kill but not a stop",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const siteDir = await makeFullSiteFixture();
    const ngDir = await Deno.makeTempDir({ prefix: "pier-nginx-" });
    await Deno.chmod(siteDir, 0o755);
    await Deno.chmod(ngDir, 0o755);
    const cert = await makeCert(`${siteDir}/certs`);
    const socket = `${siteDir}/pier.sock`;
    const flags = await flagsForSocket(socket);
    const args = ["--idle-timeout", "75s", "--unix", socket, "--max-connections", "500"];
    // A killed site leaves its socket file behind; the next start removes it (nothing answers on it).
    const killed = await startProcess(siteDir, flags, MAIN, args);
    await killed.kill("SIGKILL");
    assert.ok((await Deno.lstat(socket)).isSocket, "a SIGKILL leaves the file");
    const site = await startProcess(siteDir, flags, MAIN, args);
    assert.match(site.output(), /Removed the stale socket/);
    assert.match(site.output(), /Listening on unix:/);
    assert.match(site.output(), /Connections: at most 500 \(--max-connections\)/);
    const httpsPort = freePort();
    const conf = nginxConfFor(await Deno.readTextFile(NGINX_CONF), {
      https: httpsPort,
      http: freePort(),
      app: { unix: socket },
      certDir: `${siteDir}/certs`,
      staticDir: `${siteDir}/static`,
      prefix: ngDir,
    });
    assert.match(conf, new RegExp(`\\n {8}server unix:${socket};\\n`));
    assert.doesNotMatch(conf, /server 127\.0\.0\.1:8000;/);
    const nginx = await runNginx(ngDir, conf, httpsPort).catch(async (err) => {
      await site.kill("SIGTERM");
      await Deno.remove(ngDir, { recursive: true });
      await Deno.remove(siteDir, { recursive: true });
      throw err;
    });
    const client = Deno.createHttpClient({ caCerts: [cert.pem] });
    const base = `https://localhost:${httpsPort}`;
    let stopped = false;
    try {
      // A second instance on the same live socket refuses to start, and leaves the socket alone.
      const second = await startProcess(siteDir, flags, MAIN, args).then(
        (p) => p.kill("SIGTERM").then(() => "started"),
        (err: Error) => err.message,
      );
      assert.match(second, /cannot listen on .*pier\.sock: a server answers on/);
      // Pages through nginx, over kept-alive upstream connections on the socket.
      for (let i = 0; i < 3; i++) {
        const home = await fetch(`${base}/`, { client });
        assert.equal(home.status, 200);
        assert.match(await home.text(), /<html/i);
        assert.match(
          home.headers.get("strict-transport-security") ?? "",
          /max-age=\d+/,
          "X-Forwarded-Proto believed",
        );
      }
      // The client address: a visitor at 127.0.0.2 with a forged header is seen as 127.0.0.2; the app's peer is
      // the Unix socket, which the trusted-proxy rule treats as the proxy.
      const viaNginx = await rawFrom(
        "127.0.0.2",
        httpsPort,
        `GET /profile/via-unix HTTP/1.1\r\nHost: localhost:${httpsPort}\r\nX-Forwarded-For: 203.0.113.8\r\n` +
          "Connection: close\r\n\r\n",
        cert.certPath,
      );
      assert.match(viaNginx, /^HTTP\/1\.1 200/);
      // The access log is written every quarter second.
      const logged = () => site.output().split("\n").find((l) => l.includes("GET /profile/via-unix"));
      for (let i = 0; i < 40 && logged() === undefined; i++) await new Promise((r) => setTimeout(r, 50));
      const line = logged();
      assert.match(line ?? "", / 127\.0\.0\.2 GET/, site.output());
      // A graceful stop removes the socket: nginx then fails fast (no stale file to connect to).
      await site.kill("SIGTERM");
      stopped = true;
      await assert.rejects(Deno.lstat(socket), Deno.errors.NotFound);
      const down = await fetch(`${base}/`, { client });
      await down.body?.cancel();
      assert.equal(down.status, 502);
      assert.match(await nginx.errorLog(), /No such file or directory/);
    } finally {
      client.close();
      await nginx.stop();
      if (!stopped) await site.kill("SIGTERM");
      await Deno.remove(ngDir, { recursive: true });
      await Deno.remove(siteDir, { recursive: true });
    }
  },
});

/** Send only the head of an upload whose Content-Length is `length` and read nginx's answer. */
async function rawOverLimit(port: number, pem: string, length: number): Promise<string> {
  const conn = await Deno.connectTls({ hostname: "localhost", port, caCerts: [pem] });
  try {
    await conn.write(new TextEncoder().encode(
      `POST /upload HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: multipart/form-data; boundary=x\r\n` +
        `Content-Length: ${length}\r\nConnection: close\r\n\r\n`,
    ));
    let text = "";
    const buf = new Uint8Array(16 * 1024);
    const d = new TextDecoder();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += d.decode(buf.subarray(0, n), { stream: true });
      if (/<\/html>/i.test(text)) break;
    }
    return text;
  } finally {
    conn.close();
  }
}
