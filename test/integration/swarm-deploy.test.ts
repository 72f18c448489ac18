// deploy/strategy swarm end to end on a real 3-node Swarm on this machine (helpers/swarm.ts: a dockerd per network
// namespace, 1 manager + 2 workers, a TLS + htpasswd registry on the bridge), through the real CLI over SSH to the
// manager, under a request loop that goes round-robin over the three nodes' edge Caddies (host-mode ports). One
// cluster for the whole file, one ordered story: a first release → a rolling deploy (0 failed) → a broken release
// (exit 1, never answers, the tasks back on the old digest) → a rollback (0 failed) → status per node and a
// MISMATCH → GitHub's cancel sequence mid-update (Swarm converges on one whole spec, the journal true) → a worker
// killed mid-deploy (the deploy ends, truthfully, within its bound; at most the requests in flight lost).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hamalog, type CliResult } from "../helpers/cli.js";
import { buildSlowAppImage, docker, SLOW_HEALTH_PATH } from "./helpers/images.js";
import { waitFor } from "./helpers/ports.js";
import { startSwarm, swarmAvailable, type Swarm } from "./helpers/swarm.js";

const STACK = "hsw";
const REPO = "hamalog-swarm-it/app";
const PORT = 8080;
const CADDY = process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2";
const VERSIONS = ["v1", "v2", "v3", "v4", "v5", "v6"] as const;
type V = (typeof VERSIONS)[number];
const SHA = Object.fromEntries(VERSIONS.map((v, i) => [v, String(i + 1).repeat(40)])) as Record<V, string>;
const BROKEN: V = "v3";
// Not under /tmp: each node has a /tmp of its own (the harness mounts a tmpfs there); /var/tmp is the machine's.
const ROOT = `/var/tmp/hamalog-swarm-it-${process.pid}`;
const DIR = `${ROOT}/srv`;

let swarm: Swarm;
let configFile: string;
const digest: Partial<Record<V, string>> = {};
const localImages: string[] = [];

const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
const journal = () => JSON.parse(readFileSync(join(DIR, "journal.json"), "utf8")) as Record<string, any>;
const history = () =>
  readFileSync(join(DIR, "history.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
const env = () => ({ NODE_EXTRA_CA_CERTS: swarm.registry.caFile, SWARM_REGISTRY_TOKEN: swarm.registry.password });

function cli(args: string[], opts: Parameters<typeof hamalog>[1] = {}): Promise<CliResult> {
  return hamalog([...args, "--config", configFile, "--ssh-key-file", swarm.ssh.keyFile], {
    timeoutMs: 240_000,
    ...opts,
    env: { ...env(), ...opts.env },
  });
}
const deploy = (v: V, opts: Parameters<typeof hamalog>[1] = {}, extra: string[] = []) =>
  cli(["deploy", "--sha", SHA[v], "--password-env", "SWARM_REGISTRY_TOKEN", ...extra], opts);

/** The app's tasks Swarm means to run: `node digest state` each, sorted. */
async function appTasks(): Promise<string[]> {
  const out = await swarm.docker(0, [
    "service",
    "ps",
    "--no-trunc",
    "--filter",
    "desired-state=running",
    "--format",
    "{{.Node}} {{.Image}} {{.CurrentState}}",
    `${STACK}_app`,
  ]);
  return out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [node, image, state] = l.split(" ");
      return `${node} ${/@(sha256:[0-9a-f]{64})$/.exec(image!)?.[1] ?? image} ${state}`;
    })
    .sort();
}
const updateState = async () =>
  (
    await swarm.docker(0, [
      "service",
      "inspect",
      "--format",
      "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
      `${STACK}_app`,
    ])
  ).trim();

interface RoundRobin {
  /** Stop sending to a node (it was killed); what was in flight there still counts. */
  drop(addr: string): void;
  stop(): Promise<{
    requests: number;
    failed: number;
    answers: string[];
    errors: string[];
    byNode: Record<string, number>;
  }>;
}

/** One GET every `intervalMs`, each on a new connection, to the next node's edge in turn. */
function roundRobin(addrs: string[], intervalMs = 20): RoundRobin {
  const live = [...addrs];
  const byNode: Record<string, number> = Object.fromEntries(addrs.map((a) => [a, 0]));
  const stats = { requests: 0, failed: 0, answers: [] as string[], errors: [] as string[], byNode };
  let running = true;
  let i = 0;
  const get = (addr: string) =>
    new Promise<string>((resolve, reject) => {
      const req = request(
        `http://${addr}:${PORT}/version`,
        { agent: false, headers: { connection: "close" } },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d) => (body += d));
          res.on("end", () =>
            res.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`HTTP ${res.statusCode}`)),
          );
          res.on("error", reject);
        },
      );
      req.setTimeout(15_000, () => req.destroy(new Error("no answer in 15 s")));
      req.on("error", reject);
      req.end();
    });
  const started = Date.now();
  const done = (async () => {
    while (running) {
      const t = Date.now();
      const addr = live[i++ % live.length]!;
      stats.requests++;
      try {
        const body = await get(addr);
        if (!stats.answers.includes(body)) stats.answers.push(body);
      } catch (e) {
        stats.failed++;
        byNode[addr]!++;
        if (stats.errors.length < 8)
          stats.errors.push(`${addr}: ${(e as Error).message} at ${Date.now() - started} ms`);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - t))));
    }
  })();
  return {
    drop: (addr) => {
      const k = live.indexOf(addr);
      if (k >= 0) live.splice(k, 1);
    },
    stop: async () => {
      running = false;
      await done;
      return stats;
    },
  };
}

beforeAll(async () => {
  const available = swarmAvailable();
  if (!available.ok) throw new Error(available.reason);
  swarm = await startSwarm({ nodes: 3 });
  rmSync(ROOT, { recursive: true, force: true });
  mkdirSync(ROOT, { recursive: true, mode: 0o700 });
  for (const v of VERSIONS) {
    const local = `hamalog-swarm-it/app:${v}`;
    buildSlowAppImage(local, { version: v, closedSeconds: 1, unhealthySeconds: v === BROKEN ? -1 : 1 });
    localImages.push(local);
  }
  const pushed = await Promise.all(
    VERSIONS.map((v) => swarm.pushToRegistry(`hamalog-swarm-it/app:${v}`, `${REPO}:${SHA[v]}`)),
  );
  VERSIONS.forEach((v, i) => (digest[v] = pushed[i]));
  const caddy = `${swarm.registry.host}/edge/caddy@${await swarm.pushToRegistry(CADDY, "edge/caddy:2.6.2")}`;
  writeFileSync(
    join(ROOT, "stack.template.yml"),
    [
      "services:",
      "  app:",
      "    image: placeholder",
      '    expose: ["8080"]',
      "    healthcheck:",
      `      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080${SLOW_HEALTH_PATH}"]`,
      "      interval: 1s",
      "      timeout: 2s",
      "      retries: 2",
      "      start_period: 1s",
      "    stop_grace_period: 5s",
      "",
    ].join("\n"),
  );
  configFile = join(ROOT, "pipeline.yaml");
  writeFileSync(
    configFile,
    [
      "image:",
      `  registry: ${swarm.registry.host}`,
      `  repository: ${REPO}`,
      `  username: ${swarm.registry.user}`,
      "deploy:",
      `  host: ${swarm.manager.addr}`,
      "  user: root",
      `  hostKey: ${swarm.ssh.hostKeyFingerprint}`,
      `  directory: ${DIR}`,
      "  composeFile: stack.template.yml",
      `  project: ${STACK}`,
      "  service: app",
      "  strategy: swarm",
      `  health: {url: "http://127.0.0.1:${PORT}${SLOW_HEALTH_PATH}", timeout: 20, interval: 0.5}`,
      "  waitTimeout: 90",
      "  keepImages: 10",
      `  proxy: {image: "${caddy}"}`,
      `  swarm: {replicas: 2, parallelism: 1, monitorSeconds: 2, publish: ${PORT}}`,
      "",
    ].join("\n"),
  );
});

afterAll(async () => {
  await swarm?.stop();
  rmSync(ROOT, { recursive: true, force: true });
  for (const img of localImages)
    try {
      docker(["rmi", img]);
    } catch {
      // already gone
    }
});

describe("deploy/strategy swarm on a real 3-node cluster, under a round-robin request loop over every node's edge", () => {
  it("a first release: a stack on the manager, the private registry reaching every node, each node's edge serving it", async () => {
    const dry = await deploy("v1", {}, ["--dry-run"]);
    expect(dry.code, text(dry)).toBe(0);
    expect(dry.stdout).toMatch(/\[plan\] +stack +docker stack deploy/);
    expect(dry.stdout).not.toMatch(/\[plan\] +pull\b/);
    expect(dry.stdout).toContain("endpoint_mode: dnsrr");
    expect(dry.stdout).toContain(`@${digest.v1}`);

    const r = await deploy("v1");
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/^\[stack\] stack hsw updated in .*logged in as hamalog for this command only/m);
    expect(r.stdout).toMatch(/^\[converge\] 2\/2 task\(s\) run sha256:[0-9a-f]{12}… healthy on /m);
    expect(journal()).toMatchObject({ strategy: "swarm", live: { sha: SHA.v1, digest: digest.v1 }, attempt: null });
    const tasks = await appTasks();
    expect(tasks).toHaveLength(2);
    for (const t of tasks) expect(t).toMatch(new RegExp(` ${digest.v1} Running$`));
    // The edge runs on every node (global), each pulled from the private registry with the login Swarm was handed.
    const edge = await swarm.docker(0, [
      "service",
      "ps",
      "--filter",
      "desired-state=running",
      "--format",
      "{{.Node}} {{.CurrentState}}",
      `${STACK}_hamalog-edge`,
    ]);
    expect(
      edge
        .trim()
        .split("\n")
        .map((l) => l.split(" ")[0])
        .sort(),
    ).toEqual(["node1", "node2", "node3"]);
    // The throwaway login is gone from the manager; no node was ever logged in.
    expect(readdirSync(join(DIR, ".hamalog")).filter((f) => f.startsWith("docker-"))).toEqual([]);
    for (const [i] of swarm.nodes.entries())
      expect(await swarm.sshExec(i, ["sh", "-c", "ls /root/.docker/config.json 2>/dev/null || echo none"])).toBe(
        "none\n",
      );
    await Promise.all(
      swarm.nodes.map((n) =>
        waitFor(`the edge on ${n.addr}`, async () => (await fetch(`http://${n.addr}:${PORT}/version`)).ok, 20_000),
      ),
    );
  });

  it("a rolling deploy v1 → v2: 0 failed requests across all nodes, v1 then v2", async () => {
    const loop = roundRobin(swarm.nodes.map((n) => n.addr));
    await new Promise((r) => setTimeout(r, 500));
    const t = Date.now();
    const r = await deploy("v2");
    const ms = Date.now() - t;
    await new Promise((r) => setTimeout(r, 500));
    const stats = await loop.stop();
    console.log(`[swarm rolling] ${stats.failed}/${stats.requests} failed, deploy ${ms} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(stats.failed, JSON.stringify(stats)).toBe(0);
    expect(stats.answers).toEqual(["v1", "v2"]);
    for (const t of await appTasks()) expect(t).toMatch(new RegExp(` ${digest.v2} Running$`));
    expect(journal()).toMatchObject({ live: { sha: SHA.v2 }, previous: { sha: SHA.v1 }, attempt: null });
    expect(history().at(-1)).toMatchObject({ action: "deploy", result: "success", sha: SHA.v2 });
  });

  it("a broken release: exit 1 naming each failed task's node, error and health; not one request answered by it; back on v2", async () => {
    const loop = roundRobin(swarm.nodes.map((n) => n.addr));
    const r = await deploy(BROKEN);
    const stats = await loop.stop();
    console.log(`[swarm broken] ${stats.failed}/${stats.requests} failed`);
    expect(r.code, text(r)).toBe(1);
    expect(text(r)).toMatch(/FAILED in phase converge: Swarm rolled the update back/);
    expect(text(r)).toMatch(/task [0-9a-z]{12} on node\d: (failed|complete) — .*; last health output: /);
    expect(text(r)).toMatch(/never went live; sha 2{12} \(sha256:[0-9a-f]{12}…\) serves again \(restored\)/);
    expect(stats.failed, JSON.stringify(stats)).toBe(0);
    expect(stats.answers).toEqual(["v2"]);
    const tasks = await appTasks();
    expect(tasks).toHaveLength(2);
    for (const t of tasks) expect(t).toMatch(new RegExp(` ${digest.v2} Running$`));
    expect(journal()).toMatchObject({ live: { sha: SHA.v2 }, attempt: null });
    expect(history().at(-1)).toMatchObject({ sha: SHA[BROKEN], result: "rolled-back", failedPhase: "converge" });
    expect(existsSync(join(DIR, ".hamalog", "lock.token"))).toBe(false);
  });

  it("rollback: the previous verified release through the same gated update, 0 failed", async () => {
    const loop = roundRobin(swarm.nodes.map((n) => n.addr));
    const r = await cli(["rollback", "--password-env", "SWARM_REGISTRY_TOKEN"]);
    const stats = await loop.stop();
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/from the journal \(the previous release\)/);
    expect(stats.failed, JSON.stringify(stats)).toBe(0);
    expect(stats.answers).toEqual(["v2", "v1"]);
    for (const t of await appTasks()) expect(t).toMatch(new RegExp(` ${digest.v1} Running$`));
    expect(journal()).toMatchObject({ live: { sha: SHA.v1 }, previous: { sha: SHA.v2 }, attempt: null });
    expect(history().at(-1)).toMatchObject({ action: "rollback", result: "success", sha: SHA.v1 });
  });

  it("status: per node, each task's digest, state and health; MISMATCH when Swarm runs something else", async () => {
    const st = await cli(["status"]);
    expect(st.code, text(st)).toBe(0);
    expect(st.stdout).toMatch(/strategy swarm/);
    expect(st.stdout).toMatch(/^swarm: manager node1 \(Leader\); 3 node\(s\): node1 Ready, node2 Ready, node3 Ready$/m);
    expect(st.stdout).toMatch(/^service hsw_app: 2\/2 task\(s\) run the live release/m);
    const v1 = `${digest.v1!.slice(0, 19)}…`;
    const nodeLines = st.stdout.split("\n").filter((l) => /^ {2}node\d \(Ready\): /.test(l));
    expect(nodeLines).toHaveLength(3);
    for (const l of nodeLines) expect(l).toMatch(/hamalog-edge running no healthcheck/);
    expect(
      nodeLines
        .join("\n")
        .match(new RegExp(`app\\.\\d running healthy ${v1.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "g")),
    ).toHaveLength(2);
    expect(st.stdout).toContain("the host matches the journal");
    expect(st.stdout).not.toContain("MISMATCH");

    // Someone updates the service by hand: status says Swarm runs something else; the next deploy puts it right.
    await swarm.docker(0, [
      "service",
      "update",
      "--detach",
      "--quiet",
      "--image",
      `${swarm.registry.host}/${REPO}:${SHA.v4}@${digest.v4}`,
      `${STACK}_app`,
    ]);
    await waitFor("a task on v4", async () => (await appTasks()).some((t) => t.includes(digest.v4!)), 60_000);
    const bad = await cli(["status"]);
    expect(bad.stdout).toMatch(
      /^MISMATCH: the live release is sha 1{12} \(sha256:[0-9a-f]{12}…\), but Swarm's spec for hsw_app is /m,
    );
    expect(bad.stdout).toMatch(/NOT LIVE/);
  });

  it("GitHub's cancel sequence mid-update: Swarm converges on one whole spec, the journal true, no further deploy", async () => {
    const loop = roundRobin(swarm.nodes.map((n) => n.addr));
    let at = 0;
    const timers: NodeJS.Timeout[] = [];
    const r = await deploy("v5", {
      onStdout: (out, signal) => {
        if (at || !out.includes("[stack]")) return;
        at = Date.now();
        signal("SIGINT");
        timers.push(
          setTimeout(() => signal("SIGTERM"), 7500),
          setTimeout(() => signal("SIGKILL"), 10_000),
        );
      },
    });
    for (const t of timers) clearTimeout(t);
    expect(at, text(r)).toBeGreaterThan(0);
    // The reconcile of the drift (the hand-made v4 update) came first: v1 was live when the cancel landed.
    expect(text(r)).toMatch(/DRIFT: .*Swarm's spec for hsw_app/);
    await waitFor(
      "the lock freed and the attempt ended",
      async () => !existsSync(join(DIR, ".hamalog", "lock.token")) && journal().attempt === null,
      120_000,
    );
    await waitFor("no update in progress", async () => !/updating|rollback_started/.test(await updateState()), 120_000);
    const stats = await loop.stop();
    const j = journal();
    const tasks = await appTasks();
    // One whole spec: every task on the journal's live release.
    expect(tasks, text(r)).toHaveLength(2);
    for (const t of tasks) expect(t).toMatch(new RegExp(` ${j.live.digest} Running$`));
    expect([SHA.v1, SHA.v5]).toContain(j.live.sha);
    expect(history().at(-1)).toMatchObject({ sha: SHA.v5, interrupted: true });
    expect(stats.failed, JSON.stringify(stats)).toBe(0);
  });

  it("a worker killed mid-deploy: the deploy ends within its bound and says what runs; at most the requests in flight lost", async () => {
    const before = await appTasks();
    const victim = swarm.nodes.findIndex((n, i) => i > 0 && before.some((t) => t.startsWith(`${n.name} `)));
    expect(victim, before.join("\n")).toBeGreaterThan(0);
    const addr = swarm.nodes[victim]!.addr;
    const loop = roundRobin(swarm.nodes.map((n) => n.addr));
    let killed = 0;
    const t = Date.now();
    const r = await deploy("v6", {
      onStdout: (out) => {
        if (killed || !out.includes("[stack]")) return;
        killed = Date.now();
        loop.drop(addr);
        void swarm.killNode(victim);
      },
    });
    const ms = Date.now() - t;
    await new Promise((res) => setTimeout(res, 1000));
    const stats = await loop.stop();
    console.log(
      `[swarm worker killed] exit ${r.code} after ${ms} ms; ${JSON.stringify(stats.byNode)} failed of ${stats.requests}\n${text(r)}`,
    );
    expect(killed, text(r)).toBeGreaterThan(0);
    expect(ms).toBeLessThan((90 + 60) * 1000);
    // The dead node's edge lost what was in flight there when it died; the others lost at most the request in flight.
    expect(stats.byNode[addr]!, JSON.stringify(stats)).toBeLessThanOrEqual(1);
    expect(stats.failed - stats.byNode[addr]!, JSON.stringify(stats)).toBeLessThanOrEqual(1);
    const j = journal();
    expect(j.attempt).toBeNull();
    const want = r.code === 0 ? digest.v6 : j.live.digest;
    expect(j.live.digest, text(r)).toBe(want);
    const tasks = (await appTasks()).filter((x) => !x.startsWith(`${swarm.nodes[victim]!.name} `));
    expect(tasks, text(r)).toHaveLength(2);
    for (const x of tasks) expect(x).toMatch(new RegExp(` ${want} Running$`));
  });
});
