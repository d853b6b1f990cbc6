// Session unit tests beside the module: what sessions() does without a store. The cookie, rotation and
// expiry tests are tests/session_test.ts.
import assert from "node:assert/strict";

Deno.test({
  name: "sessions() without a store keeps sessions in memory, with no permission and no file",
  permissions: { run: true, read: true },
  async fn() {
    // In a process with no permission at all: a default store that opened a file would fail there.
    const script = `
      import { createContext } from ${JSON.stringify(new URL("./context.ts", import.meta.url).href)};
      import { sessions } from ${JSON.stringify(new URL("./session.ts", import.meta.url).href)};
      const mw = sessions();
      const remoteAddr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
      const info = { remoteAddr, completed: Promise.resolve() };
      async function visit(cookie) {
        const req = new Request("http://localhost/", { headers: cookie ? { cookie } : {} });
        const ctx = createContext(req, info);
        let seen;
        const res = await mw(req, () => {
          seen = ctx.state.session.get("user");
          ctx.state.session.set("user", "ada");
          return Promise.resolve(new Response("ok"));
        }, ctx);
        return { seen, cookie: res.headers.get("set-cookie") };
      }
      const first = await visit();
      const second = await visit(first.cookie.split(";")[0]);
      console.log(JSON.stringify([first.seen ?? null, second.seen]));
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--quiet", "--no-config", "-"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(script));
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    // The second visit found what the first stored: a working store, in this process's memory.
    assert.deepEqual(JSON.parse(new TextDecoder().decode(stdout)), [null, "ada"]);
  },
});
