// Manifest facts: media types, digests of exact bytes, index platforms and platform matching.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  MANIFEST_ACCEPT,
  configPlatform,
  digestOf,
  indexPlatforms,
  mediaTypeOf,
  platformMatches,
} from "../../ci/core/registry/manifest.js";
import { checkRequest } from "../../ci/core/registry/verify.js";

describe("manifests", () => {
  it("asks for the four manifest media types, indexes first", () => {
    expect(MANIFEST_ACCEPT.split(", ")).toEqual([
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.docker.distribution.manifest.list.v2+json",
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.docker.distribution.manifest.v2+json",
    ]);
  });

  it("digests the exact bytes", () => {
    const bytes = Buffer.from('{"schemaVersion":2}\n');
    expect(digestOf(bytes)).toBe(`sha256:${createHash("sha256").update(bytes).digest("hex")}`);
    expect(digestOf(bytes, "sha512")).toMatch(/^sha512:[0-9a-f]{128}$/);
  });

  it.each([
    ["application/vnd.oci.image.index.v1+json; charset=utf-8", {}, "application/vnd.oci.image.index.v1+json"],
    [
      "application/json",
      { mediaType: "application/vnd.docker.distribution.manifest.v2+json" },
      "application/vnd.docker.distribution.manifest.v2+json",
    ],
    [null, { manifests: [] }, "application/vnd.oci.image.index.v1+json"],
    [null, { config: {} }, "application/vnd.oci.image.manifest.v1+json"],
  ])("media type of %s / %j", (header, body, expected) => {
    expect(mediaTypeOf(header, body)).toBe(expected);
  });

  it("lists an index's runnable platforms, leaving attestations out", () => {
    const index = {
      manifests: [
        { platform: { os: "linux", architecture: "amd64" } },
        { platform: { os: "linux", architecture: "arm64", variant: "v8" } },
        { platform: { os: "unknown", architecture: "unknown" } },
        { platform: { os: "linux", architecture: "amd64" } },
        {},
      ],
    };
    expect(indexPlatforms(index)).toEqual(["linux/amd64", "linux/arm64/v8"]);
    expect(configPlatform({ os: "linux", architecture: "arm", variant: "v7" })).toBe("linux/arm/v7");
    expect(configPlatform({})).toBeUndefined();
  });

  it.each([
    ["linux/amd64", "linux/amd64", true],
    ["linux/amd64", "linux/amd64/v3", true],
    ["linux/arm64", "linux/arm64/v8", true],
    ["linux/arm64/v8", "linux/arm64", true],
    ["linux/arm/v7", "linux/arm/v6", false],
    ["linux/arm64", "linux/amd64", false],
    ["windows/amd64", "linux/amd64", false],
  ])("wanted %s, available %s → %s", (wanted, available, expected) => {
    expect(platformMatches(wanted, available)).toBe(expected);
  });
});

describe("checkRequest", () => {
  const ok = { registry: "GHCR.io", repository: "Daemin-Kim/Hamalog-Backend", reference: "latest" };
  it("normalises registry and repository case", () => {
    expect(checkRequest(ok)).toMatchObject({ registry: "ghcr.io", repository: "daemin-kim/hamalog-backend" });
  });
  it.each([
    [{ reference: "" }, /reference: required/],
    [{ reference: "-bad" }, /not a valid tag/],
    [{ reference: "sha256:abc" }, /not a digest/],
    [{ platform: "amd64" }, /must look like OS\/ARCH/],
    [{ credentials: { username: "ci", password: "" } }, /both a username and a password/],
    [{ registry: "not a host" }, /registry: .* is not a registry host/],
  ])("rejects %j", (patch, message) => {
    expect(() => checkRequest({ ...ok, ...patch })).toThrow(message);
  });
});
