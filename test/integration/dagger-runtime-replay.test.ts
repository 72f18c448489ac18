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
import { spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILD_CONTEXT_IGNORE } from "../../ci/core/publish.js";
import { parseSha, tagsFor } from "../../ci/core/tags.js";
import { ROOT } from "../helpers/cli.js";
import {
  ENTRYPOINT_TS,
  INSTALL_ARGS,
  MODULE_CONFIG_FILES,
  RUNTIME,
  detectPackageManager,
  entrypointFiles,
  runtimeTools,
  updatePackageJSONForModule,
  updateTSConfigForModule,
} from "../helpers/dagger-runtime.js";
import { DaggerStandIn, type FunctionCallContext } from "../helpers/dagger-stand-in.js";

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
  mkdirSync(mod);
  // The runtime copies package.json (rewritten) and the lockfile, installs, then adds the rest of the source
  // without config files, sdk/ and node_modules/ (config.go wrappedSourceCodeDirectory).
  writeFileSync(join(mod, "package.json"), updatePackageJSONForModule(readFileSync(join(SRC, "package.json"), "utf8")));
  for (const f of ["package-lock.json", ".npmrc"]) if (existsSync(join(SRC, f))) cpSync(join(SRC, f), join(mod, f));
  install = sh(tools.npm, [...INSTALL_ARGS.npm, "--loglevel=silly"], mod);
  writeFileSync(join(mod, "tsconfig.json"), updateTSConfigForModule(readFileSync(join(SRC, "tsconfig.json"), "utf8")));
  for (const e of readdirSync(SRC))
    if (!["package.json", "package-lock.json", "tsconfig.json", "sdk", "node_modules"].includes(e))
      cpSync(join(SRC, e), join(mod, e), { recursive: true });
  // The SDK library, mounted twice by runtime_node.go (sdk/ for tsconfig paths, node_modules/ for the introspector).
  const sdk = join(ROOT, "node_modules/@dagger.io/dagger");
  mkdirSync(join(mod, "node_modules/@dagger.io"), { recursive: true });
  symlinkSync(sdk, join(mod, "node_modules/@dagger.io/dagger"));
  mkdirSync(join(mod, "sdk"));
  writeFileSync(join(mod, "sdk/index.ts"), `export * from "../node_modules/@dagger.io/dagger/dist/src/index.js";\n`);
  cpSync(join(sdk, "dist/src/api/client.gen.d.ts"), join(mod, "sdk/client.gen.ts"));
  writeFileSync(join(mod, "src/__dagger.entrypoint.ts"), ENTRYPOINT_TS);
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Like sh, without blocking: the stand-in answers from this process while the module runs. */
function shAsync(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number; out: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, NO_COLOR: "1", ...env } });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out });
    });
  });
}

/** Start the module the way the runtime's container entrypoint does, for one function call. */
async function invoke(call: Omit<FunctionCallContext, "module">) {
  const standIn = new DaggerStandIn({ functionCall: { module: "hamalog", ...call }, directories: ["dir-caller"] });
  await standIn.start();
  try {
    const entry = join(mod, "src/__dagger.entrypoint.ts");
    const r = await shAsync(
      tools.tsx,
      ["--no-deprecation", "--tsconfig", join(mod, "tsconfig.json"), entry],
      mod,
      standIn.env(),
    );
    return {
      ...r,
      returned: [...standIn.returned],
      unexpected: [...standIn.unexpected],
      filters: [...standIn.filters],
    };
  } finally {
    await standIn.stop();
  }
}

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
});
