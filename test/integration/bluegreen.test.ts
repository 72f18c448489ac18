// Blue/green behind a real Caddy 2 (built from Debian's package by test-env.sh), end to end over real sshd,
// dockerd + compose v2 and a registry, under a request loop on loopback (every 20 ms, a new connection each),
// with an app that starts like Spring Boot (port closed, then /health 503, then 200; graceful on SIGTERM).
// One ordered story: recreate → migration → broken v3 → v4 (the old colour stays warm) → rollback inside the warm
// window (a switch) → one outside it (the kept container started again) → a re-run of the live release (nothing
// changes) → --force → a changed proxy definition (said plainly) → back to recreate → and blue/green again.
// Interruptions, cancels and a frozen holder have their own files (deploy-cancel, deploy-fencing).
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
const VERSIONS = ["v1", "v2", "v3", "v4", "v5"] as const;
type V = (typeof VERSIONS)[number];
const SHA = Object.fromEntries(VERSIONS.map((v, i) => [v, String(i + 1).repeat(40)])) as Record<V, string>;

let registry: Registry;
let sshd: Sshd;
let tmp: string;
let dir: string;
let port: number;
let configFile: string;
let caddyByDigest = "";
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
const filter = (service: string) => [
  "--filter",
  `label=com.docker.compose.project=${ID}`,
  "--filter",
  `label=com.docker.compose.service=${service}`,
];
const containerIds = (service: string) => docker(["ps", "-aq", "--no-trunc", ...filter(service)]).trim();
const running = (service: string) => docker(["ps", "-q", ...filter(service)]).trim();
const version = () => fetch(`http://127.0.0.1:${port}/version`).then((x) => x.text());
/** A phase's duration as printed (`[phase] … 1.2s`). */
const took = (r: CliResult, phase: string) =>
  Number(new RegExp(`^\\[${phase}\\] .* (\\d+\\.\\d)s$`, "m").exec(r.stdout)?.[1]);

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
  // The same Caddy, pinned by digest (as the docs advise): a changed proxy definition.
  const caddyRef = `${registry.host}/hamalog-bg-it/caddy:2`;
  caddyByDigest = `${caddyRef}@${pushImage(CADDY, caddyRef)}`;
  localImages.push(caddyRef);
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

  it("migrates recreate → blue/green with one stop of the old container, and says what outage it caused", async () => {
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v2, ...bg()]));
    console.log(`[migration] ${loop.failed}/${loop.requests} failed, longest outage ${loop.longestOutageMs} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(loop.answers).toEqual(["v1", "v2"]);
    expect(loop.longestOutageMs, JSON.stringify(loop)).toBeLessThan(5000);
    // Truthful: not "no request dropped".
    expect(r.stdout).toMatch(
      /users saw: migrated from recreate: the public port was closed for \d+\.\ds while the proxy took it over from app/,
    );
    expect(r.stdout).not.toMatch(/no request dropped/);
    expect(containerIds("app")).toBe(""); // the recreate container is gone
    expect(running("app-blue")).not.toBe("");
    expect(running("hamalog-proxy")).not.toBe("");
    expect(readFileSync(join(dir, "proxy", "Caddyfile"), "utf8")).toMatch(
      /^# hamalog live: blue \(routes [0-9a-f]{12}\)$/m,
    );
  });

  it("broken v3: exit 1, 0 failed requests, no v3 answer ever reaches the loop, v2 keeps serving", async () => {
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v3, ...bg()]));
    expect(r.code, text(r)).toBe(1);
    expect(text(r)).toMatch(
      /:3{40}@sha256:[0-9a-f]{64} never went live; sha 2{12} \(sha256:[0-9a-f]{12}…, blue\) kept serving/,
    );
    expect(loop.failed, JSON.stringify(loop)).toBe(0);
    expect(loop.answers).toEqual(["v2"]);
    expect(containerIds("app-green")).toBe("");
    expect(entries().at(-1)).toMatchObject({ result: "failed", failedPhase: "candidate-health", colour: "green" });
    expect(existsSync(join(dir, ".hamalog", "lock.token"))).toBe(false);
  });

  it("v2 → v4 (slow start): 0 failed requests, v2 then v4; blue stays up warm for the rollback window", async () => {
    const { r, loop, ms } = await underLoad(() => run(["deploy", "--sha", SHA.v4, ...bg()]));
    console.log(`[blue-green] ${loop.failed}/${loop.requests} failed, deploy ${ms} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/as green in \d+\.\ds, no request dropped: a route stayed open throughout$/m);
    expect(loop.failed, JSON.stringify(loop)).toBe(0);
    expect(loop.answers).toEqual(["v2", "v4"]);
    expect(running("app-green")).not.toBe("");
    expect(running("app-blue")).not.toBe(""); // warm
    const e = entries().at(-1)!;
    expect(e).toMatchObject({
      result: "success",
      colour: "green",
      running: { colour: "green", sha: SHA.v4 },
      kept: { colour: "blue", sha: SHA.v2 },
    });
    expect(typeof e.switchedAt).toBe("string");
    const j = journal();
    expect(j).toMatchObject({
      strategy: "blue-green",
      live: { colour: "green", sha: SHA.v4 },
      previous: { colour: "blue", sha: SHA.v2 },
      attempt: null,
    });
    expect(Date.parse(j.previous.warmUntil) - Date.now()).toBeGreaterThan(200_000);
    const st = await run(["status", ...bg()]);
    expect(st.code, text(st)).toBe(0);
    expect(st.stdout).toMatch(/colour: green \(app-green running/);
    expect(st.stdout).toMatch(/kept: blue sha 2{12} .*running.* warm until .*`hamalog rollback` switches to it/);
    expect(st.stdout).toMatch(/proxy: running, routes app and 127\.0\.0\.1:\d+:80 → green/);
    expect(st.stdout).toMatch(/the host matches the journal/);
  });

  it("rollback inside the warm window is a switch: 0 failed, v2 again from the same running container, no start", async () => {
    const deployMs = entries().at(-1)!.durationMs as number;
    const kept = containerIds("app-blue");
    const { r, loop, ms } = await underLoad(() => run(["rollback", ...bg()]));
    console.log(
      `[warm rollback] ${ms} ms (the deploy took ${deployMs} ms); ${loop.failed}/${loop.requests} failed\n${r.stdout}`,
    );
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(
      /\[candidate\] app-blue already runs sha256:[0-9a-f]{12}… \(kept warm\): nothing to start/,
    );
    expect(r.stdout).toMatch(/\[pull\] skipped/);
    expect(loop.failed, JSON.stringify(loop)).toBe(0);
    expect(loop.answers).toEqual(["v4", "v2"]);
    expect(containerIds("app-blue")).toBe(kept);
    expect(took(r, "candidate-health")).toBeLessThan(1);
    expect(journal()).toMatchObject({
      live: { colour: "blue", sha: SHA.v2 },
      previous: { colour: "green", sha: SHA.v4 },
    });
  });

  it("outside the window (warmSeconds 0) the old colour is stopped and kept; rollback starts that same container: 0 failed", async () => {
    const d = await underLoad(() => run(["deploy", "--sha", SHA.v5, ...bg(["--warm-seconds", "0"])]));
    expect(d.r.code, text(d.r)).toBe(0);
    expect(d.loop.failed, JSON.stringify(d.loop)).toBe(0);
    expect(d.r.stdout).toMatch(/\[retire\] app-blue stopped and kept/);
    expect(running("app-blue")).toBe("");
    const kept = containerIds("app-blue");
    expect(kept).not.toBe("");
    const { r, loop } = await underLoad(() => run(["rollback", ...bg()]));
    expect(r.code, text(r)).toBe(0);
    expect(loop.failed, JSON.stringify(loop)).toBe(0);
    expect(loop.answers).toEqual(["v5", "v2"]);
    expect(containerIds("app-blue")).toBe(kept); // started again, not re-created
    expect(running("app-blue")).toBe(kept.slice(0, 12));
  });

  it("a re-run of the live release changes nothing (same container, no history line); --force replaces it", async () => {
    const before = { ids: projectContainers(ID), history: entries().length };
    const r = await run(["deploy", "--sha", SHA.v2, ...bg()]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(
      /^already live: \S+:2{40}@sha256:[0-9a-f]{64} \(sha 2{40}\) as app-blue since \S+, healthy \(http:\/\/127\.0\.0\.1:\d+\/cgi-bin\/health → HTTP 200\) — nothing changed; --force replaces it$/m,
    );
    expect(r.stdout).not.toMatch(/^\[lock\]/m);
    expect({ ids: projectContainers(ID), history: entries().length }).toEqual(before);
    const { r: f, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v2, "--force", ...bg()]));
    expect(f.code, text(f)).toBe(0);
    expect(loop.failed, JSON.stringify(loop)).toBe(0);
    expect(journal().live).toMatchObject({ sha: SHA.v2, colour: "green" });
  });

  it("a changed proxy definition (its image pinned by digest) recreates the proxy and says so plainly", async () => {
    const { r, loop } = await underLoad(() =>
      run(["deploy", "--sha", SHA.v4, ...bg(["--proxy-image", caddyByDigest])]),
    );
    console.log(
      `[proxy redefinition] ${loop.failed}/${loop.requests} failed, longest outage ${loop.longestOutageMs} ms`,
    );
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/\[proxy\] hamalog-proxy recreated \(its definition changed\)/);
    expect(r.stdout).toMatch(
      /users saw: the edge proxy's definition changed, so it was recreated \(its routes were down for up to \d+\.\ds\)/,
    );
    expect(r.stdout).not.toMatch(/no request dropped/);
    expect(docker(["inspect", "--format", "{{.Config.Image}}", running("hamalog-proxy")]).trim()).toBe(caddyByDigest);
    expect(await version()).toBe("v4\n");
    // The next deploy with the same definition leaves it alone.
    const again = await underLoad(() => run(["deploy", "--sha", SHA.v5, ...bg(["--proxy-image", caddyByDigest])]));
    expect(again.r.stdout).toMatch(/\[proxy\] hamalog-proxy unchanged/);
    expect(again.loop.failed, JSON.stringify(again.loop)).toBe(0);
  });

  it("back to recreate works, and says what outage it caused; its failures are counted for comparison", async () => {
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v4]));
    console.log(`[recreate] ${loop.failed}/${loop.requests} failed, longest outage ${loop.longestOutageMs} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/users saw: back to recreate: the proxy and colours were removed and app started/);
    expect(running("hamalog-proxy")).toBe("");
    expect(containerIds("app-blue") + containerIds("app-green")).toBe("");
    expect(running("app")).not.toBe("");
    expect(await version()).toBe("v4\n");
  });

  it("and blue/green again: a host that went back to recreate migrates once more (its old Caddyfile is not trusted)", async () => {
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v2, ...bg()]));
    console.log(`[migration again] ${loop.failed}/${loop.requests} failed, longest outage ${loop.longestOutageMs} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/migrated from recreate/);
    expect(loop.answers).toEqual(["v4", "v2"]);
    expect(loop.longestOutageMs, JSON.stringify(loop)).toBeLessThan(5000);
    expect(running("app")).toBe("");
    expect(running("hamalog-proxy")).not.toBe("");
  });
});
