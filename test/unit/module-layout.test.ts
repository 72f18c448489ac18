// The repository is a Dagger module a Dagger user recognises: dagger.json names the module and its source, the
// engine version equals the SDK version local type-checks use (the root's devDependency: an engine mounts its own
// SDK), and ci/'s own lockfile, which the engine installs from, pins what the root's `npm ci` installs.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/cli.js";

const json = (p: string) => JSON.parse(readFileSync(join(ROOT, p), "utf8")) as Record<string, any>;

describe("module layout", () => {
  const dagger = json("dagger.json");
  const ciPkg = json("ci/package.json");

  it("dagger.json: module hamalog, TypeScript SDK, source in ci/", () => {
    expect(dagger.name).toBe("hamalog");
    expect(dagger.sdk.source).toBe("typescript");
    expect(dagger.source).toBe("ci");
  });

  it("engineVersion equals the pinned and the installed @dagger.io/dagger", () => {
    const pinned = json("package.json").devDependencies["@dagger.io/dagger"] as string;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/); // an exact pin, not a range
    expect(dagger.engineVersion).toBe(`v${pinned}`);
    expect(json("node_modules/@dagger.io/dagger/package.json").version).toBe(pinned);
  });

  it("the CLI is the root package's `hamalog` bin and ci/ is its workspace", () => {
    const root = json("package.json");
    expect(root.bin.hamalog).toBe("ci/bin/hamalog.mjs");
    expect(root.workspaces).toContain("ci");
  });

  it("ci/package-lock.json locks exactly ci/package.json's dependencies, at the versions the root lockfile installs", () => {
    const ciLock = json("ci/package-lock.json");
    const rootLock = json("package-lock.json");
    expect(ciLock.lockfileVersion).toBe(3);
    expect(ciLock.packages[""].dependencies).toEqual(ciPkg.dependencies);
    // The root's workspace entry for ci/ declares the same ranges (npm ci fails when they drift).
    expect(rootLock.packages.ci.dependencies).toEqual(ciPkg.dependencies);
    const mismatched = Object.entries(ciLock.packages as Record<string, { version: string; integrity?: string }>)
      .filter(([path]) => path !== "")
      .filter(([path, entry]) => {
        const root = rootLock.packages[path] ?? rootLock.packages[`ci/${path}`];
        return root?.version !== entry.version || root?.integrity !== entry.integrity;
      })
      .map(([path, entry]) => `${path}@${entry.version}`);
    expect(mismatched, "regenerate ci/package-lock.json (docs/dagger.md)").toEqual([]);
  });
});
