// The conformance page's parts, free of I/O: an observation summarised as a short answer ("400 close"), a
// request shown short and escaped, the agreement counts and the markdown of docs/conformance.md. Everything
// here must be deterministic: the page is compared with the committed one, line for line.
import { type ServerName, SERVERS } from "./servers.ts";

/** Where a case comes from: the shared corpus or Pier's parser table. */
export type Source = "corpus" | "parser";

/** One case as the harness sends it. */
export interface SentCase {
  source: Source;
  /** The corpus id, or the parser case's name. */
  id: string;
  /** The bytes, one character per byte (latin-1). */
  raw: string;
  /** Offsets at which the client pauses while sending (corpus cases only). */
  split?: number[];
  /** The pause, in seconds. */
  splitDelay?: number;
  /** Which final responses answer HEAD, so they are read without a body. */
  headIndexes: number[];
}

/** What client.py saw from one server for one case (its JSON line). */
export interface Observation {
  server: ServerName;
  key: number;
  connect_error: string | null;
  responses?: { status: number; interim: boolean; complete: boolean }[];
  junk?: number;
  closed?: string | null;
  send_error?: string | null;
  elapsed?: number;
}

/** A case with each server's answer, and the reason for a difference when there is one. */
export interface CaseResult {
  sent: SentCase;
  answers: Record<ServerName, string>;
  differs: boolean;
  reason?: string;
}

/**
 * Summarise an observation as a short answer: the statuses in order (an interim one in parentheses, an
 * incomplete one marked "(cut off)"), then `close` or `open`. FIN and RST both count as `close`: which one a
 * client sees after an answer and a close depends on whether its last bytes were still unread, so it flips
 * from run to run.
 *
 * @param seen The client's observation.
 * @returns "400 close", "200 200 open", "(100) 200 open", "silent close", "none (timeout)", ...
 */
export function summarise(seen: Observation): string {
  if (seen.connect_error) return "no connection";
  const responses = seen.responses ?? [];
  const state = seen.closed ? "close" : "open";
  if (responses.length === 0) return seen.closed ? "silent close" : "none (timeout)";
  const parts = responses.map((r) =>
    r.interim ? `(${r.status})` : r.complete ? String(r.status) : `${r.status} (cut off)`
  );
  if (seen.junk) parts.push("+ junk");
  return `${parts.join(" ")} ${state}`;
}

const SHOWN_CHARACTERS = 56;
const ESCAPES: Record<string, string> = { "\r": "\\r", "\n": "\\n", "\t": "\\t", "\\": "\\\\" };

/**
 * A request as the page shows it: printable ASCII as is, CR LF TAB and backslash as `\r \n \t \\`, any
 * other byte as `\xNN`; cut after about 56 characters (never inside an escape), with the whole size then.
 *
 * @param raw The bytes, one character per byte.
 * @returns The escaped text, without code-span quoting.
 */
export function escapeSent(raw: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    const code = c.charCodeAt(0);
    const shown = ESCAPES[c] ??
      (code >= 0x20 && code < 0x7f ? c : `\\x${code.toString(16).padStart(2, "0")}`);
    if (out.length + shown.length > SHOWN_CHARACTERS) return `${out}… (${raw.length} bytes)`;
    out += shown;
  }
  return out;
}

/** A table cell: pipes escaped (GFM splits cells on them even inside code spans), no line breaks. */
const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
/** A code span that survives backticks in its text. */
const code = (text: string) => text.includes("`") ? `\`\` ${text} \`\`` : `\`${text}\``;

/** How the three answers to one case relate. */
export type Agreement = "all agree" | "only pier" | "only deno" | "only node" | "all differ";

/**
 * Which server is the odd one out, if any.
 *
 * @param answers Each server's answer.
 * @returns "all agree", "only pier" (Pier differs from the other two, which agree), ..., or "all differ".
 */
export function agreement(answers: Record<ServerName, string>): Agreement {
  const { pier, deno, node } = answers;
  if (pier === deno && deno === node) return "all agree";
  if (deno === node) return "only pier";
  if (pier === node) return "only deno";
  if (pier === deno) return "only node";
  return "all differ";
}

/** What the page says besides the results: the run's versions and date, and the parser cases skipped. */
export interface PageContext {
  /** The line naming the date and versions; the only line allowed to change between equal runs. */
  runLine: string;
  quietSeconds: number;
  skipped: string[];
}

/** The line of the page that names the date and versions (the test ignores it). */
export const RUN_LINE_PREFIX = "Last run:";

const SOURCE_TITLES: Record<Source, string> = {
  corpus: "The shared corpus (`../shared/http-corpus/requests.jsonl`)",
  parser: "Pier's parser table (`tests/fixtures/parser_cases.ts`)",
};

function countsTable(results: CaseResult[]): string[] {
  const odd = SERVERS.map((s) => `only ${s.label} differs`);
  const head = ["source", "cases", "all three agree", "differ", ...odd, "all three differ"];
  const rows = (["corpus", "parser"] as const).map((source) => {
    const mine = results.filter((r) => r.sent.source === source);
    const count = (a: Agreement) => mine.filter((r) => agreement(r.answers) === a).length;
    return [
      source,
      mine.length,
      count("all agree"),
      mine.filter((r) => r.differs).length,
      ...SERVERS.map((s) => count(`only ${s.name}`)),
      count("all differ"),
    ].map(String);
  });
  return [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`);
}

function differencesTable(results: CaseResult[]): string[] {
  const head = ["case", "sent", ...SERVERS.map((s) => s.label), "reason"];
  const rows = results.filter((r) => r.differs).map((r) => [
    cell(r.sent.id),
    cell(code(escapeSent(r.sent.raw))),
    ...SERVERS.map((s) => cell(r.answers[s.name])),
    cell(r.reason ?? "**no reason yet** (add one to tests/conformance/reasons.ts)"),
  ]);
  if (rows.length === 0) return ["All three servers agree on every case."];
  return [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`);
}

/** Join the pieces of one paragraph (markdown wraps it; `deno fmt` re-wraps it to the line width). */
const paragraph = (...pieces: string[]) => pieces.join(" ");

/**
 * The markdown of docs/conformance.md, before `deno fmt` aligns its tables.
 *
 * @param results Every case sent, in page order.
 * @param context The run line, the quiet timeout and the parser cases skipped.
 * @returns The page.
 */
export function renderPage(results: CaseResult[], context: PageContext): string {
  const lines = [
    "# HTTP/1.1 conformance: Pier, Deno.serve and Node.js side by side",
    "",
    paragraph(
      "Generated by `deno task conformance --write docs/conformance.md` (tests/conformance/harness.ts);",
      "do not edit it by hand. The reasons come from tests/conformance/reasons.ts, and",
      "tests/engine/conformance_test.ts fails when a difference has no reason or this page is out of date.",
    ),
    "",
    `${RUN_LINE_PREFIX} ${context.runLine}`,
    "",
    "## How it is measured",
    "",
    paragraph(
      "Every case goes to each of three servers on a fresh connection: Pier (`serve` from mod.ts),",
      "Deno.serve (hyper) and Node.js's own http server (llhttp, run by `node`, not Deno's node:http), each",
      "with its default options and the same small app: tests/fixtures/corpus_app.ts for the first two, its",
      "plain-JS twin tests/conformance/node_app.mjs for Node.js (static pages, `/profile/:name`,",
      "`POST /contact`, `POST /upload`). The client is the corpus runner's own `exchange()` and",
      "`parse_responses()` (tests/conformance/client.py): the bytes go out as given (a corpus case with",
      "`split` offsets pauses there), and the answer is read until the server closes or stays quiet for",
      `${context.quietSeconds} s.`,
    ),
    "",
    paragraph(
      "An answer is written as the statuses of the responses in order (an interim `1xx` in parentheses, an",
      "incomplete response marked `(cut off)`, bytes that are no response `+ junk`), then `close` (FIN or",
      "RST: which of the two a client sees depends on timing, so they are not told apart) or `open` (still",
      "open after the quiet time). `silent close` is a close with no response; `none (timeout)` is no",
      "response on a connection still open. Cases where the three answers are equal are only counted.",
    ),
    "",
    "## Counts",
    "",
    ...countsTable(results),
  ];
  for (const source of ["corpus", "parser"] as const) {
    const mine = results.filter((r) => r.sent.source === source);
    lines.push("", `## ${SOURCE_TITLES[source]}`, "");
    if (source === "parser") {
      lines.push(
        paragraph(
          "Each case's input is sent whole, as one request stream (one byte per character, as",
          "server/http1_test.ts feeds it). Its bodies go to `POST /f`, a path no app has: each app answers",
          "404 without reading the body, so a broken body shows only in what the server does after that",
          "answer. The cases that set special `limits` are skipped, since the servers run with their",
          `default limits: ${context.skipped.map((n) => `"${n}"`).join(", ")}.`,
        ),
        "",
      );
    }
    lines.push(
      `${mine.filter((r) => r.differs).length} of ${mine.length} cases differ:`,
      "",
      ...differencesTable(mine),
    );
  }
  return lines.join("\n") + "\n";
}
