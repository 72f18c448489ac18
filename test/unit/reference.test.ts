import { describe, expect, it } from "vitest";
import { formatReference, isLoopbackRegistry, normalizeRepository, parseReference } from "../../ci/core/reference.js";

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  it.each([
    ["ghcr.io/daemin-kim/hamalog-backend", { registry: "ghcr.io", repository: "daemin-kim/hamalog-backend" }],
    [
      "ghcr.io/daemin-kim/hamalog-backend:latest",
      { registry: "ghcr.io", repository: "daemin-kim/hamalog-backend", tag: "latest" },
    ],
    ["127.0.0.1:5001/acme/app:t", { registry: "127.0.0.1:5001", repository: "acme/app", tag: "t" }],
    ["localhost/app", { registry: "localhost", repository: "app" }],
    ["alpine", { registry: "docker.io", repository: "library/alpine" }],
    ["alpine:3.20", { registry: "docker.io", repository: "library/alpine", tag: "3.20" }],
    ["acme/app", { registry: "docker.io", repository: "acme/app" }],
    ["index.docker.io/library/alpine", { registry: "docker.io", repository: "library/alpine" }],
    [`ghcr.io/a/b:1.0@${DIGEST}`, { registry: "ghcr.io", repository: "a/b", tag: "1.0", digest: DIGEST }],
    [`ghcr.io/a/b@${DIGEST}`, { registry: "ghcr.io", repository: "a/b", digest: DIGEST }],
    [
      `ghcr.io/a/b@sha512:${"e".repeat(128)}`,
      { registry: "ghcr.io", repository: "a/b", digest: `sha512:${"e".repeat(128)}` },
    ],
    ["[::1]:5000/a/b:x", { registry: "[::1]:5000", repository: "a/b", tag: "x" }],
  ])("%s", (input, want) => {
    expect(parseReference(input)).toEqual(want);
  });

  it.each([
    ["ghcr.io/Daemin-Kim/Hamalog-Backend", /must be lowercase \(use `daemin-kim\/hamalog-backend`\)/],
    ["ghcr.io/a/b:-bad", /not a valid tag/],
    ["ghcr.io/a/b@sha256:abc", /not a digest/],
    [`ghcr.io/a/b@md5:${"a".repeat(32)}`, /not a digest/],
    [`ghcr.io/a/b@sha1:${"a".repeat(40)}`, /not a digest/],
    [`ghcr.io/a/b@sha512:${"A".repeat(128)}`, /not a digest/],
    [`ghcr.io/a/b@SHA256:${"a".repeat(64)}`, /not a digest/],
    ["", /required/],
    ["ghcr.io/a//b", /not a valid repository path/],
  ])("rejects %s", (input, re) => {
    expect(() => parseReference(input)).toThrow(re);
  });

  it("round-trips through formatReference", () => {
    for (const s of ["ghcr.io/a/b:1", `127.0.0.1:5001/acme/app:t@${DIGEST}`, "docker.io/library/alpine"]) {
      expect(formatReference(parseReference(s))).toBe(s);
    }
  });
});

describe("normalizeRepository", () => {
  it("lowercases GITHUB_REPOSITORY-style names (GHCR rejects uppercase)", () => {
    expect(normalizeRepository("Daemin-Kim/Hamalog-Backend")).toBe("daemin-kim/hamalog-backend");
  });
  it("names the config key when missing", () => {
    expect(() => normalizeRepository("")).toThrow(/^image\/repository: required/);
  });
});

describe("isLoopbackRegistry", () => {
  it.each([
    ["127.0.0.1:5001", true],
    ["127.5.0.1", true],
    ["localhost:5000", true],
    ["[::1]:5000", true],
    ["ghcr.io", false],
    ["127.0.0.1.evil.com", false],
  ])("%s → %s", (r, want) => expect(isLoopbackRegistry(r)).toBe(want));
});
