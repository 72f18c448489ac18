// Benchmark of `hamalog deploy` against the bare peer `ssh host 'docker compose pull && docker compose up -d
// --wait'`, on a real registry, sshd, dockerd and compose v2, all on 127.0.0.1. Not a test: it prints numbers
// for docs/benchmarks.md.
//   (a) wall time of an image change, image NOT on the host (removed before every run of both sides)
//   (b) the same with the digest already on the host (hamalog skips `pull`; the peer's pull only checks)
//   (c) failed HTTP requests from a steady request loop (one every 20 ms) on the app's port during each deploy
//   (d) where hamalog's extra time goes: remote sessions per deploy (counted in-process through the CLI's own
//       door with a counting transport, untimed) and what one session costs on this host
// Each side has its own compose project, port and pair of images (same size, built the same way, in two
// repositories of the same registry), so neither side's images or containers get in the other's way and
// hamalog's `prune` never touches the peer's images. Every timed run is a real image change: a round is
// X→Y (Y removed first: cold) then Y→X (X still on the host: warm), for each side, sides alternating order.
// Run: npx tsx ci/bench/deploy.ts [--runs N] [--fast-shell]   (needs docker, compose v2, docker-registry, sshd)
// Or:  npx tsx ci/bench/deploy.ts --strategies [--slow-seconds 20]: blue-green vs recreate vs the peer (strategies.ts).
// --fast-shell: the test sshd sets SHLVL=1 for its sessions, so bash (root's login shell) skips ~/.bashrc, which on
// these machines runs `pyenv init` (~100 ms per command) — like a server whose ~/.bashrc returns early when
// non-interactive. Both sides use the same sshd either way.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { get } from "node:http";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import ssh2 from "ssh2";
import { CLI, ROOT } from "../../test/helpers/cli.js";
import { buildAppImage, docker, pushImage } from "../../test/integration/helpers/images.js";
import { freePort, waitFor } from "../../test/integration/helpers/ports.js";
import { startRegistry, type Registry } from "../../test/integration/helpers/registry.js";
import { startSshd, type Sshd } from "../../test/integration/helpers/sshd.js";
import { composeTemplate, pipelineYaml } from "../../test/integration/helpers/stack-files.js";
import { remoteDoor } from "../cli/deploy-env.js";
import { deploy as deployCore } from "../core/deploy/run.js";
import type { Remote } from "../core/deploy/remote.js";
import { connectSsh } from "../core/deploy/ssh.js";
import { median, timedSpawn } from "./timing.js";
import { parseSha, type Sha } from "../core/tags.js";

const runsArg = process.argv.indexOf("--runs");
const N = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 5;
if (!Number.isInteger(N) || N < 1)
  throw new Error(`--runs: expected a positive integer, got ${process.argv[runsArg + 1]}`);
const FAST_SHELL = process.argv.includes("--fast-shell");
const ID = `hamalog-bench-deploy-${process.pid}`;
const REQUEST_EVERY_MS = 20;
const REQUEST_MAX_MS = 120_000;
const REQUEST_TIMEOUT_MS = 1_000;

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const fakeSha = (v: string) => parseSha(createHash("sha1").update(`${ID} ${v}`).digest("hex"));

interface Side {
  name: "hamalog" | "peer";
  repo: string;
  port: number;
  dir: string;
  project: string;
  /** X and Y: the two images this side switches between. */
  images: Record<"X" | "Y", { sha: Sha; ref: string; digest: string }>;
}

interface Loop {
  ok: number;
  failed: number;
  kinds: Record<string, number>;
  /** Longest span from a failed request's start to the next successful request's start. */
  outageMs: number;
}

interface Run {
  side: Side["name"];
  mode: "cold" | "warm";
  ms: number;
  loop: Loop;
  phases: Record<string, number>;
}

function probe(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = get({ host: "127.0.0.1", port, path: "/version", agent: false, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200 ? null : `HTTP ${res.statusCode}`));
      res.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** One request every REQUEST_EVERY_MS (sequential, new connection each) until `stop` resolves; bounded in time. */
async function requestLoop(port: number, stop: Promise<unknown>): Promise<Loop> {
  let stopped = false;
  void stop.finally(() => (stopped = true));
  const loop: Loop = { ok: 0, failed: 0, kinds: {}, outageMs: 0 };
  const t0 = performance.now();
  let failingSince: number | null = null;
  while (!stopped && performance.now() - t0 < REQUEST_MAX_MS) {
    const start = performance.now();
    const err = await probe(port);
    if (err === null) {
      loop.ok++;
      if (failingSince !== null) loop.outageMs = Math.max(loop.outageMs, start - failingSince);
      failingSince = null;
    } else {
      loop.failed++;
      loop.kinds[err] = (loop.kinds[err] ?? 0) + 1;
      failingSince ??= start;
    }
    await new Promise((r) => setTimeout(r, Math.max(0, start + REQUEST_EVERY_MS - performance.now())));
  }
  if (failingSince !== null) loop.outageMs = Math.max(loop.outageMs, performance.now() - failingSince);
  return loop;
}

function composeFile(side: Side, image: string): string {
  return composeTemplate({
    preamble: side.name === "peer" ? [`name: ${side.project}`] : [],
    image,
    appPort: side.port,
  });
}

/** Remove an image from the host by id (all its names), and prove it is gone. */
function removeImage(name: string, digest: string): void {
  const r = spawnSync("docker", ["image", "inspect", "--format", "{{.Id}}", `${name}@${digest}`], { encoding: "utf8" });
  if (r.status !== 0) return;
  const id = r.stdout.trim();
  docker(["rmi", "-f", id]);
  if (spawnSync("docker", ["image", "inspect", id], { stdio: "ignore" }).status === 0)
    throw new Error(`bench: ${name}@${digest} is still on the host (in use?)`);
}

/** Deploy in-process through the CLI's door, counting what crosses the one SSH connection. */
async function countSessions(config: string, keyFile: string, sha: Sha): Promise<{ execs: number; tunnels: number }> {
  const io = { out: () => undefined, err: () => undefined, env: process.env };
  const { input, env } = remoteDoor({ config, "ssh-key-file": keyFile }, io);
  const counts = { execs: 0, tunnels: 0 };
  const connect = env.connect;
  env.connect = async (): Promise<Remote> => {
    const r = await connect();
    return {
      label: r.label,
      hostKeyFingerprint: r.hostKeyFingerprint,
      run: (argv, opts) => (counts.execs++, r.run(argv, opts)),
      httpGet: (url, ms) => (counts.tunnels++, r.httpGet(url, ms)),
      close: () => r.close(),
    };
  };
  await deployCore({ ...input, sha }, env);
  return counts;
}

/** Median ms of `exec true` over one raw ssh2 connection with Nagle's algorithm left on (ssh2's default; ssh.ts turns it off). */
async function execTrueNagle(s: Sshd, times: number): Promise<number> {
  const c = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    c.once("ready", () => resolve());
    c.once("error", reject);
    c.connect({ host: "127.0.0.1", port: s.port, username: s.user, privateKey: readFileSync(s.keyFile, "utf8") });
  });
  const xs: number[] = [];
  try {
    for (let i = 0; i < times; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) =>
        c.exec("true", (err, stream) => {
          if (err) return reject(err);
          stream.resume();
          stream.stderr.resume();
          stream.on("close", () => resolve());
        }),
      );
      xs.push(performance.now() - t0);
    }
  } finally {
    c.end();
  }
  return median(xs);
}

const present = (name: string, digest: string) =>
  spawnSync("docker", ["image", "inspect", `${name}@${digest}`], { stdio: "ignore" }).status === 0;

let registry: Registry | undefined;
let sshd: Sshd | undefined;
let tmp: string | undefined;
const sides: Side[] = [];
const localImages: string[] = [];
let cleaned = false;

async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const side of sides) {
    const file = join(side.dir, "compose.yaml");
    spawnSync("docker", ["compose", "-p", side.project, "-f", file, "down", "--remove-orphans", "--timeout", "1"], {
      stdio: "ignore",
    });
    const lines =
      spawnSync("docker", ["image", "ls", "--digests", "--format", "{{.ID}}", `${registry?.host}/${side.repo}`], {
        encoding: "utf8",
      }).stdout ?? "";
    for (const id of new Set(lines.split("\n").filter(Boolean)))
      spawnSync("docker", ["rmi", "-f", id], { stdio: "ignore" });
  }
  for (const ref of localImages) spawnSync("docker", ["rmi", "-f", ref], { stdio: "ignore" });
  await Promise.all([registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

// `on`, not `once`: Ctrl-C reaches this process twice (from the terminal's process group and relayed by tsx), and
// a second signal without a listener would kill it half-way through the cleanup.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (cleaned) return;
    console.error(`\nbench: ${sig}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
  tmp = mkdtempSync(join(tmpdir(), "hamalog-bench-deploy-"));
  const reg = registry;
  const ssh = sshd;
  if (FAST_SHELL) {
    appendFileSync(join(ssh.dir, "sshd_config"), "SetEnv SHLVL=1\n");
    process.kill(ssh.pid, "SIGHUP"); // sshd -D re-executes itself (same pid) and rereads its config
    await new Promise((r) => setTimeout(r, 300));
  }

  for (const name of ["hamalog", "peer"] as const) {
    const repo = `hamalog-bench-deploy/${name === "hamalog" ? "app" : "peer"}`;
    const side: Side = {
      name,
      repo,
      port: await freePort(),
      dir: join(tmp, name, "srv"),
      project: `${ID}-${name}`,
      images: {} as Side["images"],
    };
    for (const v of ["X", "Y"] as const) {
      const local = `${ID}/${name}:${v}`;
      buildAppImage(local, { version: `${name} ${v}` });
      localImages.push(local);
      const sha = fakeSha(`${name} ${v}`);
      const ref = `${reg.host}/${repo}:${sha}`;
      const digest = pushImage(local, ref);
      docker(["rmi", ref, local]); // nothing of it stays on the host: the first pull is a real pull
      side.images[v] = { sha, ref, digest };
    }
    sides.push(side);
  }
  const [h, p] = sides as [Side, Side];

  // hamalog: the config and template the integration test uses, without login (the local registry is open).
  mkdirSync(join(tmp, "hamalog"), { recursive: true });
  writeFileSync(join(tmp, "hamalog", "compose.template.yml"), composeFile(h, "placeholder"));
  const config = join(tmp, "hamalog", "pipeline.yaml");
  writeFileSync(
    config,
    pipelineYaml({
      registry: reg.host,
      repository: h.repo,
      sshd: ssh,
      directory: h.dir,
      composeFile: "compose.template.yml",
      project: h.project,
      health: { url: `http://127.0.0.1:${h.port}/health` },
    }),
  );
  // peer: the same compose file; its image line is rewritten by a `sed` inside the timed ssh command.
  mkdirSync(p.dir, { recursive: true });
  writeFileSync(join(p.dir, "compose.yaml"), composeFile(p, p.images.X.ref));
  const knownHosts = join(tmp, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${ssh.port} ${readFileSync(join(ssh.dir, "host_key.pub"), "utf8")}`);
  const sshArgs = (remote: string) => [
    "-p",
    String(ssh.port),
    "-i",
    ssh.keyFile,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    `${ssh.user}@127.0.0.1`,
    remote,
  ];
  const peerCommand = (ref: string) =>
    `cd ${p.dir} && sed -i 's#^    image: .*#    image: ${ref}#' compose.yaml && docker compose pull && docker compose up -d --wait`;

  await waitFor("sshd accepting sessions", async () => (await timedSpawn("ssh", sshArgs("true"))).code === 0);

  const deploy = async (side: Side, v: "X" | "Y") => {
    const img = side.images[v];
    return side.name === "hamalog"
      ? timedSpawn(process.execPath, [
          CLI,
          "deploy",
          "--config",
          config,
          "--sha",
          img.sha,
          "--ssh-key-file",
          ssh.keyFile,
        ])
      : timedSpawn("ssh", sshArgs(peerCommand(img.ref)));
  };
  const answers = async (side: Side, v: "X" | "Y") => {
    const r = await fetch(`http://127.0.0.1:${side.port}/version`);
    const body = (await r.text()).trim();
    if (body !== `${side.name} ${v}`)
      throw new Error(`bench: ${side.name} answers "${body}", expected "${side.name} ${v}"`);
  };

  // Untimed: the first deploy of X on each side (also compiles the CLI once if ci/src changed).
  for (const side of sides) {
    const r = await deploy(side, "X");
    if (r.code !== 0)
      throw new Error(`bench: first ${side.name} deploy failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    await answers(side, "X");
  }

  const runs: Run[] = [];
  const timed = async (side: Side, v: "X" | "Y", mode: Run["mode"]) => {
    const img = side.images[v];
    if (mode === "cold") removeImage(`${reg.host}/${side.repo}`, img.digest);
    if (present(`${reg.host}/${side.repo}`, img.digest) !== (mode === "warm"))
      throw new Error(`bench: ${side.name} ${v} ${mode}: image presence is not as intended`);
    const deployed = deploy(side, v);
    const [r, loop] = await Promise.all([deployed, requestLoop(side.port, deployed)]);
    if (r.code !== 0)
      throw new Error(
        `bench: ${side.name} deploy of ${v} (${mode}) failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`,
      );
    await answers(side, v);
    const phases: Record<string, number> = {};
    for (const m of r.stdout.matchAll(/^\[([a-z-]+)\] .* (\d+\.\d)s$/gm)) phases[m[1]!] = Number(m[2]) * 1000;
    runs.push({ side: side.name, mode, ms: r.ms, loop, phases });
    process.stderr.write(
      `  ${side.name.padEnd(7)} ${mode} →${v}  ${sec(r.ms)}  requests failed ${loop.failed}/${loop.ok + loop.failed}\n`,
    );
  };

  console.error(`bench: ${N} rounds; each: per side X→Y (Y removed first: cold), then Y→X (X on the host: warm)`);
  for (let i = 0; i < N; i++) {
    for (const side of i % 2 ? [p, h] : [h, p]) {
      await timed(side, "Y", "cold");
      await timed(side, "X", "warm");
    }
  }

  // (d) untimed: count hamalog's sessions for a cold and a warm change, and time one session on this host.
  removeImage(`${reg.host}/${h.repo}`, h.images.Y.digest);
  const sessionsCold = await countSessions(config, ssh.keyFile, h.images.Y.sha);
  const sessionsWarm = await countSessions(config, ssh.keyFile, h.images.X.sha);
  await answers(h, "X");
  const remote = await connectSsh(
    {
      host: "127.0.0.1",
      port: ssh.port,
      user: ssh.user,
      privateKey: readFileSync(ssh.keyFile, "utf8"),
      hostKey: ssh.hostKeyFingerprint,
    },
    () => undefined,
  );
  const trueMs: number[] = [];
  try {
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      await remote.run(["true"]);
      trueMs.push(performance.now() - t0);
    }
  } finally {
    remote.close();
  }
  const nagleMs = await execTrueNagle(ssh, 15);
  const sshTrue: number[] = [];
  for (let i = 0; i < 5; i++) sshTrue.push((await timedSpawn("ssh", sshArgs("true"))).ms);

  const of = (side: Side["name"], mode: Run["mode"]) => runs.filter((r) => r.side === side && r.mode === mode);
  const med = (side: Side["name"], mode: Run["mode"]) => median(of(side, mode).map((r) => r.ms));
  const range = (xs: number[]) => `${sec(Math.min(...xs))}–${sec(Math.max(...xs))}`;
  const failed = (side: Side["name"], mode: Run["mode"]) => {
    const rs = of(side, mode);
    const f = rs.map((r) => r.loop.failed);
    const total = rs.map((r) => r.loop.ok + r.loop.failed);
    const kinds: Record<string, number> = {};
    for (const r of rs) for (const [k, n] of Object.entries(r.loop.kinds)) kinds[k] = (kinds[k] ?? 0) + n;
    return `median ${median(f)} of ${median(total)} (range ${Math.min(...f)}–${Math.max(...f)}), longest outage median ${sec(median(rs.map((r) => r.loop.outageMs)))}; ${
      Object.entries(kinds)
        .map(([k, n]) => `${k} ×${n}`)
        .join(", ") || "no errors"
    }`;
  };
  const phaseSum = (r: Run) => Object.values(r.phases).reduce((a, b) => a + b, 0);
  const phaseNames = [...new Set(of("hamalog", "cold").flatMap((r) => Object.keys(r.phases)))];
  const row = (label: string, a: string, b: string, c: string) =>
    `  ${label.padEnd(40)} ${a.padStart(9)}  ${b.padStart(9)}  ${c.padStart(7)}`;
  const lines = [
    `deploy benchmark — ${FAST_SHELL ? "--fast-shell (sessions skip root's ~/.bashrc), " : "host as is (root's ~/.bashrc runs pyenv init per session), "}${N} runs per case, busybox httpd app (~1 MB image), local registry, sshd and dockerd on 127.0.0.1`,
    `${cpus().length} cores, node ${process.version}, compose ${docker(["compose", "version", "--short"]).trim()}; request loop: one GET /version every ${REQUEST_EVERY_MS} ms, new connection each, ${REQUEST_TIMEOUT_MS} ms timeout`,
    "",
    "(a) wall time of one image change (medians; the peer's `sed` of the image line is inside its timed ssh command)",
    row("", "hamalog", "peer", "ratio"),
    row(
      "image not on the host (pull needed)",
      sec(med("hamalog", "cold")),
      sec(med("peer", "cold")),
      `${(med("hamalog", "cold") / med("peer", "cold")).toFixed(2)}×`,
    ),
    row(
      "digest already on the host",
      sec(med("hamalog", "warm")),
      sec(med("peer", "warm")),
      `${(med("hamalog", "warm") / med("peer", "warm")).toFixed(2)}×`,
    ),
    `  ranges: hamalog cold ${range(of("hamalog", "cold").map((r) => r.ms))}, warm ${range(of("hamalog", "warm").map((r) => r.ms))}; peer cold ${range(of("peer", "cold").map((r) => r.ms))}, warm ${range(of("peer", "warm").map((r) => r.ms))}`,
    "",
    "(b) time saved when the digest is already on the host (median cold − median warm)",
    `  hamalog (skips \`pull\`):                 ${sec(med("hamalog", "cold") - med("hamalog", "warm"))}`,
    `  peer (its \`pull\` still asks the registry): ${sec(med("peer", "cold") - med("peer", "warm"))}`,
    "",
    "  hamalog phases as the CLI prints them (medians; 0.1 s resolution):",
    row("phase", "cold", "warm", ""),
    ...phaseNames.map((ph) =>
      row(
        `  ${ph}`,
        sec(median(of("hamalog", "cold").map((r) => r.phases[ph] ?? 0))),
        sec(median(of("hamalog", "warm").map((r) => r.phases[ph] ?? 0))),
        "",
      ),
    ),
    row(
      "  sum of phases",
      sec(median(of("hamalog", "cold").map(phaseSum))),
      sec(median(of("hamalog", "warm").map(phaseSum))),
      "",
    ),
    row(
      "  outside phases (CLI start, history read,",
      sec(median(of("hamalog", "cold").map((r) => r.ms - phaseSum(r)))),
      sec(median(of("hamalog", "warm").map((r) => r.ms - phaseSum(r)))),
      "",
    ),
    "    unlock, exit; per-run wall − sum of phases)",
    "",
    "(c) failed HTTP requests during each deploy (compose recreates the container: requests fail while it is replaced)",
    `  hamalog, cold: ${failed("hamalog", "cold")}`,
    `  hamalog, warm: ${failed("hamalog", "warm")}`,
    `  peer,    cold: ${failed("peer", "cold")}`,
    `  peer,    warm: ${failed("peer", "warm")}`,
    "",
    "(d) remote sessions per deploy (each is a new `exec` channel: sshd starts the user's login shell for it)",
    `  hamalog: ${sessionsCold.execs} execs + ${sessionsCold.tunnels} health tunnel(s) (cold), ${sessionsWarm.execs} + ${sessionsWarm.tunnels} (warm), over one connection; peer: 1 connection, 1 exec`,
    `  one exec of \`true\` over hamalog's open connection: median ${median(trueMs).toFixed(0)} ms (min ${Math.min(...trueMs).toFixed(0)}) → ~${sec(median(trueMs) * sessionsCold.execs)} per cold deploy before any command does work`,
    `  the same without TCP_NODELAY (raw ssh2, Nagle's algorithm on, as ssh2 leaves it): median ${nagleMs.toFixed(0)} ms`,
    `  \`ssh host true\` (new OpenSSH connection): median ${median(sshTrue).toFixed(0)} ms`,
  ];
  console.log(lines.join("\n"));
}

const slowArg = process.argv.indexOf("--slow-seconds");
try {
  if (process.argv.includes("--strategies")) {
    const { benchStrategies } = await import("./strategies.js");
    await benchStrategies(slowArg >= 0 ? Number(process.argv[slowArg + 1]) : 20, FAST_SHELL);
  } else await main();
} catch (e) {
  console.error((e as Error).message);
  process.exitCode = 1;
} finally {
  await cleanup();
}
