// The deploy paths deploy.test.ts does not walk, against the same real components (sshd on 127.0.0.1, dockerd,
// compose v2, a distribution registry, busybox images): status before any deploy, a held lock (fail fast naming the
// holder, --lock-wait, --break-lock of a dead holder), pruning down to keepImages digests, Ctrl-C during `up --wait`,
// inline deploy/services instead of a compose template, and a health URL that accepts and never answers. Images are removed locally after pushing, so every
// deploy really pulls by digest, as on a production host.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, ROOT, hamalog, type CliResult } from "../helpers/cli.js";
import {
  buildAppImage,
  docker,
  projectContainers,
  pushImage,
  removeComposeProject,
  removeImages,
} from "./helpers/images.js";
import { startGate } from "./helpers/http-gate.js";
import { freePort, waitFor } from "./helpers/ports.js";
import { startRegistry, type Registry } from "./helpers/registry.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { composeTemplate, pipelineYaml } from "./helpers/stack-files.js";

const ID = `hamalog-deploy-edges-${process.pid}`;
const INLINE = `${ID}-inline`;
const REPO = "hamalog-deploy-edges/app";
const SHA = {
  v1: "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1",
  v2: "e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2",
  v3: "e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3",
  v4: "e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4",
  slow: "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5",
};
type Name = keyof typeof SHA;

let registry: Registry;
let sshd: Sshd;
let tmp: string;
let dir: string;
let inlineDir: string;
let appPort: number;
let inlinePort: number;
let configFile: string;
let inlineConfig: string;
const digests = {} as Record<Name, string>;

const lockDir = () => join(dir, ".deploy.lock");
const historyEntries = (d = dir) =>
  existsSync(join(d, "history.jsonl"))
    ? readFileSync(join(d, "history.jsonl"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
/** The digests of this repository present on the Docker host, as prune sees them. */
const hostDigests = () =>
  new Set(
    docker(["image", "ls", "--digests", "--format", "{{.Digest}}", `${registry.host}/${REPO}`])
      .split("\n")
      .filter((d) => d.startsWith("sha256:")),
  );
/** Processes (on the host: this machine) still running compose for `project`. */
const composeProcesses = (project: string) =>
  execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes("compose") && l.includes(project) && !l.includes(" ps -eo"));

async function answer(port: number, path = "/version"): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return (await r.text()).trim();
}

const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
const run = (args: string[], config = configFile) =>
  hamalog([...args, "--config", config, "--ssh-key-file", sshd.keyFile], { timeoutMs: 180_000 });

/** Hold the lock the way the core does: the directory, then holder.json in it. */
function holdLock(holder: string, sha: string, since: string): void {
  mkdirSync(lockDir(), { mode: 0o700 });
  writeFileSync(join(lockDir(), "holder.json"), `${JSON.stringify({ holder, sha, since, action: "deploy" })}\n`);
}

/** `[phase] … 3.2s` → 3.2 */
function phaseSeconds(stdout: string, phase: string): number {
  const m = new RegExp(`^\\[${phase}\\] .* (\\d+\\.\\d)s$`, "m").exec(stdout);
  if (!m) throw new Error(`no [${phase}] line in:\n${stdout}`);
  return Number(m[1]);
}

beforeAll(async () => {
  [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
  tmp = mkdtempSync(join(tmpdir(), "hamalog-deploy-edges-"));
  dir = join(tmp, "srv", "app");
  inlineDir = join(tmp, "srv", "inline");
  [appPort, inlinePort] = [await freePort(), await freePort()];
  for (const name of Object.keys(SHA) as Name[]) {
    const local = `${ID}/app:${name}`;
    buildAppImage(local, { version: name, healthy: name !== "slow" });
    const ref = `${registry.host}/${REPO}:${SHA[name]}`;
    digests[name] = pushImage(local, ref);
    // Leave nothing of it on the Docker host: each deploy pulls by digest, and prune sees only what deploys left.
    docker(["rmi", ref, local]);
  }
  writeFileSync(join(tmp, "compose.template.yml"), composeTemplate({ appPort }));
  // Failing checks inside start_period do not count: `up --wait` keeps waiting (until --wait-timeout) — the
  // window in which the interruption test presses Ctrl-C.
  writeFileSync(join(tmp, "compose.slow.yml"), composeTemplate({ appPort, startPeriod: "600s" }));
  const target = { registry: registry.host, repository: REPO, sshd };
  configFile = join(tmp, "pipeline.yaml");
  writeFileSync(
    configFile,
    pipelineYaml({
      ...target,
      directory: dir,
      composeFile: "compose.template.yml",
      project: ID,
      health: { url: `http://127.0.0.1:${appPort}/health` },
      keepImages: 2,
    }),
  );
  inlineConfig = join(tmp, "inline.yaml");
  writeFileSync(
    inlineConfig,
    pipelineYaml({
      ...target,
      directory: inlineDir,
      project: INLINE,
      services: [
        "    app:",
        `      ports: ["127.0.0.1:${inlinePort}:8080"]`,
        "      stop_grace_period: 1s",
        "      healthcheck:",
        '        test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"]',
        "        interval: 1s",
        "        retries: 5",
      ],
      health: { url: `http://127.0.0.1:${inlinePort}/version` },
    }),
  );
});

afterAll(async () => {
  for (const project of [ID, INLINE]) removeComposeProject(project);
  removeImages(REPO);
  await Promise.all([registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("deploy edges: lock, prune, interruption, inline services, empty status", () => {
  it("status before any deploy says nothing was deployed there yet, and exits 0", async () => {
    const r = await run(["status"]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(
      /^live: nothing deployed here yet \(.*history\.jsonl on root@127\.0\.0\.1:\d+ has no history\) — `hamalog deploy` makes the first release/m,
    );
    expect(r.stdout).toMatch(/^container: none for app$/m);
    expect(r.stdout).not.toMatch(/history line/);
    expect(existsSync(dir)).toBe(false); // status is read-only
  });

  it("deploys v1 (pulled by digest: nothing of it was on the host)", async () => {
    const r = await run(["deploy", "--sha", SHA.v1]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/^\[pull\] pulled /m);
    expect(await answer(appPort)).toBe("v1");
  });

  it("a held lock: without --lock-wait the deploy fails fast naming the holder and leaves the lock alone", async () => {
    holdLock("ci-runner-7 (hamalog CLI, pid 4242)", SHA.v4, "2025-01-01T12:00:00.000Z");
    try {
      const started = Date.now();
      const r = await run(["deploy", "--sha", SHA.v2]);
      expect(r.code, text(r)).toBe(1);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(r.stderr).toMatch(
        /another deploy holds the lock .*\.deploy\.lock on root@127\.0\.0\.1:\d+: ci-runner-7 \(hamalog CLI, pid 4242\) \(deploy of e4e4e4e4e4e4 since 2025-01-01T12:00:00\.000Z\)/,
      );
      expect(r.stderr).toMatch(/--lock-wait SECONDS.*--break-lock/);
      expect(JSON.parse(readFileSync(join(lockDir(), "holder.json"), "utf8"))).toMatchObject({
        holder: "ci-runner-7 (hamalog CLI, pid 4242)",
      });
      expect(await answer(appPort)).toBe("v1");
      expect(historyEntries()).toHaveLength(1);
    } finally {
      rmSync(lockDir(), { recursive: true, force: true });
    }
  });

  it("--lock-wait N waits for the holder to finish, then deploys", async () => {
    holdLock("ci-runner-8 (hamalog CLI, pid 4343)", SHA.v4, new Date().toISOString());
    const release = new Promise<void>((resolve) =>
      setTimeout(() => {
        rmSync(lockDir(), { recursive: true, force: true });
        resolve();
      }, 4000),
    );
    const [r] = await Promise.all([run(["deploy", "--sha", SHA.v2, "--lock-wait", "60"]), release]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(
      /^\[lock\] waiting up to 60s for the lock .*\.deploy\.lock, held by ci-runner-8 \(hamalog CLI, pid 4343\) \(deploy of e4e4e4e4e4e4 since /m,
    );
    expect(phaseSeconds(r.stdout, "lock")).toBeGreaterThanOrEqual(3);
    expect(await answer(appPort)).toBe("v2");
    expect(existsSync(lockDir())).toBe(false);
  });

  it("--lock-wait N gives up after N seconds, naming the holder", async () => {
    holdLock("ci-runner-9 (hamalog CLI, pid 4444)", SHA.v4, new Date().toISOString());
    try {
      const started = Date.now();
      const r = await run(["deploy", "--sha", SHA.v3, "--lock-wait", "2"]);
      expect(r.code, text(r)).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
      expect(r.stderr).toMatch(/another deploy holds the lock .*: ci-runner-9 \(hamalog CLI, pid 4444\)/);
      expect(existsSync(join(lockDir(), "holder.json"))).toBe(true);
    } finally {
      rmSync(lockDir(), { recursive: true, force: true });
    }
  });

  it("--break-lock removes a dead deploy's stale lock, says whose it was, and deploys", async () => {
    holdLock("ghost@old-runner (hamalog CLI, pid 999999)", SHA.v1, "2024-12-24T23:59:00.000Z");
    const r = await run(["deploy", "--sha", SHA.v3, "--break-lock"]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stderr).toMatch(
      /WARNING: broke the lock held by ghost@old-runner \(hamalog CLI, pid 999999\) \(deploy of e1e1e1e1e1e1 since 2024-12-24T23:59:00\.000Z\)/,
    );
    expect(await answer(appPort)).toBe("v3");
    expect(existsSync(lockDir())).toBe(false);
    expect(historyEntries().at(-1)).toMatchObject({ sha: SHA.v3, result: "success" });
  });

  it("prunes to keepImages: after v1..v4 only the last 2 deployed digests remain, the running one among them", async () => {
    expect(hostDigests()).toEqual(new Set([digests.v2, digests.v3])); // v3's deploy already pruned v1
    const r = await run(["deploy", "--sha", SHA.v4]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/^\[prune\] removed 1 image\(s\) beyond the last 2 deployed/m);
    expect(hostDigests()).toEqual(new Set([digests.v3, digests.v4]));
    expect(await answer(appPort)).toBe("v4");
    const running = docker(["inspect", "--format", "{{.Image}}", projectContainers(ID).split("\n")[0]!]).trim();
    expect(docker(["image", "inspect", "--format", "{{.Id}}", `${registry.host}/${REPO}@${digests.v4}`]).trim()).toBe(
      running,
    );
    expect(historyEntries().map((e) => [e.sha, e.result])).toEqual([
      [SHA.v1, "success"],
      [SHA.v2, "success"],
      [SHA.v3, "success"],
      [SHA.v4, "success"],
    ]);
  });

  it("Ctrl-C during `up --wait`: stops the remote compose, rolls back, releases the lock, records the attempt, exits 1", async () => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        "deploy",
        "--sha",
        SHA.slow,
        "--compose-file",
        "compose.slow.yml",
        "--wait-timeout",
        "300",
        "--config",
        configFile,
        "--ssh-key-file",
        sshd.keyFile,
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    try {
      await waitFor("the deploy to reach `up --wait`", async () => /^\[pull\] /m.test(stdout), 60_000);
      // The new container exists and is `starting` (its health check fails, but inside start_period).
      await waitFor(
        "the slow container to start",
        async () =>
          /starting/.test(
            docker(["ps", "--filter", `label=com.docker.compose.project=${ID}`, "--format", "{{.Status}}"]),
          ),
        30_000,
      );
      // The container is replaced first (`up --detach`, never interrupted), then `up --wait` waits for health.
      await waitFor(
        "compose `up --wait` on the host",
        async () => composeProcesses(ID).some((l) => / up .*--wait/.test(l)),
        10_000,
      );
      const pids = composeProcesses(ID)
        .filter((l) => / up /.test(l))
        .map((l) => l.trim().split(" ")[0]!);
      expect(pids.length, "the deploy's `compose up --wait` runs on the host").toBeGreaterThan(0);
      const slowUp = () => composeProcesses(ID).filter((l) => pids.includes(l.trim().split(" ")[0]!));
      const interruptedAt = Date.now();
      child.kill("SIGINT");
      // Checked before the rollback starts its own `up` (which would end the old one by replacing its container):
      // the interrupted `compose up` must not outlive the SSH channel, or it races the rollback.
      await waitFor("the diagnostics after the interruption", async () => /^\[diagnostics\] /m.test(stdout), 30_000);
      await waitFor("the interrupted `compose up` to end", async () => slowUp().length === 0, 700).catch(
        () => undefined,
      );
      expect(slowUp()).toEqual([]);
      const code = await exited;
      const out = `${stdout}\n${stderr}`;
      expect(code, out).toBe(1);
      expect(Date.now() - interruptedAt).toBeLessThan(60_000);
      expect(stdout).toMatch(/^\[up\] FAILED after \d+\.\ds$/m);
      expect(stderr).toMatch(/FAILED in phase up: interrupted while running `docker compose --project-name`/);
      expect(stderr).toMatch(/interrupted: restoring the live release first \(Ctrl-C again to stop at once/);
      expect(stdout).toMatch(/^\[rollback-health\] /m);
      expect(stderr).toContain(`rolled back to ${digests.v4} (sha ${SHA.v4})`);
      expect(await answer(appPort)).toBe("v4");
      expect(existsSync(lockDir())).toBe(false);
      expect(composeProcesses(ID)).toEqual([]);
      const last = historyEntries().at(-1)!;
      expect(last).toMatchObject({
        sha: SHA.slow,
        digest: digests.slow,
        result: "rolled-back",
        failedPhase: "up",
        interrupted: true,
        running: { digest: digests.v4 },
      });
      expect(String(last.error)).toMatch(/^interrupted while running/);
      const s = await run(["status"]);
      expect(s.stdout).toMatch(/rolled-back \(interrupted in up\)/);
      expect(s.stdout).toContain(`digest ${digests.v4}`);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    // The next deploy is not refused by a lock.
    const r = await run(["deploy", "--sha", SHA.v4]);
    expect(r.code, text(r)).toBe(0);
    expect(await answer(appPort)).toBe("v4");
    expect(hostDigests()).toEqual(new Set([digests.v3, digests.v4])); // the interrupted digest is pruned too
  });

  it("deploys from inline deploy/services (no compose template) end to end", async () => {
    const r = await run(["deploy", "--sha", SHA.v2], inlineConfig);
    expect(r.code, text(r)).toBe(0);
    expect(r.stderr).not.toMatch(/WARNING: .*services/);
    expect(await answer(inlinePort)).toBe("v2");
    const rendered = readFileSync(join(inlineDir, "compose.yaml"), "utf8");
    expect(rendered).toContain(`image: ${registry.host}/${REPO}:${SHA.v2}@${digests.v2}`);
    expect(rendered).toContain(`127.0.0.1:${inlinePort}:8080`);
    expect(historyEntries(inlineDir)).toMatchObject([{ sha: SHA.v2, result: "success" }]);
    const s = await run(["status"], inlineConfig);
    expect(s.code, text(s)).toBe(0);
    expect(s.stdout).toMatch(/container: running, health healthy/);
  });

  it("a health URL that accepts and never answers fails `health` on its own timeout, rolls back and unlocks; status reports it", async () => {
    const gate = await startGate("hang");
    try {
      // Once the probe gives up (closes its connection), answer: the rollback's health gate must pass.
      void gate.nextHangUp().then(() => (gate.mode = 200));
      const r = await hamalog(
        [
          "deploy",
          "--sha",
          SHA.v3,
          "--health-url",
          gate.url,
          "--health-timeout",
          "3",
          "--config",
          configFile,
          "--ssh-key-file",
          sshd.keyFile,
        ],
        { timeoutMs: 90_000 },
      );
      expect(r.code, text(r)).toBe(1);
      expect(r.stdout).toMatch(/^\[health\] FAILED after \d+\.\ds$/m);
      expect(phaseSeconds(r.stdout, "health")).toBeGreaterThanOrEqual(2.9);
      expect(phaseSeconds(r.stdout, "health")).toBeLessThan(8);
      expect(r.stderr).toMatch(
        new RegExp(
          `FAILED in phase health: ${gate.url.replace(/[./]/g, "\\$&")} did not answer 200 within 3s \\(1 probes; last: no answer within \\d+ ms\\)`,
        ),
      );
      expect(r.stdout).toMatch(/^\[rollback-health\] /m);
      expect(r.stderr).toContain(`rolled back to ${digests.v4} (sha ${SHA.v4})`);
      expect(existsSync(lockDir())).toBe(false);
      expect(await answer(appPort)).toBe("v4");
      expect(historyEntries().at(-1)).toMatchObject({
        sha: SHA.v3,
        result: "rolled-back",
        failedPhase: "health",
        running: { digest: digests.v4 },
      });
      // status probes the same URL: an app that hangs again is reported after status's 5 s, not waited on forever.
      gate.mode = "hang";
      const s = await hamalog(
        ["status", "--health-url", gate.url, "--lines", "0", "--config", configFile, "--ssh-key-file", sshd.keyFile],
        { timeoutMs: 60_000 },
      );
      expect(s.code, text(s)).toBe(0);
      expect(s.stdout).toContain(`health: ${gate.url} → no answer (no answer within 5000 ms)`);
      expect(s.stdout).toContain(`digest ${digests.v4}`);
      expect(s.stdout).not.toMatch(/history line|^ {2}\d{4}-/m); // --lines 0 prints no history lines
    } finally {
      await gate.stop();
    }
  });
});
