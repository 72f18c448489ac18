// The docs stay true to the code: docs/config.md's field table and docs/deploy.md's phase tables are what `npm run docs`
// generates from the one table in code and from the strategies' step lists, the README stays a first page, and every
// relative link in the README and docs/ points at a file that exists.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_DOC, DEPLOY_DOC, phaseMarkers, renderConfigDoc, renderDeployDoc } from "../../ci/scripts/gen-docs.js";
import { phasesOf } from "../../ci/core/deploy/attempt.js";
import { STRATEGY } from "../../ci/core/deploy/strategies.js";
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

  it("docs/deploy.md's phase tables are current, one per registered strategy (run `npm run docs` to regenerate them)", async () => {
    const committed = readFileSync(DEPLOY_DOC, "utf8");
    expect(await renderDeployDoc(committed)).toBe(committed);
    for (const st of Object.values(STRATEGY)) {
      const { begin, end } = phaseMarkers(st.name);
      const block = committed.slice(committed.indexOf(begin), committed.indexOf(end));
      for (const p of phasesOf(st)) expect(block).toMatch(new RegExp(`^\\| \`${p.phase}\` +\\|`, "m"));
    }
  });

  it("a registered strategy without its markers in docs/deploy.md fails the generator, naming the markers to add", async () => {
    const committed = readFileSync(DEPLOY_DOC, "utf8");
    const { begin, end } = phaseMarkers("recreate");
    const without = committed.replace(begin, "").replace(end, "");
    await expect(renderDeployDoc(without)).rejects.toThrow(
      `no phase table for the strategy recreate — put the two lines\n${begin}\n${end}`,
    );
    const stray = `${committed}\n${phaseMarkers("rolling").begin}\n${phaseMarkers("rolling").end}\n`;
    await expect(renderDeployDoc(stray)).rejects.toThrow(
      /a phase table for rolling, which is not a registered strategy/,
    );
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
