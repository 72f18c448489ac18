import { describe, expect, it } from "vitest";
import { hamalog } from "../helpers/cli.js";

const SHA = "453a6545b97fe240727c378291230abeb793d851";

describe("hamalog tag (CLI contract)", () => {
  it("prints one tag per line and exits 0", async () => {
    const r = await hamalog(["tag", "--sha", SHA, "--branch", "main"]);
    expect(r).toMatchObject({ code: 0, stdout: `${SHA}\nlatest\n` });
  });
  it("omits latest off the default branch", async () => {
    const r = await hamalog(["tag", "--sha", SHA.toUpperCase(), "--branch", "main", "--default-branch", "develop"]);
    expect(r).toMatchObject({ code: 0, stdout: `${SHA}\n` });
  });
  it("exits 2 with the explanation for the seed's main-<sha>", async () => {
    const r = await hamalog(["tag", "--sha", `main-${SHA}`, "--branch", "main"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/prefix `main-`.*metadata-action/s);
  });
  it("exits 2 on an unknown flag and on an unknown command", async () => {
    expect((await hamalog(["tag", "--shaa", SHA])).code).toBe(2);
    expect((await hamalog(["tags"])).code).toBe(2);
  });
  it("--help describes the flags and exits 0", async () => {
    const r = await hamalog(["tag", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--sha SHA/);
    expect(r.stdout).toMatch(/--default-branch/);
  });
});
