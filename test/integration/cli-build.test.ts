// The launcher never runs a stale build of the CLI: on a copy of the repository (its own node_modules/.cache), an
// edit under ci/core or ci/cli (what the CLI is built from) shows in the very next run, and without esbuild to
// rebuild it the run refuses, saying what to do, rather than run the old build.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/cli.js";

const SHA = "453a6545b97fe240727c378291230abeb793d851";
let copy: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [join(copy, "ci/bin/hamalog.mjs"), ...args], { cwd: copy, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const builds = () => readdirSync(join(copy, "node_modules/.cache/hamalog-cli")).filter((d) => !d.includes(".tmp-"));
const editTagSummary = (text: string) => {
  const file = join(copy, "ci/cli/tag.ts");
  writeFileSync(file, readFileSync(file, "utf8").replace(/summary: "[^"]*"/, `summary: "${text}"`));
};

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), "hamalog-cli-build-"));
  for (const dir of ["ci/core", "ci/cli"]) cpSync(join(ROOT, dir), join(copy, dir), { recursive: true });
  cpSync(join(ROOT, "ci/bin"), join(copy, "ci/bin"), { recursive: true });
  cpSync(join(ROOT, "package.json"), join(copy, "package.json"));
  cpSync(join(ROOT, "ci/tsconfig.json"), join(copy, "ci/tsconfig.json"));
  mkdirSync(join(copy, "node_modules"));
  for (const name of readdirSync(join(ROOT, "node_modules"))) {
    if (name !== ".cache") symlinkSync(join(ROOT, "node_modules", name), join(copy, "node_modules", name));
  }
});
afterAll(() => rmSync(copy, { recursive: true, force: true }));

describe("the CLI launcher and its build", () => {
  it("builds on the first run when nothing is built, then runs that build", () => {
    const r = run(["tag", "--sha", SHA, "--branch", "main"]);
    expect(r).toMatchObject({ code: 0, stdout: `${SHA}\nlatest\n` });
    expect(builds()).toHaveLength(1);
  });

  it("an edit under ci/cli is in the very next run (rebuilt, not the old build)", () => {
    editTagSummary("Edited summary one.");
    expect(run(["tag", "--help"]).stdout).toMatch(/Edited summary one\./);
    editTagSummary("Edited summary two.");
    expect(run(["tag", "--help"]).stdout).toMatch(/Edited summary two\./);
    expect(builds().length).toBeGreaterThanOrEqual(2);
  });

  it("`npm run build` (prepare) builds ahead, and the next run uses that build", () => {
    editTagSummary("Built ahead.");
    const b = spawnSync(process.execPath, [join(copy, "ci/bin/build.mjs")], { cwd: copy, encoding: "utf8" });
    expect(b.status).toBe(0);
    const dir = /hamalog CLI built in (\S+)/.exec(b.stdout)?.[1];
    expect(dir).toBeDefined();
    const before = builds();
    expect(run(["tag", "--help"]).stdout).toMatch(/Built ahead\./);
    expect(builds()).toEqual(before);
  });

  it("without esbuild a stale build is refused with what to do, and nothing of the old build runs", () => {
    rmSync(join(copy, "node_modules/esbuild"));
    editTagSummary("Never shown.");
    const r = run(["tag", "--help"]);
    expect(r.code).toBe(70);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /ci\/core or ci\/cli changed since the CLI was built, and esbuild.*is not installed: run `npm ci`/,
    );
  });
});
