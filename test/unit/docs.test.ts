// The docs stay true to the code: docs/config.md's field table is what `npm run docs` generates from the one table in
// code, the README stays a first page, and every relative link in the README and docs/ points at a file that exists.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_DOC, renderConfigDoc } from "../../ci/scripts/gen-docs.js";
import { FIELDS } from "../../ci/core/overrides.js";
import { ROOT } from "../helpers/cli.js";

const docs = readdirSync(join(ROOT, "docs")).map((f) => join(ROOT, "docs", f));

/** GitHub's anchors for a markdown file's headings (lowercase, punctuation dropped, spaces to hyphens). */
function headingSlugs(markdown: string): string[] {
  const body = markdown.replace(/^```[\s\S]*?^```/gm, "");
  return [...body.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
    m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, "")
      .replace(/ /g, "-"),
  );
}

describe("docs", () => {
  it("docs/config.md's field table is current (run `npm run docs` to regenerate it)", async () => {
    const committed = readFileSync(CONFIG_DOC, "utf8");
    expect(await renderConfigDoc(committed)).toBe(committed);
    for (const f of FIELDS) expect(committed).toContain(`| \`${f.path}\``);
  });

  it("the README is a first page of at most 8 KB", () => {
    expect(statSync(join(ROOT, "README.md")).size).toBeLessThanOrEqual(8192);
  });

  it.each([join(ROOT, "README.md"), ...docs])("every relative link in %s resolves, anchors included", (file) => {
    const text = readFileSync(file, "utf8");
    const links = [...text.matchAll(/\]\(([^)#\s]*)(?:#([^)\s]*))?\)/g)].map((m) => ({ path: m[1]!, anchor: m[2] }));
    const broken = links.filter(({ path, anchor }) => {
      if (/^[a-z]+:/.test(path)) return false;
      const target = path ? resolve(dirname(file), path) : file;
      if (!existsSync(target)) return true;
      return anchor !== undefined && !headingSlugs(readFileSync(target, "utf8")).includes(anchor);
    });
    expect(broken).toEqual([]);
  });
});
