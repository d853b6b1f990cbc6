// The site's flags as tables: sizes for --max-upload, every flag of `deno task start`, and the refusals
// (unknown flags, missing values, --cert without --key) that must stop the site before it starts.
import assert from "node:assert/strict";
import { databaseUrl } from "../app/database.ts";
import { MAX_UPLOAD_CEILING, parseMessagesArgs, parseSiteArgs, parseSize, uploadDirOf } from "../app/cli.ts";

const MiB = 1024 * 1024;

Deno.test("parseSize() reads sizes in binary units, as nginx does", () => {
  const cases: [string, number][] = [
    ["25MB", 25 * MiB],
    ["300MB", 300 * MiB],
    ["300mb", 300 * MiB],
    ["300 MiB", 300 * MiB],
    ["25m", 25 * MiB],
    ["512k", 512 * 1024],
    ["512KB", 512 * 1024],
    ["1.5GB", 1.5 * 1024 * MiB],
    ["1048576", MiB],
    ["10b", 10],
    [" 2MB ", 2 * MiB],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
});

Deno.test("parseSize() refuses what is not a positive size", () => {
  for (const text of ["", "MB", "25 XB", "-5MB", "0", "0MB", "1e3", "25MB5", "0x10", "twelve"]) {
    assert.throws(() => parseSize(text), TypeError, text);
  }
});

Deno.test("parseSiteArgs() fills the defaults: 127.0.0.1:8000, 25 MB uploads, data/, plain HTTP", () => {
  assert.deepEqual(parseSiteArgs([]), {
    host: "127.0.0.1",
    port: 8000,
    cert: null,
    key: null,
    maxUploadBytes: 25 * MiB,
    dataDir: "data",
    database: null,
    databasePool: null,
    uploadDir: null,
    quiet: false,
    dev: false,
    idleTimeoutMs: 75_000,
    httpRedirectPort: null,
    trustedProxies: null,
    workers: 1,
  });
});

Deno.test("parseSiteArgs() reads the production flags: --idle-timeout, --http-redirect-port, --trusted-proxy", () => {
  const tls = ["--cert", "c", "--key", "k"];
  assert.equal(parseSiteArgs(["--idle-timeout", "90s"]).idleTimeoutMs, 90_000);
  assert.equal(parseSiteArgs(["--idle-timeout=500ms"]).idleTimeoutMs, 500);
  assert.equal(parseSiteArgs(["--idle-timeout=2m"]).idleTimeoutMs, 120_000);
  assert.equal(parseSiteArgs([...tls, "--http-redirect-port", "8080"]).httpRedirectPort, 8080);
  assert.deepEqual(
    parseSiteArgs(["--trusted-proxy", "10.0.0.5,10.0.0.6", "--trusted-proxy=::1"]).trustedProxies,
    ["10.0.0.5", "10.0.0.6", "::1"],
  );
  assert.equal(parseSiteArgs(["--workers", "4"]).workers, 4);
  assert.equal(parseSiteArgs(["--workers", "auto"]).workers, navigator.hardwareConcurrency);
  assert.throws(() => parseSiteArgs(["--workers", "0"]), TypeError);
  assert.throws(() => parseSiteArgs(["--http-redirect-port", "8080"]), TypeError, "--cert");
  assert.throws(() => parseSiteArgs(["--idle-timeout", "0s"]), TypeError);
  assert.throws(() => parseSiteArgs(["--idle-timeout", "2h"]), TypeError);
  assert.throws(() => parseSiteArgs(["--idle-timeout", "2000m"]), TypeError, "hour");
});

Deno.test("parseSiteArgs() reads every flag, in both --flag value and --flag=value forms", () => {
  const cases: [string[], Partial<ReturnType<typeof parseSiteArgs>>][] = [
    [["--host", "0.0.0.0", "--port", "8080"], { host: "0.0.0.0", port: 8080 }],
    [["--host=::1", "--port=0"], { host: "::1", port: 0 }],
    [["--max-upload", "300MB"], { maxUploadBytes: 300 * MiB }],
    [["--max-upload=1KB"], { maxUploadBytes: 1024 }],
    [["--cert", "certs/c.pem", "--key", "certs/k.pem"], { cert: "certs/c.pem", key: "certs/k.pem" }],
    [["--data", "/var/lib/pier/"], { dataDir: "/var/lib/pier" }],
    [["--quiet"], { quiet: true }],
    [["-q", "--dev"], { quiet: true, dev: true }],
  ];
  for (const [args, expected] of cases) {
    const config = parseSiteArgs(args);
    for (const [key, value] of Object.entries(expected)) {
      assert.equal(config[key as keyof typeof config], value, `${args.join(" ")}: ${key}`);
    }
  }
});

Deno.test("parseSiteArgs() refuses unknown flags, bad values and half a TLS pair", () => {
  const cases: [string[], RegExp][] = [
    [["--max-uplaod", "300MB"], /Unknown flag/],
    [["--port"], /needs a value/],
    [["--port", "70000"], /Bad --port/],
    [["--port", "80a"], /Bad --port/],
    [["--port", "-1"], /Bad --port/],
    [["--max-upload", "lots"], /Not a size/],
    [["--max-upload", "5GB"], new RegExp(`ceiling of ${MAX_UPLOAD_CEILING}`)],
    [["--cert", "c.pem"], /go together/],
    [["--key", "k.pem"], /go together/],
    [["--quiet=yes"], /takes no value/],
    [["--data="], /needs a value/],
    [["serve"], /Unknown flag/],
  ];
  for (const [args, message] of cases) assert.throws(() => parseSiteArgs(args), message, args.join(" "));
});

Deno.test("parseMessagesArgs() reads --json, --data, --limit and --database", () => {
  assert.deepEqual(parseMessagesArgs([]), { json: false, dataDir: "data", database: null, limit: 1_000_000 });
  assert.deepEqual(
    parseMessagesArgs(["--json", "--data", "d/", "--limit=5", "--database", "postgres://u@h/db"]),
    {
      json: true,
      dataDir: "d",
      database: "postgres://u@h/db",
      limit: 5,
    },
  );
  for (const args of [["--limit", "0"], ["--limit", "x"], ["--csv"], ["--database", "mysql://u@h/db"]]) {
    assert.throws(() => parseMessagesArgs(args), TypeError, args.join(" "));
  }
});

Deno.test("parseSiteArgs() reads --database, --database-pool and --uploads; a bad URL never echoes its password", () => {
  const config = parseSiteArgs([
    "--database=postgresql://pier:secret@db.internal:5433/site?sslmode=require",
    "--database-pool",
    "4",
    "--uploads",
    "/mnt/shared/uploads/",
  ]);
  assert.equal(config.database, "postgresql://pier:secret@db.internal:5433/site?sslmode=require");
  assert.equal(config.databasePool, 4);
  assert.equal(config.uploadDir, "/mnt/shared/uploads");
  assert.equal(uploadDirOf(config), "/mnt/shared/uploads");
  assert.equal(uploadDirOf(parseSiteArgs(["--data", "/srv/pier"])), "/srv/pier/uploads");
  for (const pool of ["0", "101", "x", "-1"]) {
    assert.throws(() => parseSiteArgs(["--database-pool", pool]), TypeError, pool);
  }
  for (const url of ["sqlite:site.db", "mysql://u:secret@h/db", "not a url secret", "postgres//u:secret@h"]) {
    assert.throws(() => parseSiteArgs(["--database", url]), (err: unknown) => {
      assert.ok(err instanceof TypeError);
      assert.ok(!err.message.includes("secret"), err.message);
      return true;
    }, url);
  }
});

Deno.test("databaseUrl(): --database wins over DATABASE_URL; an empty or absent variable means SQLite", () => {
  const saved = Deno.env.get("DATABASE_URL");
  try {
    Deno.env.delete("DATABASE_URL");
    assert.equal(databaseUrl(null), null);
    Deno.env.set("DATABASE_URL", "");
    assert.equal(databaseUrl(null), null);
    Deno.env.set("DATABASE_URL", "postgres://env@h/db");
    assert.equal(databaseUrl(null), "postgres://env@h/db");
    assert.equal(databaseUrl("postgres://flag@h/db"), "postgres://flag@h/db");
  } finally {
    if (saved === undefined) Deno.env.delete("DATABASE_URL");
    else Deno.env.set("DATABASE_URL", saved);
  }
});
