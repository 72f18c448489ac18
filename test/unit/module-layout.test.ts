// The repository is a Dagger module a Dagger user recognises: dagger.json names the module and its source, and
// the engine version equals the SDK version the module pins (and that is installed), so CI and laptops agree.
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
    const pinned = ciPkg.dependencies["@dagger.io/dagger"] as string;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/); // an exact pin, not a range
    expect(dagger.engineVersion).toBe(`v${pinned}`);
    expect(json("node_modules/@dagger.io/dagger/package.json").version).toBe(pinned);
  });

  it("the CLI is the root package's `hamalog` bin and ci/ is its workspace", () => {
    const root = json("package.json");
    expect(root.bin.hamalog).toBe("ci/bin/hamalog.mjs");
    expect(root.workspaces).toContain("ci");
  });
});
