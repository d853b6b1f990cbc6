// The second wall: the site runs with --allow-read/--allow-write scoped to its own folders, so even a
// server with no path checks at all cannot read outside them. Each attack is also run against a widened
// control (bare --allow-read) to show that it is the flags, not luck, that stop it.
import assert from "node:assert/strict";
import {
  makeSiteFixture,
  rawRequest,
  requestText,
  SECRET_MARKER,
  startProcess,
  startTaskFlags,
} from "../fixtures/static_fixture.ts";

const MAIN = new URL("../../app/main.ts", import.meta.url).pathname;
const JAILLESS = new URL("../fixtures/static_jailless_server.ts", import.meta.url).pathname;
const PROBE = new URL("../fixtures/static_wall_probe.ts", import.meta.url).pathname;
/** A file of the source tree, outside every folder the task allows; it contains this marker. */
const SOURCE_FILE = MAIN;
const SOURCE_MARKER = "The site entry: parse --host/--port";
/** The widened flags of the control: what the wall would be without scopes. */
const WIDENED = ["--allow-net", "--allow-read", "--allow-write"];

Deno.test("the start task scopes read/write: no -A, no bare --allow-read or --allow-write", async () => {
  const flags = await startTaskFlags();
  for (const f of flags) {
    assert.ok(
      !["-A", "--allow-all", "--allow-read", "--allow-write", "-R", "-W"].includes(f),
      `bare flag ${f}`,
    );
    assert.ok(!f.startsWith("--allow-run") && !f.startsWith("--allow-ffi") && f !== "--allow-env", f);
  }
  // The environment: the two variables PostgreSQL needs (the store's DATABASE_URL, the driver's PGAPPNAME), no more.
  const env = flags.filter((f) => f.startsWith("--allow-env"));
  assert.deepEqual(env.map((f) => f.split("=")[1]?.split(",").sort()), [["DATABASE_URL", "PGAPPNAME"]]);
  const read = flags.find((f) => f.startsWith("--allow-read="))!.split("=")[1].split(",");
  const write = flags.find((f) => f.startsWith("--allow-write="))!.split("=")[1].split(",");
  // Besides its folders: the one Unix socket --unix may use, the only path outside data/ it may write.
  assert.deepEqual(read.sort(), [
    "/run/pier/pier.sock",
    "certs",
    "data",
    "static",
    "templates",
  ]);
  assert.deepEqual(write, ["data", "/run/pier/pier.sock"]);
});

async function probe(dir: string, flags: string[]): Promise<Record<string, string>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, PROBE, SOURCE_FILE],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, out + new TextDecoder().decode(stderr));
  return JSON.parse(out);
}

Deno.test("with the start task's flags, direct reads/writes outside its folders are refused", async () => {
  const dir = await makeSiteFixture();
  try {
    const scoped = await probe(dir, await startTaskFlags());
    for (
      const name of [
        "read secret.txt",
        "read static/../secret.txt",
        "read absolute secret",
        "read the source tree",
        "read /etc/passwd",
        "realPath secret.txt",
        "write static/planted.txt",
      ]
    ) {
      assert.equal(scoped[name], "NotCapable", `${name}: ${JSON.stringify(scoped)}`);
    }
    assert.equal(scoped["read static/index.html"], "ok");
    // Deno checks a path as written, not where a symlink leads: the scope does not cover symlinks, so the
    // realPath check in server/static.ts is the only wall for them (see docs/static.md).
    assert.equal(scoped["read via symlink in static/"], "ok");

    // Control: widen the flags and the same attempts succeed, so the assertions above can fail.
    const widened = await probe(dir, WIDENED);
    assert.equal(widened["read secret.txt"], "ok");
    assert.equal(widened["read the source tree"], "ok");
    await Deno.remove(`${dir}/static/planted.txt`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a server with no path checks, run with the start task's flags, still cannot leak", async () => {
  const dir = await makeSiteFixture();
  const attacks = [
    "/..%2fsecret.txt",
    "/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    `/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f${SOURCE_FILE.slice(1).replaceAll("/", "%2f")}`,
    `/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f${dir.slice(1).replaceAll("/", "%2f")}%2fsecret.txt`,
  ];
  // Sanity: the broken server does serve what is inside static/.
  const scoped = await startProcess(dir, await startTaskFlags(), JAILLESS);
  try {
    const ok = await rawRequest(scoped.port, requestText("/index.html"));
    assert.equal(ok.status, 200);
    for (const target of attacks) {
      const res = await rawRequest(scoped.port, requestText(target));
      const text = new TextDecoder().decode(res.raw);
      assert.equal(res.status, 500, `${target}: ${text}`);
      assert.match(text, /refused: NotCapable/, target);
      assert.ok(
        !text.includes(SECRET_MARKER) && !text.includes(SOURCE_MARKER) && !text.includes("root:x:0:0"),
      );
    }
  } finally {
    await scoped.stop();
  }
  // Control: the same broken server with a bare --allow-read leaks both, so the wall is what held above.
  const widened = await startProcess(dir, WIDENED, JAILLESS);
  try {
    const secret = new TextDecoder().decode((await rawRequest(widened.port, requestText(attacks[0]))).body);
    assert.ok(secret.includes(SECRET_MARKER), secret);
    const source = new TextDecoder().decode((await rawRequest(widened.port, requestText(attacks[2]))).body);
    assert.ok(source.includes(SOURCE_MARKER), source.slice(0, 200));
  } finally {
    await widened.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the site started as `deno task start` answers the escape symlink 404, keeps serving", async () => {
  const dir = await makeSiteFixture();
  const site = await startProcess(dir, await startTaskFlags(), MAIN, ["--port", "0"]);
  let log = "";
  try {
    const res = await rawRequest(site.port, requestText("/images/escape-link"));
    assert.equal(res.status, 404);
    assert.ok(!new TextDecoder().decode(res.raw).includes(SECRET_MARKER));
    const direct = await rawRequest(site.port, requestText("/..%2fsecret.txt"));
    assert.equal(direct.status, 403);
    const index = await rawRequest(site.port, requestText("/"));
    assert.equal(index.status, 200);
  } finally {
    const status = await site.stop();
    log = site.output();
    await Deno.remove(dir, { recursive: true });
    assert.ok(status.success, log);
  }
  assert.match(log, /404 resolves outside the root client=127\.0\.0\.1 target="\/images\/escape-link"/);
});
