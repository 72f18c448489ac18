// The docs stay true to the code: docs/config.md's field table is what `npm run docs` generates from the one table.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONFIG_DOC, renderConfigDoc } from "../../ci/scripts/gen-docs.js";
import { FIELDS } from "../../ci/src/overrides.js";

describe("docs", () => {
  it("docs/config.md's field table is current (run `npm run docs` to regenerate it)", async () => {
    const committed = readFileSync(CONFIG_DOC, "utf8");
    expect(await renderConfigDoc(committed)).toBe(committed);
    for (const f of FIELDS) expect(committed).toContain(`| \`${f.path}\``);
  });
});
