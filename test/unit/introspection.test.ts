// What `dagger functions` / `dagger call --help` would show, read by the SDK's own offline introspector.
import { describe, expect, it } from "vitest";
import { introspect, introspectChecks } from "../helpers/introspect.js";
import { cachePolicies } from "../helpers/cache-policy.js";
import { BUILD_CONTEXT_IGNORE } from "../../ci/core/publish.js";

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

// build / push / ship (issue 5), and rules every function of the module must keep.
describe("Dagger module introspection: every function", () => {
  const obj = introspect().objects.Hamalog!;
  const fns = obj.methods;
  const policies = cachePolicies();
  /** Pure functions: their result depends only on their arguments (and the source), so the engine may cache them. */
  const PURE = ["tag", "build", "configValid", "tagPolicy", "composeRenders"];
  /** Functions that change or read remote state (registry, host): a cached answer would be a lie. */
  const NEVER_CACHED = ["push", "ship", "verifyManifest", "deploy", "status", "rollback", "hostKey"];

  it("exposes tag, build, push and ship, and every function is classified as pure or never cached", () => {
    expect(Object.keys(fns)).toEqual(expect.arrayContaining(["tag", "build", "push", "ship"]));
    for (const name of Object.keys(fns)) expect([...PURE, ...NEVER_CACHED], `classify ${name} here`).toContain(name);
    // The decorator source and the introspected module agree on the function list.
    expect(Object.keys(policies).sort()).toEqual(Object.keys(fns).sort());
  });

  it('side-effecting and remote-reading functions are @func({ cache: "never" }); pure ones keep the default', () => {
    for (const name of Object.keys(fns)) {
      if (NEVER_CACHED.includes(name)) expect(policies[name], `${name} must not be cached`).toBe("never");
      else expect(policies[name], `${name} is pure and cacheable`).toBeUndefined();
    }
  });

  it("credentials are Secrets, never strings, in every function", () => {
    for (const fn of Object.values(fns)) {
      for (const arg of Object.values(fn.arguments)) {
        if (/token|password|secret|privateKey|sshKey|credential/i.test(arg.name)) {
          expect(arg.type, `${fn.name}.${arg.name}`).toEqual({ kind: "OBJECT_KIND", name: "Secret" });
        }
      }
    }
  });

  it("the constructor takes the source (default: repo root minus ignores), the config path in it, and --set", () => {
    const args = obj.constructor!.arguments;
    expect(Object.keys(args)).toEqual(["source", "config", "set"]);
    expect(args.source!.type).toEqual({ kind: "OBJECT_KIND", name: "Directory" });
    expect(args.source!.defaultPath).toBe("/");
    expect(args.source!.ignore).toEqual(BUILD_CONTEXT_IGNORE);
    expect(args.config!.type.kind).toBe("STRING_KIND");
    expect(args.config!.defaultValue).toBe("pipeline.yaml");
    expect(args.set!.type.kind).toBe("LIST_KIND");
    // Nothing takes a File config or a source of its own any more: both live on the constructor.
    for (const fn of Object.values(fns))
      for (const a of Object.values(fn.arguments)) {
        expect(a.type.name, `${fn.name}.${a.name}`).not.toBe("File");
        expect(a.type.name, `${fn.name}.${a.name}`).not.toBe("Directory");
        expect(a.name, `${fn.name}.${a.name}`).not.toBe("set");
      }
  });

  it("build(sha, platform?: Platform, created?) → Container", () => {
    const build = fns.build!;
    expect(Object.keys(build.arguments)).toEqual(["sha", "platform", "created"]);
    expect(build.arguments.sha!.isOptional).toBe(false);
    expect(build.arguments.platform!.type).toEqual({ kind: "SCALAR_KIND", name: "Platform" });
    expect(build.returnType).toEqual({ kind: "OBJECT_KIND", name: "Container" });
    expect(build.description).toMatch(/^Build the image/);
  });

  it("push(sha, branch, registryToken: Secret, ...) → [String!] of ref@digest", () => {
    const push = fns.push!;
    expect(Object.keys(push.arguments).slice(0, 3)).toEqual(["sha", "branch", "registryToken"]);
    for (const a of ["sha", "branch", "registryToken"]) expect(push.arguments[a]!.isOptional, a).toBe(false);
    expect(push.arguments.registryToken!.type).toEqual({ kind: "OBJECT_KIND", name: "Secret" });
    expect(push.arguments.registryUsername!.type.kind).toBe("STRING_KIND");
    expect(push.arguments.container!.type).toEqual({ kind: "OBJECT_KIND", name: "Container" });
    expect(push.arguments.container!.isOptional).toBe(true);
    expect(push.returnType.kind).toBe("LIST_KIND");
    expect(push.description).toMatch(/exactly the references of the tag definition/);
  });

  it("typed results: ship → Shipment, deploy/rollback → Deployment, status → Status, verify-manifest → VerifiedImage", () => {
    const mod = introspect();
    expect(fns.ship!.returnType).toEqual({ kind: "OBJECT_KIND", name: "Shipment" });
    expect(fns.deploy!.returnType).toEqual({ kind: "OBJECT_KIND", name: "Deployment" });
    expect(fns.rollback!.returnType).toEqual({ kind: "OBJECT_KIND", name: "Deployment" });
    expect(fns.status!.returnType).toEqual({ kind: "OBJECT_KIND", name: "Status" });
    expect(fns.verifyManifest!.returnType).toEqual({ kind: "OBJECT_KIND", name: "VerifiedImage" });
    const props = (o: string) =>
      Object.fromEntries(Object.values(mod.objects[o]!.properties).map((p) => [p.name, p.type.name ?? p.type.kind]));
    expect(props("Shipment")).toEqual({
      published: "LIST_KIND",
      verified: "VerifiedImage",
      deployment: "Deployment",
      summary: "STRING_KIND",
    });
    expect(props("Deployment")).toEqual({
      reference: "STRING_KIND",
      digest: "STRING_KIND",
      sha: "STRING_KIND",
      host: "STRING_KIND",
      result: "DeployResult",
      rolledBackTo: "STRING_KIND",
      fallbackUsed: "BOOLEAN_KIND",
      strategy: "Strategy",
      colour: "STRING_KIND",
      durationMs: "INTEGER_KIND",
      changes: "LIST_KIND",
      compose: "STRING_KIND",
      log: "LIST_KIND",
      summary: "STRING_KIND",
    });
    expect(Object.keys(props("Status"))).toEqual(
      expect.arrayContaining(["reference", "digest", "sha", "containerState", "containerHealth", "health", "history"]),
    );
    for (const o of ["Shipment", "Deployment", "Status", "VerifiedImage"]) {
      for (const p of Object.values(mod.objects[o]!.properties)) {
        expect(p.isExposed, `${o}.${p.name}`).toBe(true);
        expect(p.description, `${o}.${p.name}`).not.toBe("");
      }
      // `dagger call` prints an object as its ID only: each result has a field that prints it for a log.
      expect(mod.objects[o]!.properties.summary?.type, `${o}.summary`).toEqual({ kind: "STRING_KIND" });
    }
  });

  it("strategy, fallback and result are enums; deploy takes the strategy and fallback enums", () => {
    const { enums } = introspect();
    const values = (e: string) => Object.values(enums[e]!.values).map((v) => v.value);
    expect(values("Fallback")).toEqual(["none", "latest"]);
    expect(values("Strategy")).toEqual(["recreate", "blue-green", "swarm"]);
    expect(values("DeployResult")).toEqual(["success", "dry-run", "already-live"]);
    expect(fns.deploy!.arguments.fallback!.type).toEqual({ kind: "ENUM_KIND", name: "Fallback" });
    expect(fns.deploy!.arguments.strategy!.type).toEqual({ kind: "ENUM_KIND", name: "Strategy" });
    expect(fns.verifyManifest!.arguments.platform!.type).toEqual({ kind: "SCALAR_KIND", name: "Platform" });
  });

  it.each(["deploy", "ship", "rollback"])(
    "%s takes force and recreateAccessory (a list), optional, like the CLI",
    (f) => {
      const args = fns[f]!.arguments;
      expect(args.force!.type.kind).toBe("BOOLEAN_KIND");
      expect(args.force!.defaultValue).toBe(false);
      expect(args.recreateAccessory!.type).toEqual({ kind: "LIST_KIND", typeDef: { kind: "STRING_KIND" } });
      expect(args.recreateAccessory!.defaultValue).toEqual([]);
    },
  );

  it("the checks are @check() functions `dagger check` can run: no arguments, a constructor callable without any", () => {
    const checks = introspectChecks();
    expect(checks).toEqual(["configValid", "tagPolicy", "composeRenders"]);
    for (const c of checks) expect(Object.keys(fns[c]!.arguments), c).toEqual([]);
    for (const a of Object.values(obj.constructor!.arguments))
      expect(a.isOptional || a.defaultValue !== undefined || a.defaultPath !== undefined, a.name).toBe(true);
    // Only these are checks: a deploy must never run under `dagger check`.
    expect(Object.keys(fns).filter((f) => checks.includes(f))).toEqual(checks);
  });

  it("every Example of a function returning one of this module's objects ends on a field of it (an object prints only its ID)", () => {
    const mod = introspect();
    const kebab = (n: string) => n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const returning = Object.values(fns).filter(
      (f) => f.returnType.kind === "OBJECT_KIND" && mod.objects[f.returnType.name!],
    );
    expect(returning.map((f) => f.name).sort()).toEqual(["deploy", "rollback", "ship", "status", "verifyManifest"]);
    for (const f of returning) {
      const example = /Example: (dagger call .*)/.exec(f.description)![1]!;
      const last = example.trim().split(/\s+/).pop()!;
      const fields = Object.keys(mod.objects[f.returnType.name!]!.properties).map(kebab);
      expect(fields, `${f.name}: ${example}`).toContain(last);
    }
  });

  it("ship(sha, branch, registryToken: Secret, ...) names its phases", () => {
    const ship = fns.ship!;
    expect(Object.keys(ship.arguments).slice(0, 3)).toEqual(["sha", "branch", "registryToken"]);
    expect(ship.arguments.registryToken!.type).toEqual({ kind: "OBJECT_KIND", name: "Secret" });
    expect(ship.description).toMatch(/build.*push.*verify-manifest.*deploy/s);
    expect(ship.description).toMatch(/Example: dagger call ship .*--sha=.*--branch=.*env:\/\//);
  });
});
