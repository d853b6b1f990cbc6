// The real site as `deno task start` runs it: acknowledged messages survive SIGKILL, data survives a restart,
// `deno task messages` lists them, --max-upload reaches the engine, --cert/--key serve HTTPS on the same port,
// and the access log has one line per request unless --quiet.
import assert from "node:assert/strict";
import { rawRequest } from "../fixtures/static_fixture.ts";
import { makeCert } from "../fixtures/prod_fixture.ts";
import { freshDatabase } from "../fixtures/postgres.ts";
import { makeFullSiteFixture, runMessages, sessionCookie, spawnSite } from "../fixtures/site_fixture.ts";

const FORM = { "content-type": "application/x-www-form-urlencoded" };

async function postMessage(port: number, n: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/contact`, {
    method: "POST",
    headers: FORM,
    body: new URLSearchParams({ name: `Visitor ${n}`, email: `v${n}@example.com`, message: `Message ${n}` }),
    redirect: "manual",
  });
  await res.body?.cancel();
  return res.status;
}

Deno.test("acknowledged means committed: messages answered 303, then SIGKILL, are all there after a restart", async () => {
  const dir = await makeFullSiteFixture();
  try {
    // Twenty posts from one client, then more after the restart: the post limit is not what this checks.
    const site = await spawnSite(dir, ["--quiet", "--rate-limit", "off"]);
    let statuses: number[];
    try {
      statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => postMessage(site.port, i)));
    } finally {
      // Straight after the last answer: no graceful shutdown, no WAL checkpoint, no chance to flush anything.
      const status = await site.kill("SIGKILL");
      assert.equal(status.signal, "SIGKILL");
    }
    assert.deepEqual(statuses, Array(20).fill(303));

    const listed = await runMessages(dir, ["--json"]);
    assert.equal(listed.code, 0, listed.out);
    const messages = listed.out.trim().split("\n").map((line) => JSON.parse(line));
    assert.equal(messages.length, 20);
    assert.deepEqual(
      messages.map((m) => m.name).sort(),
      Array.from({ length: 20 }, (_, i) => `Visitor ${i}`).sort(),
    );
    for (let i = 1; i < messages.length; i++) assert.ok(messages[i - 1].createdAt >= messages[i].createdAt);
    assert.equal(messages[0].clientAddr, "127.0.0.1");

    // The restarted site reads the same database and adds to it.
    const again = await spawnSite(dir, ["--quiet", "--rate-limit", "off"]);
    try {
      assert.equal(await postMessage(again.port, 20), 303);
    } finally {
      assert.ok((await again.kill("SIGTERM")).success);
    }
    const readable = await runMessages(dir);
    assert.equal(readable.code, 0, readable.out);
    assert.match(
      readable.out,
      /^#21 {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC {2}Visitor 20 <v20@example\.com> {2}from 127\.0\.0\.1\n {4}Message 20\n/,
    );
    assert.equal(readable.out.match(/^#\d+ /gm)?.length, 21);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the data folder is created on first start; a visit count outlives a graceful restart", async () => {
  const dir = await makeFullSiteFixture();
  try {
    await assert.rejects(Deno.stat(`${dir}/data`), Deno.errors.NotFound);
    const first = await spawnSite(dir);
    let cookie: string;
    try {
      const res = await fetch(`http://127.0.0.1:${first.port}/`);
      assert.match(await res.text(), /visit-count">1</);
      cookie = res.headers.get("set-cookie")!.split(";")[0];
    } finally {
      const status = await first.kill("SIGTERM");
      assert.ok(status.success, first.output());
    }
    assert.match(first.output(), /Shutting down/);
    assert.ok((await Deno.stat(`${dir}/data/site.db`)).isFile);
    assert.ok((await Deno.stat(`${dir}/data/uploads`)).isDirectory);

    const second = await spawnSite(dir);
    try {
      const res = await fetch(`http://127.0.0.1:${second.port}/`, { headers: { cookie } });
      assert.match(await res.text(), /visit-count">2</);
    } finally {
      assert.ok((await second.kill("SIGTERM")).success);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one access-log line per request (client, method, path, status, bytes, duration); none with --quiet", async () => {
  const dir = await makeFullSiteFixture();
  try {
    const loud = await spawnSite(dir);
    try {
      await (await fetch(`http://127.0.0.1:${loud.port}/profile/ada?secret=query`)).body?.cancel();
      await (await fetch(`http://127.0.0.1:${loud.port}/missing`)).body?.cancel();
      // An extension method reaches the site, whose router does not implement it.
      await rawRequest(loud.port, "BREW /pot?secret=query HTTP/1.1\r\nHost: a\r\n\r\n");
      // Refused by the engine before any handler: still one line, with the reason.
      await rawRequest(loud.port, "CONNECT pot:443 HTTP/1.1\r\nHost: pot:443\r\n\r\n");
    } finally {
      await loud.kill("SIGTERM");
    }
    const lines = loud.output().split("\n").filter((l) => /^\d{4}-\d\d-\d\dT/.test(l));
    assert.equal(lines.length, 4, loud.output());
    assert.match(lines[0], /^\S+Z 127\.0\.0\.1 GET \/profile\/ada 200 \d+ \d+\.\dms$/);
    assert.match(lines[1], /^\S+Z 127\.0\.0\.1 GET \/missing 404 \d+ \d+\.\dms$/);
    assert.match(lines[2], /^\S+Z 127\.0\.0\.1 BREW \/pot 501 (?:\d+|-) \d+\.\dms$/);
    assert.match(
      lines[3],
      /^\S+Z 127\.0\.0\.1 CONNECT pot:443 501 - 0\.0ms refused: method CONNECT not implemented$/,
    );
    assert.ok(!loud.output().includes("secret=query"), "the query string stays out of the log");

    const quiet = await spawnSite(dir, ["--quiet"]);
    try {
      await (await fetch(`http://127.0.0.1:${quiet.port}/`)).body?.cancel();
    } finally {
      await quiet.kill("SIGTERM");
    }
    assert.equal(quiet.output().split("\n").filter((l) => /^\d{4}-\d\d-\d\dT/.test(l)).length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function multipart(size: number): string {
  const boundary = "----pierTestBoundary";
  return `--${boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nsized\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n` +
    `Content-Type: application/octet-stream\r\n\r\n${"x".repeat(size)}\r\n--${boundary}--\r\n`;
}

function uploadRaw(body: string): string {
  return "POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" +
    "Content-Type: multipart/form-data; boundary=----pierTestBoundary\r\n" +
    `Content-Length: ${body.length}\r\n\r\n${body}`;
}

Deno.test("--max-upload 2KB: a 2 KiB file is stored, a larger one is a 413 page and leaves no file", async () => {
  const dir = await makeFullSiteFixture();
  try {
    const site = await spawnSite(dir, ["--max-upload", "2KB", "--quiet"]);
    try {
      const ok = await rawRequest(site.port, uploadRaw(multipart(2048)));
      assert.equal(ok.status, 200, new TextDecoder().decode(ok.raw));
      assert.match(new TextDecoder().decode(ok.body), /2 KB \(2048 bytes\)/);
      const big = await rawRequest(site.port, uploadRaw(multipart(2049)));
      assert.equal(big.status, 413);
      assert.match(new TextDecoder().decode(big.body), /larger than the 2 KB limit/);
      // Far over the limit: refused from the declared length, before a byte of the body is read.
      const huge = await rawRequest(
        site.port,
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" +
          "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 999999999\r\n\r\n",
      );
      assert.equal(huge.status, 413);
    } finally {
      await site.kill("SIGTERM");
    }
    const stored = [];
    for await (const entry of Deno.readDir(`${dir}/data/uploads`)) stored.push(entry.name);
    assert.equal(stored.filter((n) => n !== ".incoming").length, 1, "only the file within the limit stays");
    // Nothing is left in the staging folder uploads are written in before their final rename.
    for await (const entry of Deno.readDir(`${dir}/data/uploads/.incoming`)) {
      assert.fail(`left: ${entry.name}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--cert/--key serve HTTPS on the same port; the site's cookies become __Host- and Secure", async () => {
  const dir = await makeFullSiteFixture();
  try {
    const cert = await makeCert(`${dir}/certs`); // certs/cert.pem and certs/key.pem, inside the read scope
    const site = await spawnSite(dir, ["--cert", "certs/cert.pem", "--key", "certs/key.pem", "--quiet"]);
    const client = Deno.createHttpClient({ caCerts: [cert.pem] });
    try {
      assert.match(site.output(), /Listening on https:\/\/127\.0\.0\.1:\d+\//);
      const res = await fetch(`https://localhost:${site.port}/`, { client });
      assert.equal(res.status, 200);
      assert.match(await res.text(), /visit-count">1</);
      // The first visit is carried in a signed cookie; the second makes the session: both __Host- and Secure.
      const firstVisit = res.headers.get("set-cookie") ?? "";
      assert.match(firstVisit, /^__Host-pier_first=[^;]+; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
      const again = await fetch(`https://localhost:${site.port}/`, {
        client,
        headers: { cookie: firstVisit.split(";")[0] },
      });
      assert.match(await again.text(), /visit-count">2</);
      const cookie = again.headers.getSetCookie().find((c) => c.startsWith("__Host-pier_sid=")) ?? "";
      assert.match(cookie, /^__Host-pier_sid=[0-9a-f-]{36}; Path=\/; /);
      assert.match(cookie, /; Secure/);
      assert.match(res.headers.get("strict-transport-security") ?? "", /max-age=\d+/);
    } finally {
      client.close();
      await site.kill("SIGTERM");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bad flag stops the site before it listens, with the usage line and exit code 2", async () => {
  const dir = await makeFullSiteFixture();
  try {
    await assert.rejects(spawnSite(dir, ["--max-upload", "lots"]), /Not a size[\s\S]*usage: deno task start/);
    await assert.rejects(
      spawnSite(dir, ["--cert", "certs/nope.pem", "--key", "certs/nope.pem"]),
      /cannot read --cert/,
    );
    await assert.rejects(spawnSite(dir, ["--database", "mysql://u:pw@h/db"]), /PostgreSQL URL[\s\S]*usage/);
    // A shared upload folder outside data/: refused at startup, naming the permission flags to add.
    await assert.rejects(
      spawnSite(dir, ["--uploads", "/tmp/pier-elsewhere"]),
      /--uploads \/tmp\/pier-elsewhere needs --allow-read and --allow-write[\s\S]*--allow-write=data,\/tmp\/pier-elsewhere/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with --database the start and messages tasks' permissions reach PostgreSQL: visits, messages, no site.db", async () => {
  const db = await freshDatabase();
  if (!db) return;
  const dir = await makeFullSiteFixture();
  try {
    const site = await spawnSite(dir, ["--quiet", "--database", db.url]);
    try {
      assert.match(
        site.output(),
        /Database: PostgreSQL postgres:\/\/pier:\*\*\*@/,
        "the password is not logged",
      );
      const first = await fetch(`http://127.0.0.1:${site.port}/`);
      assert.match(await first.text(), /visit-count">1</);
      const cookie = sessionCookie(first)!;
      const second = await fetch(`http://127.0.0.1:${site.port}/`, { headers: { cookie } });
      assert.match(await second.text(), /visit-count">2</);
      assert.equal(await postMessage(site.port, 7), 303);
    } finally {
      await site.kill("SIGTERM");
    }
    const { code, out } = await runMessages(dir, ["--database", db.url, "--json"]);
    assert.equal(code, 0, out);
    assert.equal(JSON.parse(out.trim()).name, "Visitor 7");
    // SQLite was never opened: no database file in data/.
    await assert.rejects(Deno.stat(`${dir}/data/site.db`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await db.drop();
  }
});
