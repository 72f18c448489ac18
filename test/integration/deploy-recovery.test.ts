// Crash consistency against real components (sshd on 127.0.0.1, dockerd, compose v2, an htpasswd registry behind
// a loopback proxy that can hold blob downloads): the interruption matrix {SIGINT, SIGTERM, SIGKILL, SSH session
// killed} × {pull (a download held), prepare (the attempt's files and journal in a command of their own, after a
// reconcile that removes a leftover login), up (compose mid-replacement of an app whose stop takes 3 s), health (the
// gate), recover (the failure path restoring the live release, mid-replacement)}, then a full deploy directory
// mid-deploy (a 2 MB tmpfs) and the same directory remounted read-only mid-deploy. After every case: the app serves
// a release that passed its health gate, the journal, history and `status` agree with what runs (on a read-only
// directory the journal cannot: it names the attempt until the next run), the next plain `deploy` (of another
// release) succeeds without --break-lock, and no registry credential is left on the host.
// SIGINT and SIGTERM: the run puts the host right itself before it exits. SIGKILL and a killed SSH session: the host
// does, with NO further deploy (the heartbeat's input ends and the recovery written with the journal runs): a
// health-gated release answers within 30 s, the lock is freed and the attempt ended within a minute; a run whose
// connection dropped reconnects and says what the host did. SIGTERM takes the same path as SIGINT in the CLI and
// deploy-cancel.test.ts sends both, but the matrix keeps its row: the whole file runs in about 5 minutes. The cells
// share one registry, sshd and project; each starts from whatever the previous cell left live.
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
const AUTH = Buffer.from(`${USER}:${TOKEN}`).toString("base64");
const SIGNALS = ["SIGINT", "SIGTERM", "SIGKILL", "ssh"] as const;
const PHASES = ["pull", "prepare", "up", "health", "recover"] as const;
type Sig = (typeof SIGNALS)[number];
type Phase = (typeof PHASES)[number];
// a, b and d are good; bad passes compose's healthcheck (/version) but not the deploy's health gate (/health);
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
const run = (args: string[], cfg = config) => hamalog([...args, ...flags(cfg)], { env, timeoutMs: 180_000 });
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

const get = async (port: number, path: string) => {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: r.status, body: (await r.text()).trim() };
  } catch {
    return { status: 0, body: "(no answer)" };
  }
};
const version = async (port = appPort) => (await get(port, "/version")).body;
/** `name` answers, and answers its health gate (only a release that passed it is ever live). */
const serves = async (name: string, port = appPort) =>
  (await version(port)) === name && (await get(port, "/health")).status === 200;
const journal = (d = dir) => JSON.parse(readFileSync(join(d, "journal.json"), "utf8")) as Record<string, any>;
const history = (d = dir) =>
  readFileSync(join(d, "history.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, any>);
const locked = (d = dir) => existsSync(join(d, ".hamalog", "lock.token"));
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

/**
 * Registry credentials in the deploy directory: a throwaway login directory (`.hamalog/docker-*`, `.docker`), or
 * any file holding the token or its basic-auth form.
 */
function credentialsIn(d: string): string[] {
  const found: string[] = [];
  const walk = (p: string) => {
    let entries;
    try {
      entries = readdirSync(p, { withFileTypes: true });
    } catch {
      return; // removed while we looked
    }
    for (const e of entries) {
      const f = join(p, e.name);
      if (e.isDirectory()) {
        if ((p === join(d, ".hamalog") && e.name.startsWith("docker-")) || (p === d && e.name === ".docker"))
          found.push(`${f}/`);
        walk(f);
      } else if (e.isFile() && e.name !== "filler") {
        try {
          const t = readFileSync(f, "utf8");
          if (t.includes(TOKEN) || t.includes(AUTH)) found.push(f);
        } catch {
          // removed while we looked
        }
      }
    }
  };
  walk(d);
  return found;
}
/** No credential left (a pull the interruption cut off may still be ending: its login goes with it). */
async function expectNoCredential(d = dir) {
  await waitFor("no registry credential on the host", async () => credentialsIn(d).length === 0, 15_000).catch(
    () => undefined,
  );
  expect(credentialsIn(d), "registry credentials left on the host").toEqual([]);
}

/** Everything agrees with `name` running: what answers, the journal, history, status; no lock, no credential. */
async function expectSettled(name: string, d = dir, cfg = config, port = appPort) {
  expect(await version(port)).toBe(name);
  expect((await get(port, "/health")).status, "the live release answers its health gate").toBe(200);
  const j = journal(d);
  expect(j.live.digest).toBe(digests[name]);
  expect(j.attempt).toBeNull();
  expect(history(d).at(-1)!.running?.digest).toBe(digests[name]);
  expect(locked(d), "the lock is released").toBe(false);
  await expectNoCredential(d);
  const s = await run(["status"], cfg);
  expect(s.code, text(s)).toBe(0);
  expect(s.stdout).toContain(`digest ${digests[name]}`);
  expect(s.stdout).toMatch(/^container: \S+ running, health (healthy|none), /m);
  expect(s.stdout).toMatch(/^the host matches the journal$/m);
  expect(s.stdout).toMatch(/^lock: free$/m);
  expect(s.stdout).toMatch(/^attempt: none$/m);
  expect(s.stdout).toMatch(/^health: \S+ → HTTP 200 \(healthy\)$/m);
  expect(text(s)).not.toMatch(/MISMATCH|NEEDS RECOVERY/);
}

/**
 * With no further deploy: `name` (what was live) answers healthy within 30 s of the interruption, and the lock is
 * freed and the journal names no attempt within a minute.
 */
async function hostSettles(name: string, at: number, r: CliResult, d = dir, port = appPort) {
  await waitFor(
    `${name} answering healthy within 30 s\n${text(r)}`,
    () => serves(name, port),
    Math.max(1000, 30_000 - (Date.now() - at)),
  );
  await waitFor(
    `the lock freed and the attempt ended\n${text(r)}`,
    async () => !locked(d) && journal(d).attempt === null,
    60_000,
  );
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
  removeImages(
    `${proxy?.host}/${REPO}`,
    NAMES.map((n) => `${ID}/app:${n}`),
  );
  await Promise.all([proxy?.stop(), registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A registry login a killed pull left behind (what `prepare` finds: the next run's reconcile removes it first). */
function plantLogin() {
  const login = join(dir, ".hamalog", "docker-planted");
  mkdirSync(login, { recursive: true, mode: 0o700 });
  writeFileSync(join(login, "config.json"), JSON.stringify({ auths: { [proxy.host]: { auth: AUTH } } }), {
    mode: 0o600,
  });
}

/** Wait until the running deploy is in `phase` (watching its output, the registry and the host). */
async function reach(phase: Phase, d: ReturnType<typeof start>, pullSeen: Promise<void>) {
  const said = (re: RegExp) => async () => re.test(d.out());
  if (phase === "pull") return void (await Promise.race([pullSeen, d.exited.then(() => undefined)]));
  // The reconcile had a login to remove, so the attempt's files and journal go in a command of their own: now.
  if (phase === "prepare") return waitFor("the reconcile phase", said(/^\[reconcile\] /m), 60_000);
  if (phase === "health") return waitFor("the up phase to pass", said(/^\[up\] /m), 60_000);
  if (phase === "recover") await waitFor("the health gate to fail", said(/FAILED in phase health/), 60_000);
  // up, and the recovery's own up: compose is replacing the container (the old one stopping for 3 s).
  await waitFor("a temp-named container (mid-replacement)", async () => tempContainers(ID).length > 0, 60_000);
}

describe("interruption matrix", () => {
  const cells = SIGNALS.flatMap((sig) => PHASES.map((phase) => [sig, phase] as [Sig, Phase]));
  it.each(cells)("%s during %s: a health-gated release serves, and the next deploy succeeds", async (sig, phase) => {
    const before = live;
    const other = ["a", "b", "d"].find((n) => n !== live)!;
    const candidate = phase === "pull" ? `pull-${sig}` : phase === "health" || phase === "recover" ? "bad" : other;
    let release = () => undefined as void;
    let seen = () => undefined as void;
    const pullSeen = new Promise<void>((r) => (seen = r));
    if (phase === "pull") holdBlobs = { seen, release: new Promise<void>((r) => (release = r)) };
    if (phase === "prepare") plantLogin();
    const historyBefore = history().length;
    const d = start(candidate, phase === "up" || phase === "recover" ? slowConfig : config);
    let at = 0;
    try {
      await reach(phase, d, pullSeen);
      at = Date.now();
      interrupt(sig, d.child);
    } finally {
      holdBlobs = undefined;
      release();
    }
    const r = await d.exited;
    if (process.env.HAMALOG_DEBUG) console.log(`--- ${sig} during ${phase}\n${text(r)}`);
    if (phase === "prepare") expect(r.stdout).toMatch(/^\[reconcile\] .*removed a registry login a killed run left/m);
    if (sig === "SIGINT" || sig === "SIGTERM") {
      // The run put the host right itself before it exited: nothing is left to wait for.
      expect(r.code, text(r)).toBe(1);
      expect(locked(), text(r)).toBe(false);
      expect(await serves(before), text(r)).toBe(true);
      // Interrupted in the recovery itself (after the gate failed): the recovery goes on and the run says so.
      if (phase !== "recover") expect(r.stderr).toMatch(/^interrupted: the host puts things right now/m);
      expect(r.stdout).toMatch(/^\[recover\] undo the deploy of sha [0-9a-f]{12} .* serving \(\d+\.\ds\); lock freed/m);
      expect(r.stderr).toMatch(
        /never went live; sha [0-9a-f]{12} \(sha256:[0-9a-f]{12}…\) (serves again|kept serving)/,
      );
    } else {
      expect(r.code, text(r)).not.toBe(0);
      if (sig === "ssh") {
        // The connection dropped: the host recovers by itself; the run reconnects to see it, and says what is live.
        expect(r.stderr).toMatch(/the host recovers by itself \(its heartbeat saw the connection end\); reconnecting/);
        expect(r.stderr).toMatch(/the host recovered by itself: sha [0-9a-f]{12} \(sha256:[0-9a-f]{12}…\) is live/);
      }
      // No further deploy: the host (its heartbeat saw the run go) restores what was live by itself.
      await hostSettles(before, at, r);
    }
    // History says what happened to the candidate (an attempt killed before it wrote its journal left none).
    const added = history().slice(historyBefore);
    const mine = added.filter((e) => e.sha === SHA[candidate]);
    if (phase !== "prepare" || sig === "SIGINT" || sig === "SIGTERM") expect(mine, text(r)).toHaveLength(1);
    for (const e of mine) {
      expect(["failed", "rolled-back"], text(r)).toContain(e.result);
      expect(e.running?.digest).toBe(digests[before]);
      if ((sig === "SIGINT" || sig === "SIGTERM") && phase !== "recover") expect(e.interrupted).toBe(true);
    }
    await expectSettled(before);
    // The next plain deploy (another release) goes through: no --break-lock, nothing in its way.
    const next = other;
    const n = await run(["deploy", "--sha", SHA[next]!]);
    if (process.env.HAMALOG_DEBUG) console.log(text(n));
    expect(n.code, text(n)).toBe(0);
    expect(text(n)).not.toMatch(/--break-lock|RECOVERING|DRIFT/);
    live = next;
    await expectSettled(next);
  });
});

describe("a full, then a read-only deploy directory mid-deploy", () => {
  beforeAll(async () => {
    mkdirSync(diskDir, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", diskDir]);
    const r = await run(["deploy", "--sha", SHA.a!], diskConfig);
    expect(r.code, text(r)).toBe(0);
  });

  it("full: the failing release is undone anyway (journal and history best effort); the next deploy succeeds", async () => {
    const d = start("bad", diskConfig);
    await waitFor("the up phase to pass", async () => /^\[up\] /m.test(d.out()), 60_000);
    // The gate fails on a full disk: the recovery's files cannot be unpacked, so the host runs the one it already
    // has (written with the journal before up) once the run ends its heartbeat, and the run says what is live.
    execFileSync("sh", ["-c", 'dd if=/dev/zero of="$1/filler" bs=64k 2>/dev/null; exit 0', "fill", diskDir]);
    const r = await d.exited;
    try {
      if (process.env.HAMALOG_DEBUG) console.log(text(r));
      expect(r.code, text(r)).toBe(1);
      expect(r.stderr).toMatch(/^FAILED in phase health: /m);
      expect(r.stderr).toMatch(/the host recovered by itself: sha [0-9a-f]{12} \(sha256:[0-9a-f]{12}…\) is live/);
      expect(await serves("a", diskPort), text(r)).toBe(true);
      expect(journal(diskDir).live.digest).toBe(digests.a);
      expect(locked(diskDir), "the lock is released").toBe(false);
      await expectNoCredential(diskDir);
      const s = await run(["status"], diskConfig);
      expect(s.code, text(s)).toBe(0);
      expect(s.stdout).toContain(`digest ${digests.a}`);
      expect(s.stdout).toMatch(/^the host matches the journal$/m);
      expect(s.stdout).toMatch(/^lock: free$/m);
      // The journal could not be rewritten on a full disk: if it still names the attempt, status says so.
      if (journal(diskDir).attempt) expect(s.stdout).toMatch(/^attempt: .* NEEDS RECOVERY/m);
      else expect(s.stdout).toMatch(/^attempt: none$/m);
      expect(s.stdout).not.toMatch(/MISMATCH/);
    } finally {
      rmSync(join(diskDir, "filler"), { force: true });
    }
    const n = await run(["deploy", "--sha", SHA.b!], diskConfig);
    expect(n.code, text(n)).toBe(0);
    expect(text(n)).not.toMatch(/--break-lock/);
    await expectSettled("b", diskDir, diskConfig, diskPort);
    const back = await run(["deploy", "--sha", SHA.a!], diskConfig);
    expect(back.code, text(back)).toBe(0);
    await expectSettled("a", diskDir, diskConfig, diskPort);
  });

  it("read-only: the failing release is undone all the same (staged outside the directory, the recovery the host already had); writable again, the next deploy goes through", async () => {
    const d = start("bad", diskConfig);
    await waitFor("the up phase to pass", async () => /^\[up\] /m.test(d.out()), 60_000);
    // The directory goes read-only under the run (as after a file-system error): nothing the failure path installs can
    // land, the journal and the lock cannot be rewritten — but what serves must be put right.
    execFileSync("mount", ["-o", "remount,ro", diskDir]);
    let r: CliResult;
    try {
      r = await d.exited;
      if (process.env.HAMALOG_DEBUG) console.log(text(r));
      expect(r.code, text(r)).toBe(1);
      expect(r.stderr).toMatch(/^FAILED in phase health: /m);
      // What serves was put right, and the run says so: not a failed recovery, an unrecorded one.
      expect(r.stdout).toMatch(/^\[recover\] undo the deploy .*; NOT recorded /m);
      expect(r.stderr).not.toMatch(/RECOVERY FAILED/);
      expect(r.stderr).toMatch(
        /\(sha256:[0-9a-f]{12}…\) serves again \(restored\) — but the host could not record it: the journal cannot be written in /,
      );
      expect(await serves("a", diskPort), text(r)).toBe(true);
      // The journal could not say so: it still names the attempt (the next run recovers it), and the run says that.
      expect(journal(diskDir).attempt, "the journal still names the attempt").not.toBeNull();
      expect(r.stderr).toMatch(
        /the journal cannot be written in \S+ \(read-only or full\?\): what the recovery restored runs, but journal\.json still names the attempt/,
      );
    } finally {
      execFileSync("mount", ["-o", "remount,rw", diskDir]);
    }
    const n = await run(["deploy", "--sha", SHA.b!], diskConfig);
    expect(n.code, text(n)).toBe(0);
    expect(text(n)).not.toMatch(/--break-lock/);
    await expectSettled("b", diskDir, diskConfig, diskPort);
  });
});
