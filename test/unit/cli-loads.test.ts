// Each command loads only what it needs (issue 8: start-up). Read from the CLI's real build: the inputs bundled
// into the files a command's entry reaches by static imports, i.e. what `hamalog COMMAND` loads before it runs.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/cli.js";

interface Meta {
  outputs: Record<
    string,
    {
      entryPoint?: string;
      imports: { path: string; kind: string; external?: boolean }[];
      inputs: Record<string, unknown>;
    }
  >;
}
let meta: Meta;

beforeAll(() => {
  const r = spawnSync(process.execPath, [join(ROOT, "ci/bin/build.mjs")], { cwd: ROOT, encoding: "utf8" });
  const dir = /hamalog CLI built in (\S+)/.exec(r.stdout)?.[1];
  if (!dir) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
  meta = JSON.parse(readFileSync(join(ROOT, dir, "meta.json"), "utf8")) as Meta;
});

/** Inputs (source files, bundled packages, external modules) loaded up front when `entry` starts. */
function loadedBy(entry: string): string[] {
  const byName = new Map(Object.entries(meta.outputs).map(([k, v]) => [basename(k), v]));
  const start = Object.values(meta.outputs).find((o) => o.entryPoint === entry)!;
  const seen = new Set<typeof start>();
  const loaded = new Set<string>();
  const visit = (o: typeof start) => {
    if (seen.has(o)) return;
    seen.add(o);
    for (const input of Object.keys(o.inputs)) loaded.add(input);
    for (const i of o.imports) {
      if (i.kind !== "import-statement") continue; // dynamic imports load only when reached
      if (i.external) loaded.add(i.path);
      else visit(byName.get(basename(i.path))!);
    }
  };
  // main.mjs first: a command's chunk is reached from it, by a dynamic import once the command is known.
  visit(Object.values(meta.outputs).find((o) => o.entryPoint === "ci/cli/main.ts")!);
  visit(start);
  return [...loaded];
}
const has = (loaded: string[], what: RegExp) => loaded.some((p) => what.test(p));

describe("what a command loads before it runs", () => {
  it("tag: neither the SSH library, nor the registry client, nor yaml or zod", () => {
    const loaded = loadedBy("ci/cli/tag.ts");
    expect(has(loaded, /cli\/tag\.ts$/)).toBe(true);
    expect(has(loaded, /^ssh2$|node_modules\/ssh2\//)).toBe(false);
    expect(has(loaded, /ci\/core\/registry\//)).toBe(false);
    expect(has(loaded, /node_modules\/(yaml|zod)\//)).toBe(false);
    expect(has(loaded, /node:(crypto|http|https)$/)).toBe(false);
  });

  it("verify-manifest: the registry client over node:http, no SSH, yaml, zod or fetch", () => {
    const loaded = loadedBy("ci/cli/verify-manifest.ts");
    expect(has(loaded, /ci\/core\/registry\/client\.ts$/)).toBe(true);
    expect(has(loaded, /^node:http$/)).toBe(true);
    expect(has(loaded, /^ssh2$|ci\/core\/deploy\//)).toBe(false);
    expect(has(loaded, /node_modules\/(yaml|zod)\//)).toBe(false);
  });

  it("deploy does load the SSH library and the config schema (the check can see them)", () => {
    const loaded = loadedBy("ci/cli/deploy.ts");
    expect(has(loaded, /^ssh2$/)).toBe(true);
    expect(has(loaded, /node_modules\/zod\//)).toBe(true);
  });
});
