// Proves the swarm harness (helpers/swarm.ts over ci/scripts/swarm-env.sh) is what the swarm strategy's tests
// need: real nodes with engines of their own, a registry with TLS and auth that the nodes pull from, a stack
// deployed over SSH to the manager that serves through Caddy on every node, a worker that can die, and a teardown
// that leaves nothing behind.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppImage, docker } from "./helpers/images.js";
import { waitFor } from "./helpers/ports.js";
import { startLoop } from "./helpers/request-loop.js";
import { run, startSwarm, swarmAvailable, type Swarm } from "./helpers/swarm.js";

const APP_IMAGE = "hamalog-test/swarm-app:v1";
const CADDY_IMAGE = "hamalog-test/caddy:2.6.2";
const STACK = "web";

// Caddy's active health checks do not run for dynamic upstreams: passive checks plus lb_try_duration carry a
// request past a task that just went away, and a task enters tasks.app only once its healthcheck passed. A task on
// a dead node stays in tasks.app until the manager sees the node Down, and a dial to it hangs (its VXLAN peer is
// gone: no RST) — the short dial_timeout lets one request try several upstreams (the default 3 s allowed one retry).
const CADDYFILE = `{
\tauto_https off
}
:80 {
\treverse_proxy {
\t\tdynamic a tasks.app 8080 {
\t\t\trefresh 1s
\t\t}
\t\tlb_policy round_robin
\t\tlb_try_duration 5s
\t\tlb_try_interval 100ms
\t\tfail_duration 10s
\t\ttransport http {
\t\t\tdial_timeout 500ms
\t\t}
\t}
}
`;

function stackFile(appRef: string, caddyRef: string): string {
  return `version: "3.8"
services:
  app:
    image: ${appRef}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 2s
      retries: 2
      start_period: 1s
    # busybox httpd as PID 1 ignores SIGTERM: without this every stop waits 10 s.
    stop_grace_period: 1s
    deploy:
      replicas: 3
      endpoint_mode: dnsrr
      update_config: {order: start-first, failure_action: rollback}
  edge:
    image: ${caddyRef}
    ports:
      - {target: 80, published: 8080, mode: host}
    configs:
      - {source: caddyfile, target: /etc/caddy/Caddyfile}
    stop_grace_period: 1s
    deploy:
      mode: global
configs:
  caddyfile:
    file: ./Caddyfile
`;
}

/** GET https://10.77.0.1:5000/v2/ with Node's own TLS stack; `ca` undefined means the system roots only. */
function registryGet(ca: string | undefined, auth?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`https://10.77.0.1:5000/v2/`, { ca, auth, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(5000, () => req.destroy(new Error("no answer in 5 s")));
    req.on("error", reject);
    req.end();
  });
}

/** A Node ssh2 client to the manager, as the deploy tool connects: key auth, host key pinned by fingerprint. */
function ssh2ToManager(): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on("ready", () => resolve(client)).on("error", reject);
    client.connect({
      host: swarm.manager.addr,
      port: swarm.ssh.port,
      username: swarm.ssh.user,
      privateKey: readFileSync(swarm.ssh.keyFile),
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) =>
        `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}` ===
        swarm.ssh.hostKeyFingerprint,
    });
  });
}

function ssh2Exec(client: ssh2.Client, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      let out = "";
      stream.on("data", (d: Buffer) => (out += d));
      stream.stderr.resume();
      stream.on("close", (code: number) => (code === 0 ? resolve(out) : reject(new Error(`${command}: exit ${code}`))));
    });
  });
}

/** GET `path` from 127.0.0.1:`port` on the manager through a direct-tcpip channel (AllowTcpForwarding yes). */
function ssh2HttpGet(client: ssh2.Client, port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.forwardOut("127.0.0.1", 0, "127.0.0.1", port, (err, channel) => {
      if (err) return reject(err);
      let raw = "";
      channel.on("data", (d: Buffer) => (raw += d));
      channel.on("close", () => resolve(raw));
      channel.end(`GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
    });
  });
}

let swarm: Swarm;
let tmp: string;
let appDigest: string;
let caddyDigest: string;

beforeAll(async () => {
  const available = swarmAvailable();
  // Not a skip: CI and these machines can run it, so a missing piece is a failure to fix.
  if (!available.ok) throw new Error(available.reason);
  tmp = mkdtempSync(join(tmpdir(), "hamalog-swarm-test-"));
  buildAppImage(APP_IMAGE, { version: "swarm-v1" });
  swarm = await startSwarm({ nodes: 3 });
  [appDigest, caddyDigest] = await Promise.all([
    swarm.pushToRegistry(APP_IMAGE, "acme/app:v1"),
    swarm.pushToRegistry(CADDY_IMAGE, "edge/caddy:2.6.2"),
  ]);
});

afterAll(async () => {
  await swarm?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  try {
    docker(["rmi", APP_IMAGE]);
  } catch {
    // never built
  }
});

describe("swarm test environment", () => {
  it("brings up a manager and two workers, each Ready with an engine of its own, in seconds", async () => {
    console.log(`[swarm-env] 3 nodes up in ${swarm.upMs} ms`);
    expect(swarm.upMs).toBeLessThan(30_000);
    const ls = (await swarm.docker(0, ["node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"]))
      .trim()
      .split("\n")
      .map((l) => l.trim())
      .sort();
    expect(ls).toEqual(["node1 Ready Leader", "node2 Ready", "node3 Ready"]);
    expect(swarm.nodes.map((n) => `${n.name} ${n.addr} ${n.role}`)).toEqual([
      "node1 10.77.0.11 manager",
      "node2 10.77.0.12 worker",
      "node3 10.77.0.13 worker",
    ]);

    const ids = await Promise.all(swarm.nodes.map((_, i) => swarm.docker(i, ["info", "--format", "{{.ID}}"])));
    expect(new Set(ids.map((s) => s.trim())).size).toBe(3);
    // Over SSH, the node's own docker CLI (28.x, with compose v2) reaches the node's own engine by default.
    for (const [i, id] of ids.entries()) {
      const out = await swarm.sshExec(i, [
        "sh",
        "-c",
        "docker info --format '{{.ID}}'; docker version --format '{{.Client.Version}}'; docker compose version --short",
      ]);
      const [remoteId, client, compose] = out.trim().split("\n");
      expect(remoteId).toBe(id.trim());
      expect(client).toMatch(/^2[89]\.|^[3-9]\d\./);
      expect(compose).toMatch(/^v?2\./);
    }
    // The fingerprint is the one the manager's sshd presents (what a pinned-host-key client compares).
    const scanned = execFileSync("sh", ["-c", "ssh-keyscan -t ed25519 10.77.0.11 2>/dev/null | ssh-keygen -lf -"], {
      encoding: "utf8",
    });
    expect(scanned.split(" ")[1]).toBe(swarm.ssh.hostKeyFingerprint);
  });

  it("serves the registry over TLS from the throwaway CA, with auth, to the host and to a node", async () => {
    const ca = readFileSync(swarm.registry.caFile, "utf8");
    await expect(registryGet(undefined)).rejects.toThrow(/self.signed|unable to verify|issuer/i);
    expect(await registryGet(ca)).toBe(401);
    expect(await registryGet(ca, `${swarm.registry.user}:${swarm.registry.password}`)).toBe(200);

    const ref = `${swarm.registry.host}/acme/app:v1`;
    await expect(swarm.sshExec(1, ["docker", "pull", ref])).rejects.toThrow(/no basic auth credentials|unauthorized/);
    await swarm.sshExec(1, ["docker", "login", swarm.registry.host, "-u", swarm.registry.user, "--password-stdin"], {
      input: swarm.registry.password,
    });
    await swarm.sshExec(1, ["docker", "pull", ref]);
    const digests = await swarm.docker(1, ["image", "inspect", "--format", "{{json .RepoDigests}}", ref]);
    expect(JSON.parse(digests)).toContain(`${swarm.registry.host}/acme/app@${appDigest}`);
  });

  it("deploys a stack over SSH to the manager and serves it through Caddy on every node", async () => {
    writeFileSync(join(tmp, "Caddyfile"), CADDYFILE);
    writeFileSync(
      join(tmp, "stack.yml"),
      stackFile(`${swarm.registry.host}/acme/app:v1`, `${swarm.registry.host}/edge/caddy:2.6.2`),
    );
    // The client side of `--with-registry-auth`: its own login, in a DOCKER_CONFIG of this test's.
    const env = { ...swarm.ssh.env, DOCKER_CONFIG: join(tmp, "docker-config") };
    const host = ["-H", `ssh://root@${swarm.manager.addr}`];
    await run("docker", [...host, "login", swarm.registry.host, "-u", swarm.registry.user, "--password-stdin"], {
      env,
      input: swarm.registry.password,
    });
    const deployed = Date.now();
    await run(
      "docker",
      [...host, "stack", "deploy", "--with-registry-auth", "--detach=false", "-c", join(tmp, "stack.yml"), STACK],
      { env },
    );
    console.log(`[swarm-env] stack deploy --detach=false took ${Date.now() - deployed} ms`);

    const tasks = async (service: string) =>
      (
        await swarm.docker(0, [
          "service",
          "ps",
          "--no-trunc",
          "--filter",
          "desired-state=running",
          "--format",
          "{{.Node}} {{.Image}} {{.CurrentState}}",
          `${STACK}_${service}`,
        ])
      )
        .trim()
        .split("\n");
    const app = await tasks("app");
    expect(app).toHaveLength(3);
    for (const t of app) expect(t).toMatch(new RegExp(`^node\\d \\S+@${appDigest} Running`));
    expect(new Set(app.map((t) => t.split(" ")[0])).size).toBeGreaterThanOrEqual(2);
    const edge = await tasks("edge");
    expect(edge.map((t) => t.split(" ")[0]).sort()).toEqual(["node1", "node2", "node3"]);
    for (const t of edge) expect(t).toContain(`@${caddyDigest} Running`);

    // Every node's published port answers through its own Caddy, proxying to app tasks across the overlay.
    await Promise.all(
      swarm.nodes.map((n) =>
        waitFor(`Caddy on ${n.addr}:8080`, async () => (await fetch(`http://${n.addr}:8080/version`)).ok, 20_000),
      ),
    );
    const loops = swarm.nodes.map((n) => startLoop(`http://${n.addr}:8080/version`, 20));
    await new Promise((r) => setTimeout(r, 3000));
    const stats = await Promise.all(loops.map((l) => l.stop()));
    for (const s of stats) {
      expect(s.errors).toEqual([]);
      expect(s.failed).toBe(0);
      expect(s.requests).toBeGreaterThan(30);
      expect(s.answers).toEqual(["swarm-v1"]);
    }
  });

  it("takes a Node ssh2 client pinned to the manager's host key, with commands and TCP forwarding", async () => {
    const client = await ssh2ToManager();
    try {
      const id = (await ssh2Exec(client, "docker info --format '{{.ID}}'")).trim();
      expect(id).toBe((await swarm.docker(0, ["info", "--format", "{{.ID}}"])).trim());
      const nodes = await ssh2Exec(client, "docker node ls --format '{{.Hostname}}'");
      expect(nodes.trim().split("\n").sort()).toEqual(["node1", "node2", "node3"]);
      const raw = await ssh2HttpGet(client, 8080, "/version");
      expect(raw).toMatch(/^HTTP\/1\.[01] 200/);
      expect(raw.trim().endsWith("swarm-v1")).toBe(true);
    } finally {
      client.end();
    }
  });

  it("kills a worker: the manager marks it Down and Swarm replaces its app task while node1 keeps serving", async () => {
    const appTasks = async () =>
      (
        await swarm.docker(0, [
          "service",
          "ps",
          "--filter",
          "desired-state=running",
          "--format",
          "{{.Node}} {{.CurrentState}}",
          `${STACK}_app`,
        ])
      )
        .trim()
        .split("\n");
    // The spread scheduler put one app task on each node; the victim is a worker that runs one.
    const before = await appTasks();
    const victim = swarm.nodes.findIndex(
      (n) => n.role === "worker" && before.some((t) => t.startsWith(`${n.name} Running`)),
    );
    expect(victim, before.join("\n")).toBeGreaterThan(0);
    const name = swarm.nodes[victim]!.name;
    const survivors = new RegExp(`^(?!${name} )node\\d Running`);

    const loop = startLoop(`http://${swarm.manager.addr}:8080/version`, 20);
    const killed = Date.now();
    await swarm.killNode(victim);
    await expect(swarm.docker(victim, ["version"])).rejects.toThrow();
    const state = async () =>
      (await swarm.docker(0, ["node", "inspect", "--format", "{{.Status.State}}", name])).trim();
    await waitFor(`${name} Down`, async () => (await state()) === "down", 30_000);
    const downMs = Date.now() - killed;
    await waitFor(
      "3 running app tasks on the other nodes",
      async () => (await appTasks()).filter((t) => survivors.test(t)).length === 3,
      30_000,
    );
    const replacedMs = Date.now() - killed;
    const stats = await loop.stop();
    console.log(
      `[swarm-env] ${name} killed: Down after ${downMs} ms, task replaced after ${replacedMs} ms; ` +
        `${stats.failed} of ${stats.requests} requests failed ${JSON.stringify(stats.errors)}`,
    );
    // What Caddy on node1 logged about failed requests (dial timeouts, aborted responses) explains a failure.
    const edge = (await swarm.docker(0, ["ps", "-q", "--filter", `name=${STACK}_edge`])).trim();
    const logs = spawnSync("docker", ["-H", `unix://${swarm.manager.socket}`, "logs", edge], { encoding: "utf8" });
    const caddyErrors = `${logs.stdout}${logs.stderr}`.split("\n").filter((l) => l.includes('"level":"error"'));
    // At most the request in flight when the task died: a new dial to the dead task times out and Caddy retries.
    expect(stats.failed, caddyErrors.join("\n")).toBeLessThanOrEqual(1);
    expect(stats.answers).toEqual(["swarm-v1"]);
  });

  it("stop() removes every trace of the cluster and is safe to call twice", async () => {
    const stateDir = swarm.stateDir;
    const ms = await swarm.stop();
    console.log(`[swarm-env] torn down in ${ms} ms`);
    expect(await swarm.stop()).toBe(0);
    const sh = (cmd: string) => execFileSync("sh", ["-c", cmd], { encoding: "utf8" });
    expect(sh("ip netns list")).not.toMatch(/^sw\d/m);
    expect(sh("ip -o link show")).not.toMatch(/swbr0|vsw\d/);
    expect(sh("iptables -S FORWARD")).not.toContain("swbr0");
    expect(sh("ip route show type unreachable")).not.toMatch(/10\.7[89]\./);
    expect(sh(`ps -eo args | grep -F ${stateDir}/ | grep -v grep || true`)).toBe("");
    expect(existsSync(stateDir)).toBe(false);
    expect(existsSync("/etc/docker/certs.d/10.77.0.1:5000")).toBe(false);
    expect(existsSync("/sys/fs/cgroup/memory/swarm-test")).toBe(false);
  });
});
