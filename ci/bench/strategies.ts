// `ci/bench/deploy.ts --strategies`: blue-green (inside and outside its warm window) vs recreate vs the bare compose
// peer, in one run, with a fast app and a slow one (port closed, then /health 503, then 200, like a Spring Boot
// start). Not a test: it prints a table for docs/benchmarks.md. Each side deploys X untimed, then X→Y under a request
// loop (one GET /version every 20 ms, a new connection each, 127.0.0.1 only), then rolls back to X under the loop.
// Measured per side: failed requests, the longest outage, time until Y answers (from the deploy's start), the tool's
// overhead beyond the container start and health wait (and the drain, a wait by design), the remote commands the
// deploy ran (sshd's ForceCommand counts every session; the peer's is 1), and the rollback's time as a fraction of
// the deploy's. `blue-green` keeps the old colour warm (proxy/warmSeconds 300: its rollback is a switch);
// `blue-green cold` has warmSeconds 0 (the old colour is stopped after the drain: its rollback starts it).
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CLI } from "../../test/helpers/cli.js";
import { buildSlowAppImage, pushImage, SLOW_HEALTH_PATH } from "../../test/integration/helpers/images.js";
import { freePort, waitFor } from "../../test/integration/helpers/ports.js";
import { startRegistry } from "../../test/integration/helpers/registry.js";
import { startLoop, type LoopStats } from "../../test/integration/helpers/request-loop.js";
import { startSshd } from "../../test/integration/helpers/sshd.js";
import { pipelineYaml } from "../../test/integration/helpers/stack-files.js";
import { timedSpawn } from "./timing.js";

type Strategy = "blue-green" | "blue-green cold" | "recreate" | "peer";
const CADDY = process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2";
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

interface Row {
  app: string;
  strategy: Strategy;
  loop: LoopStats;
  wallMs: number;
  servesMs: number;
  overheadMs: number | null;
  rollbackMs: number | null;
  rollbackFailed: number | null;
  /** Remote commands (SSH sessions) of the timed deploy and of the rollback. */
  commands: number;
  rollbackCommands: number | null;
}

/** Seconds per phase from the CLI's `[phase] … 1.2s` lines. */
function phases(stdout: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of stdout.matchAll(/^\[([a-z-]+)\] .* (\d+\.\d)s$/gm))
    out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]) * 1000;
  return out;
}

export async function benchStrategies(slowSeconds: number, fastShell: boolean): Promise<void> {
  const [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
  if (fastShell) {
    // As deploy.ts --fast-shell: bash skips root's ~/.bashrc (pyenv init, ~100 ms per remote command here).
    appendFileSync(join(sshd.dir, "sshd_config"), "SetEnv SHLVL=1\n");
    process.kill(sshd.pid, "SIGHUP");
  }
  const tmp = mkdtempSync(join(tmpdir(), "hamalog-bench-strategies-"));
  // Every session runs through this script (sshd's ForceCommand), which counts it and then runs what was asked,
  // as the login shell would have: the same cost per session, one line per remote command.
  const counter = join(tmp, "sessions");
  const wrapper = join(tmp, "count-session.sh");
  writeFileSync(counter, "");
  writeFileSync(wrapper, `#!/bin/sh\necho . >> ${counter}\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n`, { mode: 0o755 });
  appendFileSync(join(sshd.dir, "sshd_config"), `ForceCommand ${wrapper}\n`);
  process.kill(sshd.pid, "SIGHUP");
  const sessions = () => readFileSync(counter, "utf8").length / 2;
  const id = `hamalog-bench-bg-${process.pid}`;
  const projects: { project: string; dir: string }[] = [];
  const images: string[] = [];
  const rows: Row[] = [];
  try {
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
    for (const [app, closed, unhealthy] of [
      ["fast", 0, 0],
      ["slow", Math.max(0, slowSeconds - 5), Math.min(5, slowSeconds)],
    ] as const) {
      for (const strategy of ["blue-green", "blue-green cold", "recreate", "peer"] as const) {
        const name = `${app}-${strategy.replace(" ", "-")}`;
        const repo = `bench-bg/${name}`;
        const port = await freePort();
        const dir = join(tmp, name);
        const project = `${id}-${name}`;
        projects.push({ project, dir });
        const ver: Record<"X" | "Y", { sha: string; ref: string }> = {
          X: { sha: "", ref: "" },
          Y: { sha: "", ref: "" },
        };
        for (const v of ["X", "Y"] as const) {
          const local = `${id}/${name}:${v}`;
          buildSlowAppImage(local, { version: `${name} ${v}`, closedSeconds: closed, unhealthySeconds: unhealthy });
          const sha = (v === "X" ? "a" : "b").repeat(40);
          const ref = `${registry.host}/${repo}:${sha}`;
          pushImage(local, ref);
          images.push(local, ref);
          ver[v] = { sha, ref };
        }
        mkdirSync(dir, { recursive: true });
        const template = (image: string) =>
          [
            ...(strategy === "peer" ? [`name: ${project}`] : []),
            "services:",
            "  app:",
            `    image: ${image}`,
            `    ports: ["127.0.0.1:${port}:8080"]`,
            "    stop_grace_period: 5s",
            "",
          ].join("\n");
        writeFileSync(join(tmp, `${name}.template.yml`), template("placeholder"));
        const config = join(tmp, `${name}.pipeline.yaml`);
        writeFileSync(
          config,
          pipelineYaml({
            registry: registry.host,
            repository: repo,
            sshd,
            directory: join(dir, "srv"),
            composeFile: `${name}.template.yml`,
            project,
            health: { url: `http://127.0.0.1:${port}${SLOW_HEALTH_PATH}`, timeout: slowSeconds + 60, interval: 0.5 },
            waitTimeout: slowSeconds + 60,
            keepImages: 10,
            extra: strategy.startsWith("blue-green")
              ? [
                  "  strategy: blue-green",
                  "  proxy:",
                  `    publish: 127.0.0.1:${port}:80`,
                  `    image: ${CADDY}`,
                  "    drainSeconds: 2",
                  `    warmSeconds: ${strategy === "blue-green" ? 300 : 0}`,
                ]
              : [],
          }),
        );
        writeFileSync(join(dir, "compose.yaml"), template(ver.X.ref));
        const run = (v: "X" | "Y" | "rollback") =>
          strategy === "peer"
            ? ssh(
                `cd ${dir} && sed -i 's#^    image: .*#    image: ${ver[v === "rollback" ? "X" : v].ref}#' compose.yaml && docker compose pull -q && docker compose up -d --wait`,
              )
            : timedSpawn(process.execPath, [
                CLI,
                ...(v === "rollback" ? ["rollback"] : ["deploy", "--sha", ver[v].sha]),
                "--config",
                config,
                "--ssh-key-file",
                sshd.keyFile,
              ]);
        const first = await run("X");
        if (first.code !== 0) throw new Error(`bench: first ${name} deploy failed:\n${first.stdout}\n${first.stderr}`);
        await waitFor(
          `${name} X answering`,
          async () => (await answer(port)) === `${name} X`,
          (slowSeconds + 60) * 1000,
        );

        const timed = async (v: "Y" | "rollback", want: string) => {
          const loop = startLoop(`http://127.0.0.1:${port}/version`, 20, (slowSeconds + 120) * 1000);
          const t0 = performance.now();
          const before = sessions();
          const r = await run(v);
          const commands = sessions() - before;
          if (r.code !== 0) throw new Error(`bench: ${name} ${v} failed:\n${r.stdout}\n${r.stderr}`);
          await waitFor(
            `${name} answering ${want}`,
            async () => (await answer(port)) === want,
            (slowSeconds + 60) * 1000,
          );
          await new Promise((res) => setTimeout(res, 500));
          const stats = await loop.stop();
          // From the deploy's start to the first answer of the new version the loop saw.
          const servesMs = stats.startedAt + (stats.firstSeenMs[want] ?? Infinity) - t0;
          if (strategy !== "peer")
            console.error(`[bench] ${name} ${v} phases (ms): ${JSON.stringify(phases(r.stdout))}`);
          return { r, servesMs, loop: stats, commands };
        };
        const d = await timed("Y", `${name} Y`);
        const ph = phases(d.r.stdout);
        const waited = strategy.startsWith("blue-green")
          ? (ph.candidate ?? 0) + (ph["candidate-health"] ?? 0) + (ph.drain ?? 0)
          : (ph.up ?? 0) + (ph.health ?? 0);
        const back = await timed("rollback", `${name} X`);
        rows.push({
          app,
          strategy,
          loop: d.loop,
          wallMs: d.r.ms,
          servesMs: d.servesMs,
          overheadMs: strategy === "peer" ? null : d.r.ms - waited,
          rollbackMs: back.r.ms,
          rollbackFailed: back.loop.failed,
          commands: strategy === "peer" ? 1 : d.commands,
          rollbackCommands: strategy === "peer" ? 1 : back.commands,
        });
        console.error(`[bench] ${name}: ${d.loop.failed}/${d.loop.requests} failed, deploy ${sec(d.r.ms)}`);
        // What failed, when (ms since the loop started), next to the phases above: a failure is read, not counted.
        if (strategy === "blue-green" && d.loop.errors.length + back.loop.errors.length)
          console.error(
            `[bench] ${name} failed requests: ${JSON.stringify({ deploy: d.loop.errors, rollback: back.loop.errors })}`,
          );
      }
    }
  } finally {
    for (const p of projects) {
      for (const f of [join(p.dir, "srv", "compose.yaml"), join(p.dir, "compose.yaml")])
        spawnSync("docker", ["compose", "-p", p.project, "-f", f, "down", "--remove-orphans", "--timeout", "1"], {
          stdio: "ignore",
        });
    }
    for (const i of images) spawnSync("docker", ["rmi", "-f", i], { stdio: "ignore" });
    await Promise.all([registry.stop(), sshd.stop()]);
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log(
    `\nstrategies (slow app: ${slowSeconds} s start${fastShell ? ", --fast-shell" : ""}), one run each, ${new Date().toISOString().slice(0, 10)}:\n`,
  );
  console.log(
    "| app | strategy | failed requests | longest outage | new version serves after | deploy wall | tool overhead | remote commands | rollback (failed, commands) | rollback / deploy |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    console.log(
      `| ${r.app} | ${r.strategy} | ${r.loop.failed} of ${r.loop.requests} | ${sec(r.loop.longestOutageMs)} | ${sec(r.servesMs)} | ${sec(r.wallMs)} | ${r.overheadMs === null ? "—" : sec(r.overheadMs)} | ${r.commands} | ${sec(r.rollbackMs!)} (${r.rollbackFailed} failed, ${r.rollbackCommands}) | ${(r.rollbackMs! / r.wallMs).toFixed(2)} |`,
    );
  }
}

async function answer(port: number): Promise<string> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/version`)).text()).trim();
  } catch {
    return "";
  }
}
