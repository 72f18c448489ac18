// build/prepare, made real without an engine: the plan the core derives from a Hamalog-shaped pipeline.yaml is
// carried out with the Docker engine the way the Dagger door asks an engine to carry it out (the context without
// its outputs, the command in the builder pinned by digest with the plan's cache volumes, only the outputs put
// back), and the result goes through a real `docker build` of Hamalog's Dockerfile shape (`COPY build/libs/*.jar
// app.jar`). The "JDK" is busybox and gradlew a script (no Maven Central here), but the plan, the registry digest,
// the cache volumes and the build are real. The Dagger graph itself is asserted in test/unit/dagger-contract.
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { preparePlan, type PreparePlan } from "../../ci/core/build-plan.js";
import { parseConfig } from "../../ci/core/config.js";
import { ROOT } from "../helpers/cli.js";
import { docker, pushImage, removeImages } from "./helpers/images.js";
import { startRegistry, type Registry } from "./helpers/registry.js";

const RUN = `hamalog-prepare-${process.pid}`;
const SOURCE_FILES: Record<string, string> = {
  // Hamalog's Dockerfile, its shape: the jar Gradle left in build/libs, run by a shell entrypoint.
  Dockerfile: [
    "FROM hamalog-test/jre:21",
    "WORKDIR /app",
    "COPY build/libs/*.jar app.jar",
    "ENV SPRING_PROFILES_ACTIVE=prod",
    "EXPOSE 8080",
    'ENTRYPOINT ["sh", "-c", "echo Starting Hamalog application... && cat /app/app.jar"]',
    "",
  ].join("\n"),
  "src/main/resources/version.txt": "commit-2\n",
  // A stale jar from an earlier local build: it must never reach the image, nor the builder.
  "build/libs/hamalog-0.0.1-SNAPSHOT.jar": "STALE jar from a laptop's earlier build\n",
  "build/tmp/leftover": "a checkout's other build output, not one of the step's outputs\n",
};

// gradlew's part: what the builder saw of build/libs, one jar from the sources, a run counter in Gradle's cache.
const GRADLEW = `#!/bin/sh
set -e
seen=$(ls build/libs 2>/dev/null || true)
runs=$(cat /root/.gradle/caches/runs 2>/dev/null || echo 0)
runs=$((runs + 1))
mkdir -p /root/.gradle/caches build/libs build/tmp
echo "$runs" > /root/.gradle/caches/runs
echo "scratch of run $runs" > build/tmp/compile-scratch
{
  echo "hamalog jar built from $(cat src/main/resources/version.txt)"
  echo "args: $*"
  echo "build/libs before the build: [$seen]"
  echo "gradle cache runs: $runs"
  echo "GRADLE_OPTS=$GRADLE_OPTS"
} > build/libs/hamalog-0.0.1-SNAPSHOT.jar
`;

let registry: Registry;
let tmp: string;
let source: string;
let builderRef: string;
let plan: PreparePlan;
const volumes = new Set<string>();

/** A busybox image with the given applets: the builder's "JDK" and the runtime's "JRE". */
function busyboxImage(name: string, applets: string[]): void {
  const root = mkdtempSync(join(tmpdir(), "hamalog-prepare-image-"));
  try {
    for (const d of ["bin", "tmp", "etc", "root"]) mkdirSync(join(root, d), { recursive: true });
    copyFileSync("/bin/busybox", join(root, "bin/busybox"));
    chmodSync(join(root, "bin/busybox"), 0o755);
    for (const a of applets) symlinkSync("busybox", join(root, "bin", a));
    writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    execFileSync("tar", ["-C", root, "-cf", join(root, "..", `${name.replace(/\W/g, "-")}.tar`), "."]);
    docker(["import", join(root, "..", `${name.replace(/\W/g, "-")}.tar`), name]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function writeTree(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

/**
 * The plan carried out as the door has the engine carry it out (ci/src/index.ts `context`): `withoutDirectory` of
 * each output, `from(image)` + `withEnvVariable` + `withMountedCache(path, cacheVolume(name))` +
 * `withDirectory(workdir, context)` + `withWorkdir` + `withExec(command)`, then `withDirectory(output,
 * builder.directory(from))`. Cache volumes become Docker volumes (named per test run, removed after).
 */
function prepareContext(src: string, p: PreparePlan): string {
  const root = mkdtempSync(join(tmp, "context-"));
  const without = join(root, "without");
  cpSync(src, without, { recursive: true });
  for (const o of p.outputs) rmSync(join(without, o.path), { recursive: true, force: true });
  const work = join(root, "builder");
  cpSync(without, work, { recursive: true });
  const argv = ["run", "--rm", "--network", "none", "-w", p.workdir, "-v", `${work}:${p.workdir}`];
  for (const e of p.env) argv.push("-e", `${e.name}=${e.value}`);
  for (const c of p.caches) {
    const volume = `${RUN}-${c.volume}`;
    volumes.add(volume);
    argv.push("-v", `${volume}:${c.path}`);
  }
  docker([...argv, p.image, ...p.command]);
  const context = join(root, "context");
  cpSync(without, context, { recursive: true });
  for (const o of p.outputs) cpSync(join(work, o.path), join(context, o.path), { recursive: true });
  return context;
}

beforeAll(async () => {
  registry = await startRegistry();
  tmp = mkdtempSync(join(tmpdir(), "hamalog-prepare-"));
  busyboxImage(`${RUN}/jdk:21`, ["sh", "cat", "echo", "ls", "mkdir"]);
  busyboxImage("hamalog-test/jre:21", ["sh", "cat", "echo"]);
  const digest = pushImage(`${RUN}/jdk:21`, `${registry.host}/${RUN}/jdk:21`);
  builderRef = `${registry.host}/${RUN}/jdk:21@${digest}`;
  docker(["rmi", `${RUN}/jdk:21`, `${registry.host}/${RUN}/jdk:21`]); // the digest reference is what runs
  source = join(tmp, "hamalog-backend");
  writeTree(source, { ...SOURCE_FILES, gradlew: GRADLEW });
  chmodSync(join(source, "gradlew"), 0o755);
  // Hamalog's pipeline.yaml's build section, its builder swapped for the local one (same shape, pinned the same way).
  const own = readFileSync(join(ROOT, "pipeline.yaml"), "utf8");
  const yaml = own
    .replace(/eclipse-temurin:21-jdk@sha256:[0-9a-f]{64}/, builderRef)
    .replace(/^( {4}outputs: \[build\/libs\])$/m, "$1\n    env: { GRADLE_OPTS: -Xmx512m }");
  expect(yaml).toContain(builderRef);
  plan = preparePlan(parseConfig(yaml, "pipeline.yaml", {}).build.prepare!);
});

afterAll(async () => {
  for (const v of volumes) execFileSync("docker", ["volume", "rm", "-f", v], { stdio: "ignore" });
  removeImages(`${registry?.host}/${RUN}/jdk`, ["hamalog-test/jre:21", `${RUN}/app:1`, `${RUN}/app:2`]);
  await registry?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("build/prepare carried out for real: Hamalog's Gradle step, then its Dockerfile", () => {
  it("the plan from Hamalog's pipeline.yaml: the pinned builder, gradlew bootJar, Gradle's two caches, build/libs", () => {
    expect(plan).toEqual({
      image: builderRef,
      command: ["./gradlew", "bootJar", "-x", "test", "--no-daemon"],
      workdir: "/src",
      env: [{ name: "GRADLE_OPTS", value: "-Xmx512m" }],
      caches: [
        { volume: "gradle-caches", path: "/root/.gradle/caches" },
        { volume: "gradle-wrapper", path: "/root/.gradle/wrapper" },
      ],
      outputs: [{ path: "build/libs", from: "/src/build/libs" }],
    });
  });

  it("docker build packages the jar the step built from the commit's sources; the stale local jar never reaches the builder or the image", () => {
    const context = prepareContext(source, plan);
    docker(["build", "-q", "-t", `${RUN}/app:1`, context]);
    const out = docker(["run", "--rm", `${RUN}/app:1`]);
    expect(out).toContain("Starting Hamalog application...");
    expect(out).toContain("hamalog jar built from commit-2");
    expect(out).toContain("args: bootJar -x test --no-daemon");
    expect(out).toContain("build/libs before the build: []");
    expect(out).toContain("GRADLE_OPTS=-Xmx512m");
    expect(out).not.toContain("STALE");
    // Only the outputs come back: the builder's other files stay in the builder, the checkout's stay as they were.
    expect(readFileSync(join(context, "build/tmp/leftover"), "utf8")).toContain("not one of the step's outputs");
    expect(() => readFileSync(join(context, "build/tmp/compile-scratch"))).toThrow(/ENOENT/);
    // The source on disk is untouched (the step works on a copy, as an engine does).
    expect(readFileSync(join(source, "build/libs/hamalog-0.0.1-SNAPSHOT.jar"), "utf8")).toContain("STALE");
  });

  it("the cache volumes outlive the step: the next build finds Gradle's cache warm (where an engine keeps its volumes)", () => {
    writeFileSync(join(source, "src/main/resources/version.txt"), "commit-3\n");
    const context = prepareContext(source, plan);
    docker(["build", "-q", "-t", `${RUN}/app:2`, context]);
    const out = docker(["run", "--rm", `${RUN}/app:2`]);
    expect(out).toContain("hamalog jar built from commit-3");
    expect(out).toMatch(/gradle cache runs: [2-9]/);
  });

  it("the builder is fetched by its digest: the registry serves that manifest, and a tag pointing elsewhere changes nothing", async () => {
    busyboxImage(`${RUN}/jdk:other`, ["sh"]);
    pushImage(`${RUN}/jdk:other`, `${registry.host}/${RUN}/jdk:21`); // the tag moves
    docker(["rmi", `${RUN}/jdk:other`, `${registry.host}/${RUN}/jdk:21`]);
    const context = prepareContext(source, plan); // still runs: the moved tag has no gradlew tools, the digest does
    expect(readFileSync(join(context, "build/libs/hamalog-0.0.1-SNAPSHOT.jar"), "utf8")).toContain("commit-3");
    const digest = builderRef.split("@")[1]!;
    const r = await fetch(`${registry.url}/v2/${RUN}/jdk/manifests/${digest}`, {
      headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    expect(r.status).toBe(200);
  });
});
