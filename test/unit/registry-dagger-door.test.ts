// The Dagger door of verify-manifest as `dagger functions` shows it (the SDK's offline introspector).
import { describe, expect, it } from "vitest";
import { cachePolicies } from "../helpers/cache-policy.js";
import { introspect } from "../helpers/introspect.js";

describe("Dagger verifyManifest", () => {
  const mod = introspect();
  const fn = mod.objects.Hamalog!.methods.verifyManifest!;

  it("takes config (default /pipeline.yaml), sha or tag, a Secret token, and overrides; is never cached", () => {
    expect(Object.keys(fn.arguments)).toEqual([
      "config",
      "sha",
      "tag",
      "registryToken",
      "registryUsername",
      "registry",
      "repository",
      "platform",
      "set",
    ]);
    expect(fn.arguments.config!.defaultPath).toBe("/pipeline.yaml");
    expect(fn.arguments.registryToken!.type).toEqual({ kind: "OBJECT_KIND", name: "Secret" });
    for (const a of ["sha", "tag", "registryToken", "registryUsername", "registry", "repository", "platform"])
      expect(fn.arguments[a]!.isOptional, a).toBe(true);
    expect(cachePolicies().verifyManifest).toBe("never");
    expect(fn.description).toMatch(/^Verify that an image tag exists/);
  });

  it("returns a VerifiedImage whose fields other modules can chain: reference, digest, mediaType, platforms", () => {
    expect(fn.returnType).toMatchObject({ kind: "OBJECT_KIND", name: "VerifiedImage" });
    const obj = mod.objects.VerifiedImage as unknown as {
      description: string;
      properties: Record<string, { type: { kind: string }; description: string }>;
    };
    expect(Object.keys(obj.properties)).toEqual(["reference", "digest", "mediaType", "platforms"]);
    expect(obj.properties.platforms!.type.kind).toBe("LIST_KIND");
    for (const p of Object.values(obj.properties)) expect(p.description).not.toBe("");
  });
});
