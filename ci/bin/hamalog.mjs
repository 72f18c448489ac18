#!/usr/bin/env node
// Launcher for the `hamalog` CLI. Runs the build of ci/core + ci/cli that ci/bin/build.mjs made (at `npm ci`, as `prepare`)
// once it has checked that the build is of the sources as they are now, rebuilding first when it is not: a stale
// build never runs. The check stats each source file (about a millisecond); build.mjs and esbuild load only to
// rebuild.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CACHE, buildId, sources } from "./stamp.mjs";

const text = sources();
let dir = join(CACHE, buildId(text));
let built = false;
try {
  built = readFileSync(join(dir, "sources.txt"), "utf8") === text;
} catch {
  // no build of these sources yet
}
if (!built) {
  try {
    dir = await (await import("./build.mjs")).build(text);
  } catch (e) {
    process.stderr.write(`hamalog: cannot build the CLI from ci/cli: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(70);
  }
}
const { run } = await import(pathToFileURL(join(dir, "main.mjs")).href);
await run({ cacheDir: dir });
// Exit now rather than wait for anything left open (a keep-alive connection, a timer) to end; stdout/stderr are
// synchronous for files and pipes on Linux, so nothing printed is lost.
process.exit(process.exitCode ?? 0);
