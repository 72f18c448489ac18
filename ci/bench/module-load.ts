// Load time of the Dagger module, in the runtime replay (test/helpers/dagger-runtime.ts): what one `dagger call tag`
// costs the module runtime — the constructor's invocation, then tag's, each a fresh `tsx src/__dagger.entrypoint.ts`
// with tsx's transform cache off (each call runs in a fresh container) — for three copies of ci/, run after run in
// rotating order so a machine that speeds up or slows down moves all of them alike:
//   floor   a module of one class and one function, importing only the SDK: what no module can go below here
//   before  ci/ at --before REF (default: the last commit before the door loaded its work lazily)
//   now     ci/ as it is
// Then where one call's time goes (a probe in the same replay): tsx's start, the SDK's import, the module's own
// imports, and the TypeScript program the SDK's introspector builds from the module's files. Wall times move with
// the machine's load; the CPU time of each call (GNU time, when installed) much less.
// Goal (issue 16): constructor + tag ≤ 1.5 s; exits 1 when it is missed. Not a test: figures for docs/dagger.md.
// Run: npx tsx ci/bench/module-load.ts [--runs N] [--before REF]
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../test/helpers/cli.js";
import { entrypointFiles, invokeModule, replayModuleDir, runtimeTools } from "../../test/helpers/dagger-runtime.js";
import { median } from "./timing.js";

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const N = Number(arg("--runs") ?? 7);
if (!Number.isInteger(N) || N < 3) throw new Error(`--runs: expected an integer ≥ 3, got ${arg("--runs")}`);
/** The door before its work was loaded lazily (ci/src imported the deploy core, zod, yaml and ssh2 statically). */
const BEFORE = arg("--before") ?? "edba3c6";
const GOAL_MS = 1500;
const SHA = "453a6545b97fe240727c378291230abeb793d851";

const FLOOR_INDEX = `/** The floor: one class, one function, the SDK alone. */
import { argument, func, object, Directory } from "@dagger.io/dagger";

/** The floor. */
@object()
export class Hamalog {
  /** The source. */
  source: Directory;
  /** The config path. */
  config: string;
  /** Overrides. */
  set: string[];

  /**
   * The floor.
   * @param source The source.
   * @param config The config path.
   * @param set Overrides.
   */
  constructor(@argument({ defaultPath: "/" }) source: Directory, config = "pipeline.yaml", set: string[] = []) {
    this.source = source.filter({ exclude: ["**/node_modules"] });
    this.config = config;
    this.set = set;
  }

  /**
   * Compute tags.
   * @param sha The sha.
   * @param branch The branch.
   */
  @func()
  tag(sha: string, branch: string): string[] {
    return branch === "main" ? [sha, "latest"] : [sha];
  }
}
`;

/** Times one call's parts inside the replay: run by the replay's tsx, from the module directory. */
const PROBE = `import { createRequire } from "node:module";
const files = JSON.parse(process.argv[2]);
const sdkDir = process.argv[3];
const t0 = performance.now();
await import("@dagger.io/dagger");
const t1 = performance.now();
const { load } = await import(sdkDir + "/dist/src/module/entrypoint/load.js");
// The entrypoint imports itself in load() too (already loaded there); here it would start a session.
await load(files.filter((f) => !f.endsWith("__dagger.entrypoint.ts")));
const t2 = performance.now();
const ts = createRequire(sdkDir + "/package.json")("typescript");
const program = ts.createProgram(files, { experimentalDecorators: true, moduleResolution: ts.ModuleResolutionKind.Node10, target: ts.ScriptTarget.ES2022 });
program.getTypeChecker();
const t3 = performance.now();
const own = program.getSourceFiles().filter((f) => !f.fileName.includes("/node_modules/") && !f.fileName.includes("/sdk/"));
console.log(JSON.stringify({ sdk: t1 - t0, imports: t2 - t1, program: t3 - t2, programFiles: program.getSourceFiles().length, ownFiles: own.length }));
`;

interface Variant {
  name: string;
  mod: string;
  /** Wall time of constructor + tag, per round. */
  totals: number[];
  ctor: number[];
  fn: number[];
  /** CPU time (user + system) of constructor + tag, per round, when measured. */
  cpu: number[];
}

const work = mkdtempSync(join(tmpdir(), "hamalog-module-load-"));
const cleanup = () => rmSync(work, { recursive: true, force: true });
process.on("SIGINT", () => (cleanup(), process.exit(130)));

try {
  const tools = runtimeTools();
  const prepare = (name: string, src: string): Variant => {
    const mod = join(work, name, "ci");
    const install = replayModuleDir(src, mod, tools.npm);
    if (install.code !== 0) throw new Error(`${name}: npm install failed\n${install.out.slice(-2000)}`);
    return { name, mod, totals: [], ctor: [], fn: [], cpu: [] };
  };
  const before = join(work, "src-before");
  mkdirSync(before);
  execFileSync("sh", ["-c", `git -C "${ROOT}" archive "${BEFORE}" ci | tar -x -C "${before}"`]);
  const floorSrc = join(work, "src-floor");
  mkdirSync(floorSrc);
  execFileSync("sh", ["-c", `git -C "${ROOT}" archive HEAD ci | tar -x -C "${floorSrc}"`]);
  rmSync(join(floorSrc, "ci/src"), { recursive: true });
  mkdirSync(join(floorSrc, "ci/src"));
  writeFileSync(join(floorSrc, "ci/src/index.ts"), FLOOR_INDEX);
  const variants = [
    prepare("floor", join(floorSrc, "ci")),
    prepare(`before (${BEFORE})`.replace(/[^\w.()-]+/g, "-"), join(before, "ci")),
    prepare("now", join(ROOT, "ci")),
  ];
  variants[1]!.name = `before (${BEFORE})`;

  const call = async (v: Variant) => {
    const ctor = await invokeModule(v.mod, tools.tsx, {
      module: "hamalog",
      parentName: "Hamalog",
      name: "",
      parent: {},
      args: { source: "dir-caller" },
    });
    const fn = await invokeModule(v.mod, tools.tsx, {
      module: "hamalog",
      parentName: "Hamalog",
      name: "tag",
      parent: { source: "dir-caller", config: "pipeline.yaml", set: [] },
      args: { sha: SHA, branch: "main" },
    });
    for (const [what, r] of [
      ["constructor", ctor],
      ["tag", fn],
    ] as const)
      if (r.code !== 0 || r.returned.length !== 1 || r.returned[0]!.error || r.unexpected.length)
        throw new Error(`${v.name}: ${what} failed (exit ${r.code}): ${r.out.slice(-1500)} ${r.unexpected.join("; ")}`);
    if (JSON.parse(fn.returned[0]!.value!).join() !== `${SHA},latest`)
      throw new Error(`${v.name}: tag returned ${fn.returned[0]!.value}`);
    return {
      ctor: ctor.ms,
      fn: fn.ms,
      cpu: ctor.cpuMs !== undefined && fn.cpuMs !== undefined ? ctor.cpuMs + fn.cpuMs : undefined,
    };
  };

  for (const v of variants) await call(v); // warm the machine's file cache, not tsx's (off)
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(i + k) % variants.length]!;
      const t = await call(v);
      v.ctor.push(t.ctor);
      v.fn.push(t.fn);
      v.totals.push(t.ctor + t.fn);
      if (t.cpu !== undefined) v.cpu.push(t.cpu);
    }
    process.stderr.write(`round ${i + 1}/${N}\n`);
  }

  // Where one call's time goes.
  const probe = (v: Variant) => {
    const file = join(v.mod, "probe.mts");
    writeFileSync(file, PROBE);
    const files = entrypointFiles(join(v.mod, "src"));
    const out: Record<string, number>[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const boot = spawnSync(tools.tsx, ["--no-deprecation", "-e", ""], {
        cwd: v.mod,
        env: { ...process.env, TSX_DISABLE_CACHE: "1" },
      });
      const tsxStart = performance.now() - t0;
      if (boot.status !== 0) throw new Error(`tsx: ${boot.stderr}`);
      const r = spawnSync(
        tools.tsx,
        [
          "--no-deprecation",
          "--tsconfig",
          join(v.mod, "tsconfig.json"),
          file,
          JSON.stringify(files),
          join(ROOT, "node_modules/@dagger.io/dagger"),
        ],
        { cwd: v.mod, encoding: "utf8", env: { ...process.env, TSX_DISABLE_CACHE: "1" } },
      );
      if (r.status !== 0) throw new Error(`probe in ${v.name}: ${r.stderr}`);
      out.push({ tsxStart, ...(JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, number>) });
    }
    const m = (k: string) => median(out.map((o) => o[k]!));
    return {
      tsxStart: m("tsxStart"),
      sdk: m("sdk"),
      imports: m("imports"),
      program: m("program"),
      files: m("programFiles"),
      own: m("ownFiles"),
    };
  };

  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const range = (xs: number[]) => `${s(median(xs))} [${s(Math.min(...xs))}–${s(Math.max(...xs))}]`;
  const floor = median(variants[0]!.totals);
  console.log(
    `\nmodule load in the runtime replay (tsx 4.15.6 with its cache off, Node ${process.versions.node}, the SDK from npm), ` +
      `${N} rounds, median [min–max]; load average ${(await import("node:os")).loadavg()[0]!.toFixed(1)}\n`,
  );
  const cpuFloor = variants[0]!.cpu.length ? median(variants[0]!.cpu) : NaN;
  console.log(
    `| copy of ci/ | constructor | tag | constructor + tag, wall | over the floor | CPU (user + sys) | over the floor |`,
  );
  console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
  for (const v of variants) {
    const cpu = v.cpu.length ? s(median(v.cpu)) : "—";
    const over = (x: number, f: number) =>
      v === variants[0] || Number.isNaN(x) ? "—" : `${x >= f ? "+" : "−"}${s(Math.abs(x - f))}`;
    console.log(
      `| ${v.name} | ${s(median(v.ctor))} | ${s(median(v.fn))} | ${range(v.totals)} | ${over(median(v.totals), floor)} | ${cpu} | ${over(v.cpu.length ? median(v.cpu) : NaN, cpuFloor)} |`,
    );
  }
  console.log(`\nwhere one call's time goes (median of 3 probes):\n`);
  console.log(
    `| copy of ci/ | tsx start | SDK import | the module's imports | introspector's program | files in it (the module's) |`,
  );
  console.log(`| --- | --- | --- | --- | --- | --- |`);
  for (const v of variants) {
    const p = probe(v);
    console.log(
      `| ${v.name} | ${s(p.tsxStart)} | ${s(p.sdk)} | ${s(p.imports)} | ${s(p.program)} | ${p.files} (${p.own}) |`,
    );
  }
  const now = median(variants[2]!.totals);
  const met = now <= GOAL_MS;
  console.log(
    `\ngoal: constructor + tag ≤ ${s(GOAL_MS)} — ${met ? "MET" : "NOT MET"}: now ${s(now)}; the floor alone (the SDK and tsx, no code of this module) is ${s(floor)}`,
  );
  process.exitCode = met ? 0 : 1;
} finally {
  cleanup();
}
