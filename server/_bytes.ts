// Small byte helpers shared by the engine and the framework. Pure functions; nothing else.

/**
 * Join chunks into one array (the chunk itself when there is only one: no copy).
 *
 * @param chunks The pieces, in order.
 * @returns Their bytes, contiguous.
 */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
