// The module load a Dagger v0.21 engine performs, replayed step by step on a copy of ci/ (the closest to a real
// engine these machines allow: no engine can run here). Each step is the runtime's own, read from
// sdk/typescript/runtime at v0.21.8 (test/helpers/dagger-runtime.ts):
//   1. package.json and tsconfig.json rewritten as the runtime does;
//   2. dependencies installed by the package manager the runtime picks (npm at its pinned version, `npm install
//      --omit=dev`) from ci/package-lock.json alone: nothing may be resolved afresh;
//   3. the SDK mounted at node_modules/@dagger.io/dagger and sdk/ (here: the installed SDK of the engine's version),
//      the entrypoint file mounted at src/__dagger.entrypoint.ts, and its file list computed;
//   4. the pinned tsx runs that entrypoint: the SDK's scan() of the file list, then invoke() of the function the
//      engine names, answering through returnValue — here against the session stand-in.
// Differences from an engine, said plainly: Node 20 instead of the runtime image's Node 24, the SDK from npm
// instead of the engine's bundled copy of the same version, the stand-in instead of the engine's session.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILD_CONTEXT_IGNORE } from "../../ci/core/publish.js";
import { parseSha, tagsFor } from "../../ci/core/tags.js";
import { ROOT } from "../helpers/cli.js";
import {
  INSTALL_ARGS,
  MODULE_CONFIG_FILES,
  RUNTIME,
  detectPackageManager,
  entrypointFiles,
  invokeModule,
  replayModuleDir,
  runtimeTools,
} from "../helpers/dagger-runtime.js";
import type { FunctionCallContext } from "../helpers/dagger-stand-in.js";

const SHA = "453a6545b97fe240727c378291230abeb793d851";
const SRC = join(ROOT, "ci");
let tools: { tsx: string; npm: string };
let work = "";
let mod = ""; // the copy of ci/, as /src/ci in the runtime container
let install: { code: number; out: string };

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
    timeout: 300_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  tools = runtimeTools();
  work = mkdtempSync(join(tmpdir(), "hamalog-replay-"));
  mod = join(work, "ci");
  install = replayModuleDir(SRC, mod, tools.npm);
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Start the module the way the runtime's container entrypoint does, for one function call. */
const invoke = (call: Omit<FunctionCallContext, "module">) =>
  invokeModule(mod, tools.tsx, { module: "hamalog", ...call });

describe("Dagger v0.21 TypeScript runtime, replayed on ci/", () => {
  it("picks npm at its pinned version from ci/'s lockfile (no cold-engine `No lockfile found` fallback to yarn)", () => {
    const entries = MODULE_CONFIG_FILES.filter((f) => existsSync(join(SRC, f)));
    const pkg = JSON.parse(readFileSync(join(mod, "package.json"), "utf8"));
    expect(detectPackageManager(entries, pkg)).toEqual({ manager: "npm", version: RUNTIME.npm });
    expect(sh(tools.npm, ["-v"], mod).out.split("\n")[0]).toBe(RUNTIME.npm);
  });

  it("`npm install --omit=dev` installs from ci/package-lock.json alone: nothing resolved afresh, lockfile untouched", () => {
    expect(install.code, install.out.slice(-3000)).toBe(0);
    // npm logs `placeDep` for every dependency it resolves against the registry instead of the lockfile.
    expect(install.out.match(/^npm silly placeDep .*$/gm) ?? []).toEqual([]);
    expect(readFileSync(join(mod, "package-lock.json"), "utf8")).toBe(
      readFileSync(join(SRC, "package-lock.json"), "utf8"),
    );
    const lock = JSON.parse(readFileSync(join(SRC, "package-lock.json"), "utf8")).packages as Record<
      string,
      { version?: string; dev?: boolean }
    >;
    const installed = Object.entries(lock).filter(([p, e]) => p !== "" && !e.dev);
    for (const [path, entry] of installed) {
      const at = join(mod, path, "package.json");
      expect(existsSync(at), `${path} installed`).toBe(true);
      expect(JSON.parse(readFileSync(at, "utf8")).version, path).toBe(entry.version);
    }
    console.log(
      `[replay] npm ${RUNTIME.npm} ${INSTALL_ARGS.npm.join(" ")}: used ci/package-lock.json — ` +
        `${installed.length} packages at their locked versions, none resolved afresh`,
    );
  });

  it("the same install without the lockfile resolves afresh (so the check above can fail)", () => {
    const bare = join(work, "no-lockfile");
    mkdirSync(bare);
    cpSync(join(mod, "package.json"), join(bare, "package.json"));
    const r = sh(tools.npm, [...INSTALL_ARGS.npm, "--package-lock-only", "--loglevel=silly"], bare);
    expect(r.code, r.out.slice(-2000)).toBe(0);
    expect(r.out).toMatch(/^npm silly placeDep ROOT yaml@/m);
  });

  it("the entrypoint's file list is the door alone: the class, its results, the entrypoint and the client", () => {
    const files = entrypointFiles(join(mod, "src"));
    const rel = files.map((f) => f.slice(mod.length + 1)).sort();
    // The core (ci/core) and the CLI (ci/cli) live beside src/: imported by the class, never scanned.
    expect(rel).toEqual(["src/../sdk/client.gen.ts", "src/__dagger.entrypoint.ts", "src/index.ts", "src/results.ts"]);
  });

  it("scan() then invoke() of `tag` through the SDK's entrypoint returns the tag definition", async () => {
    const r = await invoke({
      parentName: "Hamalog",
      name: "tag",
      parent: {},
      args: { sha: SHA, branch: "main" },
    });
    expect(r.unexpected).toEqual([]);
    expect(r.code, r.out.slice(-3000)).toBe(0);
    expect(r.returned).toEqual([{ value: JSON.stringify(tagsFor({ sha: parseSha(SHA), branch: "main" })) }]);
    expect(JSON.parse(r.returned[0]!.value!)).toEqual([SHA, "latest"]);
  });

  it("a bad sha comes back through returnError with the core's message, exit code 1", async () => {
    const r = await invoke({
      parentName: "Hamalog",
      name: "tag",
      parent: {},
      args: { sha: "453a654", branch: "main" },
    });
    expect(r.unexpected).toEqual([]);
    expect(r.code).toBe(1);
    expect(r.returned).toHaveLength(1);
    expect(r.returned[0]!.error?.message).toMatch(/sha/);
  });

  it("the constructor runs through the entrypoint: the caller's source, filtered by the ignore list, is the state", async () => {
    const r = await invoke({ parentName: "Hamalog", name: "", parent: {}, args: { source: "dir-caller" } });
    expect(r.unexpected).toEqual([]);
    expect(r.code, r.out.slice(-3000)).toBe(0);
    expect(r.returned).toHaveLength(1);
    expect(JSON.parse(r.returned[0]!.value!)).toEqual({ source: "dir-caller", config: "pipeline.yaml", set: [] });
    expect(r.filters).toEqual([{ directory: "dir-caller", exclude: BUILD_CONTEXT_IGNORE }]);
  });

  it("a check loads the engine-free work on demand (a variable specifier, resolved by tsx) and answers from the source's config", async () => {
    const own = readFileSync(join(ROOT, "pipeline.yaml"), "utf8");
    const r = await invokeModule(
      mod,
      tools.tsx,
      {
        module: "hamalog",
        parentName: "Hamalog",
        name: "configValid",
        parent: { source: "dir-own", config: "pipeline.yaml", set: ["deploy/host=203.0.113.7"] },
        args: {},
      },
      { "dir-own": { "pipeline.yaml": own } },
    );
    expect(r.unexpected).toEqual([]);
    expect(r.code, r.out.slice(-3000)).toBe(0);
    expect(JSON.parse(r.returned[0]!.value!)).toBe(
      "pipeline.yaml: valid — image ghcr.io/daemin-kim/hamalog-backend; deploys to 203.0.113.7 (/opt/hamalog, service hamalog-app, strategy blue-green)",
    );
  });
});
