// The buffered access log: lines are written together, in order, on the timer or when asked, and a close
// writes what is left, so a graceful stop loses no line.
import assert from "node:assert/strict";
import { BufferedLog } from "../../app/access_log.ts";

Deno.test("BufferedLog writes lines in batches, in order, and close() writes what is left", async () => {
  const writes: string[] = [];
  const log = new BufferedLog((text) => void writes.push(text), 50);
  try {
    log.line("a");
    log.line("b");
    assert.deepEqual(writes, [], "nothing is written per line");
    await new Promise((r) => setTimeout(r, 120));
    assert.deepEqual(writes, ["a\nb\n"], "one write for the batch, on the timer");
    log.line("c");
    log.flush();
    log.flush();
    assert.deepEqual(writes, ["a\nb\n", "c\n"], "an empty flush writes nothing");
    log.line("d");
  } finally {
    log.close();
  }
  assert.deepEqual(writes, ["a\nb\n", "c\n", "d\n"]);
});

Deno.test("BufferedLog survives a broken output and goes on", () => {
  let fail = true;
  const writes: string[] = [];
  const errors: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  const log = new BufferedLog((text) => {
    if (fail) throw new Error("closed");
    writes.push(text);
  }, 60_000);
  try {
    log.line("lost");
    log.flush();
    fail = false;
    log.line("kept");
  } finally {
    log.close();
    console.error = original;
  }
  assert.deepEqual(writes, ["kept\n"]);
  assert.match(String(errors[0]), /lost 1 lines: closed/);
});
