// The site's flags as tables: sizes for --max-upload, every flag of `deno task start`, and the refusals
// (unknown flags, missing values, --cert without --key) that must stop the site before it starts; `--help`
// lists every flag the parsers accept, with defaults that are the parsers' own.
import assert from "node:assert/strict";
import { databaseUrl } from "../../app/database.ts";
import { DEFAULT_POOL_SIZE } from "../../app/postgres_store.ts";
import {
  type Flag,
  helpRequested,
  MAX_UPLOAD_CEILING,
  MESSAGES_FLAGS,
  parseMessagesArgs,
  parseSiteArgs,
  parseSize,
  SITE_FLAGS,
  uploadDirOf,
} from "../../app/cli.ts";

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
    unix: null,
    maxConnections: null,
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
    rateLimit: { limit: 20, windowMs: 10 * 60 * 1000 },
    workers: 1,
  });
  assert.equal(parseSiteArgs(["--rate-limit", "off"]).rateLimit, null);
  assert.deepEqual(parseSiteArgs(["--rate-limit=5/30s"]).rateLimit, { limit: 5, windowMs: 30_000 });
  assert.throws(() => parseSiteArgs(["--rate-limit", "lots"]), /--rate-limit "lots"/);
});

Deno.test("parseSiteArgs() reads --unix and --max-connections, and refuses --unix with TLS or --workers", () => {
  assert.equal(parseSiteArgs(["--unix", "/run/pier/pier.sock"]).unix, "/run/pier/pier.sock");
  assert.equal(parseSiteArgs(["--max-connections=500"]).maxConnections, 500);
  assert.throws(() => parseSiteArgs(["--max-connections", "0"]), /Bad --max-connections: "0"/);
  assert.throws(() => parseSiteArgs(["--unix", "s.sock", "--cert", "c", "--key", "k"]), /no --cert/);
  assert.throws(() => parseSiteArgs(["--unix", "s.sock", "--workers", "2"]), /--workers/);
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

// --- --help ---------------------------------------------------------------------------------------------

/** A value each site flag accepts that differs from its default. A new flag needs one here. */
const SITE_SAMPLES: Record<string, string> = {
  "--host": "0.0.0.0",
  "--port": "8080",
  "--cert": "certs/cert.pem",
  "--key": "certs/key.pem",
  "--http-redirect-port": "8081",
  "--max-upload": "300MB",
  "--data": "/srv/pier",
  "--uploads": "/mnt/uploads",
  "--database": "postgres://pier:pw@db/pier",
  "--database-pool": "4",
  "--idle-timeout": "90s",
  "--trusted-proxy": "10.0.0.5",
  "--rate-limit": "5/1m",
  "--workers": "2",
  "--unix": "/run/pier/pier.sock",
  "--max-connections": "1000",
  "--quiet": "",
  "--dev": "",
};
const MESSAGES_SAMPLES: Record<string, string> = {
  "--json": "",
  "--limit": "5",
  "--data": "/srv/pier",
  "--database": "postgres://pier:pw@db/pier",
};

/** Flags whose default is a description (there is no value that means it), not a value the flag accepts. */
const DESCRIBED_DEFAULTS = new Set([
  "--cert",
  "--key",
  "--http-redirect-port",
  "--uploads",
  "--database",
  "--trusted-proxy",
  "--unix",
  "--max-connections",
]);

/** Run a task as a person does, from the repository. */
async function task(name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", name, ...args],
    cwd: new URL("../..", import.meta.url),
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Check a help text: each flag's line with its meaning, its default on the next line, then --help. */
function assertHelpLists<Config>(help: string, flags: readonly Flag<Config>[]): void {
  const lines = help.split("\n");
  for (const flag of flags) {
    const spelled = flag.names.join(", ") + (flag.value === null ? "" : ` ${flag.value}`);
    const at = lines.findIndex((line) => line.trimStart().startsWith(`${spelled} `));
    assert.ok(at >= 0, `${spelled} is not in the help:\n${help}`);
    assert.ok(lines[at].includes(flag.meaning), `${spelled}'s meaning`);
    assert.equal(lines[at + 1].trim(), `Default: ${flag.default}`, `${spelled}'s default`);
  }
  assert.match(help, /^ {2}--help, -h {2,}Print this help and exit$/m);
}

Deno.test("deno task start --help prints the usage and every flag with its default and meaning, and exits 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const { code, stdout, stderr } = await task("start", ["--port", "80", flag]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^usage: deno task start \[flags\]$/m);
    assertHelpLists(stdout, SITE_FLAGS);
  }
});

Deno.test("deno task messages --help prints the usage and every flag with its default and meaning, and exits 0", async () => {
  const { code, stdout, stderr } = await task("messages", ["--help"]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^usage: deno task messages \[flags\]$/m);
  assertHelpLists(stdout, MESSAGES_FLAGS);
});

Deno.test("a bad flag prints the usage line with every flag, and exit code 2", async () => {
  const { code, stderr } = await task("messages", ["--csv"]);
  assert.equal(code, 2);
  assert.match(stderr, /Unknown flag "--csv"/);
  assert.match(
    stderr,
    /usage: deno task messages \[--json\] \[--limit N\] \[--data DIR\] \[--database URL\]/,
  );
});

Deno.test("helpRequested(): --help or -h anywhere, and nothing that merely starts like them", () => {
  assert.equal(helpRequested(["--help"]), true);
  assert.equal(helpRequested(["--port", "80", "-h"]), true);
  assert.equal(helpRequested([]), false);
  assert.equal(helpRequested(["--helpful", "--host=-h"]), false);
});

/** What {@link assertTableIsTheParser} needs besides the table and its parser. */
interface TableCheck<Config> {
  /** A value each flag accepts that differs from its default (keyed by the flag's first name). */
  samples: Record<string, string>;
  /**
   * Arguments given before a flag that is read only with others (`--cert` needs `--key`); they may give the
   * flag itself an earlier value, which its sample then replaces.
   */
  context?: Record<string, string[]>;
  /** Defaults the help shows that the configuration holds as null, and what they mean there. */
  defaultExceptions?: Record<string, Partial<Config>>;
}

/**
 * The flags of a table cover its whole configuration (no field is set outside the table, so none is missing
 * from --help), each one changes it, and each default the help shows is what the parser does without the flag.
 */
function assertTableIsTheParser<Config extends object>(
  flags: readonly Flag<Config>[],
  parse: (args: readonly string[]) => Config,
  { samples, context = {}, defaultExceptions = {} }: TableCheck<Config>,
): void {
  const defaults = parse([]);
  const untouched = new Set(Object.keys(defaults));
  for (const flag of flags) {
    const sample = samples[flag.names[0]];
    assert.ok(sample !== undefined, `${flag.names[0]} has no sample value in this test`);
    for (const name of flag.names) {
      const others = context[flag.names[0]] ?? [];
      const before = parse(others);
      const config = parse([...others, ...(flag.value === null ? [name] : [name, sample])]);
      const changed = Object.keys(config).filter((key) =>
        JSON.stringify(config[key as keyof Config]) !== JSON.stringify(before[key as keyof Config])
      );
      assert.ok(changed.length > 0, `${name} ${sample} changes nothing`);
      for (const key of changed) untouched.delete(key);
    }
    if (flag.value === null) {
      assert.equal(flag.default, "off", flag.names[0]);
    } else if (!DESCRIBED_DEFAULTS.has(flag.names[0])) {
      const expected = { ...defaults, ...defaultExceptions[flag.names[0]] };
      assert.deepEqual(parse([flag.names[0], flag.default]), expected, `${flag.names[0]}'s default`);
    }
  }
  assert.deepEqual([...untouched], [], "configuration fields no flag sets");
}

Deno.test("SITE_FLAGS is the parser: every field has its flag, every flag works, every default shown is true", () => {
  assertTableIsTheParser(SITE_FLAGS, parseSiteArgs, {
    samples: SITE_SAMPLES,
    context: {
      "--cert": ["--cert", "other.pem", "--key", "k.pem"],
      "--key": ["--cert", "c.pem", "--key", "other.pem"],
      "--http-redirect-port": ["--cert", "c.pem", "--key", "k.pem"],
    },
    // Null in the configuration: app/postgres_store.ts's pool size decides, and --help shows that number.
    defaultExceptions: { "--database-pool": { databasePool: DEFAULT_POOL_SIZE } },
  });
});

Deno.test("MESSAGES_FLAGS is the parser: every field has its flag, every flag works, every default shown is true", () => {
  assertTableIsTheParser(MESSAGES_FLAGS, parseMessagesArgs, { samples: MESSAGES_SAMPLES });
});
