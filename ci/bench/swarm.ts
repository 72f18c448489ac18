// `npx tsx ci/bench/swarm.ts`: the swarm strategy's deploy wall time against its bare peer on the same real cluster
// in the same run — `docker stack deploy --with-registry-auth --detach=false` of the very stack file hamalog rendered
// (another stack name and port), over SSH on the manager, which waits for convergence itself — and how both grow
// from 3 to 8 nodes and from 3 to 9 replicas. Not a test: it prints a table (and the ratios) for docs/benchmarks.md.
// Each side deploys v1 untimed, then alternates v2, v1, v2, … (ROUNDS timed updates each, the median kept), so
// both do the same rolling update (start-first, parallelism 1, monitor 2 s) of an app that starts like Spring Boot
// (port closed 1 s, health 503 for 1 s). hamalog's time is the whole CLI: connect, verify-manifest, probe, lock,
// journal, stack deploy, the watch, the health URL through the edge, history — the peer's is one SSH command.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parse, stringify } from "yaml";
import { CLI } from "../../test/helpers/cli.js";
import { buildSlowAppImage, SLOW_HEALTH_PATH } from "../../test/integration/helpers/images.js";
import { startSwarm, type Swarm } from "../../test/integration/helpers/swarm.js";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CADDY = process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2";
const REPO = "hamalog-bench/app";
const SHA = { v1: "1".repeat(40), v2: "2".repeat(40) } as const;
const ROOT = `/var/tmp/hamalog-bench-swarm-${process.pid}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

interface Row {
  nodes: number;
  replicas: number;
  hamalog: number[];
  peer: number[];
  watchMs: number[];
}

function config(s: Swarm, dir: string, replicas: number, caddy: string): string {
  return [
    "image:",
    `  registry: ${s.registry.host}`,
    `  repository: ${REPO}`,
    `  username: ${s.registry.user}`,
    "deploy:",
    `  host: ${s.manager.addr}`,
    "  user: root",
    `  hostKey: ${s.ssh.hostKeyFingerprint}`,
    `  directory: ${dir}`,
    "  composeFile: stack.template.yml",
    "  project: hb",
    "  service: app",
    "  strategy: swarm",
    `  health: {url: "http://127.0.0.1:8080${SLOW_HEALTH_PATH}", timeout: 30, interval: 0.5}`,
    "  waitTimeout: 300",
    `  proxy: {image: "${caddy}"}`,
    `  swarm: {replicas: ${replicas}, parallelism: 1, monitorSeconds: 2, publish: 8080}`,
    "",
  ].join("\n");
}

function hamalog(s: Swarm, cfg: string, sha: string): { ms: number; stdout: string } {
  const t = performance.now();
  const r = spawnSync(
    process.execPath,
    [CLI, "deploy", "--sha", sha, "--config", cfg, "--ssh-key-file", s.ssh.keyFile, "--password-env", "BENCH_TOKEN"],
    {
      encoding: "utf8",
      env: { ...process.env, NODE_EXTRA_CA_CERTS: s.registry.caFile, BENCH_TOKEN: s.registry.password },
    },
  );
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`hamalog deploy failed:\n${r.stdout}\n${r.stderr}`);
  return { ms, stdout: r.stdout };
}

/** The peer: the whole stack file hamalog rendered for `sha`, as stack `pb` on port 8081, deployed bare, waited for. */
function peer(s: Swarm, sha: string): number {
  const v = sha === SHA.v1 ? "v1" : "v2";
  const stack = parse(readFileSync(join(ROOT, `whole-${v}.yaml`), "utf8")) as Record<string, any>;
  for (const svc of Object.values(stack.services as Record<string, any>))
    for (const p of svc.ports ?? []) if (typeof p === "object") p.published = 8081;
  const file = join(ROOT, `peer-${v}.yaml`);
  writeFileSync(file, stringify(stack));
  const t = performance.now();
  execFileSync(
    "ssh",
    [
      "-F",
      s.ssh.configFile,
      `root@${s.manager.addr}`,
      `DOCKER_CONFIG=${ROOT}/peer-docker docker stack deploy --with-registry-auth --detach=false --quiet -c ${file} pb`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return performance.now() - t;
}

async function scenario(nodes: number, replicas: number): Promise<Row> {
  const s = await startSwarm({ nodes });
  try {
    rmSync(ROOT, { recursive: true, force: true });
    mkdirSync(ROOT, { recursive: true, mode: 0o700 });
    const dir = `${ROOT}/srv`;
    for (const v of ["v1", "v2"] as const) await s.pushToRegistry(`hamalog-bench/app:${v}`, `${REPO}:${SHA[v]}`);
    const caddy = `${s.registry.host}/edge/caddy@${await s.pushToRegistry(CADDY, "edge/caddy:2.6.2")}`;
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
    const cfg = join(ROOT, "pipeline.yaml");
    writeFileSync(cfg, config(s, dir, replicas, caddy));
    // The peer logs in once, in a config of its own on the manager (--with-registry-auth reads it).
    execFileSync(
      "ssh",
      [
        "-F",
        s.ssh.configFile,
        `root@${s.manager.addr}`,
        `DOCKER_CONFIG=${ROOT}/peer-docker docker login -u ${s.registry.user} --password-stdin ${s.registry.host}`,
      ],
      { input: s.registry.password, stdio: ["pipe", "ignore", "pipe"] },
    );
    // Untimed: v1, then v2 and back to v1 once, so both stack files exist whole (the first has every service).
    for (const v of ["v1", "v2"] as const) {
      hamalog(s, cfg, SHA[v]);
      const j = JSON.parse(readFileSync(join(dir, "journal.json"), "utf8")) as { live: { composeFile: string } };
      writeFileSync(join(ROOT, `whole-${v}.yaml`), readFileSync(join(dir, j.live.composeFile), "utf8"));
    }
    hamalog(s, cfg, SHA.v1);
    // The first stack file of v2 was rendered when only the edge ran: give the peer both whole (edge included).
    const whole = parse(readFileSync(join(ROOT, "whole-v1.yaml"), "utf8")) as Record<string, any>;
    for (const v of ["v2"] as const) {
      const f = parse(readFileSync(join(ROOT, `whole-${v}.yaml`), "utf8")) as Record<string, any>;
      f.services["hamalog-edge"] ??= whole.services["hamalog-edge"];
      f.configs = { ...(whole.configs ?? {}), ...(f.configs ?? {}) };
      writeFileSync(join(ROOT, `whole-${v}.yaml`), stringify(f));
    }
    peer(s, SHA.v1);
    const row: Row = { nodes, replicas, hamalog: [], peer: [], watchMs: [] };
    let next: "v1" | "v2" = "v2";
    for (let i = 0; i < ROUNDS; i++) {
      const h = hamalog(s, cfg, SHA[next]);
      row.hamalog.push(h.ms);
      const w = /^\[converge\] .* (\d+\.\d)s$/m.exec(h.stdout);
      if (w) row.watchMs.push(Number(w[1]) * 1000);
      row.peer.push(peer(s, SHA[next]));
      next = next === "v1" ? "v2" : "v1";
    }
    return row;
  } finally {
    await s.stop();
    rmSync(ROOT, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  buildSlowAppImage("hamalog-bench/app:v1", { version: "v1", closedSeconds: 1, unhealthySeconds: 1 });
  buildSlowAppImage("hamalog-bench/app:v2", { version: "v2", closedSeconds: 1, unhealthySeconds: 1 });
  const rows: Row[] = [];
  for (const [nodes, replicas] of [
    [3, 3],
    [8, 3],
    [3, 9],
  ] as const) {
    const r = await scenario(nodes, replicas);
    rows.push(r);
    console.log(
      `[bench swarm] ${nodes} nodes, ${replicas} replicas: hamalog ${r.hamalog.map(sec).join(", ")}; peer ${r.peer.map(sec).join(", ")}`,
    );
  }
  const base = rows[0]!;
  console.log(
    "\n| nodes | replicas | hamalog deploy (median) | bare `stack deploy --detach=false` (median) | ratio | of which the watch | growth vs 3×3 (hamalog / peer) |",
  );
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    const h = median(r.hamalog);
    const p = median(r.peer);
    console.log(
      `| ${r.nodes} | ${r.replicas} | ${sec(h)} | ${sec(p)} | ${(h / p).toFixed(2)}× | ${r.watchMs.length ? sec(median(r.watchMs)) : "?"} | ${(h / median(base.hamalog)).toFixed(2)}× / ${(p / median(base.peer)).toFixed(2)}× |`,
    );
  }
  for (const img of ["hamalog-bench/app:v1", "hamalog-bench/app:v2"])
    spawnSync("docker", ["rmi", img], { stdio: "ignore" });
}

await main();
