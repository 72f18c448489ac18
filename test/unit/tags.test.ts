import { describe, expect, it } from "vitest";
import { ConfigError } from "../../ci/core/errors.js";
import { OCI_TAG, explainShaLike, parseSha, tagsFor } from "../../ci/core/tags.js";

const SHA = parseSha("453a6545b97fe240727c378291230abeb793d851");

describe("tagsFor: the one tag definition", () => {
  it.each([
    { branch: "main", defaultBranch: undefined, want: [SHA, "latest"] },
    { branch: "refs/heads/main", defaultBranch: undefined, want: [SHA, "latest"] },
    { branch: "feature/login", defaultBranch: undefined, want: [SHA] },
    { branch: "develop", defaultBranch: "develop", want: [SHA, "latest"] },
    { branch: "main", defaultBranch: "develop", want: [SHA] },
  ])("$branch (default $defaultBranch) → $want", ({ branch, defaultBranch, want }) => {
    const tags = tagsFor({ sha: SHA, branch, ...(defaultBranch ? { defaultBranch } : {}) });
    expect(tags).toEqual(want);
    for (const t of tags) expect(t).toMatch(OCI_TAG);
  });

  it("parseSha normalises uppercase hex to lowercase", () => {
    expect(tagsFor({ sha: parseSha(SHA.toUpperCase()), branch: "x" })).toEqual([SHA]);
  });

  it.each([
    { sha: `main-${SHA}`, says: [/prefix `main-`/, /type=sha,prefix=\{\{branch\}\}-/, /git rev-parse HEAD/] },
    { sha: "sha-453a654", says: [/prefix `sha-`/, /metadata-action's `type=sha`/] },
    { sha: "453a654", says: [/short sha \(7 characters\)/, /full 40-character sha/, /\$GITHUB_SHA/] },
    { sha: "", says: [/--sha: required/, /git rev-parse HEAD/] },
    { sha: "not-a-sha!", says: [/is not a commit sha/] },
    { sha: `${SHA}00`, says: [/42 hex characters/] },
    { sha: "zz3a6545b97fe240727c378291230abeb793d851", says: [/is not a commit sha/] },
  ])("parseSha rejects $sha with an explanation", ({ sha, says }) => {
    let err: unknown;
    try {
      parseSha(sha);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    for (const re of says) expect((err as Error).message).toMatch(re);
  });

  it("rejects an empty branch", () => {
    expect(() => tagsFor({ sha: SHA, branch: "" })).toThrow(/--branch: required/);
  });
});

describe("explainShaLike", () => {
  it.each([
    [`main-${SHA}`, "branch-prefixed", "main"],
    ["develop-453a654", "branch-prefixed", "develop"],
    ["sha-453a654", "sha-prefixed", "sha"],
    ["453a654", "short", undefined],
    [SHA.toUpperCase(), "case", undefined],
  ])("%s is %s", (tag, kind, prefix) => {
    const r = explainShaLike(tag);
    expect(r?.kind).toBe(kind);
    expect(r?.prefix).toBe(prefix);
  });
  it.each([SHA, "latest", "v1.2.3"])("%s is not a foreign sha form", (t) => {
    expect(explainShaLike(t)).toBeUndefined();
  });
  it("parseSha names the flag it was given", () => {
    expect(() => parseSha("abc", "sha")).toThrow(/^sha: /);
  });
});
