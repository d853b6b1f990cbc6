// The site's access log, buffered: lines are gathered and written together every few hundred milliseconds
// and at shutdown, instead of one write per request. It owns the line's format and the batching; a SIGTERM
// (graceful shutdown flushes) loses no line, a SIGKILL at most the last batch.
import type { Context } from "../mod.ts";

/** How often buffered lines are written: short enough to tail, long enough to batch under load. */
export const ACCESS_LOG_FLUSH_MS = 250;
/** Lines gathered at most before a write, whatever the time: bounds the buffer under a flood. */
const MAX_BUFFERED_LINES = 4096;

/**
 * One access-log line: time, client, method, path (never the query: it can carry what a visitor typed),
 * status, bytes (Content-Length, `0` without a body, `-` for a stream), time to the response head.
 *
 * @param request The request.
 * @param ctx Its context (the client address behind a trusted proxy, the URL).
 * @param response The answer.
 * @param ms Milliseconds from the request to its answer.
 * @returns The line, without a line break.
 *
 * @example
 * ```ts ignore
 * log.line(accessLine(request, ctx, response, performance.now() - start));
 * ```
 */
export function accessLine(request: Request, ctx: Context, response: Response, ms: number): string {
  const bytes = response.headers.get("content-length") ?? (response.body === null ? "0" : "-");
  return `${new Date().toISOString()} ${ctx.clientAddr} ${request.method} ${ctx.url.pathname} ` +
    `${response.status} ${bytes} ${ms.toFixed(1)}ms`;
}

/**
 * Access-log lines, written in batches to `write` (standard output by default, as `console.log` would).
 *
 * @example
 * ```ts
 * import { BufferedLog } from "./access_log.ts";
 * const log = new BufferedLog((text) => console.log(text.trimEnd()));
 * log.line("one");
 * log.line("two");
 * log.flush(); // "one\ntwo"
 * log.close();
 * ```
 */
export class BufferedLog {
  readonly #write: (text: string) => void;
  #lines: string[] = [];
  #timer: number | null = null;

  /**
   * @param write Where a batch goes: its lines, each ended by a line break. Default: standard output.
   * @param intervalMs How often a batch is written. Default {@link ACCESS_LOG_FLUSH_MS}.
   */
  constructor(write: (text: string) => void = writeStdout, intervalMs: number = ACCESS_LOG_FLUSH_MS) {
    this.#write = write;
    this.#timer = setInterval(() => this.flush(), intervalMs) as unknown as number;
    // The log never keeps the process alive: shutdown flushes what is left.
    Deno.unrefTimer(this.#timer);
  }

  /** Add a line (without its line break); it is written with the next batch. */
  readonly line = (text: string): void => {
    this.#lines.push(text);
    if (this.#lines.length >= MAX_BUFFERED_LINES) this.flush();
  };

  /** Write what is gathered now. */
  flush(): void {
    if (this.#lines.length === 0) return;
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    try {
      this.#write(text);
    } catch (err) {
      // A closed or broken standard output must not take the server down with it.
      console.error(`[site] access log lost ${text.split("\n").length - 1} lines: ${(err as Error).message}`);
    }
  }

  /** Flush and stop the timer. */
  close(): void {
    this.flush();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

const encoder = new TextEncoder();
function writeStdout(text: string): void {
  const bytes = encoder.encode(text);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
}
