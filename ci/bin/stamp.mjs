// What a build of the CLI is made from, read cheaply enough to check on every run (about a millisecond, no
// node:crypto, whose loading alone costs more): one line per file under ci/core and ci/cli (path, size, mtime: an edit, an
// added, removed or renamed file each change it), plus the build script, ci/tsconfig.json (esbuild reads it) and
// npm's record of the installed packages (bundled dependencies change with it).
import { readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CACHE = join(ROOT, "node_modules", ".cache", "hamalog-cli");

export function sources() {
  const lines = [];
  // Paths relative to ROOT by concatenation: path.join/relative per file cost more than the stat itself.
  const add = (rel) => {
    const s = statSync(`${ROOT}/${rel}`, { throwIfNoEntry: false });
    if (s) lines.push(`${rel} ${s.size} ${s.mtimeMs}`);
  };
  const walk = (rel) => {
    for (const e of readdirSync(`${ROOT}/${rel}`, { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${rel}/${e.name}`);
      else add(`${rel}/${e.name}`);
    }
  };
  walk("ci/core");
  walk("ci/cli");
  add("ci/bin/build.mjs");
  add("ci/tsconfig.json");
  add("node_modules/.package-lock.json");
  return `${lines.join("\n")}\n`;
}

/**
 * A build's directory name: a 64-bit hash of its sources (two FNV-1a-style lanes). The launcher still compares
 * the whole text, so a collision can only cost a rebuild, never run a stale build.
 */
export function buildId(text) {
  let a = 0x811c9dc5;
  let b = 0xcbf29ce4;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c ^ (a >>> 7), 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}
