// The main job on a local default, for a newcomer to watch: a real registry and a real SSH/Docker host on
// 127.0.0.1 stand in for GHCR and Hamalog's server. Every step runs the `hamalog` CLI exactly as a user would;
// the "push" step uses `docker push` to the tags `hamalog tag` printed (in CI, the Dagger module's `push` does it).
// Everything it starts is stopped at the end (pass --keep to leave the app running and print how to stop it).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI } from "../../test/helpers/cli.js";
import { buildAppImage, docker } from "../../test/integration/helpers/images.js";
import { freePort } from "../../test/integration/helpers/ports.js";
import { startLoop } from "../../test/integration/helpers/request-loop.js";
import { startRegistry } from "../../test/integration/helpers/registry.js";
import { startSshd } from "../../test/integration/helpers/sshd.js";
import { composeTemplate, pipelineYaml } from "../../test/integration/helpers/stack-files.js";

const keep = process.argv.includes("--keep");
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (n: number, s: string) => console.log(`\n${bold(`── ${n}. ${s}`)}`);
// Deterministic stand-ins for commit shas (a real run passes $GITHUB_SHA / `git rev-parse HEAD`).
const fakeSha = (v: string) => createHash("sha1").update(`hamalog demo ${v}`).digest("hex");

function hamalog(args: string[], opts: { capture?: boolean } = {}): { code: number; stdout: string } {
  console.log(`$ hamalog ${args.join(" ")}`);
  const r = spawnSync(process.execPath, [CLI, ...args], {
    stdio: ["ignore", opts.capture ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
  });
  if (opts.capture) process.stdout.write(r.stdout);
  return { code: r.status ?? 1, stdout: r.stdout ?? "" };
}

/** Run the CLI without blocking this process, so the request loop keeps running beside it. */
function hamalogAsync(args: string[]): Promise<{ code: number }> {
  console.log(`$ hamalog ${args.join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "inherit", "inherit"] });
    child.on("close", (code) => resolve({ code: code ?? 1 }));
  });
}

function must(r: { code: number; stdout: string }, what: string): string {
  if (r.code !== 0) throw new Error(`demo: ${what} failed (exit ${r.code})`);
  return r.stdout;
}

async function appVersion(port: number): Promise<string> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/version`)).text()).trim();
  } catch (e) {
    return `(no answer: ${(e as Error).message})`;
  }
}

/**
 * After a blue/green switch the host agent keeps the old colour up for deploy/proxy/warmSeconds (a rollback in that
 * window is a switch), then stops it: a timer process on the host. This demo's host is this machine, so the timers
 * its deploys left for its own directory are stopped with it (by pid).
 */
function stopWarmTimers(deployDir: string): number {
  const ps = spawnSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" }).stdout ?? "";
  let n = 0;
  for (const line of ps.split("\n")) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m || !m[2]!.includes(`${deployDir}/.hamalog/agent-`) || !m[2]!.includes(" _warm ")) continue;
    try {
      process.kill(Number(m[1]), "SIGTERM");
      n++;
    } catch {
      // ended meanwhile
    }
  }
  return n;
}

const tmp = mkdtempSync(join(tmpdir(), "hamalog-demo-"));
const project = "hamalog-demo";
const repo = "daemin-kim/hamalog-backend";
const [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
const appPort = await freePort();
const dir = join(tmp, "opt", "hamalog");
let failed = false;
/** Requests the loop saw fail during the deploys after v1 (what the last line reports). */
let dropped = 0;

try {
  console.log(bold("Hamalog pipeline demo — everything on 127.0.0.1"));
  console.log(`registry  ${registry.url} (stands in for ghcr.io)`);
  console.log(`ssh host  root@127.0.0.1:${sshd.port}, host key ${sshd.hostKeyFingerprint}`);
  console.log(`app       http://127.0.0.1:${appPort}  (compose project ${project}, deploy dir ${dir})`);

  // The app's compose template, as the Hamalog repo keeps it — including the obsolete `version:` key.
  writeFileSync(
    join(tmp, "docker-compose.prod.yml"),
    composeTemplate({
      preamble: ['version: "3.8"'],
      service: "hamalog-app",
      image: "ghcr.io/daemin-kim/hamalog-backend:latest   # replaced by the pinned digest on deploy",
      appPort,
      healthPath: "/actuator/health",
      retries: 3,
      startPeriod: null,
    }),
  );
  const config = join(tmp, "pipeline.yaml");
  writeFileSync(
    config,
    pipelineYaml({
      registry: registry.host,
      repository: repo,
      sections: ["defaultBranch: main"],
      sshd,
      directory: dir,
      composeFile: "docker-compose.prod.yml",
      project,
      service: "hamalog-app",
      health: { url: `http://127.0.0.1:${appPort}/actuator/health`, timeout: 15, interval: 0.5 },
      fallback: "none",
      // Zero downtime, as Hamalog's own pipeline.yaml: the local Caddy image test-env.sh builds stands in for caddy:2.
      extra: [
        "  strategy: blue-green",
        "  proxy:",
        `    publish: 127.0.0.1:${appPort}:80`,
        `    image: ${process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2"}`,
        "    drainSeconds: 1",
      ],
    }),
  );
  console.log(`\nconfig ${config}:\n${readFileSync(config, "utf8")}`);

  const versions = [
    { name: "v1", healthy: true },
    { name: "v2", healthy: true },
    { name: "v3", healthy: false },
  ];
  let n = 1;
  for (const v of versions) {
    const sha = fakeSha(v.name);
    step(n++, `build ${v.name}${v.healthy ? "" : " (its /actuator/health is missing: a broken release)"} and tag it`);
    const local = `hamalog-demo/app:${v.name}`;
    buildAppImage(local, { version: `hamalog ${v.name}`, healthy: v.healthy, healthPath: "actuator/health" });
    const tags = must(hamalog(["tag", "--sha", sha, "--branch", "main"], { capture: true }), "tag")
      .trim()
      .split("\n");
    for (const t of tags) {
      const ref = `${registry.host}/${repo}:${t}`;
      console.log(`$ docker push ${ref}`);
      docker(["tag", local, ref]);
      docker(["push", ref]);
      docker(["rmi", ref]);
    }
    docker(["rmi", local]);

    step(n++, `verify-manifest ${v.name}: prove the tag exists before touching the host`);
    must(hamalog(["verify-manifest", "--config", config, "--sha", sha]), "verify-manifest");

    step(n++, `deploy ${v.name} (blue/green), while a loop requests the app every 20 ms`);
    // v1 is the first release: there is nothing to ask before it.
    const loop = v.name !== "v1" ? startLoop(`http://127.0.0.1:${appPort}/version`) : undefined;
    const r = await hamalogAsync(["deploy", "--config", config, "--sha", sha, "--ssh-key-file", sshd.keyFile]);
    console.log(`→ exit ${r.code}; the app now answers: ${await appVersion(appPort)}`);
    if (loop) {
      const st = await loop.stop();
      dropped += st.failed;
      console.log(`→ dropped requests: ${st.failed} of ${st.requests} (answers seen: ${st.answers.join(", ")})`);
      if (!v.healthy && st.answers.includes(`hamalog ${v.name}`))
        throw new Error(`demo: a request was answered by the broken ${v.name}`);
    }
    if (v.healthy && r.code !== 0) throw new Error(`demo: deploy ${v.name} should have succeeded`);
    if (!v.healthy && r.code === 0) throw new Error("demo: the broken v3 should never have gone live");
  }

  step(n++, "the seed's incident: CI pushed `main-<sha>` (metadata-action), the server asked for `<sha>`");
  const seedSha = fakeSha("seed");
  const seedRef = `${registry.host}/${repo}:main-${seedSha}`;
  buildAppImage("hamalog-demo/app:seed", { version: "hamalog seed" });
  console.log(`$ docker push ${seedRef}   # what the seed's workflow did`);
  docker(["tag", "hamalog-demo/app:seed", seedRef]);
  docker(["push", seedRef]);
  docker(["rmi", seedRef, "hamalog-demo/app:seed"]);
  const before = readFileSync(join(dir, "history.jsonl"), "utf8");
  const miss = hamalog(["deploy", "--config", config, "--sha", seedSha, "--ssh-key-file", sshd.keyFile], {
    capture: true,
  });
  if (miss.code === 0 || /^\[lock\]/m.test(miss.stdout) || readFileSync(join(dir, "history.jsonl"), "utf8") !== before)
    throw new Error("demo: the seed's sha should have stopped in preflight, before the lock");
  console.log(
    `→ exit ${miss.code}: stopped in preflight, the host was not touched; the app still answers: ${await appVersion(appPort)}`,
  );

  step(n++, "status: what runs now, and the history");
  must(hamalog(["status", "--config", config, "--ssh-key-file", sshd.keyFile]), "status");
} catch (e) {
  failed = true;
  console.error(`\n${(e as Error).message}`);
} finally {
  if (keep && !failed) {
    console.log(`\n--keep: the app stays up on http://127.0.0.1:${appPort}; stop it with:`);
    console.log(`  docker compose -p ${project} -f ${join(dir, "compose.yaml")} down && rm -rf ${tmp}`);
    console.log(`registry pid ${registry.pid} and sshd pid ${sshd.pid} stop now.`);
  } else {
    stopWarmTimers(dir);
    spawnSync("docker", ["compose", "-p", project, "-f", join(dir, "compose.yaml"), "down", "--remove-orphans"], {
      stdio: "ignore",
    });
    for (const line of docker(["image", "ls", "--digests", "--format", "{{.Repository}}@{{.Digest}}"]).split("\n")) {
      // Only this run's registry: a developer's own ghcr.io images of the same repository stay.
      if (line.startsWith(`${registry.host}/${repo}@`)) spawnSync("docker", ["rmi", "-f", line], { stdio: "ignore" });
    }
  }
  await Promise.all([registry.stop(), sshd.stop()]);
  if (!keep || failed) rmSync(tmp, { recursive: true, force: true });
  console.log(
    failed
      ? "\ndemo FAILED"
      : `\ndemo done: tag → push → verify-manifest → deploy v1 → v2 (blue/green) → broken v3 never went live (${dropped} request(s) dropped in all) → seed near-miss caught → status`,
  );
  process.exitCode = failed ? 1 : 0;
}
