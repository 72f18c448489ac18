// Preflight guards against real sshd, registry and dockerd: a host whose sshd forbids TCP forwarding is found
// out before anything changes (the health check runs through a tunnel), an unsafe deploy directory is refused
// before anything is written into it, a stalled layer download ends on deploy/pullStallTimeout, and Ctrl-C during
// preflight ends the deploy at once instead of after the registry's 30 s budget. "Nothing changed" means no deploy
// state: at most the host agent (DIR/.hamalog/agent-….sh), which a lock that was refused may have installed.
import { spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, ROOT, hamalog } from "../helpers/cli.js";
import {
  buildAppImage,
  docker,
  projectContainers,
  pushImage,
  removeComposeProject,
  removeImages,
} from "./helpers/images.js";
import { startHostileRegistry, type HostileRegistry } from "./helpers/hostile-registry.js";
import { freePort } from "./helpers/ports.js";
import { getManifestRaw, startRegistry, type Registry } from "./helpers/registry.js";
import { startRegistryProxy } from "./helpers/registry-proxy.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { composeTemplate, pipelineYaml } from "./helpers/stack-files.js";

const ID = `hamalog-preflight-it-${process.pid}`;
const REPO = "hamalog-preflight-it/app";
const SHA = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const STALL_SHA = "6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f";

let registry: Registry;
let hardened: Sshd;
let open: Sshd;
let tmp: string;
let appPort: number;
const refs: string[] = [];

/**
 * What a deploy left in `dir` besides the host agent the probe installs: its state (journal, history, release
 * files, the lock, registry logins, compose.yaml). Empty when the directory does not exist.
 */
function deployState(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const agent = join(dir, ".hamalog");
  return [
    ...readdirSync(dir).filter((f) => f !== ".hamalog"),
    ...(existsSync(agent)
      ? readdirSync(agent)
          .filter((f) => !/^agent-[0-9a-f]{12}\.sh$/.test(f))
          .map((f) => `.hamalog/${f}`)
      : []),
  ];
}

function writeConfig(name: string, sshd: Sshd, registryHost: string): { config: string; dir: string } {
  const dir = join(tmp, name, "deploy");
  const config = join(tmp, name, "pipeline.yaml");
  rmSync(join(tmp, name), { recursive: true, force: true });
  mkdirSync(join(tmp, name), { recursive: true });
  writeFileSync(join(tmp, name, "compose.yml"), composeTemplate({ appPort }));
  writeFileSync(
    config,
    pipelineYaml({
      registry: registryHost,
      repository: REPO,
      sshd,
      directory: dir,
      composeFile: "compose.yml",
      project: ID,
      health: { url: `http://127.0.0.1:${appPort}/health` },
    }),
  );
  return { config, dir };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "hamalog-preflight-"));
  appPort = await freePort();
  [registry, hardened, open] = await Promise.all([
    startRegistry(),
    startSshd({ allowTcpForwarding: "no" }),
    startSshd(),
  ]);
  const local = `${ID}/app:v1`;
  buildAppImage(local, { version: "v1" });
  const ref = `${registry.host}/${REPO}:${SHA}`;
  pushImage(local, ref);
  refs.push(local, ref);
});

afterAll(async () => {
  removeComposeProject(ID);
  removeImages(REPO, refs);
  await Promise.all([registry?.stop(), hardened?.stop(), open?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

describe("AllowTcpForwarding no", () => {
  it("stops the deploy in preflight with the right advice; nothing on the host changes", async () => {
    const { config, dir } = writeConfig("hardened", hardened, registry.host);
    const r = await hamalog(["deploy", "--sha", SHA, "--config", config, "--ssh-key-file", hardened.keyFile], {
      timeoutMs: 180_000,
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("refuses TCP forwarding (sshd `AllowTcpForwarding no`)");
    expect(r.stderr).toContain("AllowTcpForwarding local");
    expect(r.stderr).not.toMatch(/raise the health timeout/i);
    expect(r.stderr).toMatch(/Nothing on \S+ was changed/);
    expect(r.stdout).not.toMatch(/^\[lock\]/m);
    expect(deployState(dir)).toEqual([]);
    expect(projectContainers(ID)).toBe("");
  });
});

describe("the deploy directory", () => {
  it.each([
    [
      "group-writable",
      (dir: string) => chmodSync(dir, 0o770),
      /writable by group or others \(drwxrwx---\): `chmod go-w /,
    ],
    [
      "holding a symlinked compose.yaml",
      (dir: string) => symlinkSync(join(tmp, "elsewhere.yaml"), join(dir, "compose.yaml")),
      /`compose\.yaml` in it is a symlink/,
    ],
  ])("%s is refused in preflight; nothing in it changes", async (name, arrange, re) => {
    const { config, dir } = writeConfig(`dir-${name.split(" ")[0]}`, open, registry.host);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(tmp, "elsewhere.yaml"), "untouched\n");
    arrange(dir);
    const before = readdirSync(dir).sort();
    const r = await hamalog(["deploy", "--sha", SHA, "--config", config, "--ssh-key-file", open.keyFile], {
      timeoutMs: 180_000,
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/the deploy directory .* is not safe to deploy into/);
    expect(r.stderr).toMatch(re);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(readFileSync(join(tmp, "elsewhere.yaml"), "utf8")).toBe("untouched\n");
    expect(projectContainers(ID)).toBe("");
  });
});

describe("a stalled layer download", () => {
  it("ends the pull after deploy/pullStallTimeout seconds without progress, naming it, and leaves no lock", async () => {
    // An image whose layer this engine does not have: built, pushed, then removed locally.
    const local = `${ID}/app:stall`;
    buildAppImage(local, { version: `stall-${process.pid}` });
    const ref = `${registry.host}/${REPO}:${STALL_SHA}`;
    pushImage(local, ref);
    docker(["rmi", local, ref]);
    const manifest = JSON.parse((await getManifestRaw(registry.url, REPO, STALL_SHA)).body.toString("utf8"));
    const configDigest: string = manifest.config.digest;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    // Layer blobs wait forever (as a download whose peer went quiet); manifests and the config (preflight) pass.
    const proxy = await startRegistryProxy(registry.url, {
      hold: async ({ path }) => {
        if (path.includes("/blobs/") && !path.endsWith(configDigest)) await released;
      },
    });
    try {
      const { config, dir } = writeConfig("stall", open, proxy.host);
      const r = await hamalog(
        ["deploy", "--sha", STALL_SHA, "--config", config, "--ssh-key-file", open.keyFile, "--pull-stall-timeout", "3"],
        { timeoutMs: 180_000 },
      );
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout, r.stderr).toMatch(/^\[pull\] FAILED after (\d+)\.\ds$/m);
      expect(Number(/^\[pull\] FAILED after (\d+)/m.exec(r.stdout)![1])).toBeLessThan(30);
      expect(r.stderr).toMatch(/docker pull .* failed on .*\(exit 7\)[\s\S]*no progress for 3 s/);
      // The attempt is over: recorded as failed in pull (nothing was live, nothing was touched), the lock free.
      expect(existsSync(join(dir, ".hamalog", "lock.token"))).toBe(false);
      const last = JSON.parse(readFileSync(join(dir, "history.jsonl"), "utf8").trim().split("\n").at(-1)!);
      expect(last).toMatchObject({ sha: STALL_SHA, result: "failed", failedPhase: "pull" });
      expect(JSON.parse(readFileSync(join(dir, "journal.json"), "utf8"))).toMatchObject({ attempt: null });
      expect(readdirSync(join(dir, ".hamalog")).filter((f) => f.startsWith("docker-"))).toEqual([]);
      expect(projectContainers(ID)).toBe("");
    } finally {
      release();
      await proxy.stop();
      removeImages(`${proxy.host}/${REPO}`);
    }
  });
});

describe("interrupts during preflight", () => {
  let silent: HostileRegistry;
  beforeAll(async () => {
    silent = await startHostileRegistry("hang");
  });
  afterAll(async () => {
    await silent?.stop();
  });

  it("SIGINT while the registry is silent ends the deploy within seconds, not after its 30 s budget", async () => {
    const { config, dir } = writeConfig("interrupted", open, silent.host);
    const child = spawn(
      process.execPath,
      [CLI, "deploy", "--sha", SHA, "--config", config, "--ssh-key-file", open.keyFile],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const deadline = Date.now() + 60_000;
    while (!/\[connect\]/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1_500)); // inside preflight: the manifest request hangs
    const sent = Date.now();
    child.kill("SIGINT");
    const code = await exited;
    expect(Date.now() - sent).toBeLessThan(5_000);
    expect(code).not.toBe(0);
    expect(out).toMatch(/cancelled|interrupted/);
    expect(out).not.toMatch(/^\[lock\]/m);
    expect(deployState(dir)).toEqual([]);
  });
});
