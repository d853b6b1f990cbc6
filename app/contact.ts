// The contact flow: the form, its validation, storing a message, and the thank-you page. It owns the form's
// rules (fields, lengths, status codes); it must never answer "sent" before the message is committed, and
// never lose what a visitor typed because the database failed.
import { type Context, parseUrlEncoded, type RouteHandler } from "../mod.ts";
import { type Pages, recordPost, RETRY_AFTER, sessionIdOf } from "./pages.ts";
import type { PostLimiter } from "./rate_limit.ts";
import { type StoreBackend, StoreError } from "./store.ts";

/** Contact form limits, in characters: enough for a real name, address and letter; not for a dump. */
export const CONTACT_LIMITS = { name: 100, email: 254, message: 5000 } as const;

/**
 * The largest contact form body, in bytes: the three fields at their limits, percent-encoded (up to 9 bytes
 * per character for 3-byte UTF-8), rounded up. Far below the urlencoded default of 1 MiB.
 */
export const CONTACT_MAX_BODY_BYTES = 64 * 1024;

/**
 * An email shape, not a proof: one `@`, no spaces, a dotted domain. RFC 5322 allows far more, but a contact
 * form only needs to catch typos; the owner answers by hand.
 */
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@.]+(?:\.[^\s@.]+)+$/;

/** What a visitor typed into the contact form, trimmed. */
export interface ContactInput {
  /** The `name` field. */
  name: string;
  /** The `email` field. */
  email: string;
  /** The `message` field. */
  message: string;
}

/**
 * Check a contact form: every field required, lengths within {@link CONTACT_LIMITS}, an email shape.
 *
 * @param input The trimmed fields.
 * @returns One message per invalid field; empty when the form is valid.
 *
 * @example
 * ```ts
 * import { validateContact } from "./contact.ts";
 * console.log(validateContact({ name: "Ada", email: "ada@", message: "Hi" })); // { email: "..." }
 * ```
 */
export function validateContact(input: ContactInput): Partial<Record<keyof ContactInput, string>> {
  const errors: Partial<Record<keyof ContactInput, string>> = {};
  if (input.name === "") errors.name = "Please tell me your name.";
  else if (input.name.length > CONTACT_LIMITS.name) {
    errors.name = `Please keep your name under ${CONTACT_LIMITS.name} characters.`;
  }
  if (input.email === "") errors.email = "Please give an email address so I can answer.";
  else if (input.email.length > CONTACT_LIMITS.email || !EMAIL_RE.test(input.email)) {
    errors.email = "That does not look like an email address (name@example.com).";
  }
  if (input.message === "") errors.message = "Please write a message.";
  else if (input.message.length > CONTACT_LIMITS.message) {
    errors.message = `Please keep your message under ${CONTACT_LIMITS.message} characters.`;
  }
  return errors;
}

/** What the contact flow needs. */
export interface ContactOptions {
  /** Where messages are stored. */
  store: Pick<StoreBackend, "addMessage">;
  /** The shared page helpers. */
  pages: Pages;
  /** The post limit per client address (shared with uploads), or null for none. */
  limiter: PostLimiter | null;
  /** Idle time allowed between body chunks, in ms. Default: the framework's. */
  bodyTimeoutMs?: number;
}

/** The contact flow's three handlers, for site.ts's route table. */
export interface ContactRoutes {
  /** `GET /contact`: the empty form. */
  form: RouteHandler;
  /** `POST /contact`: validate, store, then 303 to the thank-you page (or the form again, 422 or 503). */
  submit: RouteHandler;
  /** `GET /contact/thanks`. */
  thanks: RouteHandler;
}

/**
 * The contact flow's handlers. `submit` needs the session middleware before it (a message records the
 * visitor's session, when there is one).
 *
 * @param options The store, pages and body timeout.
 * @returns The handlers.
 *
 * @example
 * ```ts ignore
 * const contact = contactFlow({ store, pages });
 * router.get("/contact", contact.form).post("/contact", contact.submit);
 * ```
 */
export function contactFlow(options: ContactOptions): ContactRoutes {
  const { store, pages, limiter } = options;
  const contactForm = (values: ContactInput, extra: Record<string, unknown> = {}, init: ResponseInit = {}) =>
    pages.render(
      "contact",
      { title: "Contact", navContact: true, values, limits: CONTACT_LIMITS, ...extra },
      init,
    );

  return {
    form: () => contactForm({ name: "", email: "", message: "" }),
    async submit(request: Request, ctx: Context) {
      const form = await parseUrlEncoded(request, {
        maxBytes: CONTACT_MAX_BODY_BYTES,
        bodyTimeoutMs: options.bodyTimeoutMs,
      });
      const values: ContactInput = {
        name: (form.get("name") ?? "").trim(),
        email: (form.get("email") ?? "").trim(),
        message: (form.get("message") ?? "").trim(),
      };
      const errors = validateContact(values);
      if (Object.keys(errors).length > 0) {
        return await contactForm(values, { errors, invalid: true }, { status: 422 });
      }
      try {
        if (ctx.state.storeError) throw ctx.state.storeError;
        // Over the post limit: 429, and nothing stored (a valid form only: a visitor fixing a typo is not
        // held back by it).
        const wait = limiter === null ? null : await limiter.check(ctx.clientAddr);
        if (wait !== null) return await pages.tooManyPosts(wait);
        await store.addMessage({ ...values, clientAddr: ctx.clientAddr, sessionId: sessionIdOf(ctx) });
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        pages.unavailable(err, request, ctx);
        // What the visitor typed stays on the page: they can send it again in a minute.
        return await contactForm(values, { storeDown: true }, { status: 503, headers: RETRY_AFTER });
      }
      await recordPost(limiter, ctx.clientAddr);
      // Committed: now, and only now, say so (RFC 9110 §15.4.4: 303 turns the POST into a GET).
      return new Response(null, { status: 303, headers: { location: "/contact/thanks" } });
    },
    thanks: () => pages.render("thanks", { title: "Thank you", navContact: true }),
  };
}
