// The first hamalog deploy on a host that runs Hamalog's stack as it does today (plain `docker compose up` from a
// checkout: tunnel → nginx → hamalog-app + MySQL + Redis, nothing recorded), as docs/adopting.md describes it: the
// tool adopts the running accessories (same containers, same volumes, same data), its proxy takes over the app's
// name, nginx is restarted once so it resolves that name to the proxy, the old app container goes — and from then
// on every deploy is blue/green with no failed request. Real dockerd + compose v2, sshd, Caddy and a registry.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hamalog, type CliResult } from "../helpers/cli.js";
import {
  buildHamalogImages,
  getInNetwork,
  hamalogAppImage,
  hamalogCompose,
  hamalogComposeFile,
  hamalogNginxConf,
  hamalogPipelineYaml,
  hamalogStackFiles,
  insertProbeRow,
  readProbeRows,
  redisGet,
  redisSet,
  removeHamalogStack,
  sampleHamalogSecrets,
  serviceContainers,
  startTunnelLoop,
  writeHamalogStackFiles,
  type HamalogSecrets,
} from "./helpers/hamalog-stack.js";
import { docker, pushImage, removeImages } from "./helpers/images.js";
import { startRegistry, type Registry } from "./helpers/registry.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";

// The project name today's stack runs under (compose names it after the checkout's directory).
const PROJECT = `hamalog-adopt-${process.pid}`;
const REPO = "daemin-kim/hamalog-backend";
const CADDY = process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2";
const SHA = { v2: "d2".repeat(20), v3: "e3".repeat(20) };

let registry: Registry;
let sshd: Sshd;
let tmp: string;
let checkout: string;
let config: string;
let envFile: string;
let secrets: HamalogSecrets;
const refs: string[] = [];
const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
const id = (s: string) => serviceContainers(PROJECT, s, true).join(",");
const run = (args: string[]) =>
  hamalog([...args, "--config", config, "--ssh-key-file", sshd.keyFile, "--env-file", envFile], { timeoutMs: 300_000 });

beforeAll(async () => {
  [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
  buildHamalogImages(["v1", "v2", "v3"], { closedSeconds: 2, unhealthySeconds: 2 });
  for (const v of ["v2", "v3"] as const) {
    const ref = `${registry.host}/${REPO}:${SHA[v]}`;
    pushImage(hamalogAppImage(v), ref);
    refs.push(ref);
  }
  tmp = mkdtempSync(join(tmpdir(), "hamalog-adopt-"));
  secrets = sampleHamalogSecrets();
  // Today: the checkout on the server, `docker compose up` with .env (interpolation) and .env.prod (env_file).
  checkout = join(tmp, "checkout");
  writeHamalogStackFiles(
    checkout,
    hamalogStackFiles({ secrets, appImage: hamalogAppImage("v1"), appStartPeriod: "60s" }),
  );
  const up = hamalogCompose(checkout, PROJECT, ["up", "-d", "--wait", "--wait-timeout", "180"]);
  if (up.code !== 0) throw new Error(`today's stack did not come up:\n${up.stderr}`);
  // The repository after adoption (docs/adopting.md): the template, nginx's config, pipeline.yaml; secrets by name.
  writeFileSync(
    join(tmp, "docker-compose.yml"),
    hamalogComposeFile({ appImage: "placeholder", appStartPeriod: "60s" }),
  );
  writeFileSync(join(tmp, "nginx-docker.conf"), hamalogNginxConf());
  envFile = join(tmp, "hamalog.env");
  writeFileSync(
    envFile,
    Object.entries(secrets)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n") + "\n",
    { mode: 0o600 },
  );
  config = join(tmp, "pipeline.yaml");
  writeFileSync(
    config,
    hamalogPipelineYaml({
      registry: registry.host,
      repository: REPO,
      sshd,
      directory: join(tmp, "srv"),
      project: PROJECT,
      strategy: "blue-green",
      caddy: CADDY,
      secrets: Object.keys(secrets),
    }),
  );
}, 600_000);

afterAll(async () => {
  removeHamalogStack(PROJECT);
  removeImages(REPO, refs);
  await Promise.all([registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("adopting a host that runs today's stack", () => {
  let before: Record<string, string>;
  it("today's stack serves v1 through nginx; its data is there", () => {
    expect(getInNetwork(PROJECT, "http://nginx/version").body.trim()).toBe("v1");
    insertProbeRow(PROJECT, secrets, "from before hamalog");
    redisSet(PROJECT, secrets, "adopted", "yes");
    before = { mysql: id("mysql-hamalog"), redis: id("hamalog-redis"), nginx: id("nginx"), tunnel: id("tunnel") };
  });

  it("the first deploy adopts it: same accessories and data, the old app gone, nginx restarted once — a short gap, said plainly", async () => {
    const loop = startTunnelLoop({
      project: PROJECT,
      dir: join(tmp, "loops"),
      url: "http://nginx/version",
      intervalMs: 50,
    });
    await new Promise((r) => setTimeout(r, 500));
    const r = await run(["deploy", "--sha", SHA.v2]);
    await new Promise((r) => setTimeout(r, 500));
    const stats = loop.stop();
    console.log(`[adoption] ${stats.failed}/${stats.requests} failed, longest outage ${stats.longestOutageMs} ms`);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(
      /users saw: nginx, tunnel restarted once, so hamalog-app resolves to the proxy from now on/,
    );
    expect(r.stdout).toMatch(/\[accessories\] .*changed \(left running\)/);
    expect(stats.answers).toEqual(["v1", "v2"]);
    expect(stats.longestOutageMs, JSON.stringify(stats.errors)).toBeLessThan(15_000);
    // The accessories are the same containers (nginx and the tunnel restarted, not recreated); the data is theirs.
    expect({
      mysql: id("mysql-hamalog"),
      redis: id("hamalog-redis"),
      nginx: id("nginx"),
      tunnel: id("tunnel"),
    }).toEqual(before);
    expect(serviceContainers(PROJECT, "hamalog-app", true)).toEqual([]);
    expect(readProbeRows(PROJECT, secrets)).toContain("from before hamalog");
    expect(redisGet(PROJECT, secrets, "adopted")).toBe("yes");
    const j = JSON.parse(readFileSync(join(tmp, "srv", "journal.json"), "utf8"));
    expect(j).toMatchObject({
      strategy: "blue-green",
      live: { sha: SHA.v2, colour: "blue" },
      previous: null,
      attempt: null,
    });
  });

  it("from then on a deploy is blue/green: 0 failed requests through nginx", async () => {
    const loop = startTunnelLoop({
      project: PROJECT,
      dir: join(tmp, "loops"),
      url: "http://nginx/version",
      intervalMs: 50,
    });
    await new Promise((r) => setTimeout(r, 500));
    const r = await run(["deploy", "--sha", SHA.v3]);
    await new Promise((r) => setTimeout(r, 500));
    const stats = loop.stop();
    expect(r.code, text(r)).toBe(0);
    expect(stats.failed, JSON.stringify(stats.errors)).toBe(0);
    expect(stats.answers).toEqual(["v2", "v3"]);
    expect(docker(["inspect", "--format", "{{.State.Running}}", serviceContainers(PROJECT, "nginx")[0]!]).trim()).toBe(
      "true",
    );
  });
});
