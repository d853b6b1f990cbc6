// A seeded mutation fuzzer for the request parser: thousands of mutated requests against the sans-IO parser
// (whole, split, and read the way the connection reads), then a few hundred against a live server. Set
// PIER_FUZZ_SEED to replay a run; a failing case prints its seed and bytes, and is kept in
// fixtures/fuzz_regressions.json, which is replayed first.
import assert from "node:assert/strict";
import type { ParserLimits } from "../../server/http1.ts";
import { serve } from "../../server/serve.ts";
import { concatBytes } from "../../server/_bytes.ts";
import {
  caseSeed,
  checkParse,
  checkResponses,
  corpusSeeds,
  type FeedMode,
  fromLatin1,
  latin1,
  mutate,
  OWN_SEEDS,
  type ParseOutcome,
  type RegressionCase,
  Rng,
} from "../fixtures/fuzz_lib.ts";

const DEFAULT_SEED = 0x5eed_0007;
const SEED = (() => {
  const s = Deno.env.get("PIER_FUZZ_SEED");
  if (s === undefined || s === "") return DEFAULT_SEED;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`PIER_FUZZ_SEED=${s} is not a u32`);
  return n;
})();
/** Parser cases per run; each is parsed three ways. */
const PARSER_CASES = Number(Deno.env.get("PIER_FUZZ_CASES") ?? 20000);
/** Live-server cases per run: each costs a connection. */
const LIVE_CASES = Number(Deno.env.get("PIER_FUZZ_LIVE_CASES") ?? 300);

const CORPUS = new URL("../../../shared/http-corpus/requests.jsonl", import.meta.url).pathname;
const SEEDS: Uint8Array[] = [...OWN_SEEDS, ...corpusSeeds(CORPUS)].map(latin1);
const REGRESSIONS: RegressionCase[] = JSON.parse(
  Deno.readTextFileSync(new URL("../fixtures/fuzz_regressions.json", import.meta.url)),
);

console.log(
  `fuzz: PIER_FUZZ_SEED=${SEED} (${PARSER_CASES} parser cases, ${LIVE_CASES} live cases, ${SEEDS.length} seeds)`,
);

/** The mutated bytes of case `i`, and how to split them: a pure function of (SEED, i). */
function makeCase(i: number): { seed: number; bytes: Uint8Array; applied: string[]; modes: FeedMode[] } {
  const seed = caseSeed(SEED, i);
  const rng = new Rng(seed);
  const { bytes, applied } = mutate(rng.pick(SEEDS), SEEDS, rng);
  const cut = rng.int(bytes.length + 1);
  const cuts = [rng.int(bytes.length + 1), rng.int(bytes.length + 1), cut].sort((a, b) => a - b);
  const sizes = [1 + rng.int(7), 1 + rng.int(300), 1 + rng.int(5000)];
  return {
    seed,
    bytes,
    applied,
    modes: [{ kind: "whole" }, { kind: "split", at: [cut] }, { kind: "split", at: cuts }, {
      kind: "reads",
      sizes,
    }],
  };
}

/** Parse `bytes` every way in `modes`: none may throw, each must be coherent, and all must agree. */
function checkAllWays(
  bytes: Uint8Array,
  modes: FeedMode[],
  label: () => string,
  limits: Partial<ParserLimits> = {},
): ParseOutcome {
  let first: ParseOutcome | undefined;
  for (const mode of modes) {
    let out: ParseOutcome;
    try {
      out = checkParse(bytes, mode, limits);
    } catch (e) {
      throw new Error(`${label()} mode=${JSON.stringify(mode)}: ${(e as Error).stack ?? e}`);
    }
    if (first === undefined) first = out;
    else {
      assert.deepEqual(
        out,
        first,
        `${label()}: the outcome depends on how the bytes arrive (mode=${JSON.stringify(mode)})`,
      );
    }
  }
  return first!;
}

const describe = (seed: number | undefined, bytes: Uint8Array, extra: Record<string, unknown> = {}) =>
  `FUZZ FAILURE (replay with PIER_FUZZ_SEED=${SEED}; keep it in tests/fixtures/fuzz_regressions.json): ` +
  JSON.stringify({ seed, ...extra, bytes: fromLatin1(bytes) });

Deno.test("fuzz: kept regression cases parse coherently, whole and split", () => {
  assert.ok(REGRESSIONS.length > 0, "the regression file is read");
  for (const r of REGRESSIONS) {
    const bytes = latin1(r.bytes);
    const modes: FeedMode[] = [{ kind: "whole" }, { kind: "reads", sizes: [1] }];
    if (r.split) modes.push({ kind: "split", at: r.split });
    for (let at = 0; at <= bytes.length && bytes.length <= 400; at++) modes.push({ kind: "split", at: [at] });
    checkAllWays(bytes, modes, () => describe(r.seed, bytes, { note: r.note }));
  }
});

Deno.test("fuzz: the unmutated seeds parse without error, whole and split", () => {
  for (const s of SEEDS) {
    const out = checkAllWays(s, [{ kind: "whole" }, { kind: "reads", sizes: [1] }, {
      kind: "split",
      at: [s.length >> 1],
    }], () => describe(undefined, s));
    assert.equal(out.error, undefined, `seed ${JSON.stringify(fromLatin1(s))} is valid`);
    // A seed with Expect: 100-continue may stop before its body, as a client waiting for the 100 does.
    assert.ok(out.messages.length >= 1 || out.partial, `seed ${JSON.stringify(fromLatin1(s))} has a head`);
  }
});

Deno.test(`fuzz: ${PARSER_CASES} mutated requests never throw out of the parser and end coherently`, () => {
  const t0 = performance.now();
  const statuses = new Map<string, number>();
  for (let i = 0; i < PARSER_CASES; i++) {
    const c = makeCase(i);
    const out = checkAllWays(
      c.bytes,
      c.modes,
      () => describe(c.seed, c.bytes, { case: i, applied: c.applied }),
    );
    const key = out.error !== undefined ? String(out.error) : out.partial ? "partial" : "ok";
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
  }
  console.log(
    `fuzz: ${PARSER_CASES} parser cases x4 feeds in ${Math.round(performance.now() - t0)} ms; outcomes`,
    Object.fromEntries([...statuses].sort()),
  );
  // A fuzzer whose mutations never reach the error paths (or never leave them) tests little.
  assert.ok((statuses.get("ok") ?? 0) > PARSER_CASES / 20, "some mutants stay valid");
  assert.ok((statuses.get("400") ?? 0) > PARSER_CASES / 20, "some mutants are rejected");
});

/** Limits small enough that the mutants cross every one of them, where off-by-ones hide. */
const TIGHT_LIMITS: ParserLimits = {
  maxRequestLineBytes: 40,
  maxHeadBytes: 200,
  maxHeaderCount: 4,
  maxBodyBytes: 30,
  maxChunkLineBytes: 12,
  maxTrailerBytes: 24,
};
const TIGHT_CASES = Math.ceil(PARSER_CASES / 4);

Deno.test(`fuzz: ${TIGHT_CASES} mutated requests under tight limits get the same answer however they arrive`, () => {
  const statuses = new Map<string, number>();
  for (let i = 0; i < TIGHT_CASES; i++) {
    const c = makeCase(2 * PARSER_CASES + i);
    const out = checkAllWays(
      c.bytes,
      c.modes,
      () =>
        describe(c.seed, c.bytes, { case: 2 * PARSER_CASES + i, applied: c.applied, limits: TIGHT_LIMITS }),
      TIGHT_LIMITS,
    );
    const key = out.error !== undefined ? String(out.error) : out.partial ? "partial" : "ok";
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
  }
  console.log(`fuzz: ${TIGHT_CASES} tight-limit cases; outcomes`, Object.fromEntries([...statuses].sort()));
  for (const s of ["413", "414", "431"]) assert.ok((statuses.get(s) ?? 0) > 0, `some mutants hit ${s}`);
});

// --- against a live server --------------------------------------------------------------------------

const STATUS_LINE = /^HTTP\/1\.1 [1-5][0-9][0-9] [^\r\n]*\r\n/;
const dec = new TextDecoder("latin1");

/** Send `bytes`, half-close, and read everything until the server closes (bounded by `ms`). */
async function exchange(
  port: number,
  bytes: Uint8Array,
  ms: number,
): Promise<{ text: string; timedOut: boolean; reset: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  let timedOut = false, reset = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch { /* closed */ }
  }, ms);
  const reading = (async () => {
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        reset = true; // reset, or closed by the timer: what arrived is what counts
        return;
      }
      if (n === null) return;
      chunks.push(buf.slice(0, n));
    }
  })();
  try {
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    await conn.closeWrite();
  } catch { /* the server may close first, after an early error */ }
  await reading;
  clearTimeout(timer);
  try {
    conn.close();
  } catch { /* closed */ }
  return { text: dec.decode(concatBytes(chunks)), timedOut, reset };
}

async function normalRequestWorks(port: number): Promise<void> {
  const { text } = await exchange(
    port,
    latin1("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    5000,
  );
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/, "a normal request is served after the fuzzing");
  assert.equal(checkResponses(text, ["GET"], false), null, `one whole answer: ${JSON.stringify(text)}`);
  assert.match(text, /GET \/health/, "the handler saw the request");
}

const methodsOf = (bytes: Uint8Array) =>
  checkParse(bytes, { kind: "whole" }).messages.map((m) => m.split(" ")[0]);

/** A live server whose handler reads any body and names the URL, as ordinary handlers do. */
function liveServer() {
  return serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    // Bounds in case a mutant leaves the server waiting: the client half-closes, so none should be needed.
    headerTimeoutMs: 3000,
    bodyTimeoutMs: 3000,
    idleTimeoutMs: 3000,
  }, async (req) => {
    // Three kinds of handler, picked by the target so a case always meets the same one: one reads the
    // body and answers with a fixed body, one ignores the body (the server drains or closes), one streams
    // its answer (chunked, or close-delimited for HTTP/1.0).
    const path = new URL(req.url).pathname;
    const kind = req.url.length % 3;
    if (kind === 1) return new Response(`ignored ${req.method} ${path}`);
    const n = req.body ? (await req.arrayBuffer()).byteLength : 0;
    const text = `${req.method} ${path} ${n}`;
    if (kind === 0) return new Response(text, { headers: { "x-body-bytes": String(n) } });
    return new Response(new Blob([text, "\n", "streamed"]).stream());
  });
}

interface LiveCase {
  i: number;
  seed?: number;
  bytes: Uint8Array;
  /** The status the parser gives the first message, when it refuses it. */
  expectError?: number;
  /** Methods of the complete requests, as the parser reads them: what the answers must be framed for. */
  methods: string[];
}

/**
 * Send every case (8 at a time) and check each answer. Returns the failures, each with its replay line,
 * and counts of first statuses. Anything logged is a failure, blamed on the cases in flight when it was.
 */
async function runLive(cases: LiveCase[]): Promise<{ failures: string[]; firstStatus: Map<string, number> }> {
  const inFlight = new Set<LiveCase>();
  const failures: string[] = [];
  const firstStatus = new Map<string, number>();
  const origError = console.error, origWarn = console.warn;
  console.error = console.warn = (...a: unknown[]) => {
    failures.push(
      `logged: ${a.map(String).join(" ")}\n  cases in flight:\n` +
        [...inFlight].map((c) => "  " + describe(c.seed, c.bytes, { case: c.i })).join("\n"),
    );
  };
  const server = liveServer();
  try {
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < cases.length) {
        const c = cases[next++];
        inFlight.add(c);
        const { text, timedOut, reset } = await exchange(server.addr.port, c.bytes, 10_000);
        inFlight.delete(c);
        const fail = (why: string) =>
          failures.push(
            `${why}; got ${JSON.stringify(text.slice(0, 200))}\n${describe(c.seed, c.bytes, { case: c.i })}`,
          );
        if (timedOut) fail("the server neither answered nor closed within 10 s of the client's half-close");
        else if (text !== "" && !STATUS_LINE.test(text)) fail("the answer does not start with a status line");
        else if (
          c.expectError !== undefined && text !== "" && !text.startsWith(`HTTP/1.1 ${c.expectError} `)
        ) {
          fail(`the parser says ${c.expectError}, the server said otherwise`);
        } else if (/^HTTP\/1\.1 5(?!01|05)/.test(text)) fail("a server error for client input");
        else {
          const wrong = checkResponses(text, c.methods, reset);
          if (wrong !== null) fail(`the answers are not well-framed responses: ${wrong}`);
        }
        const key = text === "" ? "closed" : text.slice(9, 12);
        firstStatus.set(key, (firstStatus.get(key) ?? 0) + 1);
      }
    }));
    await normalRequestWorks(server.addr.port);
  } finally {
    console.error = origError;
    console.warn = origWarn;
    await server.shutdown();
  }
  return { failures, firstStatus };
}

Deno.test(`fuzz: ${LIVE_CASES} mutated requests to a live server get a status line or a close, and it stays up`, async () => {
  const t0 = performance.now();
  const cases: LiveCase[] = REGRESSIONS.filter((r) => r.bug === undefined)
    .map((r) => ({ i: -1, seed: r.seed, bytes: latin1(r.bytes), methods: methodsOf(latin1(r.bytes)) }));
  for (let i = 0; i < LIVE_CASES; i++) {
    // Offset from the parser cases, so the live run sees other mutants.
    const c = makeCase(PARSER_CASES + i);
    const out = checkParse(c.bytes, { kind: "whole" });
    // When the very first message is refused by the parser, the server must answer with its status.
    const expectError = out.messages.length === 0 && !out.partial ? out.error : undefined;
    cases.push({
      i: PARSER_CASES + i,
      seed: c.seed,
      bytes: c.bytes,
      expectError,
      methods: methodsOf(c.bytes),
    });
  }
  const { failures, firstStatus } = await runLive(cases);
  console.log(
    `fuzz: ${cases.length} live cases in ${Math.round(performance.now() - t0)} ms; first statuses`,
    Object.fromEntries([...firstStatus].sort()),
  );
  assert.deepEqual(failures, []);
  assert.ok(
    (firstStatus.get("200") ?? 0) > 0 && (firstStatus.get("400") ?? 0) > 0,
    "mutants reach both ends",
  );
});

Deno.test({
  name: "fuzz: kept cases of open engine bugs get a 4xx on a live server, with nothing logged",
  async fn() {
    const cases = REGRESSIONS.filter((r) => r.bug !== undefined).map((r) => ({
      i: -1,
      bytes: latin1(r.bytes),
      methods: methodsOf(latin1(r.bytes)),
    }));
    assert.ok(cases.length > 0);
    const { failures, firstStatus } = await runLive(cases);
    assert.deepEqual(failures, []);
    assert.deepEqual([...firstStatus.keys()], ["400"]);
  },
});
