// `npx tsx ci/bench/hamalog-recreate.ts [--runs N] [--fast-shell]`: what `hamalog deploy` (strategy recreate) costs
// over bare `docker compose pull && up -d --wait` on Hamalog's whole stack (tunnel → nginx → hamalog-app + MySQL +
// Redis, helpers/hamalog-stack.ts, its app starting like Spring Boot in ~4 s), all over the same sshd on 127.0.0.1,
// in one run. Not a test: it prints a table for docs/benchmarks.md.
//
// Three sides, each its own compose project and directory (the bench drops `container_name: hamalog-redis` so the
// stacks can run side by side; nothing else differs), each brought up untimed first: hamalog; the peer as written,
// `pull && up -d --wait` of the whole file (compose v2 then also re-creates nginx and the tunnel, which depend on the
// app, and waits for them); and the leanest peer, `up -d --wait --no-deps hamalog-app`. A round is one image change
// per side (X→Y, then Y→X: both images are on the host after the first round), the order rotating. A peer's command
// rewrites its image line, pulls the app and runs its `up` in one SSH command; hamalog runs its whole procedure:
// lock, journal, release files with the secrets through stdin, pull, accessories check, up, health, history.
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI } from "../../test/helpers/cli.js";
import {
  buildHamalogImages,
  hamalogAppImage,
  hamalogComposeFile,
  hamalogNginxConf,
  hamalogPipelineYaml,
  hamalogStackFiles,
  removeHamalogStack,
  sampleHamalogSecrets,
  writeHamalogStackFiles,
} from "../../test/integration/helpers/hamalog-stack.js";
import { pushImage } from "../../test/integration/helpers/images.js";
import { waitFor } from "../../test/integration/helpers/ports.js";
import { startRegistry } from "../../test/integration/helpers/registry.js";
import { startSshd } from "../../test/integration/helpers/sshd.js";
import { median, timedSpawn, type TimedRun } from "./timing.js";

const runsArg = process.argv.indexOf("--runs");
const N = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 5;
if (!Number.isInteger(N) || N < 1)
  throw new Error(`--runs: expected a positive integer, got ${process.argv[runsArg + 1]}`);
const FAST_SHELL = process.argv.includes("--fast-shell");
const ID = `hamalog-bench-stack-${process.pid}`;
const REPO = "bench/hamalog-backend";
const SHA = { X: "a1".repeat(20), Y: "b2".repeat(20) };
type Side = "hamalog" | "peer" | "peer --no-deps";
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const noContainerName = (compose: string) => compose.replace(/^ {4}container_name: hamalog-redis\n/m, "");

async function main(): Promise<void> {
  const [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
  if (FAST_SHELL) {
    appendFileSync(join(sshd.dir, "sshd_config"), "SetEnv SHLVL=1\n");
    process.kill(sshd.pid, "SIGHUP");
  }
  const tmp = mkdtempSync(join(tmpdir(), "hamalog-bench-stack-"));
  const projects = [`${ID}-hamalog`, `${ID}-peer`, `${ID}-peer-no-deps`];
  const refs: string[] = [];
  const times: Record<Side, number[]> = { hamalog: [], peer: [], "peer --no-deps": [] };
  const phaseMs: Record<string, number[]> = {};
  try {
    buildHamalogImages(["v1", "v2"], { closedSeconds: 2, unhealthySeconds: 2 });
    const ref = { X: `${registry.host}/${REPO}:${SHA.X}`, Y: `${registry.host}/${REPO}:${SHA.Y}` };
    pushImage(hamalogAppImage("v1"), ref.X);
    pushImage(hamalogAppImage("v2"), ref.Y);
    refs.push(ref.X, ref.Y);
    const secrets = sampleHamalogSecrets();
    const known = join(tmp, "known_hosts");
    writeFileSync(known, `[127.0.0.1]:${sshd.port} ${readFileSync(join(sshd.dir, "host_key.pub"), "utf8")}`);
    const ssh = (remote: string) =>
      timedSpawn("ssh", [
        ...["-p", String(sshd.port), "-i", sshd.keyFile, "-o", "StrictHostKeyChecking=yes"],
        ...["-o", `UserKnownHostsFile=${known}`, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"],
        `${sshd.user}@127.0.0.1`,
        remote,
      ]);
    await waitFor("sshd accepting sessions", async () => (await ssh("true")).code === 0);

    // hamalog: the template with the app's image a placeholder, its files, plain env and secrets by name.
    const own = join(tmp, "hamalog");
    mkdirSync(own);
    writeFileSync(join(own, "docker-compose.yml"), noContainerName(hamalogComposeFile({ appImage: "placeholder" })));
    writeFileSync(join(own, "nginx-docker.conf"), hamalogNginxConf());
    const envFile = join(own, "secrets.env");
    writeFileSync(
      envFile,
      Object.entries(secrets)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n") + "\n",
      { mode: 0o600 },
    );
    const config = join(own, "pipeline.yaml");
    writeFileSync(
      config,
      hamalogPipelineYaml({
        registry: registry.host,
        repository: REPO,
        sshd,
        directory: join(own, "srv"),
        project: projects[0]!,
        strategy: "recreate",
        env: { HAMALOG_ENV_FILE: "release" },
        secrets: Object.keys(secrets),
      }),
    );
    const hamalog = (v: "X" | "Y") =>
      timedSpawn(process.execPath, [
        CLI,
        "deploy",
        ...["--sha", SHA[v], "--config", config, "--ssh-key-file", sshd.keyFile, "--env-file", envFile],
      ]);

    // The peers: Hamalog's files as they sit on its server today, the app's image written in; one stack each.
    // "peer" runs `up -d --wait` of the whole file as written, which (compose v2) also re-creates the services that
    // depend on the app — nginx and the tunnel — and waits for them; "peer --no-deps" replaces the app alone with
    // `up -d --wait --no-deps hamalog-app`: the leanest bare command.
    const peers = new Map<Side, { dir: string; compose: string; image: string }>();
    for (const [i, side] of (["peer", "peer --no-deps"] as const).entries()) {
      const dir = join(tmp, `peer-${i}`);
      const files = hamalogStackFiles({ secrets, appImage: ref.X });
      writeHamalogStackFiles(dir, { ...files, "docker-compose.yml": noContainerName(files["docker-compose.yml"]) });
      peers.set(side, {
        dir,
        compose: `docker compose --project-directory ${dir} -p ${projects[i + 1]}`,
        image: ref.X,
      });
    }
    const bare = (side: Side, v: "X" | "Y") => {
      const p = peers.get(side)!;
      const up = side === "peer --no-deps" ? "up -d --wait --no-deps hamalog-app" : "up -d --wait";
      const cmd = `cd ${p.dir} && sed -i 's#${p.image}#${ref[v]}#' docker-compose.yml && ${p.compose} pull -q hamalog-app && ${p.compose} ${up}`;
      p.image = ref[v];
      return ssh(cmd);
    };

    const check = (what: string, r: TimedRun) => {
      if (r.code !== 0) throw new Error(`bench: ${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
      return r;
    };
    check("hamalog's first deploy (the whole stack)", await hamalog("X"));
    for (const [side, p] of peers)
      check(`${side}: the first up (the whole stack)`, await ssh(`${p.compose} up -d --wait`));

    const sides: Side[] = ["hamalog", "peer", "peer --no-deps"];
    for (let i = 0; i < N; i++) {
      const v = i % 2 === 0 ? "Y" : "X";
      const order = [...sides.slice(i % 3), ...sides.slice(0, i % 3)];
      for (const side of order) {
        const r = check(`${side} ${v}`, side === "hamalog" ? await hamalog(v) : await bare(side, v));
        times[side].push(r.ms);
        if (side === "hamalog")
          for (const m of r.stdout.matchAll(/^\[([a-z-]+)\] .* (\d+\.\d)s$/gm))
            (phaseMs[m[1]!] ??= []).push(Number(m[2]) * 1000);
        console.error(`[bench] round ${i + 1} ${side} → ${v}: ${sec(r.ms)}`);
      }
    }
  } finally {
    for (const p of projects) removeHamalogStack(p);
    for (const r of refs) spawnSync("docker", ["rmi", "-f", r], { stdio: "ignore" });
    await Promise.all([registry.stop(), sshd.stop()]);
    rmSync(tmp, { recursive: true, force: true });
  }
  const h = median(times.hamalog);
  console.log(
    `\nrecreate on Hamalog's stack — ${FAST_SHELL ? "--fast-shell" : "host as is"}, ${N} image changes per side, medians, ${new Date().toISOString().slice(0, 10)}:\n`,
  );
  console.log("| side | image change, whole stack running | hamalog minus this | hamalog / this |");
  console.log("| --- | --- | --- | --- |");
  for (const side of ["hamalog", "peer", "peer --no-deps"] as const) {
    const t = median(times[side]);
    console.log(`| ${side} | ${sec(t)} | ${sec(h - t)} | ${(h / t).toFixed(2)}× |`);
  }
  console.log(
    `\nhamalog's phases (medians): ${Object.entries(phaseMs)
      .map(([k, v]) => `${k} ${sec(median(v))}`)
      .join(", ")}`,
  );
}

await main();
