// What the engine's runtime pays on every call before the function runs (docs/dagger.md#load-time): the SDK's
// introspector builds a TypeScript program from ci/src, and the runtime imports ci/src. Neither may reach the
// deploy core, the registry client, zod, yaml or ssh2: those are loaded by the functions that use them, through
// ci/core/dagger/work.ts. Each check is shown able to fail on a file that does import the work.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "hamalog-load-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
copyFileSync(join(ROOT, "node_modules/@dagger.io/dagger/dist/src/api/client.gen.d.ts"), join(tmp, "client.gen.ts"));

/** A path of the program, relative to the repository (node_modules/… for packages, whichever copy). */
const rel = (f: string) => f.replace(/^.*?\/node_modules\//, "node_modules/").replace(`${ROOT}`, "");

/** The files of the program the SDK's introspector builds (ast.ts: its own options, tsconfig ignored). */
function introspectorProgram(files: string[]): string[] {
  const program = ts.createProgram([...files, join(tmp, "client.gen.ts")], {
    experimentalDecorators: true,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    target: ts.ScriptTarget.ES2022,
  });
  return program.getSourceFiles().map((f) => rel(f.fileName));
}

const HEAVY =
  /^(ci\/core\/(deploy|registry)\/|ci\/core\/(config[\w-]*|compose|ship)\.ts$|ci\/core\/dagger\/work\.ts$|node_modules\/(zod|yaml|ssh2|@types\/ssh2)\/)/;
const SRC = ["ci/src/index.ts", "ci/src/results.ts"].map((f) => join(ROOT, f));

describe("the door loads only itself on every call", () => {
  it("the introspector's program reaches only the door's light modules in ci/core", () => {
    const files = introspectorProgram(SRC);
    expect(files.filter((f) => HEAVY.test(f))).toEqual([]);
    expect(files.filter((f) => f.startsWith("ci/")).sort()).toEqual([
      "ci/core/dagger/api.ts",
      "ci/core/errors.ts",
      "ci/core/platform.ts",
      "ci/core/publish.ts",
      "ci/core/push-error.ts",
      "ci/core/reference.ts",
      "ci/core/tags.ts",
      "ci/src/index.ts",
      "ci/src/results.ts",
    ]);
  });

  it("a literal import of the work — even a dynamic one — would bring the core in (so the check above can fail)", () => {
    const literal = join(tmp, "literal.ts");
    writeFileSync(
      literal,
      `export const load = () => import(${JSON.stringify(join(ROOT, "ci/core/dagger/work.js"))});\n`,
    );
    const files = introspectorProgram([literal]);
    for (const heavy of ["ci/core/deploy/run.ts", "ci/core/config.ts", "node_modules/zod/", "node_modules/yaml/"])
      expect(
        files.some((f) => f.startsWith(heavy)),
        heavy,
      ).toBe(true);
  });

  it("importing the class loads none of it at run time; the work, once imported, does", () => {
    const log = join(tmp, "loaded.txt");
    const hooks = join(tmp, "hooks.mjs");
    writeFileSync(
      hooks,
      `import { appendFileSync } from "node:fs";\nexport async function load(url, ctx, next) {\n  appendFileSync(${JSON.stringify(log)}, url + "\\n");\n  return next(url, ctx);\n}\n`,
    );
    const register = join(tmp, "register.mjs");
    writeFileSync(
      register,
      `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    const run = (code: string) => {
      writeFileSync(log, "");
      execFileSync(process.execPath, ["--import", "tsx", "--import", register, "--input-type=module", "-e", code], {
        cwd: ROOT,
        encoding: "utf8",
      });
      return readFileSync(log, "utf8")
        .split("\n")
        .filter((u) => u.startsWith("file://"))
        .map((u) => rel(new URL(u).pathname));
    };
    const index = pathToFileURL(join(ROOT, "ci/src/index.ts")).href;
    const door = run(`await import(${JSON.stringify(index)});`);
    expect(door).toContain("ci/src/index.ts");
    expect(door.filter((f) => HEAVY.test(f))).toEqual([]);
    const worked = run(
      `await import(${JSON.stringify(index)}); await import(${JSON.stringify(pathToFileURL(join(ROOT, "ci/core/dagger/work.ts")).href)});`,
    );
    for (const heavy of ["ci/core/dagger/work.ts", "ci/core/deploy/run.ts", "node_modules/zod/"])
      expect(
        worked.some((f) => f.startsWith(heavy)),
        heavy,
      ).toBe(true);
  });

  it("the class's specifier for the work names ci/core/dagger/work.ts, which implements every function of the seam", async () => {
    const src = readFileSync(join(ROOT, "ci/src/index.ts"), "utf8");
    const spec = /const WORK = "([^"]+)";/.exec(src)?.[1];
    expect(spec).toBe("../core/dagger/work.js");
    expect(src).toMatch(/import\(WORK\)/);
    const { work } = (await import("../../ci/core/dagger/work.js")) as unknown as { work: Record<string, unknown> };
    const api = readFileSync(join(ROOT, "ci/core/dagger/api.ts"), "utf8");
    const seam = api.slice(api.indexOf("export interface Work {"));
    const names = [...seam.matchAll(/^ {2}(\w+)(?:<\w+>)?\(/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(8);
    for (const n of names) expect(typeof work[n], n).toBe("function");
  });
});
