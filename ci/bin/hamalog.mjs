#!/usr/bin/env node
// Launcher for the `hamalog` CLI. Runs the TypeScript core compiled by esbuild into node_modules/.cache,
// rebuilding only when a source file changed (so `npx hamalog` always runs the code in ci/src and starts fast).
import { readdirSync, statSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const src = join(root, "ci", "src");

function newest(dir) {
  let max = 0;
  let count = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const [m, c] = newest(p);
      max = Math.max(max, m);
      count += c;
    } else if (e.name.endsWith(".ts")) {
      max = Math.max(max, statSync(p).mtimeMs);
      count++;
    }
  }
  return [max, count];
}

const [mtime, count] = newest(src);
const cacheRoot = join(root, "node_modules", ".cache", "hamalog-cli");
const outDir = join(cacheRoot, `${Math.floor(mtime)}-${count}`);
const entry = join(outDir, "main.mjs");

if (!existsSync(entry)) {
  const { build } = await import("esbuild");
  const tmp = `${outDir}.tmp-${process.pid}`;
  await build({
    entryPoints: { main: join(src, "cli", "main.ts") },
    outdir: tmp,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    logLevel: "error",
  });
  mkdirSync(cacheRoot, { recursive: true });
  try {
    renameSync(tmp, outDir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another process built the same sources first
  }
  for (const old of readdirSync(cacheRoot)) {
    if (old !== `${Math.floor(mtime)}-${count}` && !old.includes(".tmp-"))
      rmSync(join(cacheRoot, old), { recursive: true, force: true });
  }
}

const { run } = await import(pathToFileURL(entry).href);
await run();
// Exit now rather than wait for idle keep-alive sockets (fetch) to time out; stdout/stderr are synchronous
// for files and pipes on Linux, so nothing printed is lost.
process.exit(process.exitCode ?? 0);
