// mime.ts's table: a name's Content-Type as mime-db and our charset rule make it, and whether the type is
// worth compressing. Run with no permission at all: the module reads no file.
import assert from "node:assert/strict";
import { contentTypeFor, isCompressible } from "./mime.ts";

/** A test that proves its subject touches nothing: no permission is granted. */
function pure(name: string, fn: () => void) {
  Deno.test({ name, permissions: "none", fn });
}

pure("contentTypeFor() takes mime-db's type by extension, with a charset for text", () => {
  const table: [string, string][] = [
    ["index.html", "text/html; charset=utf-8"],
    ["page.htm", "text/html; charset=utf-8"],
    ["style.css", "text/css; charset=utf-8"],
    ["app.3f2a9c1b.js", "text/javascript; charset=utf-8"], // IANA's type, not Apache's application/javascript
    ["module.mjs", "text/javascript; charset=utf-8"],
    ["data.json", "application/json; charset=utf-8"], // mime-db marks it UTF-8
    ["notes.txt", "text/plain; charset=utf-8"],
    ["feed.xml", "application/xml"], // IANA over Apache's text/xml
    ["images/logo.svg", "image/svg+xml"],
    ["photo.JPG", "image/jpeg"], // case-insensitive
    ["photo.jpeg", "image/jpeg"],
    ["icon.png", "image/png"],
    ["font.woff2", "font/woff2"],
    // Both are IANA's; on a tie the rule keeps the application/ type, as mime-types 2.x does (3.x and
    // nginx say video/mp4). Kept as it was when the table moved here.
    ["clip.mp4", "application/mp4"],
    ["song.mp3", "audio/mpeg"],
    ["doc.pdf", "application/pdf"],
    ["site.webmanifest", "application/manifest+json; charset=utf-8"],
    ["archive.tar.gz", "application/gzip"],
    ["data.bin", "application/octet-stream"],
    ["README", "application/octet-stream"], // no extension
    ["file.unknownext", "application/octet-stream"],
    ["trailing.", "application/octet-stream"],
    ["v1.2/README", "application/octet-stream"], // a dot in a folder is not an extension
    ["/srv/static/.well-known/x.css", "text/css; charset=utf-8"],
  ];
  for (const [name, type] of table) assert.equal(contentTypeFor(name), type, name);
});

pure("isCompressible() follows mime-db, all text but event streams, and never octet-stream", () => {
  const table: [string, boolean][] = [
    ["text/css; charset=utf-8", true],
    ["text/html", true],
    ["text/x-unknown", true], // any text
    ["application/json; charset=utf-8", true],
    ["image/svg+xml", true],
    ["TEXT/CSS", true],
    ["image/png", false],
    ["image/jpeg", false],
    ["font/woff2", false],
    ["application/gzip", false],
    ["application/octet-stream", false], // mime-db says compressible; opaque bytes rarely shrink
    ["application/x-unknown", false],
    ["text/event-stream", false], // streamed per event: a compressor would hold events back
    ["Text/Event-Stream; charset=utf-8", false],
    ["constructor", false],
    ["", false],
  ];
  for (const [type, compressible] of table) assert.equal(isCompressible(type), compressible, type);
  // What contentTypeFor gives can be asked directly.
  assert.equal(isCompressible(contentTypeFor("app.js")), true);
  assert.equal(isCompressible(contentTypeFor("logo.png")), false);
});
