// The site in a real browser: Debian's Chromium driven by playwright-core against the site started as
// `deno task start`. Desktop and 390 px phone viewports, no console errors or failed loads, no sideways
// scrolling, landmarks, focus styles and text contrast, then a contact message and an upload submitted
// through the forms and found in the database. CI installs chromium, so this test never skips.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { launchChromium } from "../fixtures/chromium.ts"; // playwright-core behind its guard
import type { Browser, Page } from "playwright-core";
import { Store } from "../../app/store.ts";
import { makeFullSiteFixture, spawnSite } from "../fixtures/site_fixture.ts";

/** Every wait in the browser gives up after this long, so a broken page fails the test instead of hanging it. */
const STEP_TIMEOUT_MS = 15_000;
/** WCAG 2.2 AA for normal text. */
const MIN_CONTRAST = 4.5;
/** Screenshots for a person to look at (the test does not compare pixels). */
const SHOT_DIR = Deno.env.get("PIER_SCREENSHOTS") ?? "/tmp";

/**
 * The browser globals the functions passed to `page.evaluate` use, typed just enough. (A `lib="dom"`
 * reference would change the global types of every file `deno check .` checks together.)
 */
interface PageElement {
  textContent: string | null;
  parentElement: PageElement | null;
  getBoundingClientRect(): { top: number };
}
interface PageGlobals {
  innerWidth: number;
  document: {
    documentElement: { scrollWidth: number };
    activeElement: PageElement | null;
    querySelector(selector: string): PageElement | null;
  };
  getComputedStyle(element: PageElement): {
    color: string;
    backgroundColor: string;
    outlineStyle: string;
    outlineWidth: string;
  };
}

/** Problems the page reported: console errors, uncaught exceptions, failed or 4xx/5xx subresources. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("requestfailed", (req) => {
    const error = req.failure()?.errorText ?? "";
    // ERR_ABORTED is the browser dropping a load (the favicon, say) because the test navigated on.
    if (error !== "net::ERR_ABORTED") problems.push(`request failed: ${req.url()} ${error}`);
  });
  page.on("response", (res) => {
    // Documents are checked by each step (a 422 is expected there); every other load must succeed.
    if (res.request().resourceType() !== "document" && res.status() >= 400) {
      problems.push(`${res.status()} for ${res.url()}`);
    }
  });
  return problems;
}

/**
 * Chromium logs every 4xx document as a console error. Take out exactly one such line for a status the
 * step asked for (the 422 of an invalid form, the 404 page), so any other error still fails the test.
 */
function expectLogged(problems: string[], status: number): void {
  const i = problems.findIndex((p) => p.includes(`the server responded with a status of ${status} `));
  assert.ok(i >= 0, `no ${status} logged: ${problems.join("\n")}`);
  problems.splice(i, 1);
}

async function noSidewaysScroll(page: Page, label: string): Promise<void> {
  const { scrollWidth, innerWidth } = await page.evaluate(() => {
    const w = globalThis as unknown as PageGlobals;
    return { scrollWidth: w.document.documentElement.scrollWidth, innerWidth: w.innerWidth };
  });
  assert.ok(scrollWidth <= innerWidth, `${label}: scrollWidth ${scrollWidth} > innerWidth ${innerWidth}`);
}

/** The contrast ratio of each selector's text against the first opaque background behind it. */
function contrasts(page: Page, selectors: string[]): Promise<{ selector: string; ratio: number }[]> {
  return page.evaluate((selectors) => {
    const parse = (c: string) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r, g, b, a };
    };
    const lum = ({ r, g, b }: { r: number; g: number; b: number }) => {
      const f = (v: number) => {
        const s = v / 255;
        return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    return selectors.map((selector) => {
      const w = globalThis as unknown as PageGlobals;
      const el = w.document.querySelector(selector);
      if (!el) return { selector, ratio: 0 };
      const fg = parse(w.getComputedStyle(el).color)!;
      let node: PageElement | null = el;
      let bg = { r: 255, g: 255, b: 255, a: 1 };
      while (node) {
        const c = parse(w.getComputedStyle(node).backgroundColor);
        if (c && c.a > 0) {
          bg = c;
          break;
        }
        node = node.parentElement;
      }
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      return { selector, ratio: (hi + 0.05) / (lo + 0.05) };
    });
  }, selectors);
}

async function checkHome(page: Page, base: string, label: string): Promise<void> {
  const res = await page.goto(`${base}/`);
  assert.equal(res?.status(), 200, label);
  assert.equal(await page.title(), "Marina Okafor · Backend engineer");
  assert.equal(await page.locator("h1").innerText(), "Marina Okafor");
  for (const landmark of ["header.site-header", "nav[aria-label]", "main#main", "footer.site-footer"]) {
    assert.equal(await page.locator(landmark).count(), 1, `${label}: landmark ${landmark}`);
  }
  for (const id of ["about", "experience", "projects", "skills", "contact"]) {
    assert.equal(await page.locator(`section#${id} h2`).count(), 1, `${label}: section ${id}`);
  }
  // Every image has a text alternative (empty for a decorative one).
  assert.equal(await page.locator("img:not([alt])").count(), 0, `${label}: images without alt`);
  await noSidewaysScroll(page, `${label} home`);
  for (
    const { selector, ratio } of await contrasts(page, [
      "body",
      ".lead",
      ".eyebrow",
      ".visits",
      ".nav-list a",
      ".button",
      ".button-ghost",
      ".meta",
      ".tags li",
      ".site-footer p",
    ])
  ) {
    assert.ok(ratio >= MIN_CONTRAST, `${label}: contrast of ${selector} is ${ratio.toFixed(2)}`);
  }
}

Deno.test({
  name:
    "browser: the site on desktop and a 390 px phone, the contact form and an upload land in the database",
  // playwright-core keeps its pipe and child-process handles in Node's machinery; it closes them in
  // browser.close(), but not in a way Deno's per-test sanitizers can follow.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await makeFullSiteFixture();
    const site = await spawnSite(dir, ["--quiet"]);
    const base = `http://127.0.0.1:${site.port}`;
    let browser: Browser | null = null;
    try {
      browser = await launchChromium();

      // Desktop: the page, keyboard focus, the visit count, both forms.
      const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await desktop.newPage();
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      const problems = watch(page);
      await checkHome(page, base, "desktop");
      assert.equal(await page.locator(".visit-count").innerText(), "1");
      await page.screenshot({ path: `${SHOT_DIR}/pier-home-desktop.png`, fullPage: true });

      // The first Tab reaches the skip link, which becomes visible and shows a focus outline.
      await page.keyboard.press("Tab");
      const focus = await page.evaluate(() => {
        const w = globalThis as unknown as PageGlobals;
        const el = w.document.activeElement!;
        const style = w.getComputedStyle(el);
        const box = el.getBoundingClientRect();
        return { text: el.textContent, outline: style.outlineStyle, width: style.outlineWidth, top: box.top };
      });
      assert.equal(focus.text, "Skip to content");
      assert.notEqual(focus.outline, "none");
      assert.ok(parseFloat(focus.width) >= 2, `outline ${focus.width}`);
      assert.ok(focus.top >= 0, "the skip link is on screen when focused");

      await page.reload();
      assert.equal(await page.locator(".visit-count").innerText(), "2");

      // Chromium keeps a backslash raw in a query (the WHATWG URL does): the page, not the engine's 400.
      const linked = await page.goto(`${base}/profile/ada?q=a\\b`);
      assert.equal(linked?.status(), 200);
      assert.ok(linked?.url().endsWith("/profile/ada?q=a\\b"), linked?.url());
      assert.match(await page.locator("h1").innerText(), /ada/);

      // An invalid contact form comes back with the errors and what was typed.
      await page.goto(`${base}/contact`);
      await noSidewaysScroll(page, "desktop contact");
      await page.fill("#name", "Grace Hopper");
      await page.fill("#email", "grace@");
      const invalid = page.waitForResponse((r) =>
        r.url().endsWith("/contact") && r.request().method() === "POST"
      );
      await page.click("button[type=submit]");
      assert.equal((await invalid).status(), 422);
      await page.waitForSelector("#email-error");
      assert.equal(await page.inputValue("#name"), "Grace Hopper");
      assert.equal(await page.getAttribute("#email", "aria-invalid"), "true");
      expectLogged(problems, 422);

      // The valid message goes through to the thank-you page.
      await page.fill("#email", "grace@example.com");
      await page.fill("#message", "Hello from a real browser.\nSecond line.");
      await Promise.all([page.waitForURL(`${base}/contact/thanks`), page.click("button[type=submit]")]);
      assert.equal(await page.locator("h1").innerText(), "Thank you!");

      // An upload through the file input.
      await page.goto(`${base}/upload`);
      await page.setInputFiles("#file", {
        name: "brief.txt",
        mimeType: "text/plain",
        buffer: Buffer.from("A brief, uploaded by a browser.\n"),
      });
      await page.fill("#description", "Project brief");
      const uploaded = page.waitForResponse((r) =>
        r.url().endsWith("/upload") && r.request().method() === "POST"
      );
      await page.click("button[type=submit]");
      assert.equal((await uploaded).status(), 200);
      await page.waitForSelector("#done-title");
      assert.equal(await page.locator("#done-title").innerText(), "File received");
      const shownHash = await page.locator("code.hash").innerText();
      await page.screenshot({ path: `${SHOT_DIR}/pier-upload-desktop.png`, fullPage: true });
      assert.deepEqual(problems, [], problems.join("\n"));
      await desktop.close();

      // Phone: 390 px wide, every page readable without sideways scrolling.
      const phone = await browser.newContext({
        viewport: { width: 390, height: 844 },
        deviceScaleFactor: 2,
        isMobile: true,
        hasTouch: true,
      });
      const mobile = await phone.newPage();
      mobile.setDefaultTimeout(STEP_TIMEOUT_MS);
      const mobileProblems = watch(mobile);
      await checkHome(mobile, base, "phone");
      await mobile.screenshot({ path: `${SHOT_DIR}/pier-home-phone.png`, fullPage: true });
      for (const path of ["/contact", "/upload", "/profile/Ada%20Lovelace", "/no-such-page"]) {
        await mobile.goto(`${base}${path}`);
        await noSidewaysScroll(mobile, `phone ${path}`);
        if (path === "/no-such-page") expectLogged(mobileProblems, 404);
      }
      await mobile.goto(`${base}/contact`);
      await mobile.screenshot({ path: `${SHOT_DIR}/pier-contact-phone.png`, fullPage: true });
      // The confirmation page, with its 64-digit hash and a long file name, still fits 390 px.
      await mobile.goto(`${base}/upload`);
      await mobile.setInputFiles("#file", {
        name: `a-very-long-file-name-without-any-spaces-${"x".repeat(60)}.txt`,
        mimeType: "text/plain",
        buffer: Buffer.from("phone upload\n"),
      });
      await mobile.fill("#description", "From the phone");
      await mobile.click("button[type=submit]");
      await mobile.waitForSelector("#done-title");
      await noSidewaysScroll(mobile, "phone upload-done");
      await mobile.screenshot({ path: `${SHOT_DIR}/pier-upload-phone.png`, fullPage: true });
      assert.deepEqual(mobileProblems, [], mobileProblems.join("\n"));
      await phone.close();

      // Both submissions are in the database, read through the store while the site still runs (WAL).
      const store = new Store(`${dir}/data/site.db`);
      try {
        const messages = await store.listMessages();
        const sent = messages.find((m) => m.email === "grace@example.com");
        assert.ok(sent, JSON.stringify(messages));
        assert.equal(sent.name, "Grace Hopper");
        assert.equal(sent.message, "Hello from a real browser.\r\nSecond line.");
        assert.equal(sent.clientAddr, "127.0.0.1");
        assert.match(sent.sessionId ?? "", /^[0-9a-f-]{36}$/, "the visitor's session is recorded");
        const uploads = await store.listUploads();
        assert.deepEqual(uploads.map((u) => u.description).sort(), ["From the phone", "Project brief"]);
        const brief = uploads.find((u) => u.description === "Project brief")!;
        assert.equal(brief.originalName, "brief.txt");
        assert.equal(brief.sha256, shownHash);
        assert.equal(
          await Deno.readTextFile(`${dir}/data/uploads/${brief.storedName}`),
          "A brief, uploaded by a browser.\n",
        );
      } finally {
        await store.close();
      }
    } finally {
      await browser?.close();
      const status = await site.kill("SIGTERM");
      await Deno.remove(dir, { recursive: true });
      assert.ok(status.success, site.output());
    }
  },
});
