// The upload flow: the form, a multipart upload streamed to disk under a random name, its record in the
// database, and the confirmation page. It owns the upload's limits and the file's life; it must never keep a
// partial file under a final name, nor a file the database does not know about.
import { basename } from "node:path";
import { type Context, HttpError, readMultipart, type RouteHandler, type UploadedFile } from "../mod.ts";
import { type Pages, recordPost, RETRY_AFTER, sessionIdOf } from "./pages.ts";
import type { PostLimiter } from "./rate_limit.ts";
import { type StoreBackend, StoreError } from "./store.ts";

/** The longest upload description, in characters. */
export const DESCRIPTION_MAX_CHARS = 500;

/**
 * Multipart bytes allowed on top of the file itself: part headers, the boundary lines and the description
 * field. 64 KiB covers them many times over; the engine's body limit is set to upload limit + this.
 */
export const UPLOAD_SLACK_BYTES = 64 * 1024;

/** The upload form has one file input; a body with more file parts is not from it. */
const UPLOAD_MAX_FILES = 1;
/** The upload form has one text field; a few spare for browsers that add their own (`_charset_`). */
const UPLOAD_MAX_FIELDS = 8;
/** A description at its limit is at most 2 KB of UTF-8; 8 KiB leaves room and still bounds memory. */
const UPLOAD_MAX_FIELD_BYTES = 8 * 1024;

/**
 * Uploads are written into this folder inside the upload folder, then renamed into the upload folder once
 * complete: on a shared volume, another instance, a backup or a virus scanner never sees a partial file
 * under a final name, and a rename within one folder tree is atomic on one filesystem.
 */
export const INCOMING_DIR = ".incoming";

/**
 * A byte count for people: `25 MB`, `1.5 KB`, `312 bytes` (binary units, as `--max-upload` reads them).
 *
 * @param bytes The size.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./upload.ts";
 * console.log(formatBytes(25 * 1024 * 1024)); // "25 MB"
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number(value.toFixed(value < 10 ? 1 : 0))} ${units[unit]}`;
}

/** What the upload flow needs. */
export interface UploadOptions {
  /** Where upload records are stored. */
  store: Pick<StoreBackend, "addUpload">;
  /** The shared page helpers. */
  pages: Pages;
  /** The post limit per client address (shared with contact messages), or null for none. */
  limiter: PostLimiter | null;
  /** Where uploaded files go; they are written into its {@link INCOMING_DIR} first. */
  uploadDir: string;
  /** The largest uploaded file, in bytes. */
  maxUploadBytes: number;
  /** Idle time allowed between body chunks, in ms. Default: the framework's. */
  bodyTimeoutMs?: number;
}

/** The upload flow's two handlers, for site.ts's route table. */
export interface UploadRoutes {
  /** `GET /upload`: the empty form. */
  form: RouteHandler;
  /** `POST /upload`: stream, check, rename, record, confirm (or the form again, 413, 422 or 503). */
  submit: RouteHandler;
}

/**
 * The upload flow's handlers. `submit` needs the session middleware before it (an upload records the
 * visitor's session, when there is one).
 *
 * @param options The store, pages, folder, limit and body timeout.
 * @returns The handlers.
 *
 * @example
 * ```ts ignore
 * const upload = uploadFlow({ store, pages, uploadDir: "data/uploads", maxUploadBytes: 25 << 20 });
 * router.get("/upload", upload.form).post("/upload", upload.submit);
 * ```
 */
export function uploadFlow(options: UploadOptions): UploadRoutes {
  const { store, pages, limiter, uploadDir, maxUploadBytes } = options;
  const incomingDir = `${uploadDir}/${INCOMING_DIR}`;
  const maxUploadText = formatBytes(maxUploadBytes);
  const uploadForm = (extra: Record<string, unknown> = {}, init: ResponseInit = {}) =>
    pages.render("upload", {
      title: "Upload",
      navUpload: true,
      maxUpload: maxUploadText,
      descriptionMax: DESCRIPTION_MAX_CHARS,
      description: "",
      ...extra,
    }, init);

  return {
    form: () => uploadForm(),
    async submit(request: Request, ctx: Context) {
      // Over the post limit: 429 before a byte of the file is read, and nothing stored.
      let wait: number | null = null;
      try {
        wait = limiter === null ? null : await limiter.check(ctx.clientAddr);
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        pages.unavailable(err, request, ctx);
        return await uploadForm({
          error: "The site's database is not answering right now. Please try again in a minute.",
        }, { status: 503, headers: RETRY_AFTER });
      }
      if (wait !== null) return await pages.tooManyPosts(wait);
      let files: UploadedFile[];
      let fields: URLSearchParams;
      try {
        // Made on each upload (one cheap call): a shared volume's folder may have been cleaned meanwhile.
        await Deno.mkdir(incomingDir, { recursive: true });
        ({ files, fields } = await readMultipart(request, {
          uploadDir: incomingDir,
          maxFileBytes: maxUploadBytes,
          maxTotalBytes: maxUploadBytes + UPLOAD_SLACK_BYTES,
          maxFiles: UPLOAD_MAX_FILES,
          maxFields: UPLOAD_MAX_FIELDS,
          maxFieldBytes: UPLOAD_MAX_FIELD_BYTES,
          bodyTimeoutMs: options.bodyTimeoutMs,
        }));
      } catch (err) {
        if (err instanceof HttpError && err.status === 413) {
          return await uploadForm({ error: `That file is larger than the ${maxUploadText} limit.` }, {
            status: 413,
          });
        }
        throw err;
      }
      const file = files.find((f) => f.field === "file");
      const discard = (keep?: UploadedFile) =>
        Promise.all(files.filter((f) => f !== keep).map((f) => Deno.remove(f.path).catch(() => {})));
      await discard(file);
      const description = (fields.get("description") ?? "").trim();
      let error: string | null = null;
      if (!file) error = "Please choose a file to upload.";
      else if (description.length > DESCRIPTION_MAX_CHARS) {
        error = `Please keep the description under ${DESCRIPTION_MAX_CHARS} characters.`;
      }
      if (error !== null || !file) {
        if (file) await Deno.remove(file.path).catch(() => {});
        return await uploadForm({ error, description }, { status: 422 });
      }
      // Complete: now it gets its final name (the same random UUID, so instances never collide).
      const storedPath = `${uploadDir}/${basename(file.path)}`;
      await Deno.rename(file.path, storedPath);
      const record = {
        storedName: basename(file.path),
        originalName: file.filename,
        size: file.size,
        contentType: file.contentType,
        sha256: file.sha256 ?? "",
        description,
        clientAddr: ctx.clientAddr,
        sessionId: sessionIdOf(ctx),
      };
      let id: number;
      try {
        if (ctx.state.storeError) throw ctx.state.storeError;
        id = await store.addUpload(record);
      } catch (err) {
        // Not recorded means not kept: a file the database does not know about would never be found again.
        await Deno.remove(storedPath).catch(() => {});
        if (!(err instanceof StoreError)) throw err;
        pages.unavailable(err, request, ctx);
        return await uploadForm({
          description,
          error: "The file arrived, but the site's database is not answering, so it was not kept. " +
            "Please try again in a minute.",
        }, { status: 503, headers: RETRY_AFTER });
      }
      await recordPost(limiter, ctx.clientAddr);
      return await pages.render("upload-done", {
        title: "Upload received",
        navUpload: true,
        upload: {
          ...record,
          id,
          originalName: record.originalName || "(no name)",
          sizeText: formatBytes(record.size),
          // The exact count only where the rounded one hides it.
          sizeExact: record.size >= 1024 ? record.size : null,
        },
      });
    },
  };
}
