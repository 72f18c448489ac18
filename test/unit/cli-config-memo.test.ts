// `tag` validates the config through a memo (cli/config-memo.ts): the same answers and the same errors as a full
// validation every time, whatever the memo holds.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Io } from "../../ci/cli/command.js";
import { main } from "../../ci/cli/main.js";

const SHA = "453a6545b97fe240727c378291230abeb793d851";
const dir = mkdtempSync(join(tmpdir(), "hamalog-memo-"));
const cacheDir = join(dir, "build");
const config = join(dir, "pipeline.yaml");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function tag(branch: string, extra: string[] = []) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env: {}, cacheDir };
  const code = await main(["tag", "--sha", SHA, "--branch", branch, "--config", config, ...extra], io);
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}
const memoFiles = () => readdirSync(join(cacheDir, "config-memo"));

describe("tag's config memo", () => {
  it("answers from the file's defaultBranch, and again the same from the memo", async () => {
    writeFileSync(config, "defaultBranch: develop\n");
    expect(await tag("develop")).toMatchObject({ code: 0, stdout: `${SHA}\nlatest` });
    expect(memoFiles()).toHaveLength(1);
    expect(await tag("develop")).toMatchObject({ code: 0, stdout: `${SHA}\nlatest` });
    expect(await tag("main")).toMatchObject({ code: 0, stdout: SHA });
  });

  it("a file that no longer validates fails as it always did, although it validated before", async () => {
    writeFileSync(config, "defaultBranch: develop\nimage:\n  regsitry: ghcr.io\n");
    const r = await tag("develop");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/image\/regsitry: unknown key \(did you mean `registry`\?\)/);
    expect(memoFiles()).toHaveLength(1); // failures are not memoised
  });

  it("an edited file and a flag are new inputs, answered afresh", async () => {
    writeFileSync(config, "defaultBranch: trunk\n");
    expect(await tag("trunk")).toMatchObject({ code: 0, stdout: `${SHA}\nlatest` });
    expect(await tag("develop", ["--default-branch", "develop"])).toMatchObject({ code: 0, stdout: `${SHA}\nlatest` });
    expect(await tag("trunk", ["--default-branch", "develop"])).toMatchObject({ code: 0, stdout: SHA });
  });

  it("a memo entry for another input (or a damaged one) is never taken as this input's answer", async () => {
    writeFileSync(config, "defaultBranch: trunk\n");
    for (const f of memoFiles()) {
      writeFileSync(join(cacheDir, "config-memo", f), JSON.stringify({ input: "something else", defaultBranch: "x" }));
    }
    expect(await tag("trunk")).toMatchObject({ code: 0, stdout: `${SHA}\nlatest` });
    for (const f of memoFiles()) writeFileSync(join(cacheDir, "config-memo", f), "{not json");
    expect(await tag("trunk")).toMatchObject({ code: 0, stdout: `${SHA}\nlatest` });
  });
});
