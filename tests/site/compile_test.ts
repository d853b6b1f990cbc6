// `deno task compile`: one executable carrying static/ and templates/ and the task's scoped permissions,
// started in an empty folder (no static/ on disk) and serving the home page and a static file. Building it
// needs Deno's runtime binary (denort): DENORT_BIN when set, else downloaded. Where neither works (no
// internet), the test logs that it was SKIPPED and why, and returns early: this cannot be decided up front
// with `ignore:`, because only the download attempt tells whether the network is there.
import assert from "node:assert/strict";
import { REPO } from "../fixtures/site_fixture.ts";

/** The compile task's arguments, from deno.json, with the output redirected to `out`. */
async function compileArgs(out: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", REPO)));
  const tokens = String(config.tasks.compile).trim().split(/\s+/);
  assert.deepEqual(tokens.slice(0, 2), ["deno", "compile"]);
  const o = tokens.indexOf("-o");
  assert.ok(o > 0, "the compile task names its output with -o");
  tokens[o + 1] = out;
  for (const dir of ["static", "templates"]) {
    assert.ok(tokens.some((t, i) => t === "--include" && tokens[i + 1] === dir), `--include ${dir}`);
  }
  assert.ok(!tokens.includes("-A") && !tokens.includes("--allow-all") && !tokens.includes("--allow-read"));
  return tokens.slice(1);
}

Deno.test({
  name: "deno task compile: one executable serves the embedded static/ and templates/ (skips without denort)",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pier-compile-" });
    try {
      const exe = `${dir}/pier`;
      const build = await new Deno.Command(Deno.execPath(), {
        args: await compileArgs(exe),
        cwd: new URL(".", REPO).pathname,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const log = new TextDecoder().decode(build.stderr) + new TextDecoder().decode(build.stdout);
      if (!build.success) {
        const offline = /dns error|failed to lookup|error sending request|download|denort/i.test(log);
        if (offline && !Deno.env.get("DENORT_BIN")) {
          console.warn(
            "SKIPPED compile test: deno compile could not get Deno's runtime binary (denort) and DENORT_BIN is " +
              `not set. Set DENORT_BIN to a denort ${Deno.version.deno} binary to run it. deno said:\n` +
              log.trim().split("\n").slice(0, 4).join("\n"),
          );
          return;
        }
        assert.fail(`deno compile failed:\n${log}`);
      }
      // An empty working folder: whatever the site serves must come from inside the executable.
      const work = `${dir}/run`;
      await Deno.mkdir(work);
      const child = new Deno.Command(exe, {
        args: ["--port", "0"],
        cwd: work,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let text = "";
      const pump = (async () => {
        const d = new TextDecoder();
        for await (const chunk of child.stdout) text += d.decode(chunk, { stream: true });
      })();
      const errs = new Response(child.stderr).text();
      try {
        const deadline = Date.now() + 20_000;
        let port = 0;
        while (!port && Date.now() < deadline) {
          port = Number(/Listening on http:\/\/[^\s]+:(\d+)\//.exec(text)?.[1] ?? 0);
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(port, `the executable did not start:\n${text}`);
        const home = await fetch(`http://127.0.0.1:${port}/`);
        assert.equal(home.status, 200);
        assert.match(await home.text(), /visit-count">1</);
        const css = await fetch(`http://127.0.0.1:${port}/style.css`);
        assert.equal(css.status, 200);
        await css.body?.cancel();
        const page = await fetch(`http://127.0.0.1:${port}/contact`);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /<form/);
      } finally {
        child.kill("SIGTERM");
        const status = await child.status;
        await pump;
        const stderr = await errs;
        assert.equal(status.code, 0, `${text}\n${stderr}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
