// Header-value grammar shared by the framework: a token with `; name=value` parameters (RFC 9110 §5.6.6) and
// RFC 8187 extended values (`filename*=UTF-8''...`). Pure string functions; it must never do I/O or touch
// `Deno`, and never throws on what a client sends: a value it cannot read is reported as absent.

/** A header value split into its leading token and its parameters (RFC 9110 §5.6.6). */
export interface HeaderValue {
  /** The part before the first `;`, trimmed and lower-cased. */
  value: string;
  /** Parameters by lower-cased name; quoted values unquoted. The first of a repeated name wins. */
  params: Map<string, string>;
}

/**
 * Split a header value such as Content-Type or Content-Disposition into its token and parameters.
 *
 * Parameter names are case-insensitive (RFC 9110 §5.6.6), so they are lower-cased; values keep their case.
 * A quoted value is unquoted (RFC 9110 §5.6.4), but inside it a backslash escapes only `"` and `\`:
 * browsers do not escape backslashes in filenames (they percent-encode `"` instead, per the HTML form-data
 * rules), so `C:\a.txt` stays intact. A parameter without `=` is skipped.
 *
 * @param header The raw header value.
 * @returns The lower-cased token and a map of parameters.
 *
 * @example
 * ```ts
 * import { parseHeaderValue } from "./headers.ts";
 * const cd = parseHeaderValue('form-data; name="file"; filename="a b.txt"');
 * console.log(cd.value, cd.params.get("filename")); // form-data a b.txt
 * ```
 */
export function parseHeaderValue(header: string): HeaderValue {
  const params = new Map<string, string>();
  let i = header.indexOf(";");
  const value = (i < 0 ? header : header.slice(0, i)).trim().toLowerCase();
  const n = header.length;
  while (i >= 0 && i < n) {
    i++; // past ';'
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
    const eq = header.indexOf("=", i);
    const semi = header.indexOf(";", i);
    if (eq < 0 || (semi >= 0 && semi < eq)) {
      i = semi; // a parameter without '=': skip it
      continue;
    }
    const name = header.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
    let text = "";
    if (header[i] === '"') {
      i++;
      while (i < n && header[i] !== '"') {
        if (header[i] === "\\" && (header[i + 1] === '"' || header[i + 1] === "\\")) i++;
        text += header[i++];
      }
      i = header.indexOf(";", i);
    } else {
      const end = header.indexOf(";", i);
      text = (end < 0 ? header.slice(i) : header.slice(i, end)).trim();
      i = end;
    }
    if (name && !params.has(name)) params.set(name, text);
  }
  return { value, params };
}

/** RFC 8187 §3.2.1 ext-value: charset `'` [ language ] `'` value-chars. */
const EXT_VALUE_RE = /^([A-Za-z0-9!#$%&+^_`{}~-]+)'[^']*'(.*)$/;

/**
 * Decode an RFC 8187 extended value (`UTF-8''%e2%82%ac.txt`), as used by `filename*` (RFC 6266 §4.3).
 *
 * RFC 8187 §3.2.1 requires UTF-8 support and allows ISO-8859-1; any other charset is not decoded.
 *
 * @param ext The parameter value.
 * @returns The decoded string, or undefined when the charset is unsupported or the encoding is broken.
 *
 * @example
 * ```ts
 * import { decodeExtValue } from "./headers.ts";
 * console.log(decodeExtValue("UTF-8''%E2%82%AC%20rates.txt")); // "€ rates.txt"
 * console.log(decodeExtValue("KOI8-R''%C1")); // undefined
 * ```
 */
export function decodeExtValue(ext: string): string | undefined {
  const m = EXT_VALUE_RE.exec(ext);
  if (!m) return undefined;
  const charset = m[1].toLowerCase();
  try {
    if (charset === "utf-8") return decodeURIComponent(m[2]);
    if (charset === "iso-8859-1") {
      // Each %XX is one Latin-1 byte, whose code point is the same number.
      return m[2].replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    }
  } catch {
    // Broken percent-encoding or invalid UTF-8: the caller falls back to the plain parameter.
  }
  return undefined;
}
