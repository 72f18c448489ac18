// Crash consistency against real components (sshd on 127.0.0.1, dockerd, compose v2, an htpasswd registry behind
// a loopback proxy that can hold blob downloads): the interruption matrix {SIGINT, SIGTERM, SIGKILL, SSH session
// killed} × {pull, render, up with an app whose stop takes 3 s, health, rollback}, then a full disk and a
// read-only deploy directory mid-deploy. After every case: the app serves a release that passed its health gate,
// the journal, history and `status` agree with the container that runs, the next plain `deploy` succeeds without
// --break-lock, and no registry credential is left on the host. The cells share one registry, sshd and project;
// each starts from whatever the previous cell left live.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, ROOT, hamalog, type CliResult } from "../helpers/cli.js";
import { buildAppImage, docker, removeComposeProject, removeImages } from "./helpers/images.js";
import { freePort, waitFor } from "./helpers/ports.js";
import { startRegistryProxy, type RegistryProxy } from "./helpers/registry-proxy.js";
import { loginAndPush, startRegistry, type Registry } from "./helpers/registry.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { composeTemplate, pipelineYaml } from "./helpers/stack-files.js";

const ID = `hamalog-recovery-${process.pid}`;
const DISK = `${ID}-disk`;
const REPO = "hamalog-recovery/app";
const USER = "deployer";
const TOKEN = `recovery-token-${process.pid}`;
const SIGNALS = ["SIGINT", "SIGTERM", "SIGKILL", "ssh"] as const;
const PHASES = ["pull", "render", "up", "health", "rollback"] as const;
type Sig = (typeof SIGNALS)[number];
type Phase = (typeof PHASES)[number];
// a and b are good; bad passes compose's healthcheck (/version) but not the deploy's health gate (/health);
// each pull cell deploys an image of its own, so its digest is really downloaded (and held mid-download).
const NAMES = ["a", "b", "bad", "d", ...SIGNALS.map((s) => `pull-${s}`)];
const sha = (i: number) => (i + 1).toString(16).padStart(2, "0").repeat(20);
const SHA = Object.fromEntries(NAMES.map((n, i) => [n, sha(i)])) as Record<string, string>;
const digests: Record<string, string> = {};

let registry: Registry;
let proxy: RegistryProxy;
let sshd: Sshd;
let tmp: string;
let dir: string;
let diskDir: string;
let appPort: number;
let diskPort: number;
let config: string;
/** The same deploy with an app whose stop takes 3 s: the window compose's container replacement needs. */
let slowConfig: string;
let diskConfig: string;
/** Set while a pull cell holds blob downloads; resolved by the cell to let them through. */
let holdBlobs: { seen: () => void; release: Promise<void> } | undefined;
let live = "";

function writeConfig(file: string, directory: string, project: string, port: number, stop = "1s") {
  // Relative to the config file, which sits beside it in tmp.
  const template = `${project}-${stop}.compose.yml`;
  writeFileSync(join(tmp, template), composeTemplate({ appPort: port, healthPath: "/version", stopGracePeriod: stop }));
  writeFileSync(
    file,
    pipelineYaml({
      registry: proxy.host,
      repository: REPO,
      username: USER,
      sshd,
      directory,
      composeFile: template,
      project,
      health: { url: `http://127.0.0.1:${port}/health`, timeout: 2, interval: 0.3 },
      waitTimeout: 20,
      keepImages: 20,
    }),
  );
}

const env = { HAMALOG_IT_TOKEN: TOKEN };
const flags = (cfg: string) => ["--config", cfg, "--ssh-key-file", sshd.keyFile, "--password-env", "HAMALOG_IT_TOKEN"];
const run = (args: string[], cfg = config) => hamalog([...args, ...flags(cfg)], { env, timeoutMs: 120_000 });
const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;

/** A deploy as a child process whose output the test watches while it runs. */
function start(name: string, cfg = config) {
  const child: ChildProcess = spawn(process.execPath, [CLI, "deploy", "--sha", SHA[name]!, ...flags(cfg)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<CliResult>((resolve) =>
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr })),
  );
  return { child, exited, out: () => `${stdout}\n${stderr}` };
}

const version = async (port = appPort) => {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/version`)).text()).trim();
  } catch {
    return "(no answer)";
  }
};
const journal = (d = dir) => JSON.parse(readFileSync(join(d, "journal.json"), "utf8"));
const lastHistory = (d = dir) => JSON.parse(readFileSync(join(d, "history.jsonl"), "utf8").trim().split("\n").at(-1)!);
const tempContainers = (project: string) =>
  docker(["ps", "-a", "--filter", `label=com.docker.compose.project=${project}`, "--format", "{{.Names}}"])
    .split("\n")
    .filter((n) => /^[0-9a-f]{12}_/.test(n));
/** The per-connection sshd processes of the test's sshd (its children): killing them drops every session. */
function killSshSessions(): number {
  const kids = readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ")[1] === String(sshd.pid);
      } catch {
        return false;
      }
    });
  for (const p of kids) process.kill(Number(p), "SIGKILL");
  return kids.length;
}
function interrupt(sig: Sig, child: ChildProcess) {
  if (sig === "ssh") expect(killSshSessions(), "SSH sessions to kill").toBeGreaterThan(0);
  else child.kill(sig);
}

/** Everything agrees with `name` running: what answers, the journal, history, status; no lock, no credential. */
async function expectSettled(name: string, d = dir, cfg = config, port = appPort, withStatus = true) {
  expect(await version(port)).toBe(name);
  const j = journal(d);
  expect(j.live.digest).toBe(digests[name]);
  expect(j.attempt).toBeNull();
  expect(lastHistory(d).running?.digest).toBe(digests[name]);
  expect(existsSync(join(d, ".deploy.lock")), "the lock is released").toBe(false);
  expectNoCredential(d);
  if (!withStatus) return;
  const s = await run(["status"], cfg);
  expect(s.code, text(s)).toBe(0);
  expect(s.stdout).toContain(`digest ${digests[name]}`);
  expect(s.stdout).toMatch(/container: running, .* — matches the journal/);
  expect(s.stdout).toMatch(/^lock: free$/m);
  expect(s.stdout).toMatch(/^attempt: none$/m);
  expect(text(s)).not.toMatch(/MISMATCH|NEEDS RECOVERY/);
}
function expectNoCredential(d = dir) {
  const f = join(d, ".docker", "config.json");
  const c = existsSync(f) ? readFileSync(f, "utf8") : "";
  expect(c).not.toContain(Buffer.from(`${USER}:${TOKEN}`).toString("base64"));
  expect(c).not.toMatch(/"auth"/);
}

beforeAll(async () => {
  registry = await startRegistry({ auth: { htpasswd: { [USER]: TOKEN } } });
  proxy = await startRegistryProxy(registry.url, {
    hold: async (req) => {
      const h = holdBlobs;
      // Only the host's `docker pull` (preflight on this side reads blobs too).
      if (
        !h ||
        req.method !== "GET" ||
        !/\/blobs\//.test(req.path) ||
        !/docker\//.test(String(req.headers["user-agent"]))
      )
        return;
      h.seen();
      await h.release;
    },
  });
  sshd = await startSshd();
  tmp = mkdtempSync(join(tmpdir(), "hamalog-recovery-"));
  dir = join(tmp, "srv", "app");
  diskDir = join(tmp, "srv", "disk");
  [appPort, diskPort] = [await freePort(), await freePort()];
  for (const name of NAMES) {
    const local = `${ID}/app:${name}`;
    buildAppImage(local, { version: name, healthy: name !== "bad" });
    digests[name] = loginAndPush(local, registry.host, `${registry.host}/${REPO}:${SHA[name]}`, USER, TOKEN);
    docker(["rmi", local]);
  }
  config = join(tmp, "pipeline.yaml");
  writeConfig(config, dir, ID, appPort);
  slowConfig = join(tmp, "slow.yaml");
  writeConfig(slowConfig, dir, ID, appPort, "3s");
  diskConfig = join(tmp, "disk.yaml");
  writeConfig(diskConfig, diskDir, DISK, diskPort, "3s");
  const first = await run(["deploy", "--sha", SHA.a!]);
  expect(first.code, text(first)).toBe(0);
  live = "a";
}, 240_000);

afterAll(async () => {
  holdBlobs = undefined;
  removeComposeProject(ID);
  removeComposeProject(DISK);
  try {
    execFileSync("umount", [diskDir], { stdio: "ignore" });
  } catch {
    // not mounted
  }
  removeImages(`${proxy?.host}/${REPO}`);
  await Promise.all([proxy?.stop(), registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Wait until the running deploy is in `phase` (watching its output and the host), for the cell's interruption. */
async function reach(phase: Phase, d: ReturnType<typeof start>, pullSeen: Promise<void>) {
  const said = (re: RegExp) => async () => re.test(d.out());
  if (phase === "pull") return void (await Promise.race([pullSeen, d.exited.then(() => undefined)]));
  if (phase === "render") return waitFor("the reconcile phase", said(/^\[reconcile\] /m), 60_000);
  if (phase === "health") return waitFor("the up phase to pass", said(/^\[up\] /m), 60_000);
  if (phase === "rollback") await waitFor("the health gate to fail", said(/FAILED in phase health/), 60_000);
  // up, and the rollback's own up: compose is replacing the container (the old one stopping for 3 s).
  await waitFor("a temp-named container (mid-replacement)", async () => tempContainers(ID).length > 0, 60_000);
}

describe("interruption matrix", () => {
  const cells = SIGNALS.flatMap((sig) => PHASES.map((phase) => [sig, phase] as [Sig, Phase]));
  it.each(cells)("%s during %s: a health-gated release serves, and the next deploy succeeds", async (sig, phase) => {
    const before = live;
    const other = ["a", "b", "d"].find((n) => n !== live)!;
    const candidate = phase === "pull" ? `pull-${sig}` : phase === "health" || phase === "rollback" ? "bad" : other;
    let release = () => undefined as void;
    let seen = () => undefined as void;
    const pullSeen = new Promise<void>((r) => (seen = r));
    if (phase === "pull") holdBlobs = { seen, release: new Promise<void>((r) => (release = r)) };
    const d = start(candidate, phase === "up" || phase === "rollback" ? slowConfig : config);
    try {
      await reach(phase, d, pullSeen);
      interrupt(sig, d.child);
    } finally {
      holdBlobs = undefined;
      release();
    }
    const r = await d.exited;
    if (process.env.HAMALOG_DEBUG) console.log(text(r));
    if (sig !== "SIGKILL") {
      // The run itself restored the live release (after reconnecting, when its SSH session was killed).
      expect(r.code, text(r)).toBe(1);
      await expectSettled(before, dir, config, appPort, false);
      if (sig === "ssh") expect(r.stderr).toMatch(/reconnect/);
    } else {
      // Killed outright: status tells the truth before anyone recovers.
      const s = await run(["status"]);
      expect(s.code, text(s)).toBe(0);
      if (existsSync(join(dir, ".deploy.lock"))) expect(s.stdout).toMatch(/^lock: held by .* STALE/m);
      if (journal().attempt) expect(s.stdout).toMatch(/NEEDS RECOVERY/);
    }
    // After a kill the next deploy recovers first, then really deploys another release; otherwise the run already
    // recovered itself, and redeploying what is live is the cheapest plain deploy that must succeed.
    const next = sig === "SIGKILL" ? other : before;
    const n = await run(["deploy", "--sha", SHA[next]!]);
    if (process.env.HAMALOG_DEBUG) console.log(text(n));
    expect(n.code, text(n)).toBe(0);
    expect(text(n)).not.toMatch(/--break-lock/);
    live = next;
    await expectSettled(next);
  });
});

describe("a full disk and a read-only deploy directory mid-deploy", () => {
  beforeAll(async () => {
    mkdirSync(diskDir, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", diskDir]);
    const r = await run(["deploy", "--sha", SHA.a!], diskConfig);
    expect(r.code, text(r)).toBe(0);
  });

  it.each([
    [
      "full",
      () => execFileSync("sh", ["-c", 'dd if=/dev/zero of="$1/filler" bs=64k 2>/dev/null; exit 0', "fill", diskDir]),
    ],
    ["read-only", () => execFileSync("mount", ["-o", "remount,ro", diskDir])],
  ])("%s: the failing release is rolled back anyway; the next deploy recovers", async (_, spoil) => {
    const d = start("bad", diskConfig);
    await waitFor("the up phase to pass", async () => /^\[up\] /m.test(d.out()), 60_000);
    spoil();
    const r = await d.exited;
    try {
      expect(r.code, text(r)).toBe(1);
      expect(r.stdout).toMatch(/^\[rollback-health\] /m);
      expect(await version(diskPort)).toBe("a");
      expect(journal(diskDir).live.digest).toBe(digests.a);
      expectNoCredential(diskDir);
      const s = await run(["status"], diskConfig);
      expect(s.stdout).toContain(`digest ${digests.a}`);
      expect(s.stdout).toMatch(/matches the journal/);
    } finally {
      execFileSync("mount", ["-o", "remount,rw", diskDir]);
      rmSync(join(diskDir, "filler"), { force: true });
    }
    const n = await run(["deploy", "--sha", SHA.b!], diskConfig);
    expect(n.code, text(n)).toBe(0);
    await expectSettled("b", diskDir, diskConfig, diskPort);
    const back = await run(["deploy", "--sha", SHA.a!], diskConfig);
    expect(back.code, text(back)).toBe(0);
  });
});
