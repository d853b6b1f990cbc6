// `deno task messages`: print the site's contact messages, newest first, for its owner; `--json` for one JSON
// object per line. It reads: it must never create a database where there was none (an older schema is
// migrated on open, as the site would do).
import { type MessagesConfig, parseMessagesArgs } from "./cli.ts";
import { type Message, Store } from "./store.ts";

/**
 * One message as the readable listing shows it: a header line, then the text indented.
 *
 * @param message The message.
 * @returns The lines, ending with a blank one.
 *
 * @example
 * ```ts
 * import { formatMessage } from "./messages.ts";
 * console.log(formatMessage({ id: 1, createdAt: 0, name: "Ada", email: "ada@example.com", message: "Hi",
 *   clientAddr: "127.0.0.1", sessionId: null }));
 * ```
 */
export function formatMessage(message: Message): string {
  const when = new Date(message.createdAt).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  // Control characters are the sender's, not ours: shown escaped so none can drive the owner's terminal.
  const clean = (s: string) =>
    // deno-lint-ignore no-control-regex
    s.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
  const body = message.message.split(/\r?\n/).map((line) => `    ${clean(line)}`).join("\n");
  const from = `${clean(message.name)} <${clean(message.email)}>`;
  return `#${message.id}  ${when}  ${from}  from ${message.clientAddr}\n${body}\n`;
}

/**
 * Print the messages of the database in `config.dataDir`.
 *
 * @param config Output format, data folder and limit.
 * @param write Where lines go. Default `console.log`.
 * @returns How many messages were printed.
 *
 * @example
 * ```ts ignore
 * import { printMessages } from "./messages.ts";
 * await printMessages({ json: true, dataDir: "data", limit: 10 });
 * ```
 */
export async function printMessages(
  config: MessagesConfig,
  write: (line: string) => void = console.log,
): Promise<number> {
  const path = `${config.dataDir}/site.db`;
  try {
    await Deno.stat(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    if (!config.json) write(`No messages yet (no database at ${path}).`);
    return 0;
  }
  const store = new Store(path);
  try {
    const messages = await store.listMessages(config.limit);
    for (const m of messages) write(config.json ? JSON.stringify(m) : formatMessage(m));
    if (!config.json && messages.length === 0) write("No messages yet.");
    return messages.length;
  } finally {
    await store.close();
  }
}

if (import.meta.main) {
  let config: MessagesConfig;
  try {
    config = parseMessagesArgs(Deno.args);
  } catch (err) {
    console.error(`messages: ${(err as Error).message}`);
    console.error("usage: deno task messages [--json] [--data DIR] [--limit N]");
    Deno.exit(2);
  }
  try {
    await printMessages(config);
  } catch (err) {
    console.error(`messages: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
