// The check that runs before `deno task test` (tests/_prerequisites.ts): it names every missing package in one
// line with the command that installs them, and stays quiet, exiting 0, when everything is installed.
import assert from "node:assert/strict";
import { missingLine, missingPackages, PREREQUISITES } from "./_prerequisites.ts";

Deno.test("missingPackages() names each missing package once, in .ci/run's order, PostgreSQL last", () => {
  assert.deepEqual(missingPackages(() => true, () => true), []);
  assert.deepEqual(
    missingPackages((program) => program !== "nginx" && program !== "/usr/bin/chromium", () => false),
    ["nginx", "chromium", "postgresql"],
  );
  assert.deepEqual(missingPackages(() => false, () => true), PREREQUISITES.map((p) => p.package));
});

Deno.test("missingLine() is one line naming the packages, the apt-get command and bash .ci/run", () => {
  const line = missingLine(["nginx", "chromium"]);
  assert.ok(!line.includes("\n"), line);
  assert.match(line, /not installed: nginx, chromium\./);
  assert.match(line, /apt-get install nginx chromium/);
  assert.match(line, /bash \.ci\/run/);
});

Deno.test("every package the tests need is one .ci/run installs", async () => {
  const ci = await Deno.readTextFile(new URL("../.ci/run", import.meta.url));
  for (const { package: name } of [...PREREQUISITES, { package: "postgresql" }]) {
    assert.match(ci, new RegExp(`need\\+=\\(${name}\\)`), name);
  }
});

Deno.test("the check passes here, where the tests run: it exits 0 and prints nothing", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env=PATH,PIER_TEST_POSTGRES_URL", "_prerequisites.ts"],
    cwd: new URL(".", import.meta.url),
  }).output();
  const text = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.equal(text, "");
});
