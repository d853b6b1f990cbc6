// The store's protocol, said once: the operations every store answers (StoreOps), the data they carry, and
// the row mappings both databases share. It must never do I/O, and its mappers must use nothing outside
// themselves: the SQLite Worker receives them as source text.
import type { SessionData, StoredSession } from "../mod.ts";

/** A contact message to store. */
export interface NewMessage {
  /** The sender's name, trimmed. */
  name: string;
  /** The sender's email address, as typed. */
  email: string;
  /** The text, line breaks as sent (CRLF from browsers). */
  message: string;
  /** The client address (the forwarded one behind a trusted proxy). */
  clientAddr: string;
  /** The sender's session id, when they have a session. */
  sessionId: string | null;
}

/** A stored contact message. */
export interface Message extends NewMessage {
  /** The row id, in insertion order. */
  id: number;
  /** When it was stored, in ms since the epoch. */
  createdAt: number;
}

/** An uploaded file to record (the bytes are already in the upload folder under `storedName`). */
export interface NewUpload {
  /** The file's name in the upload folder: a random UUID, never the client's name. */
  storedName: string;
  /** The client's filename, sanitised: metadata only. */
  originalName: string;
  /** Size in bytes. */
  size: number;
  /** The part's Content-Type, as the client declared it (never trusted for serving). */
  contentType: string;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  /** The visitor's description, trimmed; may be empty. */
  description: string;
  /** The client address. */
  clientAddr: string;
  /** The uploader's session id, when they have a session. */
  sessionId: string | null;
}

/** A recorded upload. */
export interface Upload extends NewUpload {
  /** The row id. */
  id: number;
  /** When it was recorded, in ms since the epoch. */
  createdAt: number;
}

/**
 * What the site keeps, as operations: each with its arguments and what it returns. This is the one table of
 * the protocol. The SQLite Worker implements it (checked with `satisfies`), `PostgresStore` through
 * `StoreBackend` (app/store.ts, which derives from it), and `Store` and the `--workers` relay forward every
 * name in {@link STORE_OP_NAMES}. A store answers each as a promise, settled only when the database answered:
 * a resolved write is committed.
 *
 * Adding an operation: its line here and its name in {@link STORE_OP_NAMES}, then the SQLite Worker's op and
 * the PostgreSQL method (the compiler points at both). Arguments and results cross threads by structured
 * clone: plain data only.
 *
 * @example
 * ```ts
 * import type { StoreOps } from "./store_ops.ts";
 * const answer: ReturnType<StoreOps["countVisit"]> = 1; // what a visit's count comes back as
 * console.log(answer);
 * ```
 */
export interface StoreOps {
  /** The schema version after migrations (the number of app/migrations.ts entries applied). */
  schemaVersion(): number;
  /** Store a contact message; its id, once committed. */
  addMessage(message: NewMessage): number;
  /** Contact messages, newest first, at most `limit` (default `DEFAULT_LIST_LIMIT`, app/store.ts). */
  listMessages(limit?: number): Message[];
  /** Record an upload; its id, once committed. */
  addUpload(upload: NewUpload): number;
  /** Uploads, newest first, at most `limit` (default `DEFAULT_LIST_LIMIT`). */
  listUploads(limit?: number): Upload[];
  /**
   * Count one visit of session `sessionId` in the database itself (an upsert that increments), so visits
   * to several instances at once are never lost: the row is created at 1 with `createdAt` and `expiresAt`
   * when missing (the session save that follows fills in the rest), plus `priorVisits` made before the row
   * existed (a first visit carried in a signed cookie, app/first_visit.ts). Returns the count, this visit
   * included.
   */
  countVisit(sessionId: string, createdAt: number, expiresAt: number, priorVisits?: number): number;
  /** The visits counted for `sessionId` so far (0 for none), without counting one. */
  visitCount(sessionId: string): number;
  /** The framework's `SessionStore.get`: the session, or undefined. */
  sessionGet(id: string): StoredSession | undefined;
  /** `SessionStore.set`: create or replace a session; never changes its visit count (countVisit owns it). */
  sessionSet(id: string, data: SessionData, expiresAt: number): void;
  /** `SessionStore.destroy`: forget a session. */
  sessionDestroy(id: string): void;
  /** `SessionStore.prune`: forget every session expired at or before `now`; how many went. */
  sessionPrune(now: number): number;
  /**
   * The posts recorded for `clientAddr` at or after `since` (ms): how many, and the oldest one's time, for
   * the post limit (app/rate_limit.ts).
   */
  postsSince(clientAddr: string, since: number): { count: number; oldest: number | null };
  /** Record an accepted post of `clientAddr` at `at`, and forget every client's posts before `forgetBefore`. */
  recordPost(clientAddr: string, at: number, forgetBefore: number): void;
  /**
   * The site's secret (32 random bytes, base64), made by whichever instance asks first and kept in the
   * database, so every instance signs and checks first-visit cookies alike.
   */
  siteSecret(): string;
}

/** The operations that make up a store's `sessions` (the framework's `SessionStore`) rather than methods. */
export type SessionOpName = "sessionGet" | "sessionSet" | "sessionDestroy" | "sessionPrune";

/**
 * The name of every operation in {@link StoreOps}, for the clients that forward calls by name. Spelt as a
 * record so that the compiler refuses a name that is missing, misspelt or extra.
 *
 * @example
 * ```ts
 * import { STORE_OP_NAMES } from "./store_ops.ts";
 * console.log(STORE_OP_NAMES.includes("addMessage")); // true
 * ```
 */
export const STORE_OP_NAMES: readonly (keyof StoreOps)[] = Object.values(
  {
    schemaVersion: "schemaVersion",
    addMessage: "addMessage",
    listMessages: "listMessages",
    addUpload: "addUpload",
    listUploads: "listUploads",
    countVisit: "countVisit",
    visitCount: "visitCount",
    sessionGet: "sessionGet",
    sessionSet: "sessionSet",
    sessionDestroy: "sessionDestroy",
    sessionPrune: "sessionPrune",
    postsSince: "postsSince",
    recordPost: "recordPost",
    siteSecret: "siteSecret",
  } satisfies { [Op in keyof StoreOps]: Op },
);

/** A database row as both drivers return it: column names to values. */
export type Row = Record<string, unknown>;

/**
 * A `messages` row as a {@link Message}: the one mapping for both databases (BIGINT columns may arrive from
 * PostgreSQL as strings, hence `Number`).
 *
 * @param r The row.
 * @returns The message.
 *
 * @example
 * ```ts
 * import { messageFromRow } from "./store_ops.ts";
 * const m = messageFromRow({ id: 1, created_at: 0, name: "Ada", email: "a@b.c", message: "Hi", client_addr: "::1", session_id: null });
 * console.log(m.clientAddr); // "::1"
 * ```
 */
export function messageFromRow(r: Row): Message {
  return {
    id: Number(r.id),
    createdAt: Number(r.created_at),
    name: String(r.name),
    email: String(r.email),
    message: String(r.message),
    clientAddr: String(r.client_addr),
    sessionId: r.session_id === null ? null : String(r.session_id),
  };
}

/**
 * An `uploads` row as an {@link Upload}, for both databases.
 *
 * @param r The row.
 * @returns The upload record.
 *
 * @example
 * ```ts
 * import { uploadFromRow } from "./store_ops.ts";
 * const u = uploadFromRow({ id: 1, created_at: 0, stored_name: "x", original_name: "a.txt", size: 3, content_type: "text/plain", sha256: "", description: "", client_addr: "::1", session_id: null });
 * console.log(u.size); // 3
 * ```
 */
export function uploadFromRow(r: Row): Upload {
  return {
    id: Number(r.id),
    createdAt: Number(r.created_at),
    storedName: String(r.stored_name),
    originalName: String(r.original_name),
    size: Number(r.size),
    contentType: String(r.content_type),
    sha256: String(r.sha256),
    description: String(r.description),
    clientAddr: String(r.client_addr),
    sessionId: r.session_id === null ? null : String(r.session_id),
  };
}

/**
 * A `sessions` row as the {@link StoredSession} the framework's session middleware reads, for both databases.
 *
 * @param r The row (created_at, last_seen_at, expires_at, data as JSON text).
 * @returns The stored session.
 *
 * @example
 * ```ts
 * import { sessionFromRow } from "./store_ops.ts";
 * const s = sessionFromRow({ created_at: 1, last_seen_at: 2, expires_at: 3, data: "{}" });
 * console.log(s.expiresAt); // 3
 * ```
 */
export function sessionFromRow(r: Row): StoredSession {
  return {
    data: {
      values: JSON.parse(String(r.data)),
      createdAt: Number(r.created_at),
      lastSeenAt: Number(r.last_seen_at),
    },
    expiresAt: Number(r.expires_at),
  };
}
