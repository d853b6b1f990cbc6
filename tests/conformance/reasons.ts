// Why the three servers answer a case differently: one hand-written reason per differing case, keyed by the
// corpus id or the parser case's name, each found by sending the case by hand. A reason names an RFC section,
// a choice of Pier's (README.md, "The engine") or a known policy of hyper (Deno.serve) or llhttp (Node.js).

// Reasons shared by several cases, said once.
const BARE_LF = "A bare LF as a line ending: hyper (httparse) accepts it, as RFC 9112 §2.2 allows; Pier " +
  "refuses it (README), and so does llhttp in Node's default strict mode.";
const HOST_MISSING = "HTTP/1.1 without Host: Pier and Node.js refuse it (RFC 9112 §3.2 MUST; Node's " +
  "`requireHostHeader` default); hyper does not check, and Deno.serve builds the URL from " +
  "`localhost:<port>`.";
const HOST_TWICE = "Two Host fields: Pier and Deno.serve refuse them (RFC 9112 §3.2 MUST); llhttp does not " +
  "check, and Node.js keeps the first.";
const HOST_EMPTY = "An empty Host: Pier refuses it (README); hyper and llhttp accept it (RFC 9112 §3.2 " +
  "allows an empty value when the target has no authority), and the URL falls back to " +
  "`localhost` (Deno.serve's own rule, which node_app.mjs copies).";
const HOST_INVALID =
  "A Host that is no valid host: Pier checks it and refuses it (RFC 9112 §3.2 MUST); hyper " +
  "and llhttp pass it on, the app's `new URL()` throws on it, and the handler's error " +
  "becomes a 500.";
const HOST_SLASH =
  "A `/` in Host: Pier refuses it (RFC 9112 §3.2); hyper and llhttp pass it on, and the URL " +
  "built from it moves the rest into the path, so the app answers 404.";
const HOST_USERINFO =
  "Userinfo in Host: Pier refuses it (RFC 9110 §7.2: uri-host and port only); hyper and " +
  "llhttp pass it on, and the URL parser reads `u@` as userinfo, so the app serves the " +
  "page.";
const ABSOLUTE_NO_HOST =
  "Absolute-form without Host: RFC 9112 §3.2 still requires Host, so Pier and Node.js " +
  "refuse it; hyper takes the authority from the target.";
const HTTP10_KEEPALIVE =
  "Node.js sends no Content-Length to an HTTP/1.0 client that did not send `TE: chunked`, " +
  "so it ends the body by closing, whatever `keep-alive` said; Pier and Deno.serve send the " +
  "length and keep the connection (RFC 9112 §9.3 allows either).";
const HTTP12 = "HTTP/1.2: Pier takes any 1.x as 1.1, as RFC 9112 §2.3 asks; hyper and llhttp refuse " +
  "minor versions other than 0 and 1 (a known policy of both, corpus README).";
const HTTP20 = "HTTP/2.0 in an HTTP/1.1 request line: Pier answers 505 (RFC 9110 §15.6.6); hyper refuses " +
  "the line (400); llhttp accepts major version 2 and Node.js serves the page, then closes.";
const HTTP09 = "HTTP/0.9 written out: Pier answers 505 (RFC 9110 §15.6.6); hyper refuses the line (400); " +
  "llhttp accepts version 0.9 and Node.js serves the page, then closes.";
const NO_VERSION = "A request line without a version: llhttp takes it as an HTTP/0.9 request and Node.js " +
  "answers it, then closes; Pier and hyper refuse it (RFC 9112 §3).";
const TWO_SPACES =
  "Two spaces after the method: Pier and hyper refuse it (RFC 9112 §3: single SP; leniency " +
  "is a MAY); llhttp skips the extra space and Node.js serves the page.";
const RAW_NON_ASCII =
  "Raw bytes over 0x7F in the target: hyper (httparse) accepts them and the app answers " +
  "404; Pier and llhttp refuse them (RFC 9112 §3.2, RFC 3986 §2).";
const ASTERISK_GET = "`*` as the target of GET: llhttp accepts the asterisk form with any method (the app " +
  "finds no `/*`: 404); Pier and hyper refuse it outside OPTIONS (RFC 9112 §3.2.4).";
const OPTIONS_STAR = "`OPTIONS *`: Pier answers 204 itself, since it asks about the server (README); " +
  "Deno.serve hands the app the path `/*`, which it does not have (404), and node_app.mjs " +
  "builds the same URL.";
const CASE_SENSITIVE_METHOD =
  "Methods are case-sensitive (RFC 9110 §9.1): Pier and hyper take `get` as another method " +
  "and answer 501; llhttp parses only the methods on its own list and answers 400.";
const UNKNOWN_METHOD =
  "A method no server implements: Pier and Deno.serve (through the app) answer 501 (RFC " +
  "9110 §15.6.2); llhttp parses only the methods on its own list and answers 400.";
const LONG_METHOD =
  "A method longer than 32 bytes: Pier refuses it with 501 and closes (README); hyper hands " +
  "it to the app, which answers 501 and keeps the connection; llhttp does not know it: 400.";
const BACKSLASH_PATH = "A raw `\\` in the path: Pier refuses it (README; only the query may carry one, as " +
  "browsers send it there); hyper and llhttp accept it and the app answers 404.";
const CL_OVERFLOW = "A Content-Length too large for any integer: Pier answers 413 (over the body limit, " +
  "README); hyper and llhttp answer 400 (not a valid length).";
const CL_TWICE = "Two equal Content-Length values: hyper collapses them, as RFC 9110 §8.6 allows; Pier " +
  "refuses any repeated Content-Length (README), and so does llhttp.";
const TE_NOT_CHUNKED =
  "A Transfer-Encoding whose last coding is not `chunked` (RFC 9112 §6.3 rule 4: 400 and " +
  "close): Pier and hyper refuse it at once; llhttp hands the request to Node.js first, the " +
  "app answers 404, and only then does the parser's error close the connection.";
const TE_GZIP = "`gzip, chunked`: Pier answers 501, a coding it does not implement (RFC 9112 §6.1, " +
  "README); hyper and llhttp look only at the final `chunked` and hand the still-gzipped " +
  "body to the app.";
const TE_UNKNOWN = "`foo, chunked`: Pier refuses a coding it does not know (400, README); hyper and llhttp " +
  "look only at the final `chunked` and hand the body to the app.";
const CHUNK_SILENT =
  "A malformed chunk: hyper fails the connection without an answer (the silent close known " +
  "from the corpus README); Pier and llhttp answer 400 (RFC 9112 §7.1).";
const CHUNK_SIZE_SPACE =
  "Spaces around the chunk size: hyper tolerates them (tabs it does not) and reads the " +
  "body; Pier and llhttp refuse them (RFC 9112 §7.1: `chunk-size = 1*HEXDIG`).";
const CHUNK_SIZE_OVERFLOW =
  "A chunk size over 64 bits: Pier answers 413 (over the body limit, README), llhttp 400; " +
  "hyper fails the connection without an answer.";
// The parser table posts its bodies to /f, which no app has: each app answers 404 without reading the body,
// and a broken body shows only in what the server does next.
const AFTER_404_SILENT =
  "The app answers 404 without reading the body. hyper fails the connection on the bad " +
  "chunk before the 404 goes out (silent close); Pier and llhttp send the 404, then meet " +
  "the bad chunk while draining the body and close (RFC 9112 §7.1).";
const AFTER_404_SPACE =
  "The app answers 404 without reading the body. hyper tolerates spaces around the chunk " +
  "size and keeps the connection; Pier and llhttp send the 404, meet the invalid size while " +
  "draining and close (RFC 9112 §7.1: `chunk-size = 1*HEXDIG`).";
const AFTER_404_SECOND =
  "The app answers 404 without reading the body. hyper fails the connection before the 404 " +
  "goes out (silent close); Pier closes when draining meets the bad chunk; on Node.js the " +
  "404 has already gone out in full when llhttp meets it, so Node's default clientError " +
  "handler adds a 400 before closing.";
const HEAD_TOO_LARGE =
  "An oversized head: Pier answers 431 (maxHeadBytes 32 KiB, maxHeaderCount 100; RFC 6585 " +
  "§5), as Node.js does over its 16 KiB `maxHeaderSize`; hyper refuses a head over about 64 " +
  "KiB with 400.";

/** The reasons, per source: corpus ids, then parser case names. */
export const REASONS: { corpus: Record<string, string>; parser: Record<string, string> } = {
  corpus: {
    "ka-http10-keepalive": HTTP10_KEEPALIVE,
    "rl-lowercase-method": CASE_SENSITIVE_METHOD,
    "rl-double-space": TWO_SPACES,
    "rl-missing-version": NO_VERSION,
    "rl-raw-utf8-target": RAW_NON_ASCII,
    "rl-bare-lf-everywhere": BARE_LF,
    "rl-asterisk-form-get": ASTERISK_GET,
    "ver-http12": HTTP12,
    "ver-http20": HTTP20,
    "ver-http30": "HTTP/3.0 in an HTTP/1.1 request line: Pier answers 505 (RFC 9110 §15.6.6); hyper and " +
      "llhttp refuse it as a malformed version (400).",
    "ver-http09": HTTP09,
    "hdr-bare-lf-line": BARE_LF,
    "host-missing": HOST_MISSING,
    "host-duplicate-different": HOST_TWICE,
    "host-duplicate-same": HOST_TWICE,
    "host-space-in-value": HOST_INVALID,
    "host-slash": HOST_SLASH,
    "host-userinfo": HOST_USERINFO,
    "host-bad-port": HOST_INVALID,
    "host-bad-ipv6": HOST_INVALID,
    "host-list": HOST_INVALID,
    "host-absolute-form-no-host": ABSOLUTE_NO_HOST,
    "host-empty": HOST_EMPTY,
    "cl-overflow": CL_OVERFLOW,
    "cl-duplicate-same": CL_TWICE + " hyper then answers the pipelined request after the body as well.",
    "chk-size-0x-prefix": CHUNK_SILENT,
    "chk-size-plus": CHUNK_SILENT,
    "chk-size-negative": CHUNK_SILENT,
    "chk-size-trailing-space": CHUNK_SIZE_SPACE,
    "chk-size-leading-space": CHUNK_SIZE_SPACE,
    "chk-size-non-hex": CHUNK_SILENT,
    "chk-size-missing": CHUNK_SILENT,
    "chk-size-overflow": CHUNK_SIZE_OVERFLOW,
    "chk-data-too-long": CHUNK_SILENT,
    "chk-no-crlf-after-data": CHUNK_SILENT,
    "chk-bare-lf":
      "Bare LF after the chunk sizes: Pier and llhttp answer 400 (RFC 9112 §7.1 wants CRLF). On " +
      "Deno.serve the handler's body read fails (`BadResource`), and then the connection is " +
      "neither answered nor closed (still open after 6 s when sent by hand).",
    "chk-ext-empty-name":
      "A chunk extension with an empty name (`;=x`): hyper skips extensions without parsing " +
      "them; Pier and llhttp check the grammar (`chunk-ext-name = token`, RFC 9112 §7.1.1) and " +
      "answer 400.",
    "chk-trailer-no-colon": CHUNK_SILENT,
    "chk-te-gzip-chunked": TE_GZIP,
    "lim-uri-64k": "A 64 KiB target: Pier answers 414 (maxRequestLineBytes 8 KiB; RFC 9112 §3); Node's 16 " +
      "KiB `maxHeaderSize` covers the request line (431); hyper refuses a head over about 64 " +
      "KiB with 400.",
    "lim-header-value-64k": HEAD_TOO_LARGE,
    "lim-header-count-10000": HEAD_TOO_LARGE,
    "lim-header-name-64k": HEAD_TOO_LARGE,
    "lim-method-16k": LONG_METHOD,
    "lim-cl-10gb":
      "A 10 GiB Content-Length: Pier refuses it at once with 413 (maxBodyBytes 16 MiB, README); " +
      "hyper and llhttp have no body limit, and the app waits for the body.",
    "lim-chunk-ext-200k":
      "200 KB of chunk extensions: Pier answers 400 (maxChunkLineBytes 4 KiB, README); Node.js " +
      "limits chunk extensions to 16 KiB and answers 413; hyper's own limit fails the body " +
      "read, so the handler throws and Deno.serve answers 500.",
    "trv-backslash-raw": BACKSLASH_PATH,
    "mth-unknown": UNKNOWN_METHOD,
    "mth-connect":
      "CONNECT: Pier answers 501 (an origin server, README), and so does the app on Deno.serve; " +
      "Node.js hands CONNECT to a `connect` event, not to the request handler, and with no " +
      "listener closes the socket without an answer.",
    "mth-options-star": OPTIONS_STAR,
  },
  parser: {
    "chunked with extensions, upper-case hex, zeros and a trailer":
      "llhttp refuses whitespace before a `;` in a chunk extension (`a=b ;`; a known llhttp " +
      "policy, corpus README), which RFC 9112 §7.1.1 allows (BWS) as Pier and hyper do; the app " +
      "had already answered 404, so Node.js just closes.",
    "HTTP/1.0 keep-alive persists": HTTP10_KEEPALIVE,
    "HTTP/1.2 is treated as 1.1 (RFC 9112 §2.3)": HTTP12,
    "Expect: 100-continue with a body":
      "The app answers 404 without reading the body. Pier then sends no `100 Continue` and " +
      "closes after the answer, since the client may still send the body (README); hyper and " +
      "Node.js send `100 Continue` on their own and keep the connection.",
    "Expect is ignored in HTTP/1.0 (RFC 9110 §10.1.1)":
      "hyper sends `100 Continue` to an HTTP/1.0 client (a known hyper policy, corpus README); " +
      "RFC 9110 §10.1.1 says to ignore the expectation in HTTP/1.0, as Pier and Node.js do.",
    "asterisk-form for OPTIONS": OPTIONS_STAR,
    "a lower-case method is another method, passed on as it is (methods are case-sensitive)":
      CASE_SENSITIVE_METHOD,
    "bare LF ends the request line": BARE_LF,
    "two spaces after the method": TWO_SPACES,
    "missing version": NO_VERSION,
    "raw non-ASCII in the target": RAW_NON_ASCII,
    "backslash in the path": BACKSLASH_PATH,
    "backslash in the path, a query after it": BACKSLASH_PATH,
    "a quote in the fragment":
      'A `"` in the target: Pier refuses it wherever it is, fragment included (README); hyper ' +
      "and llhttp accept it and the app answers 404.",
    "asterisk-form outside OPTIONS": ASTERISK_GET,
    "HTTP/2.0 gets 505": HTTP20,
    "HTTP/0.9 gets 505": HTTP09,
    "bare LF ending a field line": BARE_LF,
    "bare LF ending the head": BARE_LF,
    "HTTP/1.1 without Host": HOST_MISSING,
    "two Host fields, even equal": HOST_TWICE,
    "empty Host": HOST_EMPTY,
    "Host with a space": HOST_INVALID,
    "Host with a slash": HOST_SLASH,
    "Host with userinfo": HOST_USERINFO,
    "Host with a bad port": HOST_INVALID,
    "Host with a port over 65535": HOST_INVALID,
    "Host with an unclosed IPv6 literal": HOST_INVALID,
    "Host as a list": HOST_INVALID,
    "Host the WHATWG URL parser refuses (lo.0)": HOST_INVALID,
    "Host with a bad percent-escape": HOST_INVALID,
    "absolute-form still needs Host": ABSOLUTE_NO_HOST,
    "equal duplicate Content-Length": CL_TWICE,
    "Content-Length that overflows": CL_OVERFLOW,
    "Transfer-Encoding in HTTP/1.0":
      "Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1: treat the framing as faulty and close): " +
      "Pier and hyper refuse it with 400; llhttp reads the chunked body and Node.js answers the " +
      "request (405 for `POST /`) before closing.",
    "xchunked": TE_NOT_CHUNKED,
    "identity": TE_NOT_CHUNKED,
    "quoted chunked": TE_NOT_CHUNKED,
    "chunked with a parameter": TE_NOT_CHUNKED,
    "empty list element":
      "`Transfer-Encoding: , chunked`: llhttp skips the empty list element, as RFC 9110 " +
      "§5.6.1.2 asks of recipients, and reads a chunked body; Pier and hyper refuse it (Pier's " +
      "stricter choice: Transfer-Encoding is where smuggling lives).",
    "gzip then chunked is 501": TE_GZIP,
    "an unknown coding then chunked is 400": TE_UNKNOWN,
    'chunk size "0x5" is invalid': AFTER_404_SILENT,
    'chunk size "+5" is invalid': AFTER_404_SILENT,
    'chunk size "-5" is invalid': AFTER_404_SILENT,
    'chunk size "5 " is invalid': AFTER_404_SPACE,
    'chunk size " 5" is invalid': AFTER_404_SPACE,
    'chunk size "g" is invalid': AFTER_404_SILENT,
    'chunk size "" is invalid': AFTER_404_SILENT,
    'chunk size "5 \\t" is invalid': AFTER_404_SILENT,
    "chunk size overflow": AFTER_404_SILENT,
    "chunk data longer than its size": AFTER_404_SECOND,
    "chunk data without CRLF": AFTER_404_SECOND,
    "bare LF after the chunk size": AFTER_404_SILENT,
    "chunk extension with an empty name":
      "The app answers 404 without reading the body. hyper and llhttp accept `;=x` and keep the " +
      "connection; Pier finds no extension name (`chunk-ext-name = token`, RFC 9112 §7.1.1) " +
      "while draining and closes.",
    "chunk extension with an open quote":
      "The app answers 404 without reading the body. hyper skips extensions without parsing " +
      "them and keeps the connection; Pier and llhttp find the unterminated quoted-string (RFC " +
      "9112 §7.1.1) while draining and close.",
    "trailer line without a colon": AFTER_404_SILENT,
    "unknown expectation gets 417":
      "An expectation other than `100-continue`: Pier and Node.js answer 417, as RFC 9110 " +
      "§10.1.1 allows (Pier then closes, since the body may follow); hyper ignores it and the " +
      "app answers 404.",
    "overlong method gets 501": LONG_METHOD,
  },
};
