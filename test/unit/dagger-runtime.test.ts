// The port of the Dagger v0.21 TypeScript runtime's rewrites (test/helpers/dagger-runtime.ts) against the Go code's
// own test vectors, and the module directory checked against it: `dagger develop` finds nothing to change in
// ci/package.json, ci/tsconfig.json, ci/.gitignore and ci/.gitattributes, and the runtime picks npm with ci/'s lockfile.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/cli.js";
import {
  MODULE_CONFIG_FILES,
  RUNTIME,
  detectPackageManager,
  removeJSONComments,
  updatePackageJSONForModule,
  updateTSConfigForModule,
  vcsFiles,
} from "../helpers/dagger-runtime.js";

const ci = (f: string) => readFileSync(join(ROOT, "ci", f), "utf8");
const json = (s: string) => JSON.parse(s) as Record<string, unknown>;
const SDK_PATHS = { "@dagger.io/dagger": ["./sdk/index.ts"], "@dagger.io/dagger/telemetry": ["./sdk/telemetry.ts"] };

describe("runtime rewrite port (vectors from package_json_updator_test.go / tsconfig_updator_test.go)", () => {
  it.each([
    ["empty package.json", `{}`, { type: "module", dependencies: { typescript: "5.9.3" } }],
    [
      "local dagger dependency switches to bundle mode",
      `{"type":"module","dependencies":{"typescript":"5.9.3","@dagger.io/dagger":"./sdk/index.ts"}}`,
      { type: "module", dependencies: { typescript: "5.9.3" } },
    ],
    [
      "local dagger dev dependency switches to bundle mode",
      `{"type":"module","dependencies":{"typescript":"5.9.3"},"devDependencies":{"@dagger.io/dagger":"./sdk"}}`,
      { type: "module", dependencies: { typescript: "5.9.3" }, devDependencies: {} },
    ],
    [
      "comments",
      `{\n  // Environment setup & latest features\n  "type": "module",\n  "dependencies": {\n    // TypeScript\n    "typescript": "5.9.3"\n  }\n} `,
      { type: "module", dependencies: { typescript: "5.9.3" } },
    ],
    [
      "inline comment, URL kept",
      `{\n "dependencies": {\n "typescript": "5.9.3", // keep\n "test": "https://github.com/test/test.git#v1.0.0" // verify\n }\n}`,
      { type: "module", dependencies: { typescript: "5.9.3", test: "https://github.com/test/test.git#v1.0.0" } },
    ],
    [
      "existing typescript version kept",
      `{"type":"module","dependencies":{"typescript":"5.9.0","@dagger.io/dagger":"./sdk/index.ts"}}`,
      { type: "module", dependencies: { typescript: "5.9.0" } },
    ],
  ])("package.json: %s", (_name, input, want) => {
    expect(json(updatePackageJSONForModule(input))).toEqual(want);
  });

  it.each([
    ["empty tsconfig", `{}`, { compilerOptions: { experimentalDecorators: true, paths: SDK_PATHS } }],
    [
      "paths already set",
      JSON.stringify({ compilerOptions: { paths: SDK_PATHS } }),
      { compilerOptions: { experimentalDecorators: true, paths: SDK_PATHS } },
    ],
    [
      "comments and other paths",
      `{\n "compilerOptions": {\n // setup\n "target": "ESNext", // why\n "paths": { "@x/*": ["./x/*"] }\n }\n}`,
      {
        compilerOptions: { target: "ESNext", experimentalDecorators: true, paths: { "@x/*": ["./x/*"], ...SDK_PATHS } },
      },
    ],
  ])("tsconfig.json: %s", (_name, input, want) => {
    expect(json(updateTSConfigForModule(input))).toEqual(want);
  });

  it("removeJSONComments keeps // inside strings", () => {
    expect(removeJSONComments(`{"a": "http://x"} // c\n`)).toBe(`{"a": "http://x"} \n`);
  });

  it.each([
    [["package-lock.json"], undefined, { manager: "npm", version: RUNTIME.npm }],
    [["yarn.lock"], undefined, { manager: "yarn", version: RUNTIME.yarn }],
    [["pnpm-lock.yaml"], undefined, { manager: "pnpm", version: RUNTIME.pnpm }],
    [[], undefined, { manager: "yarn", version: RUNTIME.yarn }], // "No lockfile found": the cold-engine fallback
    [["package-lock.json"], { packageManager: "npm@11.8.0" }, { manager: "npm", version: "11.8.0" }],
    [["bun.lock", "package-lock.json"], { packageManager: "npm@11.8.0" }, { manager: "bun", version: "" }],
  ])("package manager for %j with %j", (entries, pkg, want) => {
    expect(detectPackageManager(entries, pkg)).toEqual(want);
  });

  it("a packageManager without a version is the runtime's error", () => {
    expect(() => detectPackageManager([], { packageManager: "npm" })).toThrow(/packageManager version is missing/);
  });

  it("develop's .gitignore lines are added once", () => {
    const once = vcsFiles("node_modules", "");
    expect(once.gitignore).toBe("node_modules\n/sdk\n/**/node_modules/**\n/**/.pnpm-store/**\n/.env\n");
    expect(once.gitattributes).toBe("/sdk/** linguist-generated\n");
    expect(vcsFiles(once.gitignore, once.gitattributes)).toEqual(once);
  });
});

describe("ci/ is a module directory `dagger develop` leaves as it is", () => {
  const pkg = json(ci("package.json"));

  it("package.json: the rewrite changes nothing (no @dagger.io/dagger: the engine mounts its own SDK)", () => {
    expect(updatePackageJSONForModule(ci("package.json"))).toBe(ci("package.json"));
    expect(pkg.dependencies).not.toHaveProperty("@dagger.io/dagger");
    expect(pkg.devDependencies ?? {}).not.toHaveProperty("@dagger.io/dagger");
  });

  it("tsconfig.json: the rewrite changes nothing (the sdk/ paths are already there and fall back to node_modules)", () => {
    expect(updateTSConfigForModule(ci("tsconfig.json"))).toBe(ci("tsconfig.json"));
  });

  it(".gitignore/.gitattributes: develop has nothing to add", () => {
    const now = { gitignore: ci(".gitignore"), gitattributes: ci(".gitattributes") };
    expect(vcsFiles(now.gitignore, now.gitattributes)).toEqual(now);
  });

  it("the runtime reads ci/package-lock.json and installs with npm at the version it pins", () => {
    const entries = readdirSync(join(ROOT, "ci")).filter((f) => MODULE_CONFIG_FILES.includes(f));
    expect(entries.sort()).toEqual(["package-lock.json", "package.json", "tsconfig.json"]);
    expect(pkg.packageManager).toBe(`npm@${RUNTIME.npm}`);
    expect(detectPackageManager(entries, pkg)).toEqual({ manager: "npm", version: RUNTIME.npm });
  });
});
