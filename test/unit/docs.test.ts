// The docs stay true to the code: docs/config.md's field table is what `npm run docs` generates from the one table in
// code, the README stays a first page, and every relative link in the README and docs/ points at a file that exists.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_DOC, renderConfigDoc } from "../../ci/scripts/gen-docs.js";
import { FIELDS } from "../../ci/src/overrides.js";
import { ROOT } from "../helpers/cli.js";

const docs = readdirSync(join(ROOT, "docs")).map((f) => join(ROOT, "docs", f));

describe("docs", () => {
  it("docs/config.md's field table is current (run `npm run docs` to regenerate it)", async () => {
    const committed = readFileSync(CONFIG_DOC, "utf8");
    expect(await renderConfigDoc(committed)).toBe(committed);
    for (const f of FIELDS) expect(committed).toContain(`| \`${f.path}\``);
  });

  it("the README is a first page of at most 8 KB", () => {
    expect(statSync(join(ROOT, "README.md")).size).toBeLessThanOrEqual(8192);
  });

  it.each([join(ROOT, "README.md"), ...docs])("every relative link in %s resolves", (file) => {
    const text = readFileSync(file, "utf8");
    const targets = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!);
    const broken = targets.filter((t) => !/^[a-z]+:/.test(t) && !existsSync(resolve(dirname(file), t)));
    expect(broken).toEqual([]);
  });
});
