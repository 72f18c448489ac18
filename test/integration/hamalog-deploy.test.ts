// Hamalog's real topology deployed by `hamalog deploy` (blue/green), over real sshd, dockerd + compose v2, Caddy and
// a registry: a tunnel → nginx reaching `hamalog-app:8080` BY SERVICE NAME (resolved once at nginx's start) → the app
// (env_file, ~13 `${VAR}` secrets, depends_on MySQL and Redis healthy, an uploads volume, a slow start) + MariaDB for
// MySQL + Redis with requirepass, all stand-ins built from Debian packages (helpers/hamalog-stack.ts). Under a
// request loop from inside the network, like the tunnel: 0 failed requests for a deploy, a broken release (never
// answers a user) and a rollback; the accessories keep their containers and data; the secrets reach the app and are
// written nowhere but the 0600 env files; a fresh host gets the whole stack; nginx restarted mid-way still finds the
// app; a missing secret stops everything before anything changes.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hamalog, type CliResult } from "../helpers/cli.js";
import {
  buildHamalogAppImage,
  buildHamalogImages,
  getInNetwork,
  hamalogAppImage,
  hamalogComposeFile,
  hamalogNginxConf,
  hamalogPipelineYaml,
  insertProbeRow,
  parseEnvCheck,
  readProbeRows,
  readUploadsVolume,
  redisGet,
  redisSet,
  removeHamalogStack,
  sampleHamalogSecrets,
  serviceContainers,
  sha256,
  startTunnelLoop,
  uploadThroughNginx,
  type HamalogSecrets,
} from "./helpers/hamalog-stack.js";
import { docker, pushImage, removeImages } from "./helpers/images.js";
import { startRegistry, type Registry } from "./helpers/registry.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";

const PROJECT = `hamalog-deploy-it-${process.pid}`;
const REPO = "daemin-kim/hamalog-backend";
const CADDY = process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2";
const SHA = { v1: "a1".repeat(20), v2: "b2".repeat(20), v3: "c3".repeat(20) };
// Configuration, not secrets: plain values in deploy/env. The rest are deploy/secrets, given through --env-file.
const PLAIN = ["DB_NAME", "DB_USERNAME", "JWT_EXPIRY", "JWT_REFRESH_TOKEN_EXPIRY", "KAKAO_REDIRECT_URI"] as const;
const ACCESSORIES = ["mysql-hamalog", "hamalog-redis", "nginx", "tunnel"];

let registry: Registry;
let sshd: Sshd;
let tmp: string;
let dir: string;
let config: string;
let envFile: string;
let secrets: HamalogSecrets;
const secretNames: string[] = [];
const outputs: CliResult[] = [];
const refs: string[] = [];

const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");
const journal = () => JSON.parse(read(join(dir, "journal.json")) || "{}") as Record<string, any>;
const ids = () => Object.fromEntries(ACCESSORIES.map((s) => [s, serviceContainers(PROJECT, s, true).join(",")]));
const through = (path: string) => getInNetwork(PROJECT, `http://nginx${path}`);

async function run(args: string[], env = envFile): Promise<CliResult> {
  const r = await hamalog([...args, "--config", config, "--ssh-key-file", sshd.keyFile, "--env-file", env], {
    timeoutMs: 300_000,
  });
  outputs.push(r);
  return r;
}

/** Run `fn` under a request loop from inside the stack's network, through nginx (as the tunnel sends users). */
async function underLoad(fn: () => Promise<CliResult>) {
  const loop = startTunnelLoop({
    project: PROJECT,
    dir: join(tmp, "loops"),
    url: "http://nginx/version",
    intervalMs: 50,
  });
  await new Promise((r) => setTimeout(r, 500));
  const r = await fn();
  await new Promise((r) => setTimeout(r, 500));
  return { r, loop: loop.stop() };
}

beforeAll(async () => {
  [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
  buildHamalogImages(["v1", "v2"], { closedSeconds: 2, unhealthySeconds: 2 });
  buildHamalogAppImage("v3", { closedSeconds: 2, unhealthySeconds: -1 });
  for (const v of ["v1", "v2", "v3"] as const) {
    const ref = `${registry.host}/${REPO}:${SHA[v]}`;
    pushImage(hamalogAppImage(v), ref);
    refs.push(ref);
  }
  tmp = mkdtempSync(join(tmpdir(), "hamalog-deploy-it-"));
  dir = join(tmp, "srv", "hamalog");
  secrets = sampleHamalogSecrets();
  // The template is Hamalog's own docker-compose.yml shape: env_file .env.prod, ${VAR}s, nginx by service name.
  writeFileSync(
    join(tmp, "docker-compose.yml"),
    hamalogComposeFile({ appImage: "placeholder", appStartPeriod: "60s" }),
  );
  writeFileSync(join(tmp, "nginx-docker.conf"), hamalogNginxConf());
  for (const n of Object.keys(secrets)) if (!(PLAIN as readonly string[]).includes(n)) secretNames.push(n);
  envFile = join(tmp, "hamalog.env");
  writeFileSync(envFile, secretNames.map((n) => `${n}=${secrets[n as keyof HamalogSecrets]}`).join("\n") + "\n", {
    mode: 0o600,
  });
  config = join(tmp, "pipeline.yaml");
  writeFileSync(
    config,
    hamalogPipelineYaml({
      registry: registry.host,
      repository: REPO,
      sshd,
      directory: dir,
      project: PROJECT,
      strategy: "blue-green",
      caddy: CADDY,
      env: { ...Object.fromEntries(PLAIN.map((n) => [n, secrets[n]])), HAMALOG_ENV_FILE: "release" },
      secrets: secretNames,
    }),
  );
}, 600_000);

afterAll(async () => {
  removeHamalogStack(PROJECT);
  removeImages(REPO, refs);
  await Promise.all([registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("Hamalog's stack through hamalog deploy (blue/green, no public port: tunnel → nginx → the app by name)", () => {
  it("a missing secret stops the deploy before anything changes, naming it", async () => {
    const partial = join(tmp, "partial.env");
    writeFileSync(partial, read(envFile).replace(/^JWT_SECRET=.*\n/m, ""), { mode: 0o600 });
    const r = await run(["deploy", "--sha", SHA.v1], partial);
    expect(r.code, text(r)).toBe(2);
    expect(r.stderr).toMatch(
      /deploy\/secrets: JWT_SECRET has no value \(looked in --env-file \S+partial\.env\) — add NAME=value lines to \S+; nothing was changed/,
    );
    expect(existsSync(dir)).toBe(false);
  });

  it("the dry run shows the template's ${VAR}s and no secret value", async () => {
    const r = await run(["deploy", "--sha", SHA.v1, "--dry-run"]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toContain("JWT_SECRET=${JWT_SECRET}");
    expect(r.stdout).toMatch(/and releases\/blue-[0-9a-f]{12}-[0-9a-f]{8}\.env \(mode 0600, values not shown\)/);
    expect(existsSync(dir)).toBe(false);
  });

  it("a fresh host gets the whole stack: MySQL and Redis first, the app's colour and the proxy, then nginx and the tunnel", async () => {
    const r = await run(["deploy", "--sha", SHA.v1]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(
      /^\[accessories\] started hamalog-redis, mysql-hamalog; nginx, tunnel start once the app is live/m,
    );
    expect(r.stdout).toMatch(/^\[dependents\] started nginx, tunnel/m);
    for (const s of [...ACCESSORIES, "hamalog-app-blue", "hamalog-proxy"])
      expect(serviceContainers(PROJECT, s).length, `${s}\n${text(r)}`).toBe(1);
    expect(through("/version").body.trim()).toBe("v1");
  });

  it("the secrets reached the app (env_file and ${VAR}s) and live only in the release's 0600 env file", () => {
    const e = parseEnvCheck(through("/env-check").body);
    for (const n of ["JWT_SECRET", "HAMALOG_ENCRYPTION_KEY", "KAKAO_CLIENT_SECRET", "SPRING_DATA_REDIS_PASSWORD"])
      expect(e.vars[n], n).toMatchObject({ set: true, sha256: sha256(secrets[n as keyof HamalogSecrets]) });
    expect(e.vars.SPRING_DATASOURCE_PASSWORD).toMatchObject({ set: true, sha256: sha256(secrets.DB_PASSWORD) });
    expect(e.vars.HAMALOG_ENV_FILE).toMatchObject({ set: true, sha256: sha256("release") });
    expect(e.db).toMatch(/^reachable mysql-hamalog:3306/);
    expect(e.redis).toMatch(/^auth-ok/);
    const env = readdirSync(join(dir, "releases")).filter((f) => f.endsWith(".env"));
    expect(env).toHaveLength(1);
    expect(statSync(join(dir, "releases", env[0]!)).mode & 0o777).toBe(0o600);
    expect(read(join(dir, "releases", env[0]!))).toContain(`JWT_SECRET='${secrets.JWT_SECRET}'`);
    expect(statSync(join(dir, "nginx-docker.conf")).mode & 0o777).toBe(0o644);
  });

  it("v2 under a loop through nginx: 0 failed, the accessories keep their containers, the data survives", async () => {
    insertProbeRow(PROJECT, secrets, "before v2");
    redisSet(PROJECT, secrets, "probe", "kept");
    uploadThroughNginx(PROJECT, "photo.txt");
    const before = ids();
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v2]));
    console.log(`[hamalog v2] ${loop.failed}/${loop.requests} failed; answers ${loop.answers.join(" ")}`);
    expect(r.code, text(r)).toBe(0);
    expect(loop.failed, JSON.stringify(loop.errors)).toBe(0);
    expect(loop.answers).toEqual(["v1", "v2"]);
    expect(ids()).toEqual(before);
    // nginx and the tunnel, which the first deploy started itself (with --no-deps), are not "changed": compose's hash
    // of a container started without its dependencies is the one of the definition without depends_on.
    expect(r.stdout).toMatch(
      /^\[accessories\] tunnel, nginx, hamalog-redis, mysql-hamalog running, unchanged( \(as compose hashed them last time\))? \d/m,
    );
    expect(text(r)).not.toMatch(/definition changed/);
    expect(readProbeRows(PROJECT, secrets)).toContain("before v2");
    expect(redisGet(PROJECT, secrets, "probe")).toBe("kept");
    expect(readUploadsVolume(PROJECT, "photo.txt")).not.toBeNull();
  });

  it("a broken v3 never answers a user: exit 1, 0 failed, v2 keeps serving", async () => {
    const before = ids();
    const { r, loop } = await underLoad(() => run(["deploy", "--sha", SHA.v3, "--health-timeout", "15"]));
    expect(r.code, text(r)).toBe(1);
    expect(text(r)).toMatch(/never went live; sha b2b2b2b2b2b2 \(sha256:[0-9a-f]{12}…, green\) kept serving/);
    expect(loop.failed, JSON.stringify(loop.errors)).toBe(0);
    expect(loop.answers).toEqual(["v2"]);
    expect(ids()).toEqual(before);
  });

  it("rollback: 0 failed, v1 again (its own release files and environment)", async () => {
    const { r, loop } = await underLoad(() => run(["rollback"]));
    expect(r.code, text(r)).toBe(0);
    expect(loop.failed, JSON.stringify(loop.errors)).toBe(0);
    expect(loop.answers).toEqual(["v2", "v1"]);
    expect(journal()).toMatchObject({ live: { sha: SHA.v1 }, previous: { sha: SHA.v2 } });
  });

  it("nginx restarted mid-way still resolves hamalog-app (to the proxy, whatever colour is live)", () => {
    docker(["restart", serviceContainers(PROJECT, "nginx")[0]!]);
    const got = through("/version");
    expect(got.ok, got.error).toBe(true);
    expect(got.body.trim()).toBe("v1");
    expect(readProbeRows(PROJECT, secrets)).toContain("before v2");
  });

  it("status lists the accessories and says the host matches the journal", async () => {
    const r = await hamalog(["status", "--config", config, "--ssh-key-file", sshd.keyFile], { timeoutMs: 60_000 });
    outputs.push(r);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(
      /accessories: tunnel running, nginx running \((healthy|starting)\), hamalog-redis running \(healthy\), mysql-hamalog running \(healthy\)/,
    );
    expect(r.stdout).toMatch(/the host matches the journal/);
  });

  it("no secret value was ever printed or written outside the env files", () => {
    const values = secretNames.map((n) => secrets[n as keyof HamalogSecrets]);
    for (const o of outputs) for (const v of values) expect(text(o)).not.toContain(v);
    const files = [
      join(dir, "journal.json"),
      join(dir, "history.jsonl"),
      join(dir, "compose.yaml"),
      ...readdirSync(join(dir, "releases"))
        .filter((f) => f.endsWith(".yaml"))
        .map((f) => join(dir, "releases", f)),
    ];
    for (const f of files) for (const v of values) expect(read(f), f).not.toContain(v);
  });
});
