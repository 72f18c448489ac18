// Builds the `hamalog` CLI ahead of its runs: ci/cli + ci/core bundled by esbuild, dependencies included, into
// node_modules/.cache/hamalog-cli/<id>/ — main.mjs plus one chunk per command and per shared module, so a command
// loads a handful of files and only the code it uses. Start-up is mostly module loading (docs/benchmarks.md):
// bundling spares Node the resolution of hundreds of dependency files, and the chunks keep `tag` clear of the
// registry client, ssh2, yaml and zod.
//
// `npm ci` runs this as `prepare`; the launcher (hamalog.mjs) runs it again whenever ci/core or ci/cli changed since, so a stale
// build never runs. `node ci/bin/build.mjs` builds by hand and prints where.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { CACHE, ROOT, buildId, sources } from "./stamp.mjs";

/** The directory of the build of `text` (sources()), building it first unless it is there. */
export async function build(text = sources()) {
  const out = join(CACHE, buildId(text));
  if (isBuildOf(out, text)) return out;
  let esbuild;
  try {
    esbuild = await import("esbuild");
  } catch {
    throw new Error(
      "ci/core or ci/cli changed since the CLI was built, and esbuild, which rebuilds it, is not installed: run `npm ci`",
    );
  }
  const tmp = `${out}.tmp-${process.pid}`;
  await bundle(esbuild, tmp);
  writeFileSync(join(tmp, "sources.txt"), text); // last: a directory without it is not a build
  mkdirSync(CACHE, { recursive: true });
  if (existsSync(out) && !isBuildOf(out, text)) rmSync(out, { recursive: true, force: true }); // a broken or colliding one
  try {
    renameSync(tmp, out);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another run built the same sources first
  }
  prune(out);
  return out;
}

export function isBuildOf(dir, text) {
  try {
    return readFileSync(join(dir, "sources.txt"), "utf8") === text;
  } catch {
    return false;
  }
}

/** The esbuild call itself (the benchmark times it alone); meta.json says which inputs each output holds. */
export async function bundle(esbuild, outdir) {
  const result = await esbuild.build({
    entryPoints: { main: join(ROOT, "ci", "cli", "main.ts") },
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    // ssh2 finds its optional native add-ons by path at run time, so it stays in node_modules (deploy loads it).
    external: ["ssh2"],
    plugins: [builtinsForCommonJs],
    metafile: true,
    logLevel: "error",
  });
  writeFileSync(join(outdir, "meta.json"), JSON.stringify(result.metafile));
}

/**
 * Bundled CommonJS dependencies (yaml) require() Node's built-in modules, which ESM output can only do through a
 * createRequire banner in every chunk (it loads node:module, about a millisecond, in every run). Instead each such
 * require() gets a small module that imports the built-in the ESM way.
 */
const builtinsForCommonJs = {
  name: "builtins-for-commonjs",
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_]+$/ }, (args) => {
      if (args.kind !== "require-call" || !isBuiltin(args.path)) return undefined;
      return { path: args.path.replace(/^node:/, ""), namespace: "builtin" };
    });
    b.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => ({
      contents: `import * as m from "node:${args.path}"; module.exports = m.default ?? m;`,
      loader: "js",
    }));
  },
};

/** Older builds go, except recent ones: a run that started on one may still be loading its command's chunks. */
function prune(keep) {
  for (const name of readdirSync(CACHE)) {
    const p = join(CACHE, name);
    if (p !== keep && statSync(p).mtimeMs < Date.now() - 10 * 60_000) rmSync(p, { recursive: true, force: true });
  }
}

// As a script (`npm run build`, and `prepare` at `npm ci`): a failed build does not fail the install — a source
// that does not compile yet should not stop `npm ci`; the launcher builds again on the first run and reports it.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    console.log(`hamalog CLI built in ${relative(process.cwd(), await build())}`);
  } catch (e) {
    console.warn(`hamalog CLI not built (${e instanceof Error ? e.message : String(e)}); its first run will build it`);
  }
}
