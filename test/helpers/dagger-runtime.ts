// What the Dagger v0.21 TypeScript runtime does to a module's source directory (ci/), ported line by line from
// the public dagger/dagger repository at tag v0.21.8 (sdk/typescript is unchanged on backport-0.21), so tests
// can replay it without an engine:
//   runtime/config.go                     which lockfiles are read, how the package manager is picked
//   runtime/tsutils/package_json_updator.go, tsconfig_updator.go, utils.go   the rewrites of package.json/tsconfig
//   runtime/runtime_node.go               the install command, and what `dagger develop` writes back
//   runtime/tsutils/bin/__dagger.entrypoint.ts  the entrypoint and its file list
//   core/schema/modulesource.go           the .gitignore/.gitattributes lines `develop` adds
// The Go code edits JSON with sjson; its own tests compare with JSONEq, so a parse → edit → print port is
// faithful for what npm and tsc read (key order is kept: sjson appends new keys, as JS objects do). When an edit
// changes nothing, sjson rewrites each value in place with Go's compact JSON, so a file whose values are already
// compact (as Prettier prints short arrays) comes back byte for byte: the port returns such input as it was.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { extname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { ROOT } from "./cli.js";
import { DaggerStandIn, type FunctionCallContext } from "./dagger-stand-in.js";

/** Versions the runtime pins (config.go, tsdistconsts/consts.go, toolchains/engine-dev/build/sdk.go). */
export const RUNTIME = {
  npm: "11.8.0",
  yarn: "1.22.22",
  pnpm: "8.15.4",
  tsx: "4.15.6",
  typescript: "5.9.3",
  node: "24.13.1",
} as const;

/** config.go moduleConfigFiles: the only files of ci/ the runtime reads before installing. */
export const MODULE_CONFIG_FILES = [
  "package.json",
  "tsconfig.json",
  "pnpm-workspace.yaml",
  ".yarnrc.yml",
  "package-lock.json",
  "yarn.lock",
  "pnpm-lock.yaml",
  "bun.lockb",
  "bun.lock",
  "bunfig.toml",
  "deno.json",
  "deno.lock",
];

type Json = Record<string, unknown>;

/** utils.go removeJSONComments: drops `//` comments outside strings (not block comments). */
export function removeJSONComments(input: string): string {
  let out = "";
  let inString = false;
  let escaped = false;
  const runes = [...input];
  for (let i = 0; i < runes.length; i++) {
    const c = runes[i]!;
    if (c === '"' && !escaped) inString = !inString;
    if (!inString && c === "/" && runes[i + 1] === "/") {
      while (i < runes.length && runes[i] !== "\n") i++;
      out += "\n";
      continue;
    }
    out += c;
    escaped = c === "\\" && !escaped;
  }
  return out;
}

function objectAt(doc: Json, path: string[]): Json {
  let node = doc;
  for (const key of path) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Json;
  }
  return node;
}

/** The edited document, or the (comment-free) input when the edit left it as it was. */
function printed(input: string, doc: Json): string {
  return JSON.stringify(JSON.parse(input)) === JSON.stringify(doc) ? input : `${JSON.stringify(doc, null, 2)}\n`;
}

/** package_json_updator.go UpdatePackageJSONForModule. */
export function updatePackageJSONForModule(packageJSON: string): string {
  const input = removeJSONComments(packageJSON);
  const doc = JSON.parse(input) as Json;
  doc.type = "module";
  const deps = doc.dependencies as Json | undefined;
  if (deps?.typescript === undefined) objectAt(doc, ["dependencies"]).typescript = RUNTIME.typescript;
  if (typeof doc.dependencies === "object" && doc.dependencies) delete (doc.dependencies as Json)["@dagger.io/dagger"];
  if (typeof doc.devDependencies === "object" && doc.devDependencies)
    delete (doc.devDependencies as Json)["@dagger.io/dagger"];
  return printed(input, doc);
}

/** tsconfig_updator.go UpdateTSConfigForModule. */
export function updateTSConfigForModule(tsConfig: string): string {
  const input = removeJSONComments(tsConfig);
  const doc = JSON.parse(input) as Json;
  const paths = objectAt(doc, ["compilerOptions", "paths"]);
  paths["@dagger.io/dagger"] = ["./sdk/index.ts"];
  paths["@dagger.io/dagger/telemetry"] = ["./sdk/telemetry.ts"];
  objectAt(doc, ["compilerOptions"]).experimentalDecorators = true;
  return printed(input, doc);
}

export type PackageManager = "npm" | "yarn" | "pnpm" | "bun" | "deno";

/** config.go detectRuntime + detectPackageManager for a directory holding `entries` (no dagger.runtime field). */
export function detectPackageManager(
  entries: string[],
  packageJSON?: { packageManager?: string },
): { manager: PackageManager; version: string } {
  const has = (f: string) => entries.includes(f);
  if (has("bun.lockb") || has("bun.lock")) return { manager: "bun", version: "" };
  const lockfile = has("package-lock.json") || has("yarn.lock") || has("pnpm-lock.yaml");
  if (!lockfile && (has("deno.json") || has("deno.lock"))) return { manager: "deno", version: "" };
  const field = packageJSON?.packageManager ?? "";
  if (field !== "") {
    const [manager, version = ""] = field.split(/@(.*)/s);
    if (version === "") throw new Error("packageManager version is missing, please add it to your package.json");
    if (manager !== "yarn" && manager !== "pnpm" && manager !== "npm")
      throw new Error(`detected unknown package manager: ${manager}`);
    return { manager, version };
  }
  if (has("package-lock.json")) return { manager: "npm", version: RUNTIME.npm };
  if (has("yarn.lock")) return { manager: "yarn", version: RUNTIME.yarn };
  if (has("pnpm-lock.yaml")) return { manager: "pnpm", version: RUNTIME.pnpm };
  return { manager: "yarn", version: RUNTIME.yarn };
}

/** runtime_node.go: the install each package manager runs in the module directory (withInstalledDependencies). */
export const INSTALL_ARGS: Record<"npm" | "yarn" | "pnpm", string[]> = {
  npm: ["install", "--omit=dev"],
  yarn: ["install", "--prod"],
  pnpm: ["install", "--shamefully-hoist=true", "--prod"],
};

/** runtime_node.go generateLockFile: what `dagger develop` runs to write the lockfile back. */
export const LOCKFILE_ARGS: Record<"npm" | "yarn" | "pnpm", string[]> = {
  npm: ["install", "--package-lock-only"],
  yarn: ["install", "--mode", "update-lockfile"],
  pnpm: ["install", "--lockfile-only"],
};

/**
 * modulesource.go: the lines `develop` appends to ci/.gitignore and ci/.gitattributes (main.go's
 * WithVCSIgnoredPaths/WithVCSGeneratedPaths, plus `.env` that codegen.go always adds), skipping any already there.
 */
export function vcsFiles(gitignore: string, gitattributes: string): { gitignore: string; gitattributes: string } {
  const add = (contents: string, names: string[], line: (n: string) => string) => {
    let out = contents !== "" && !contents.endsWith("\n") ? `${contents}\n` : contents;
    for (const n of names) if (!out.includes(n)) out += line(n.replace(/^\//, ""));
    return out;
  };
  return {
    gitignore: add(gitignore, ["sdk", "**/node_modules/**", "**/.pnpm-store/**", ".env"], (n) => `/${n}\n`),
    gitattributes: add(gitattributes, ["sdk/**"], (n) => `/${n} linguist-generated\n`),
  };
}

/**
 * tsutils/bin/__dagger.entrypoint.ts listTsFilesInModule, for the entrypoint placed in `srcDir`: every .ts/.mts
 * file under it (later entries first, as its reduce builds the list) and the generated client, which the reduce
 * seeds at every directory level, so it appears once per directory.
 */
export function entrypointFiles(srcDir: string): string[] {
  const bundle = !existsSync(`${srcDir}/../sdk/package.json`);
  const list = (dir: string): string[] =>
    readdirSync(dir)
      .map((file) => {
        const p = join(dir, file);
        if (statSync(p).isDirectory()) return list(p);
        return [".ts", ".mts"].includes(extname(p)) ? [join(dir, file)] : [];
      })
      .reduce((p, c) => [...c, ...p], [`${srcDir}/../sdk/${bundle ? "" : "src/api/"}client.gen.ts`]);
  return list(srcDir);
}

/** The entrypoint file the runtime mounts at ci/src/__dagger.entrypoint.ts (verbatim, v0.21.8). */
export const ENTRYPOINT_TS = `// THIS FILE IS AUTO GENERATED. PLEASE DO NOT EDIT.
import { entrypoint } from "@dagger.io/dagger"
import * as fs from "fs"
import * as path from "path"

const allowedExtensions = [".ts", ".mts"]

function listTsFilesInModule(dir = import.meta.dirname): string[] {
  let bundle = true

  // For background compatibility, if there's a package.json in the sdk directory
  // We should set the right path to the client.
  if (fs.existsSync(\`\${import.meta.dirname}/../sdk/package.json\`)) {
    bundle = false
  }

  const res = fs.readdirSync(dir).map((file) => {
    const filepath = path.join(dir, file)

    const stat = fs.statSync(filepath)

    if (stat.isDirectory()) {
      return listTsFilesInModule(filepath)
    }

    const ext = path.extname(filepath)
    if (allowedExtensions.find((allowedExt) => allowedExt === ext)) {
      return [path.join(dir, file)]
    }

    return []
  })

  return res.reduce(
    (p, c) => [...c, ...p],
    [\`\${import.meta.dirname}/../sdk/\${bundle ? "" : "src/api/"}client.gen.ts\`],
  )
}

const files = listTsFilesInModule()

entrypoint(files)
`;

/**
 * The runtime's pinned tools (tsx, npm) from the npm registry, installed once under .cache/ (CI installs them on
 * its fresh clone the same way). Returns the paths of their executables.
 */
export function runtimeTools(): { tsx: string; npm: string } {
  const dir = join(ROOT, ".cache", `dagger-runtime-tools-tsx${RUNTIME.tsx}-npm${RUNTIME.npm}`);
  const bin = (n: string) => join(dir, "node_modules", ".bin", n);
  if (!existsSync(bin("tsx")) || !existsSync(bin("npm"))) {
    mkdirSync(dir, { recursive: true });
    execFileSync(
      "npm",
      [
        "install",
        "--prefix",
        dir,
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        `tsx@${RUNTIME.tsx}`,
        `npm@${RUNTIME.npm}`,
      ],
      { stdio: ["ignore", "ignore", "inherit"], timeout: 300_000 },
    );
  }
  return { tsx: bin("tsx"), npm: bin("npm") };
}

/**
 * What the runtime container holds at /src/ci for a module source directory `src` (a copy of ci/), built in `mod`:
 * package.json rewritten and installed by the runtime's package manager (`npm install --omit=dev` from the
 * lockfile), tsconfig.json rewritten, the rest of the source copied without config files, sdk/ and node_modules/
 * (config.go wrappedSourceCodeDirectory), the SDK mounted at node_modules/@dagger.io/dagger and sdk/ (here: the
 * installed SDK of the engine's version), and the entrypoint file at src/__dagger.entrypoint.ts.
 */
export function replayModuleDir(src: string, mod: string, npm: string): { code: number; out: string } {
  mkdirSync(mod, { recursive: true });
  writeFileSync(join(mod, "package.json"), updatePackageJSONForModule(readFileSync(join(src, "package.json"), "utf8")));
  for (const f of ["package-lock.json", ".npmrc"]) if (existsSync(join(src, f))) cpSync(join(src, f), join(mod, f));
  const r = spawnSync(npm, [...INSTALL_ARGS.npm, "--loglevel=silly"], {
    cwd: mod,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 300_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  const install = { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
  writeFileSync(join(mod, "tsconfig.json"), updateTSConfigForModule(readFileSync(join(src, "tsconfig.json"), "utf8")));
  for (const e of readdirSync(src))
    if (!["package.json", "package-lock.json", "tsconfig.json", "sdk", "node_modules"].includes(e))
      cpSync(join(src, e), join(mod, e), { recursive: true });
  const sdk = join(ROOT, "node_modules/@dagger.io/dagger");
  mkdirSync(join(mod, "node_modules/@dagger.io"), { recursive: true });
  symlinkSync(sdk, join(mod, "node_modules/@dagger.io/dagger"));
  mkdirSync(join(mod, "sdk"));
  writeFileSync(join(mod, "sdk/index.ts"), `export * from "../node_modules/@dagger.io/dagger/dist/src/index.js";\n`);
  cpSync(join(sdk, "dist/src/api/client.gen.d.ts"), join(mod, "sdk/client.gen.ts"));
  writeFileSync(join(mod, "src/__dagger.entrypoint.ts"), ENTRYPOINT_TS);
  return install;
}

const TIME = "/usr/bin/time";
const CPU_MARK = "__hamalog_cpu";

export interface Invocation {
  code: number;
  out: string;
  /** Wall time of the runtime's process. */
  ms: number;
  /** Its CPU time (user + system), when /usr/bin/time is there to measure it. */
  cpuMs?: number;
  returned: DaggerStandIn["returned"];
  unexpected: string[];
  filters: DaggerStandIn["filters"];
}

/**
 * One function call as the engine makes it: the runtime container's entrypoint (`tsx … src/__dagger.entrypoint.ts`)
 * started for `call`, answered by the session stand-in. tsx's transform cache is off: each call runs in a fresh
 * container whose /tmp (where tsx keeps it) starts empty.
 */
export async function invokeModule(
  mod: string,
  tsx: string,
  call: FunctionCallContext,
  directoryFiles: Record<string, Record<string, string>> = { "dir-caller": {} },
): Promise<Invocation> {
  const standIn = new DaggerStandIn({ functionCall: call, directories: Object.keys(directoryFiles), directoryFiles });
  await standIn.start();
  try {
    const entry = join(mod, "src/__dagger.entrypoint.ts");
    const argv = [tsx, "--no-deprecation", "--tsconfig", join(mod, "tsconfig.json"), entry];
    // GNU time reports the child's CPU time on stderr, after everything the child wrote.
    const timed = existsSync(TIME) ? [TIME, "-f", `${CPU_MARK} %U %S`, ...argv] : argv;
    const t0 = performance.now();
    const r = await new Promise<{ code: number; out: string }>((resolve, reject) => {
      const child = spawn(timed[0]!, timed.slice(1), {
        cwd: mod,
        env: { ...process.env, NO_COLOR: "1", TSX_DISABLE_CACHE: "1", ...standIn.env() },
      });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? 1, out });
      });
    });
    const ms = performance.now() - t0;
    const cpu = new RegExp(`${CPU_MARK} ([\\d.]+) ([\\d.]+)\\s*$`).exec(r.out);
    return {
      code: r.code,
      out: cpu ? r.out.slice(0, cpu.index) : r.out,
      ms,
      ...(cpu ? { cpuMs: (Number(cpu[1]) + Number(cpu[2])) * 1000 } : {}),
      returned: [...standIn.returned],
      unexpected: [...standIn.unexpected],
      filters: [...standIn.filters],
    };
  } finally {
    await standIn.stop();
  }
}
