// The engine-free half of build/push: references from the tag definition, labels, build args, platforms, and
// the checks on what the engine's publish answers.
import { describe, expect, it } from "vitest";
import { ConfigError, PipelineError } from "../../ci/core/errors.js";
import {
  BUILD_CONTEXT_IGNORE,
  buildArgList,
  checkPublished,
  imageLabels,
  publishPlatforms,
  publishReferences,
  registryUser,
} from "../../ci/core/publish.js";
import { parseSha, tagsFor } from "../../ci/core/tags.js";

const SHA = parseSha("453a6545b97fe240727c378291230abeb793d851");
const IMG = { registry: "ghcr.io", repository: "daemin-kim/hamalog-backend" };
const D1 = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw");
}

describe("publishReferences", () => {
  it.each([
    {
      branch: "main",
      defaultBranch: undefined,
      want: [`ghcr.io/daemin-kim/hamalog-backend:${SHA}`, "ghcr.io/daemin-kim/hamalog-backend:latest"],
    },
    {
      branch: "refs/heads/main",
      defaultBranch: "main",
      want: [`ghcr.io/daemin-kim/hamalog-backend:${SHA}`, "ghcr.io/daemin-kim/hamalog-backend:latest"],
    },
    { branch: "feature/x", defaultBranch: "main", want: [`ghcr.io/daemin-kim/hamalog-backend:${SHA}`] },
    { branch: "main", defaultBranch: "develop", want: [`ghcr.io/daemin-kim/hamalog-backend:${SHA}`] },
  ])("$branch (default $defaultBranch) → $want", ({ branch, defaultBranch, want }) => {
    const refs = publishReferences({
      ...IMG,
      sha: parseSha(SHA.toUpperCase()),
      branch,
      ...(defaultBranch ? { defaultBranch } : {}),
    });
    expect(refs).toEqual(want);
    // Exactly the tag definition's tags, nothing spelled here.
    expect(refs.map((r) => r.slice(r.lastIndexOf(":") + 1))).toEqual(
      tagsFor({ sha: SHA, branch, defaultBranch: defaultBranch ?? "main" }),
    );
  });

  it("keeps a registry port", () => {
    expect(publishReferences({ registry: "127.0.0.1:5001", repository: "a/b", sha: SHA, branch: "x" })).toEqual([
      `127.0.0.1:5001/a/b:${SHA}`,
    ]);
  });
});

describe("imageLabels", () => {
  it("gives revision (the normalised sha), then source and created when known, in a fixed order", () => {
    expect(imageLabels({ sha: parseSha(SHA.toUpperCase()) })).toEqual([
      { name: "org.opencontainers.image.revision", value: SHA },
    ]);
    expect(
      imageLabels({
        sha: SHA,
        source: "https://github.com/daemin-kim/hamalog-backend",
        created: "2024-05-01T12:00:00Z",
      }),
    ).toEqual([
      { name: "org.opencontainers.image.revision", value: SHA },
      { name: "org.opencontainers.image.source", value: "https://github.com/daemin-kim/hamalog-backend" },
      { name: "org.opencontainers.image.created", value: "2024-05-01T12:00:00Z" },
    ]);
  });

  it("is a pure function of its input (no clock: two calls are equal)", () => {
    const a = imageLabels({ sha: SHA, source: "https://x.example/r" });
    expect(imageLabels({ sha: SHA, source: "https://x.example/r" })).toEqual(a);
    expect(a.map((l) => l.name)).not.toContain("org.opencontainers.image.created");
  });

  it.each([
    { input: { sha: SHA, created: "yesterday" }, says: /--created: `yesterday` is not an RFC 3339 time/ },
    { input: { sha: SHA, created: "2024-13-45T99:00:00Z" }, says: /RFC 3339/ },
    { input: { sha: SHA, source: "github.com/x" }, says: /image\/source: .* is not an http\(s\) URL/ },
  ])("rejects $input", ({ input, says }) => {
    const e = thrown(() => imageLabels(input));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(says);
  });
});

describe("buildArgList / publishPlatforms / registryUser", () => {
  it("sorts build args by name and rejects bad names", () => {
    expect(buildArgList({ B: "2", A: "x=y" })).toEqual([
      { name: "A", value: "x=y" },
      { name: "B", value: "2" },
    ]);
    expect(buildArgList({})).toEqual([]);
    expect(thrown(() => buildArgList({ "BAD NAME": "1" })).message).toMatch(
      /build\/buildArgs: `BAD NAME` is not a build argument name/,
    );
  });

  it("validates platforms and refuses duplicates", () => {
    expect(publishPlatforms([" linux/amd64", "linux/arm64/v8"])).toEqual(["linux/amd64", "linux/arm64/v8"]);
    expect(publishPlatforms([])).toEqual([]);
    expect(thrown(() => publishPlatforms(["amd64"])).message).toMatch(
      /`amd64` must look like OS\/ARCH\[\/VARIANT\], e.g. linux\/amd64/,
    );
    expect(thrown(() => publishPlatforms(["linux/amd64", "linux/amd64"])).message).toMatch(/listed twice/);
  });

  it("requires a registry user and names where to set it", () => {
    expect(registryUser(" bot ")).toBe("bot");
    const e = thrown(() => registryUser(undefined));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/image\/username: required to push .*--registry-username/);
  });

  it("keeps dependency trees and VCS data out of the build context", () => {
    expect(BUILD_CONTEXT_IGNORE).toEqual(expect.arrayContaining(["**/node_modules", "**/.git"]));
  });
});

describe("checkPublished", () => {
  const refs = [`ghcr.io/a/b:${SHA}`, "ghcr.io/a/b:latest"];

  it("returns the one digest and ref@digest per asked reference", () => {
    expect(checkPublished(refs, [`${refs[0]}@${D1}`, `${refs[1]}@${D1}\n`])).toEqual({
      digest: D1,
      published: [`${refs[0]}@${D1}`, `${refs[1]}@${D1}`],
    });
  });

  it.each([
    { returned: [`ghcr.io/a/b:${SHA}@${D1}`, `ghcr.io/a/b:latest@${D2}`], says: /must name one image/ },
    { returned: [`ghcr.io/a/b:${SHA}@${D1}`], says: /asked to publish 2 references, the engine answered 1/ },
    { returned: [`ghcr.io/a/b:${SHA}`, `ghcr.io/a/b:latest@${D1}`], says: /has no digest/ },
    {
      returned: [`ghcr.io/a/b:main-${SHA}@${D1}`, `ghcr.io/a/b:latest@${D1}`],
      says: /the engine reports ghcr.io\/a\/b:main-/,
    },
  ])("fails the push phase on $returned", ({ returned, says }) => {
    const e = thrown(() => checkPublished(refs, returned));
    expect(e).toBeInstanceOf(PipelineError);
    expect((e as PipelineError).phase).toBe("push");
    expect(e.message).toMatch(says);
  });
});
