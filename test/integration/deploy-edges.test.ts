// The deploy paths deploy.test.ts does not walk, against the same real components (sshd on 127.0.0.1, dockerd,
// compose v2, a distribution registry, busybox images): status before any deploy; the lock (fail fast naming the
// holder, --lock-wait giving up and waiting for a real holder, a dead or silent holder's lock taken over,
// --break-lock fencing a live holder); pruning down to keepImages digests; Ctrl-C during `up` (the replacement runs
// to its end on the host, then the live release is restored); inline deploy/services instead of a compose template;
// and a health URL that accepts and never answers. Images are removed locally after pushing, so every deploy really
// pulls by digest, as on a production host.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
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
import { startGate, type Gate } from "./helpers/http-gate.js";
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
/** Processes this file started that stand in for another holder's heartbeat; killed at the end. */
const standIns: ChildProcess[] = [];

const agentDir = () => join(dir, ".hamalog");
const lockToken = () => join(agentDir(), "lock.token");
const historyEntries = (d = dir) =>
  existsSync(join(d, "history.jsonl"))
    ? readFileSync(join(d, "history.jsonl"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
const journal = () => JSON.parse(readFileSync(join(dir, "journal.json"), "utf8")) as Record<string, any>;
/** The digests of this repository present on the Docker host, as prune sees them. */
const hostDigests = () =>
  new Set(
    docker(["image", "ls", "--digests", "--format", "{{.Digest}}", `${registry.host}/${REPO}`])
      .split("\n")
      .filter((d) => d.startsWith("sha256:")),
  );
/** Processes (on the host: this machine) running compose for `project`. */
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
const short = (sha: string) => sha.slice(0, 12);

/** A process that lives until killed: stands in for a holder's heartbeat process on the host (this machine). */
function aliveProcess(): number {
  const p = spawn("sleep", ["600"], { stdio: "ignore" });
  standIns.push(p);
  return p.pid!;
}

/** The id of a process that has ended: a holder whose heartbeat on the host is gone. */
async function deadProcess(): Promise<number> {
  const p = spawn("true", [], { stdio: "ignore" });
  await new Promise((r) => p.once("exit", r));
  return p.pid!;
}

/**
 * Another run's lock, as the host agent keeps it in DIR/.hamalog/: lock.json (the holder and its fencing token),
 * lock.token, the lease file (its mtime: when the lease was last renewed) and heartbeat.pid. That other run's
 * journal has no attempt (it holds the lock, nothing more), so a run that takes it over has nothing to recover.
 */
function holdLock(o: { holder: string; sha: string; since: string; heartbeatPid: number; leaseAgeSeconds?: number }) {
  const h = agentDir();
  const token = Number(existsSync(join(h, "fence")) ? readFileSync(join(h, "fence"), "utf8").trim() : "0") + 1;
  writeFileSync(join(h, "fence"), `${token}\n`);
  writeFileSync(
    join(h, "lock.json"),
    `${JSON.stringify({ token, holder: o.holder, sha: o.sha, since: o.since, action: "deploy", id: `other-${token}` })}\n`,
  );
  writeFileSync(join(h, "lease"), "");
  const renewed = Date.now() / 1000 - (o.leaseAgeSeconds ?? 0);
  utimesSync(join(h, "lease"), renewed, renewed);
  writeFileSync(join(h, "heartbeat.pid"), `${o.heartbeatPid}\n`);
  writeFileSync(lockToken(), `${token}\n`);
  return token;
}

/** What that other run does when it finishes: its lock files go. */
function freeLock(): void {
  for (const f of ["lock.token", "lock.json", "lease", "heartbeat.pid"]) rmSync(join(agentDir(), f), { force: true });
}

/**
 * A real deploy of `sha` that holds the lock for as long as the test wants: its health URL is a gate answering 503
 * until the test opens it, so while the gate sees requests the deploy is provably inside its critical section.
 * `end()` opens the gate and waits for the deploy to end (whatever a failed assertion left it doing), then closes it.
 */
async function heldDeploy(
  sha: string,
): Promise<{ gate: Gate; done: Promise<CliResult>; end: () => Promise<CliResult | undefined> }> {
  const gate = await startGate(503);
  const probing = gate.nextRequest();
  const done = run(["deploy", "--sha", sha, "--health-url", gate.url, "--health-timeout", "120"]);
  const end = async () => {
    gate.mode = 200;
    const r = await done.catch(() => undefined);
    await gate.stop();
    return r;
  };
  try {
    await Promise.race([
      probing,
      done.then((r) => Promise.reject(new Error(`the holding deploy ended before its health phase:\n${text(r)}`))),
    ]);
  } catch (e) {
    await end();
    throw e;
  }
  return { gate, done, end };
}

/** Host-agent processes (this machine is the host) working in `d`: steps, heartbeats, recoveries. */
const agentProcesses = (d: string) =>
  execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(`${d}/.hamalog/agent-`));

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
  for (const p of standIns) if (p.exitCode === null) p.kill("SIGKILL");
  // A deploy a failed test left behind is recovered by the host by itself: let that end before removing what it
  // would otherwise start again.
  if (dir)
    await waitFor(
      "the host agent to finish in the deploy directories",
      async () => agentProcesses(dir).length + agentProcesses(inlineDir).length === 0,
      120_000,
    ).catch(() => undefined);
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
      /^live: nothing deployed here yet \(no history in \S+ on root@127\.0\.0\.1:\d+\) — `hamalog deploy` makes the first release/m,
    );
    expect(r.stdout).toMatch(/^container: none for app$/m);
    expect(r.stdout).toMatch(/^lock: free$/m);
    expect(r.stdout).not.toMatch(/history line/);
    expect(existsSync(dir)).toBe(false); // status is read-only
  });

  it("deploys v1 (pulled by digest: nothing of it was on the host)", async () => {
    const r = await run(["deploy", "--sha", SHA.v1]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/^\[pull\] pulled /m);
    expect(await answer(appPort)).toBe("v1");
    expect(existsSync(lockToken())).toBe(false);
  });

  it("a lock held by a live run: without --lock-wait the deploy fails fast naming the holder and leaves the lock alone", async () => {
    const token = holdLock({
      holder: "ci-runner-7 (hamalog CLI, pid 4242)",
      sha: SHA.v4,
      since: "2025-01-01T12:00:00.000Z",
      heartbeatPid: aliveProcess(),
    });
    const held = readFileSync(join(agentDir(), "lock.json"), "utf8");
    try {
      const started = Date.now();
      const r = await run(["deploy", "--sha", SHA.v2]);
      expect(r.code, text(r)).toBe(1);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(r.stdout).toMatch(/^\[lock\] FAILED after /m);
      expect(r.stderr).toMatch(
        new RegExp(
          `another deploy holds the lock in ${dir.replace(/[.]/g, "\\.")} on root@127\\.0\\.0\\.1:\\d+: ci-runner-7 \\(hamalog CLI, pid 4242\\) \\(deploy of e4e4e4e4e4e4 since 2025-01-01T12:00:00\\.000Z, token ${token}\\), its lease was renewed \\d+ s ago`,
        ),
      );
      expect(r.stderr).toMatch(/--lock-wait SECONDS.*--break-lock/);
      // The holder's lock is untouched: same token, same holder.
      expect(readFileSync(lockToken(), "utf8").trim()).toBe(String(token));
      expect(readFileSync(join(agentDir(), "lock.json"), "utf8")).toBe(held);
      expect(await answer(appPort)).toBe("v1");
      expect(historyEntries()).toHaveLength(1);
    } finally {
      freeLock();
    }
  });

  it("--lock-wait N gives up after N seconds, naming the holder", async () => {
    holdLock({
      holder: "ci-runner-9 (hamalog CLI, pid 4444)",
      sha: SHA.v4,
      since: new Date().toISOString(),
      heartbeatPid: aliveProcess(),
    });
    try {
      const started = Date.now();
      const r = await run(["deploy", "--sha", SHA.v3, "--lock-wait", "2"]);
      expect(r.code, text(r)).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
      expect(r.stdout).toMatch(
        /^\[lock\] waiting up to 2s for the lock, held by ci-runner-9 \(hamalog CLI, pid 4444\)/m,
      );
      expect(r.stderr).toMatch(/another deploy holds the lock .*: ci-runner-9 \(hamalog CLI, pid 4444\)/);
      expect(existsSync(lockToken())).toBe(true);
      expect(await answer(appPort)).toBe("v1");
    } finally {
      freeLock();
    }
  });

  it.each([
    ["whose heartbeat on the host is gone (the run was killed)", "v2", {}, /its heartbeat on the host is gone/],
    [
      "whose lease lapsed (the run froze: its heartbeat lives, but no renewal for longer than deploy/leaseSeconds)",
      "v3",
      { leaseAgeSeconds: 120 },
      /its lease expired \(not renewed for \d+ s > 30 s\)/,
    ],
  ] as const)(
    "a lock %s is taken over by the next deploy without --break-lock, which says whose it was",
    async (_what, name, o, why) => {
      const before = historyEntries().length;
      holdLock({
        holder: "ghost@old-runner (hamalog CLI, pid 999999)",
        sha: SHA.v1,
        since: "2024-12-24T23:59:00.000Z",
        heartbeatPid: "leaseAgeSeconds" in o ? aliveProcess() : await deadProcess(),
        ...o,
      });
      const r = await run(["deploy", "--sha", SHA[name]]);
      expect(r.code, text(r)).toBe(0);
      expect(r.stderr).toMatch(/WARNING: took over the stale lock of .*ghost@old-runner \(hamalog CLI, pid 999999\)/);
      expect(r.stderr).toMatch(why);
      expect(await answer(appPort)).toBe(name);
      expect(existsSync(lockToken())).toBe(false);
      expect(historyEntries()).toHaveLength(before + 1);
      expect(historyEntries().at(-1)).toMatchObject({ sha: SHA[name], result: "success" });
    },
  );

  it("--lock-wait N waits for a real holder to finish, then deploys", async () => {
    const a = await heldDeploy(SHA.v1);
    try {
      const b = run(["deploy", "--sha", SHA.v2, "--lock-wait", "60"]);
      await new Promise((r) => setTimeout(r, 4000));
      const [ra, rb] = await Promise.all([a.end(), b]);
      if (!ra) throw new Error("the holding deploy did not end");
      expect(ra.code, text(ra)).toBe(0);
      expect(rb.code, text(rb)).toBe(0);
      expect(rb.stdout).toMatch(
        /^\[lock\] waiting up to 60s for the lock, held by \S+@\S+ \(hamalog CLI, pid \d+\) \(deploy of e1e1e1e1e1e1 since \S+, token \d+\)/m,
      );
      expect(phaseSeconds(rb.stdout, "lock")).toBeGreaterThanOrEqual(3);
      expect(await answer(appPort)).toBe("v2");
      expect(
        historyEntries()
          .slice(-2)
          .map((e) => [e.sha, e.result]),
      ).toEqual([
        [SHA.v1, "success"],
        [SHA.v2, "success"],
      ]);
      expect(existsSync(lockToken())).toBe(false);
    } finally {
      await a.end();
    }
  });

  it("prunes to keepImages: after deploying v4 only the last 2 deployed digests remain, the running one among them", async () => {
    // History so far: v1, v2, v3, v1, v2 — the last two deployed are v2 and v1 (v3 was pruned by v2's deploy).
    expect(hostDigests()).toEqual(new Set([digests.v1, digests.v2]));
    const r = await run(["deploy", "--sha", SHA.v4]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(
      /^\[finish\] history appended; pruned [1-9]\d* image\(s\)\/file\(s\) beyond the last 2 deployed; unlocked/m,
    );
    expect(hostDigests()).toEqual(new Set([digests.v2, digests.v4]));
    expect(await answer(appPort)).toBe("v4");
    const running = docker(["inspect", "--format", "{{.Image}}", projectContainers(ID).split("\n")[0]!]).trim();
    expect(docker(["image", "inspect", "--format", "{{.Id}}", `${registry.host}/${REPO}@${digests.v4}`]).trim()).toBe(
      running,
    );
    expect(historyEntries().map((e) => [e.sha, e.result])).toEqual([
      [SHA.v1, "success"],
      [SHA.v2, "success"],
      [SHA.v3, "success"],
      [SHA.v1, "success"],
      [SHA.v2, "success"],
      [SHA.v4, "success"],
    ]);
  });

  it("--break-lock takes the lock from a live holder, says whose it was, recovers its attempt and deploys; the old holder is fenced and changes nothing", async () => {
    const a = await heldDeploy(SHA.v1);
    try {
      const before = historyEntries().length;
      const b = await run(["deploy", "--sha", SHA.v3, "--break-lock"]);
      expect(b.code, text(b)).toBe(0);
      // It names the holder it broke the lock of, and that this holder was alive (its lease fresh).
      expect(b.stderr).toMatch(
        /WARNING: .*lock .*\S+@\S+ \(hamalog CLI, pid \d+\).*e1e1e1e1e1e1.*its lease was renewed \d+ s ago/,
      );
      // A was in its health gate; the journal names the phase of its last host step (up) — either is the truth.
      expect(b.stderr).toMatch(/RECOVERING: a deploy of sha e1e1e1e1e1e1 .* died in phase (up|health)/);
      expect(await answer(appPort)).toBe("v3");
      // A passes its gate now; its next host step is refused: it lost the lock.
      const ra = await a.end();
      if (!ra) throw new Error("the old holder did not end");
      expect(ra.code, text(ra)).toBe(1);
      expect(ra.stderr).toMatch(/this run lost its lock on root@127\.0\.0\.1:\d+/);
      expect(await answer(appPort)).toBe("v3");
      expect(journal()).toMatchObject({ live: { sha: SHA.v3, digest: digests.v3 }, attempt: null });
      // A's attempt was recovered by B (rolled back to v4), then B's deploy; A wrote nothing after it was fenced.
      expect(
        historyEntries()
          .slice(before)
          .map((e) => [e.sha, e.result]),
      ).toEqual([
        [SHA.v1, "rolled-back"],
        [SHA.v3, "success"],
      ]);
      expect(historyEntries().at(-2)).toMatchObject({ recovered: true, running: { digest: digests.v4 } });
      expect(existsSync(lockToken())).toBe(false);
    } finally {
      await a.end();
    }
  });

  it("Ctrl-C during `up`: the replacement runs to its end on the host, then the live release is restored; lock free, the interrupted attempt recorded as rolled back", async () => {
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
        "15",
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
      await waitFor("the deploy to reach `up`", async () => /^\[pull\] /m.test(stdout), 60_000);
      // The new container exists and is `starting` (its health check fails, but inside start_period).
      await waitFor(
        "the slow container to start",
        async () =>
          /starting/.test(
            docker(["ps", "--filter", `label=com.docker.compose.project=${ID}`, "--format", "{{.Status}}"]),
          ),
        30_000,
      );
      await waitFor(
        "compose `up --wait` on the host",
        async () => composeProcesses(ID).some((l) => / up .*--wait/.test(l)),
        10_000,
      );
      const interruptedAt = Date.now();
      child.kill("SIGINT");
      await waitFor("the client to say it was interrupted", async () => /interrupted/.test(stderr), 10_000);
      // The replacement is a critical step: the client stops waiting for it, the host does not stop it.
      await new Promise((r) => setTimeout(r, 1500));
      expect(
        composeProcesses(ID).some((l) => / up .*--wait/.test(l)),
        "the interrupted `compose up --wait` goes on on the host",
      ).toBe(true);
      const code = await exited;
      const out = `${stdout}\n${stderr}`;
      expect(code, out).toBe(1);
      expect(Date.now() - interruptedAt).toBeLessThan(90_000);
      expect(stdout).toMatch(/^\[up\] FAILED after \d+\.\ds$/m);
      expect(stderr).toMatch(/FAILED in phase up: interrupted/);
      expect(stderr).toMatch(/interrupted: the host puts things right now/);
      expect(stdout).toMatch(
        /^\[recover\] undo the deploy of sha e5e5e5e5e5e5 .* and keep sha e3e3e3e3e3e3 .* serving .*lock freed/m,
      );
      expect(stderr).toMatch(/never went live; sha e3e3e3e3e3e3 \(sha256:[0-9a-f]{12}…\) serves again \(restored\)/);
      expect(await answer(appPort)).toBe("v3");
      expect(existsSync(lockToken())).toBe(false);
      expect(composeProcesses(ID)).toEqual([]);
      expect(journal()).toMatchObject({ live: { digest: digests.v3 }, attempt: null });
      const last = historyEntries().at(-1)!;
      expect(last).toMatchObject({
        sha: SHA.slow,
        digest: digests.slow,
        result: "rolled-back",
        failedPhase: "up",
        interrupted: true,
        running: { digest: digests.v3 },
      });
      expect(String(last.error)).toMatch(/interrupted/);
      const s = await run(["status"]);
      expect(s.code, text(s)).toBe(0);
      expect(s.stdout).toMatch(/ e5e5e5e5e5e5 sha256:\S+ rolled-back \(interrupted in up/);
      expect(s.stdout).toContain(`digest ${digests.v3}`);
      expect(s.stdout).toMatch(/^the host matches the journal$/m);
      expect(s.stdout).toMatch(/^lock: free$/m);
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
    expect(s.stdout).toMatch(/^container: \S+ running, health healthy/m);
    expect(s.stdout).toMatch(/^the host matches the journal$/m);
  });

  it("a health URL that accepts and never answers fails `health` on its own timeout, rolls back and unlocks; status reports it", async () => {
    const gate = await startGate("hang");
    try {
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
      expect(r.stdout).toMatch(
        /^\[recover\] undo the deploy of sha e3e3e3e3e3e3 .* and keep sha e4e4e4e4e4e4 .* serving/m,
      );
      expect(r.stderr).toMatch(/never went live; sha e4e4e4e4e4e4 \(sha256:[0-9a-f]{12}…\) serves again \(restored\)/);
      expect(existsSync(lockToken())).toBe(false);
      expect(await answer(appPort)).toBe("v4");
      const last = historyEntries().at(-1)!;
      expect(last).toMatchObject({
        sha: SHA.v3,
        result: "rolled-back",
        failedPhase: "health",
        running: { digest: digests.v4 },
      });
      // This run failed and put the host right itself: nothing died for a later run to recover (`recovered` is
      // for that), and the line says how long the attempt took (at least the 3 s health timeout).
      expect(last.recovered).toBeUndefined();
      expect(last.durationMs).toBeGreaterThanOrEqual(3000);
      // status probes the same URL: an app that hangs is reported after status's 5 s, not waited on forever.
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
