// Blue/green behind a real Caddy 2 (built from Debian's package by test-env.sh), end to end over real sshd,
// dockerd + compose v2 and a registry, under a request loop on loopback (every 20 ms, a new connection each),
// with an app that starts like Spring Boot (port closed, then /health 503, then 200; graceful on SIGTERM).
// One ordered story: recreate → migration → broken v3 → v4 → rollback → interrupted at switch and at drain →
// SIGKILLed (a dead attempt) at switch and drain → back to recreate. Timings are short (2 s closed, 2 s 503, 1 s drain) to keep the suite quick.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hamalog, type CliResult } from "../helpers/cli.js";
import {
  buildSlowAppImage,
  docker,
  projectContainers,
  pushImage,
  removeComposeProject,
  removeImages,
  SLOW_HEALTH_PATH,
} from "./helpers/images.js";
import { freePort } from "./helpers/ports.js";
import { startRegistry, type Registry } from "./helpers/registry.js";
import { startLoop, type LoopStats } from "./helpers/request-loop.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { pipelineYaml } from "./helpers/stack-files.js";

const ID = `hamalog-bg-it-${process.pid}`;
const REPO = "hamalog-bg-it/app";
const CADDY = process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2";
const VERSIONS = ["v1", "v2", "v3", "v4", "v5", "v6"] as const;
type V = (typeof VERSIONS)[number];
const SHA = Object.fromEntries(VERSIONS.map((v, i) => [v, String(i + 1).repeat(40)])) as Record<V, string>;

let registry: Registry;
let sshd: Sshd;
let tmp: string;
let dir: string;
let port: number;
let configFile: string;
const localImages: string[] = [];

const BG = ["--strategy", "blue-green", "--proxy-publish", "", "--proxy-image", CADDY, "--drain-seconds", "1"];

function run(args: string[], opts: Parameters<typeof hamalog>[1] = {}): Promise<CliResult> {
  return hamalog([...args, "--config", configFile, "--ssh-key-file", sshd.keyFile], { timeoutMs: 180_000, ...opts });
}
const bg = (extra: string[] = []) => BG.map((a) => (a === "" ? `127.0.0.1:${port}:80` : a)).concat(extra);
const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
const entries = () =>
  readFileSync(join(dir, "history.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
const journal = () => JSON.parse(readFileSync(join(dir, "journal.json"), "utf8")) as Record<string, any>;
/** The colour the Caddyfile on the host routes the public port to (its first line). */
const routed = () => /^# hamalog live: (\w+)/.exec(readFileSync(join(dir, "proxy", "Caddyfile"), "utf8"))?.[1];
const containerIds = (service: string) =>
  docker([
    "ps",
    "-aq",
    "--no-trunc",
    "--filter",
    `label=com.docker.compose.project=${ID}`,
    "--filter",
    `label=com.docker.compose.service=${service}`,
  ]).trim();
const running = (service: string) =>
  docker([
    "ps",
    "-q",
    "--filter",
    `label=com.docker.compose.project=${ID}`,
    "--filter",
    `label=com.docker.compose.service=${service}`,
  ]).trim();

/** Run `fn` (a CLI call) under the request loop; returns its result and the loop's counts. */
async function underLoad(fn: () => Promise<CliResult>): Promise<{ r: CliResult; loop: LoopStats; ms: number }> {
  const loop = startLoop(`http://127.0.0.1:${port}/version`);
  await new Promise((res) => setTimeout(res, 300));
  const t = Date.now();
  const r = await fn();
  const ms = Date.now() - t;
  await new Promise((res) => setTimeout(res, 300));
  return { r, loop: await loop.stop(), ms };
}

beforeAll(async () => {
  [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
  tmp = mkdtempSync(join(tmpdir(), "hamalog-bg-it-"));
  dir = join(tmp, "srv", "app");
  port = await freePort();
  for (const v of VERSIONS) {
    const local = `${ID}/app:${v}`;
    buildSlowAppImage(local, { version: v, closedSeconds: v === "v1" ? 0 : 2, unhealthySeconds: v === "v3" ? -1 : 2 });
    localImages.push(local);
    const ref = `${registry.host}/${REPO}:${SHA[v]}`;
    pushImage(local, ref);
    localImages.push(ref);
  }
  // One template for both strategies: recreate publishes the app's port; blue/green drops it and puts the proxy there.
  writeFileSync(
    join(tmp, "compose.template.yml"),
    [
      "services:",
      "  app:",
      "    image: placeholder",
      `    ports: ["127.0.0.1:${port}:8080"]`,
      "    stop_grace_period: 5s",
      "",
    ].join("\n"),
  );
  configFile = join(tmp, "pipeline.yaml");
  writeFileSync(
    configFile,
    pipelineYaml({
      registry: registry.host,
      repository: REPO,
      sshd,
      directory: dir,
      composeFile: "compose.template.yml",
      project: ID,
      health: { url: `http://127.0.0.1:${port}${SLOW_HEALTH_PATH}`, timeout: 10, interval: 0.25 },
      keepImages: 10,
    }),
  );
});

afterAll(async () => {
  removeComposeProject(ID);
  removeImages(REPO, localImages);
  await Promise.all([registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("blue/green behind Caddy, under a 20 ms request loop", () => {
  it("recreate serves v1 (the layout a first blue/green deploy migrates)", async () => {
    const r = await run(["deploy", "--sha", SHA.v1]);
    expect(r.code, text(r)).toBe(0);
    expect(running("app")).not.toBe("");
  });

  it("migrates recreate → blue/green with one container stop and a bounded outage; v2 answers", async () => {
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v2, ...bg()]));
    console.log(`[migration] ${loop.failed}/${loop.requests} failed, longest outage ${loop.longestOutageMs} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(loop.answers).toEqual(["v1", "v2"]);
    expect(loop.longestOutageMs, JSON.stringify(loop)).toBeLessThan(5000);
    expect(running("app")).toBe(""); // the recreate container is gone
    expect(
      docker([
        "ps",
        "-aq",
        "--filter",
        `label=com.docker.compose.project=${ID}`,
        "--filter",
        "label=com.docker.compose.service=app",
      ]).trim(),
    ).toBe("");
    expect(running("app-blue")).not.toBe("");
    expect(running("hamalog-proxy")).not.toBe("");
    expect(readFileSync(join(dir, "proxy", "Caddyfile"), "utf8")).toMatch(/lb_try_duration/);
  });

  it("broken v3: exit 1, 0 failed requests, no v3 answer ever reaches the loop, v2 keeps serving", async () => {
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v3, ...bg()]));
    expect(r.code, text(r)).toBe(1);
    expect(text(r)).toMatch(/:3{40}@sha256:[0-9a-f]{64} never went live; blue \(2{12}\) kept serving/);
    expect(loop.failed, JSON.stringify(loop)).toBe(0);
    expect(loop.answers).toEqual(["v2"]);
    expect(
      docker([
        "ps",
        "-aq",
        "--filter",
        `label=com.docker.compose.project=${ID}`,
        "--filter",
        "label=com.docker.compose.service=app-green",
      ]).trim(),
    ).toBe("");
    expect(entries().at(-1)).toMatchObject({ result: "failed", failedPhase: "candidate-health", colour: "green" });
  });

  it("v2 → v4 (slow start): 0 failed requests, the answer changes from v2 to v4, blue stopped but kept", async () => {
    const { r, loop, ms } = await underLoad(() => run(["deploy", "--sha", SHA.v4, ...bg()]));
    console.log(`[blue-green] ${loop.failed}/${loop.requests} failed, deploy ${ms} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(loop.failed, JSON.stringify(loop)).toBe(0);
    expect(loop.answers).toEqual(["v2", "v4"]);
    expect(running("app-green")).not.toBe("");
    expect(running("app-blue")).toBe("");
    expect(
      docker([
        "ps",
        "-aq",
        "--filter",
        `label=com.docker.compose.project=${ID}`,
        "--filter",
        "label=com.docker.compose.service=app-blue",
      ]).trim(),
    ).not.toBe("");
    const e = entries().at(-1)!;
    expect(e).toMatchObject({
      result: "success",
      colour: "green",
      running: { colour: "green", sha: SHA.v4 },
      kept: { colour: "blue", sha: SHA.v2 },
    });
    expect(typeof e.switchedAt).toBe("string");
    expect(journal()).toMatchObject({
      strategy: "blue-green",
      live: { colour: "green", sha: SHA.v4 },
      previous: { colour: "blue", sha: SHA.v2 },
      attempt: null,
    });
    const st = await run(["status", ...bg()]);
    expect(st.code, text(st)).toBe(0);
    expect(st.stdout).toMatch(/live: green/);
    expect(st.stdout).toMatch(/kept: blue .*stopped/);
    expect(st.stdout).toMatch(/proxy: running, routes .* → green/);
  });

  it("rollback starts the kept colour (journal's previous): 0 failed, v2 again, the same container, no pull", async () => {
    const kept = containerIds("app-blue");
    expect(kept).not.toBe("");
    const { r, loop } = await underLoad(() => run(["rollback", ...bg()]));
    expect(r.code, text(r)).toBe(0);
    expect(loop.failed, JSON.stringify(loop)).toBe(0);
    expect(loop.answers).toEqual(["v4", "v2"]);
    expect(r.stdout).toMatch(/\[pull\] skipped/);
    // The kept container itself was started again: no new container was created for blue.
    expect(containerIds("app-blue")).toBe(kept);
    expect(running("app-blue")).toBe(kept.slice(0, 12));
    expect(journal()).toMatchObject({
      live: { colour: "blue", sha: SHA.v2 },
      previous: { colour: "green", sha: SHA.v4 },
    });
  });

  for (const [when, sig, after] of [
    ["switch", "SIGINT", "[candidate-health]"],
    ["drain", "SIGTERM", "[live-health]"],
  ] as const) {
    it(`${sig} at ${when}: 0 failed requests, one healthy colour live, no stale lock`, async () => {
      const v = when === "switch" ? "v5" : "v6";
      let sent = false;
      const { r, loop } = await underLoad(() =>
        run(["deploy", "--sha", SHA[v], ...bg(["--drain-seconds", "6"])], {
          onStdout: (out, signal) => {
            if (!sent && out.includes(after)) {
              sent = true;
              signal(sig);
            }
          },
        }),
      );
      expect(sent, text(r)).toBe(true);
      expect(loop.failed, `${JSON.stringify(loop)}\n${text(r)}`).toBe(0);
      expect(existsSync(join(dir, ".deploy.lock"))).toBe(false);
      const live = await fetch(`http://127.0.0.1:${port}/version`).then((x) => x.text());
      expect(["v2", v]).toContain(live.trim());
      const colours = ["app-blue", "app-green"].filter((c) => running(c) !== "");
      expect(colours.length, text(r)).toBeGreaterThanOrEqual(1);
      const h = await fetch(`http://127.0.0.1:${port}${SLOW_HEALTH_PATH}`);
      expect(h.status).toBe(200);
    });
  }

  for (const [when, v, next] of [
    ["switch", "v5", "v5"],
    ["drain", "v6", "v2"],
  ] as const) {
    it(`SIGKILL at ${when} (a dead attempt): 0 failed requests, one healthy colour; the next plain deploy recovers`, async () => {
      let sent = false;
      const { r, loop } = await underLoad(() =>
        run(["deploy", "--sha", SHA[v], ...bg(["--drain-seconds", "6"])], {
          onStdout: (out, signal) => {
            if (sent) return;
            // No Ctrl-C handler runs: the journal is all the next run has. At drain: past the journal's promote.
            if (when === "switch" && out.includes("[candidate-health]")) ((sent = true), signal("SIGKILL"));
            if (when === "drain" && out.includes("[live-health]"))
              ((sent = true), setTimeout(() => signal("SIGKILL"), 1000));
          },
        }),
      );
      expect(sent, text(r)).toBe(true);
      expect(loop.failed, `${JSON.stringify(loop)}\n${text(r)}`).toBe(0);
      expect(existsSync(join(dir, ".deploy.lock"))).toBe(true);
      const dead = journal();
      expect(dead.attempt, JSON.stringify(dead)).toMatchObject({ candidate: { sha: SHA[v] } });
      if (when === "drain") expect(dead.live).toMatchObject({ sha: SHA[v], colour: dead.attempt.candidate.colour });
      // What serves: one colour, routed, running and healthy.
      const colour = routed()!;
      expect(running(`app-${colour}`)).not.toBe("");
      expect((await fetch(`http://127.0.0.1:${port}${SLOW_HEALTH_PATH}`)).status).toBe(200);
      const st = await run(["status", ...bg()]);
      expect(st.code, text(st)).toBe(0);
      expect(st.stdout).toMatch(/NEEDS RECOVERY/);
      if (colour !== dead.live.colour) expect(st.stdout).toMatch(/MISMATCH: the journal's live colour/);

      const again = await underLoad(() => run(["deploy", "--sha", SHA[next], ...bg()]));
      expect(again.r.code, text(again.r)).toBe(0);
      expect(text(again.r)).toMatch(/RECOVERING: a deploy of sha .* died in phase/);
      expect(again.loop.failed, JSON.stringify(again.loop)).toBe(0);
      const j = journal();
      expect(j).toMatchObject({ attempt: null, live: { sha: SHA[next], colour: routed() } });
      expect(running(`app-${j.live.colour}`)).not.toBe("");
      expect(await fetch(`http://127.0.0.1:${port}/version`).then((x) => x.text())).toBe(`${next}\n`);
      const after = await run(["status", ...bg()]);
      expect(after.stdout, text(after)).toMatch(/agree/);
      expect(after.stdout).not.toMatch(/MISMATCH|NEEDS RECOVERY/);
      expect(entries().some((e) => e.recovered === true && e.sha === SHA[v])).toBe(true);
    });
  }

  it("a dropped SSH connection during the drain: 0 failed requests, the proxy on one healthy colour", async () => {
    let dropped = false;
    const { r, loop } = await underLoad(() =>
      run(["deploy", "--sha", SHA.v4, ...bg(["--drain-seconds", "6"])], {
        onStdout: (out) => {
          if (dropped || !out.includes("[live-health]")) return;
          dropped = true;
          // The connection's sshd processes (children of this test's sshd): the network going away mid-drain.
          for (const pid of execFileSync("pgrep", ["-P", String(sshd.pid)], { encoding: "utf8" }).split("\n"))
            if (pid.trim()) process.kill(Number(pid), "SIGKILL");
        },
      }),
    );
    expect(dropped, text(r)).toBe(true);
    expect(r.code, text(r)).not.toBe(0);
    expect(loop.failed, `${JSON.stringify(loop)}\n${text(r)}`).toBe(0);
    expect(await fetch(`http://127.0.0.1:${port}/version`).then((x) => x.text())).toBe("v4\n");
    expect((await fetch(`http://127.0.0.1:${port}${SLOW_HEALTH_PATH}`)).status).toBe(200);
    // Nobody could release the lock: it is left for the next run, which takes it over (its holder is gone).
    expect(existsSync(join(dir, ".deploy.lock"))).toBe(true);
  });

  it("back to recreate works; its failures are counted for comparison", async () => {
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v4]));
    console.log(`[recreate] ${loop.failed}/${loop.requests} failed, longest outage ${loop.longestOutageMs} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(running("hamalog-proxy")).toBe("");
    expect(running("app")).not.toBe("");
    expect(await fetch(`http://127.0.0.1:${port}/version`).then((x) => x.text())).toBe("v4\n");
    expect(projectContainers(ID)).not.toBe("");
  });

  it("and blue/green again: a host that went back to recreate migrates once more (its old Caddyfile is not trusted)", async () => {
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v2, ...bg()]));
    console.log(`[migration again] ${loop.failed}/${loop.requests} failed, longest outage ${loop.longestOutageMs} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/\[migrate\]/);
    expect(loop.answers).toEqual(["v4", "v2"]);
    expect(loop.longestOutageMs, JSON.stringify(loop)).toBeLessThan(5000);
    expect(running("app")).toBe("");
    expect(running("hamalog-proxy")).not.toBe("");
  });
});
