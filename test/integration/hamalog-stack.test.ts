// Smoke test of the Hamalog stand-in stack (helpers/hamalog-stack.ts) under PLAIN `docker compose`, no deploy tool:
// tunnel → nginx → hamalog-app (+ mysql-hamalog, hamalog-redis) must behave like the real stack where a deploy is
// concerned — secrets reach the app, data outlives a recreated app, nginx resolves hamalog-app once and refuses to
// start when the name does not resolve — so deploy tests built on it show real behaviour, not the fixture's.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker } from "./helpers/images.js";
import {
  buildHamalogImages,
  containerHealth,
  getInNetwork,
  hamalogCompose,
  hamalogRedisOwner,
  hamalogStackFiles,
  insertProbeRow,
  mysqlQuery,
  parseEnvCheck,
  readProbeRows,
  readTunnelLog,
  readUploadsVolume,
  redisGet,
  redisSet,
  removeHamalogStack,
  sampleHamalogSecrets,
  serviceContainers,
  sha256,
  startTunnelLoop,
  tunnelLogFile,
  uptimeMs,
  uploadThroughNginx,
  writeHamalogStackFiles,
  type HamalogSecrets,
} from "./helpers/hamalog-stack.js";

const PREFIX = "hamalog-stack-smoke-";
const project = `${PREFIX}${process.pid}`;
const secrets: HamalogSecrets = sampleHamalogSecrets();
let dir = "";
let upDoneMs = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | false): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

const compose = (...args: string[]) => {
  const r = hamalogCompose(dir, project, args);
  if (r.code !== 0) throw new Error(`docker compose ${args.join(" ")} exited ${r.code}:\n${r.stderr}`);
  return r;
};

const one = (service: string): string => {
  const ids = serviceContainers(project, service);
  expect(ids, `running ${service} containers`).toHaveLength(1);
  return ids[0]!;
};

const ipOf = (id: string): string =>
  docker(["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id]).trim();

describe("Hamalog stand-in stack under plain docker compose", () => {
  beforeAll(() => {
    // container_name: hamalog-redis is fixed, as in the real file: one such stack per engine at a time.
    const owner = hamalogRedisOwner();
    if (owner?.startsWith(PREFIX)) removeHamalogStack(owner);
    else if (owner !== null) {
      throw new Error(
        `a container named hamalog-redis already exists (compose project "${owner}"); the stack's fixed ` +
          `container_name allows one per engine — remove that stack first (docker compose -p ${owner} down -v)`,
      );
    }
    const t0 = Date.now();
    const builds = buildHamalogImages(["v1"]);
    console.log(
      `images (${((Date.now() - t0) / 1000).toFixed(1)} s): ` +
        builds.map((b) => `${b.image} ${b.built ? `built in ${b.seconds.toFixed(1)} s` : "cached"}`).join(", "),
    );
    dir = mkdtempSync(join(tmpdir(), "hamalog-stack-"));
    writeHamalogStackFiles(dir, hamalogStackFiles({ secrets }));
    const t1 = Date.now();
    const up = hamalogCompose(dir, project, ["up", "-d", "--wait"]);
    if (up.code !== 0) {
      const logs = hamalogCompose(dir, project, ["logs", "--no-color", "--tail", "30"]);
      throw new Error(`docker compose up -d --wait exited ${up.code}:\n${up.stderr}\n${logs.stdout}`);
    }
    upDoneMs = uptimeMs();
    console.log(`docker compose up -d --wait: ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  });

  afterAll(() => {
    removeHamalogStack(project);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("serves the app's /version through nginx to the tunnel's request loop, inside the network only", async () => {
    for (const service of ["mysql-hamalog", "hamalog-redis", "hamalog-app", "nginx"]) {
      expect(containerHealth(one(service)), service).toBe("healthy");
    }
    expect(containerHealth(one("tunnel"))).toBe("running");
    // Like the real file: nothing is published, users come in through the tunnel.
    expect(docker(["port", one("nginx")]).trim()).toBe("");
    expect(docker(["inspect", "--format", "{{.Name}}", one("hamalog-redis")]).trim()).toBe("/hamalog-redis");

    const stats = await until("20 requests from the tunnel", 15_000, () => {
      const s = readTunnelLog(tunnelLogFile(dir), { fromMs: upDoneMs });
      return s.requests >= 20 && s;
    });
    expect(stats.failed, stats.errors.join("; ")).toBe(0);
    expect(stats.answers).toEqual(["v1"]);
  });

  it("hands hamalog-app its secrets without the app printing them, and the app reaches mysql and redis by name", () => {
    const r = getInNetwork(project, "http://nginx/env-check");
    expect(r.ok, r.error).toBe(true);
    const check = parseEnvCheck(r.body);
    const expected: Record<string, string> = {
      SPRING_DATASOURCE_URL: `jdbc:mysql://mysql-hamalog:3306/${secrets.DB_NAME}?useSSL=true&requireSSL=true&characterEncoding=UTF-8&serverTimezone=UTC`,
      SPRING_DATASOURCE_USERNAME: secrets.DB_USERNAME,
      SPRING_DATASOURCE_PASSWORD: secrets.DB_PASSWORD,
      SPRING_DATA_REDIS_PASSWORD: secrets.SPRING_DATA_REDIS_PASSWORD,
      JWT_SECRET: secrets.JWT_SECRET,
      HAMALOG_ENCRYPTION_KEY: secrets.HAMALOG_ENCRYPTION_KEY,
      KAKAO_CLIENT_ID: secrets.KAKAO_CLIENT_ID,
      KAKAO_CLIENT_SECRET: secrets.KAKAO_CLIENT_SECRET,
      KAKAO_REDIRECT_URI: secrets.KAKAO_REDIRECT_URI,
      JWT_EXPIRY: secrets.JWT_EXPIRY,
      JWT_REFRESH_TOKEN_EXPIRY: secrets.JWT_REFRESH_TOKEN_EXPIRY,
      SPRING_PROFILES_ACTIVE: "prod",
      // The service's `environment:` wins over env_file's SPRING_DATA_REDIS_HOST=redis (.env.example's value) ...
      SPRING_DATA_REDIS_HOST: "hamalog-redis",
      // ... and what only env_file sets arrives too.
      HAMALOG_ENV_FILE: ".env.prod",
    };
    expect(check.vars).toEqual(
      Object.fromEntries(
        Object.entries(expected).map(([k, v]) => [k, { set: true, len: v.length, sha256: sha256(v) }]),
      ),
    );
    for (const name of ["DB_PASSWORD", "MYSQL_ROOT_PASSWORD", "JWT_SECRET", "HAMALOG_ENCRYPTION_KEY"] as const) {
      expect(r.body, `${name} must not appear in /env-check`).not.toContain(secrets[name]);
    }
    expect(check.db).toMatch(/^reachable mysql-hamalog:3306 10\.11\.\d+-MariaDB/);
    expect(check.redis).toBe("auth-ok hamalog-redis:6379");
    expect(check.version).toBe("v1");
    // MySQL was initialised from the interpolated MYSQL_* values: both accounts log in with them.
    expect(mysqlQuery(project, secrets, "SELECT CURRENT_USER()")).toBe(`${secrets.DB_USERNAME}@%`);
    expect(mysqlQuery(project, secrets, "SELECT CURRENT_USER()", "root")).toBe("root@localhost");
  });

  it("keeps DB rows, Redis keys and uploads across `up -d --force-recreate hamalog-app`, which drops requests", async () => {
    const note = `before-recreate-${secrets.DB_PASSWORD.slice(-6)}`;
    insertProbeRow(project, secrets, note);
    expect(redisSet(project, secrets, "deploy:probe", note)).toBe("OK");
    expect(uploadThroughNginx(project, "probe.txt")).toBe("stored probe.txt");
    const [app, mysql, redis] = [one("hamalog-app"), one("mysql-hamalog"), one("hamalog-redis")];
    const appIp = ipOf(app);

    const from = uptimeMs();
    compose("up", "-d", "--force-recreate", "hamalog-app");
    const recreated = one("hamalog-app");
    await until("the recreated hamalog-app to be healthy", 30_000, () => containerHealth(recreated) === "healthy");
    await until("the tunnel's requests to succeed again", 15_000, () => {
      const lines = readTunnelLog(tunnelLogFile(dir), { fromMs: from }).lines;
      return lines.length > 5 && lines.slice(-5).every((l) => l.ok);
    });
    const stats = readTunnelLog(tunnelLogFile(dir), { fromMs: from });
    console.log(
      `plain force-recreate of hamalog-app: ${stats.failed}/${stats.requests} requests failed, ` +
        `longest outage ${stats.longestOutageMs} ms (${stats.errors[0] ?? "no error"})`,
    );

    expect(recreated).not.toBe(app);
    // Only the named service was recreated: the dependencies kept their containers.
    expect([one("mysql-hamalog"), one("hamalog-redis")]).toEqual([mysql, redis]);
    // nginx still holds the address it resolved at start; it reaches the new container only because Docker gave
    // it the freed address back. A deploy tool must not count on that (a container started in between takes it).
    expect(ipOf(recreated), "Docker reassigned the freed address to the recreated app").toBe(appIp);
    // The old container closed its port before the new one opened: users saw errors.
    expect(stats.failed).toBeGreaterThan(0);
    expect(stats.errors[0]).toMatch(/502 Bad Gateway/);

    expect(readProbeRows(project, secrets)).toContain(note);
    expect(redisGet(project, secrets, "deploy:probe")).toBe(note);
    expect(readUploadsVolume(project, "probe.txt")).toBe("uploaded by hamalog-app v1\n");
    const viaApp = getInNetwork(project, "http://nginx/uploads/probe.txt");
    expect(viaApp.body).toBe("uploaded by hamalog-app v1\n");
  });

  it("brings nginx back when it is restarted while hamalog-app exists", async () => {
    // A loop of the test's own, outside compose, next to the tunnel service's.
    const loop = startTunnelLoop({ project, dir: join(dir, "loops") });
    await until("the test's loop to run", 10_000, () => loop.stats().requests >= 5);
    compose("restart", "nginx");
    await until("nginx to be healthy again", 20_000, () => containerHealth(one("nginx")) === "healthy");
    expect(getInNetwork(project, "http://nginx/version").body).toBe("v1\n");
    await sleep(500);
    const stats = loop.stop();
    console.log(`nginx restart: ${stats.failed}/${stats.requests} requests failed (${stats.errors[0] ?? "no error"})`);
    expect(stats.answers).toEqual(["v1"]);
    expect(stats.lines.at(-1)?.ok).toBe(true);
  });

  it("stops nginx with `host not found in upstream` when it (re)starts while hamalog-app does not resolve", async () => {
    compose("stop", "hamalog-app");
    // A stopped container leaves Docker's DNS: the name no longer resolves anywhere on the network.
    const lookup = getInNetwork(project, "http://hamalog-app:8080/version");
    expect(lookup.ok).toBe(false);
    expect(lookup.error).toMatch(/bad address 'hamalog-app(:8080)?'/);

    const nginx = one("nginx");
    // Slow on purpose: nginx still proxies to the stopped app's address, which now answers nothing ("No route to
    // host" after ~3 s or a 30 s connect timeout), and its graceful quit waits for those requests until Docker's
    // 10 s stop timeout kills it.
    compose("restart", "nginx");
    const log = await until("nginx's emerg line", 15_000, () => {
      const r = hamalogCompose(dir, project, ["logs", "--no-color", "--since", "60s", "nginx"]);
      return /host not found in upstream "hamalog-app:8080"/.test(r.stdout + r.stderr) && r.stdout + r.stderr;
    });
    expect(log).toMatch(
      /\[emerg\] 1#1: host not found in upstream "hamalog-app:8080" in \/etc\/nginx\/conf\.d\/default\.conf:\d+/,
    );
    // Exit 1, then `restart: unless-stopped` tries again (and again, backing off): the state flips between
    // running and restarting, so wait for the exit code rather than read it once.
    const restarts = await until("nginx to exit 1 and be restarted", 15_000, () => {
      const [code, count] = docker(["inspect", "--format", "{{.State.ExitCode}} {{.RestartCount}}", nginx])
        .trim()
        .split(" ");
      return code === "1" && Number(count) > 0 && Number(count);
    });
    expect(restarts).toBeGreaterThan(0);
    // No nginx, no service: every tunnel request fails (`bad address 'nginx'` while the container is down between
    // restarts, refused while it is up for a moment).
    const from = uptimeMs();
    const down = await until("a failed tunnel request", 30_000, () => {
      const s = readTunnelLog(tunnelLogFile(dir), { fromMs: from });
      return s.failed >= 1 && s;
    });
    expect(down.requests).toBe(down.failed);
    console.log(
      `nginx down: ${down.failed} failed, e.g. ${down.errors[0]} (${down.lines[0]!.endMs - down.lines[0]!.startMs} ms)`,
    );

    // Recovery: the app first, then nginx (Docker's restart back-off alone may take up to a minute).
    compose("start", "hamalog-app");
    await until("hamalog-app to be healthy", 30_000, () => containerHealth(one("hamalog-app")) === "healthy");
    compose("restart", "nginx");
    compose("up", "-d", "--wait");
    expect(getInNetwork(project, "http://nginx/version").body).toBe("v1\n");
    const after = uptimeMs();
    await until("the tunnel's requests to succeed again", 15_000, () => {
      const s = readTunnelLog(tunnelLogFile(dir), { fromMs: after });
      return s.requests >= 5 && s.failed === 0;
    });
  });
});
