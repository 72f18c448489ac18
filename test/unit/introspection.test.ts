// What `dagger functions` / `dagger call --help` would show, read by the SDK's own offline introspector.
import { describe, expect, it } from "vitest";
import { introspect } from "../helpers/introspect.js";

describe("Dagger module introspection", () => {
  const mod = introspect();
  const obj = mod.objects.Hamalog!;

  it("is the module `hamalog` with a described main object", () => {
    expect(obj).toBeDefined();
    expect(mod.description).toMatch(/ONE place image names and tags are defined/);
    expect(obj.description).not.toBe("");
  });

  it("every function has an imperative description with an Example line, and every argument is described", () => {
    for (const fn of Object.values(obj.methods)) {
      expect(fn.description, fn.name).toMatch(/^[A-Z][a-z]+ /);
      expect(fn.description, fn.name).toMatch(/Example: dagger call [a-z-]+/);
      for (const arg of Object.values(fn.arguments)) expect(arg.description, `${fn.name}.${arg.name}`).not.toBe("");
    }
  });

  it("exposes tag(sha, branch, defaultBranch = main) → [String!]", () => {
    const tag = obj.methods.tag!;
    expect(Object.keys(tag.arguments)).toEqual(["sha", "branch", "defaultBranch"]);
    expect(tag.arguments.sha!.type.kind).toBe("STRING_KIND");
    expect(tag.arguments.sha!.isOptional).toBe(false);
    expect(tag.arguments.defaultBranch!.defaultValue).toBe("main");
    expect(tag.returnType.kind).toBe("LIST_KIND");
    expect(tag.description).toMatch(/full 40-character sha/);
  });
});
