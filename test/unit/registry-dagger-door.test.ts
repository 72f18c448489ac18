// The Dagger door of verify-manifest as `dagger functions` shows it (the SDK's offline introspector).
import { describe, expect, it } from "vitest";
import { cachePolicies } from "../helpers/cache-policy.js";
import { introspect } from "../helpers/introspect.js";

describe("Dagger verifyManifest", () => {
  const mod = introspect();
  const fn = mod.objects.Hamalog!.methods.verifyManifest!;

  it("takes sha or tag, a Secret token, a username and a Platform (the config is the constructor's); is never cached", () => {
    expect(Object.keys(fn.arguments)).toEqual(["sha", "tag", "registryToken", "registryUsername", "platform"]);
    expect(fn.arguments.registryToken!.type).toEqual({ kind: "OBJECT_KIND", name: "Secret" });
    expect(fn.arguments.platform!.type).toEqual({ kind: "SCALAR_KIND", name: "Platform" });
    for (const a of ["sha", "tag", "registryToken", "registryUsername", "platform"])
      expect(fn.arguments[a]!.isOptional, a).toBe(true);
    expect(cachePolicies().verifyManifest).toBe("never");
    expect(fn.description).toMatch(/^Verify that an image tag exists/);
  });

  it("returns a VerifiedImage whose fields other modules can chain: reference, digest, mediaType, platforms", () => {
    expect(fn.returnType).toMatchObject({ kind: "OBJECT_KIND", name: "VerifiedImage" });
    const obj = mod.objects.VerifiedImage!;
    expect(Object.keys(obj.properties)).toEqual(["reference", "digest", "mediaType", "platforms", "summary"]);
    expect(obj.properties.platforms!.type.kind).toBe("LIST_KIND");
    for (const p of Object.values(obj.properties)) expect(p.description).not.toBe("");
  });
});
