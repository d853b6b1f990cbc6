// `deno task messages`: print the site's contact messages, newest first, for its owner; `--json` for one JSON
// object per line, from SQLite in the data folder or from PostgreSQL (`--database URL` or `DATABASE_URL`). It
// reads: it must never create a SQLite database where there was none (an older schema is migrated on open, as
// the site would do).
import {
  helpRequested,
  MESSAGES_FLAGS,
  type MessagesConfig,
  messagesHelp,
  parseMessagesArgs,
  usageLine,
} from "./cli.ts";
import { databaseUrl, openStore } from "./database.ts";
import type { Message } from "./store.ts";

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
 * Print the messages of the site's database: PostgreSQL when `config.database` (or `DATABASE_URL`) names
 * one, else the SQLite file in `config.dataDir`.
 *
 * @param config Output format, database or data folder, and limit.
 * @param write Where lines go. Default `console.log`.
 * @returns How many messages were printed.
 *
 * @example
 * ```ts ignore
 * import { printMessages } from "./messages.ts";
 * await printMessages({ json: true, dataDir: "data", database: null, limit: 10 });
 * ```
 */
export async function printMessages(
  config: MessagesConfig,
  write: (line: string) => void = console.log,
): Promise<number> {
  const database = databaseUrl(config.database ?? null);
  if (database === null) {
    const path = `${config.dataDir}/site.db`;
    try {
      await Deno.stat(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      if (!config.json) write(`No messages yet (no database at ${path}).`);
      return 0;
    }
  }
  const { store } = openStore({ database, dataDir: config.dataDir, poolSize: 1 });
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
  if (helpRequested(Deno.args)) {
    console.log(messagesHelp());
    Deno.exit(0);
  }
  let config: MessagesConfig;
  try {
    config = parseMessagesArgs(Deno.args);
  } catch (err) {
    console.error(`messages: ${(err as Error).message}`);
    console.error(
      `${usageLine("deno task messages", MESSAGES_FLAGS)}\n(deno task messages --help says what each does)`,
    );
    Deno.exit(2);
  }
  try {
    await printMessages(config);
  } catch (err) {
    console.error(`messages: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
