import assert from "node:assert/strict";
import {
  type CookieOptions,
  deleteCookie,
  getCookies,
  parseCookies,
  serializeCookie,
  setCookie,
} from "./cookies.ts";

const PARSE_CASES: { header: string | null; want: Record<string, string>; why: string }[] = [
  { header: null, want: {}, why: "no header" },
  { header: "", want: {}, why: "empty header" },
  { header: "a=1", want: { a: "1" }, why: "one pair" },
  { header: "a=1; b=2", want: { a: "1", b: "2" }, why: "two pairs" },
  { header: "a=1;b=2", want: { a: "1", b: "2" }, why: "no space after ;" },
  { header: "  a = 1 ;  b=2  ", want: { a: "1", b: "2" }, why: "whitespace trimmed" },
  { header: "a=1; junk; b=2", want: { a: "1", b: "2" }, why: "pair without = skipped" },
  { header: "=1; b=2", want: { b: "2" }, why: "empty name skipped" },
  { header: "a=; b=2", want: { a: "", b: "2" }, why: "empty value kept" },
  { header: "a=x=y", want: { a: "x=y" }, why: "split at the first =" },
  { header: 'a="quoted"', want: { a: "quoted" }, why: "one pair of quotes removed" },
  { header: 'a="', want: { a: '"' }, why: "a lone quote stays" },
  { header: "a=1; a=2", want: { a: "1" }, why: "first of a repeated name wins (§5.4 order)" },
  { header: "a=%20x", want: { a: "%20x" }, why: "no percent-decoding" },
  { header: "a=caf\u00e9", want: { a: "caf\u00e9" }, why: "non-ASCII tolerated on read" },
  { header: ";;;", want: {}, why: "only separators" },
];

Deno.test("parseCookies() reads Cookie headers leniently (RFC 6265 §5.2)", async (t) => {
  for (const c of PARSE_CASES) {
    await t.step(`${JSON.stringify(c.header)}: ${c.why}`, () => {
      assert.deepEqual({ ...parseCookies(c.header) }, c.want);
    });
  }
});

Deno.test("parseCookies() treats __proto__ as an ordinary name", () => {
  const cookies = parseCookies("__proto__=x; constructor=y");
  assert.equal(cookies["__proto__"], "x");
  assert.equal(cookies["constructor"], "y");
  assert.equal(Object.getPrototypeOf(cookies), null);
  assert.equal(({} as Record<string, unknown>).x, undefined);
});

Deno.test("getCookies() reads the request's Cookie header", () => {
  const req = new Request("http://localhost/", { headers: { cookie: "sid=abc; theme=dark" } });
  assert.deepEqual({ ...getCookies(req) }, { sid: "abc", theme: "dark" });
  assert.deepEqual({ ...getCookies(new Request("http://localhost/")) }, {});
});

const SERIALIZE_CASES: { name: string; value: string; options?: CookieOptions; want: string }[] = [
  { name: "a", value: "1", want: "a=1" },
  { name: "a", value: "", want: "a=" },
  { name: "a", value: '"q"', want: 'a="q"' },
  { name: "a", value: "1", options: { maxAge: 60 }, want: "a=1; Max-Age=60" },
  { name: "a", value: "1", options: { maxAge: 0 }, want: "a=1; Max-Age=0" },
  {
    name: "a",
    value: "1",
    options: { expires: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)) },
    want: "a=1; Expires=Wed, 02 Jan 2030 03:04:05 GMT",
  },
  { name: "a", value: "1", options: { domain: "example.com" }, want: "a=1; Domain=example.com" },
  { name: "a", value: "1", options: { path: "/app" }, want: "a=1; Path=/app" },
  {
    name: "sid",
    value: "abc",
    options: { path: "/", secure: true, httpOnly: true, sameSite: "Lax" },
    want: "sid=abc; Path=/; Secure; HttpOnly; SameSite=Lax",
  },
  {
    name: "a",
    value: "1",
    options: { secure: true, sameSite: "None", partitioned: true },
    want: "a=1; Secure; SameSite=None; Partitioned",
  },
  {
    name: "__Host-sid",
    value: "abc",
    options: { secure: true, path: "/" },
    want: "__Host-sid=abc; Path=/; Secure",
  },
  { name: "__Secure-a", value: "1", options: { secure: true }, want: "__Secure-a=1; Secure" },
];

Deno.test("serializeCookie() writes Set-Cookie values (RFC 6265 §4.1)", async (t) => {
  for (const c of SERIALIZE_CASES) {
    await t.step(c.want, () => assert.equal(serializeCookie(c.name, c.value, c.options), c.want));
  }
});

const REJECT_CASES: { name: string; value: string; options?: CookieOptions; error: RegExp }[] = [
  { name: "", value: "1", error: /Invalid cookie name: ""/ },
  { name: "a b", value: "1", error: /Invalid cookie name: "a b"/ },
  { name: "a;b", value: "1", error: /Invalid cookie name/ },
  { name: "a=b", value: "1", error: /Invalid cookie name/ },
  { name: "caf\u00e9", value: "1", error: /Invalid cookie name/ },
  { name: "a", value: "x y", error: /Invalid value for cookie a: "x y"/ },
  { name: "a", value: "x;y", error: /Invalid value for cookie a/ },
  { name: "a", value: "x,y", error: /Invalid value for cookie a/ },
  { name: "a", value: "x\\y", error: /Invalid value for cookie a/ },
  { name: "a", value: 'x"y', error: /Invalid value for cookie a/ },
  { name: "a", value: "x\r\nSet-Cookie: evil=1", error: /Invalid value for cookie a/ },
  { name: "a", value: "caf\u00e9", error: /Invalid value for cookie a/ },
  { name: "__Secure-a", value: "1", error: /__Secure- prefix requires secure/ },
  { name: "__secure-a", value: "1", error: /__Secure- prefix requires secure/ },
  { name: "__Host-a", value: "1", options: { path: "/" }, error: /__Host- prefix/ },
  { name: "__Host-a", value: "1", options: { secure: true }, error: /__Host- prefix/ },
  { name: "__Host-a", value: "1", options: { secure: true, path: "/x" }, error: /__Host- prefix/ },
  {
    name: "__Host-a",
    value: "1",
    options: { secure: true, path: "/", domain: "example.com" },
    error: /__Host- prefix/,
  },
  { name: "a", value: "1", options: { sameSite: "None" }, error: /SameSite=None requires secure/ },
  { name: "a", value: "1", options: { partitioned: true }, error: /Partitioned requires secure/ },
  { name: "a", value: "1", options: { maxAge: 1.5 }, error: /maxAge must be an integer/ },
  { name: "a", value: "1", options: { maxAge: NaN }, error: /maxAge must be an integer/ },
  { name: "a", value: "1", options: { expires: new Date("nope") }, error: /expires is an invalid Date/ },
  { name: "a", value: "1", options: { domain: "exa mple.com" }, error: /invalid domain/ },
  { name: "a", value: "1", options: { domain: "x.com; Secure" }, error: /invalid domain/ },
  { name: "a", value: "1", options: { path: "/;HttpOnly" }, error: /invalid path/ },
  { name: "a", value: "1", options: { path: "/\n" }, error: /invalid path/ },
  {
    name: "a",
    value: "1",
    options: { sameSite: "lax" as CookieOptions["sameSite"] },
    error: /invalid sameSite/,
  },
];

Deno.test("serializeCookie() throws a TypeError naming the bad part", async (t) => {
  for (const c of REJECT_CASES) {
    await t.step(`${JSON.stringify(c.name)}=${JSON.stringify(c.value)} ${c.error}`, () => {
      assert.throws(() => serializeCookie(c.name, c.value, c.options), (e: unknown) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, c.error);
        return true;
      });
    });
  }
});

Deno.test("setCookie() appends one Set-Cookie header per cookie", () => {
  const headers = new Headers();
  setCookie(headers, "a", "1");
  setCookie(headers, "b", "2", { httpOnly: true });
  assert.deepEqual(headers.getSetCookie(), ["a=1", "b=2; HttpOnly"]);
});

Deno.test("deleteCookie() expires the cookie at the same path and domain", () => {
  const headers = new Headers();
  deleteCookie(headers, "sid", { path: "/app", domain: "example.com" });
  assert.deepEqual(headers.getSetCookie(), [
    "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.com; Path=/app",
  ]);
});

Deno.test("deleteCookie() satisfies prefix rules for __Host- and __Secure- names", () => {
  const headers = new Headers();
  deleteCookie(headers, "__Host-sid");
  deleteCookie(headers, "__Secure-x");
  assert.deepEqual(headers.getSetCookie(), [
    "__Host-sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure",
    "__Secure-x=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure",
  ]);
});
