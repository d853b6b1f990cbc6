// `deno task messages` as its owner reads it: the readable listing, and escaping of control characters a
// sender could use to drive the owner's terminal.
import assert from "node:assert/strict";
import { formatMessage, printMessages } from "../../app/messages.ts";
import { Store } from "../../app/store.ts";

const BASE = {
  id: 7,
  createdAt: Date.UTC(2026, 10, 24, 3, 4, 5),
  name: "Ada",
  email: "ada@example.com",
  message: "Hello",
  clientAddr: "203.0.113.9",
  sessionId: null,
};

Deno.test("formatMessage() writes a header line, then the text indented, one line per line", () => {
  const cases: [Partial<typeof BASE>, string][] = [
    [{}, "#7  2026-11-24 03:04:05 UTC  Ada <ada@example.com>  from 203.0.113.9\n    Hello\n"],
    [
      { message: "one\r\ntwo\nthree" },
      "#7  2026-11-24 03:04:05 UTC  Ada <ada@example.com>  from 203.0.113.9\n    one\n    two\n    three\n",
    ],
    // An ANSI escape (clear screen), a bell and a C1 CSI from the sender are shown, not obeyed; a tab stays.
    [
      { name: "\x1b[2JEve\x07" },
      "#7  2026-11-24 03:04:05 UTC  \\x1b[2JEve\\x7 <ada@example.com>  from 203.0.113.9\n    Hello\n",
    ],
    [
      { message: "tab\there\u009b31m" },
      "#7  2026-11-24 03:04:05 UTC  Ada <ada@example.com>  from 203.0.113.9\n    tab\there\\x9b31m\n",
    ],
  ];
  for (const [change, expected] of cases) assert.equal(formatMessage({ ...BASE, ...change }), expected);
});

Deno.test("printMessages() prints nothing and creates no database where there is none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier-messages-" });
  try {
    const lines: string[] = [];
    assert.equal(await printMessages({ json: false, dataDir: dir, limit: 10 }, (l) => lines.push(l)), 0);
    assert.match(lines[0], /No messages yet \(no database at .*site\.db\)/);
    assert.equal(await printMessages({ json: true, dataDir: dir, limit: 10 }, (l) => lines.push(l)), 0);
    assert.equal(lines.length, 1, "--json prints nothing at all for no messages");
    await assert.rejects(Deno.stat(`${dir}/site.db`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("printMessages() lists newest first, up to --limit, as JSON lines with --json", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pier-messages-" });
  try {
    const store = new Store(`${dir}/site.db`);
    for (const name of ["first", "second", "third"]) {
      await store.addMessage({
        name,
        email: "a@b.cd",
        message: "m",
        clientAddr: "127.0.0.1",
        sessionId: null,
      });
    }
    await store.close();
    const lines: string[] = [];
    assert.equal(await printMessages({ json: true, dataDir: dir, limit: 2 }, (l) => lines.push(l)), 2);
    assert.deepEqual(lines.map((l) => JSON.parse(l).name), ["third", "second"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
