// A deploy host whose compose plugin lives only in the SSH user's ~/.docker/cli-plugins (a per-user install, common
// on servers without Docker's apt repository). The docker CLI looks for plugins in $DOCKER_CONFIG/cli-plugins, so
// running compose under the deploy's own DOCKER_CONFIG (where the registry login lives) would not find it.
// Simulated on this machine without changing it: the test sshd runs in its own mount namespace where the system
// plugin directories look empty, and sessions get HOME=<temp dir> holding .docker/cli-plugins/docker-compose.
// Against a real htpasswd registry, dockerd and compose v2; the image is not on the host, so the deploy pulls.
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectSsh } from "../../ci/core/deploy/ssh.js";
import { hamalog, type CliResult } from "../helpers/cli.js";
import { buildAppImage, docker, removeComposeProject, removeImages } from "./helpers/images.js";
import { freePort } from "./helpers/ports.js";
import { loginAndPush, startRegistry, type Registry } from "./helpers/registry.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { composeTemplate, pipelineYaml } from "./helpers/stack-files.js";

const ID = `hamalog-deploy-plugins-${process.pid}`;
const REPO = "hamalog-deploy-plugins/app";
const SHA = "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1";
const USER = "plugger";
const TOKEN = "tok-plugins-9Xq!not-in-output";
/** Where the docker CLI looks for plugins besides $DOCKER_CONFIG/cli-plugins (cli-plugins/manager, Linux). */
const SYSTEM_PLUGIN_DIRS = [
  "/usr/local/lib/docker/cli-plugins",
  "/usr/local/libexec/docker/cli-plugins",
  "/usr/lib/docker/cli-plugins",
  "/usr/libexec/docker/cli-plugins",
];

let registry: Registry;
let sshd: Sshd;
let tmp: string;
let home: string;
let dir: string;
let appPort: number;
let configFile: string;
let digest: string;

const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
const run = (args: string[]) =>
  hamalog(
    [...args, "--config", configFile, "--ssh-key-file", sshd.keyFile, "--password-env", "HAMALOG_PLUGINS_TOKEN"],
    { env: { HAMALOG_PLUGINS_TOKEN: TOKEN }, timeoutMs: 180_000 },
  );
const history = () => (existsSync(join(dir, "history.jsonl")) ? readFileSync(join(dir, "history.jsonl"), "utf8") : "");
const plugin = () => join(home, ".docker", "cli-plugins", "docker-compose");

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "hamalog-deploy-plugins-"));
  home = join(tmp, "home");
  dir = join(tmp, "srv", "app");
  const plugins = JSON.parse(docker(["info", "--format", "{{json .ClientInfo.Plugins}}"])) as {
    Name: string;
    Path: string;
  }[];
  const compose = plugins.find((p) => p.Name === "compose")?.Path;
  if (!compose) throw new Error("this machine's docker CLI has no compose plugin (see ENVIRONMENT.md)");
  mkdirSync(dirname(plugin()), { recursive: true });
  copyFileSync(compose, plugin());
  chmodSync(plugin(), 0o755);
  const hide = [...new Set([...SYSTEM_PLUGIN_DIRS.filter((d) => existsSync(d)), dirname(compose)])];
  [registry, sshd, appPort] = await Promise.all([
    startRegistry({ auth: { htpasswd: { [USER]: TOKEN } } }),
    startSshd({ env: { HOME: home }, hide }),
    freePort(),
  ]);
  buildAppImage(`${ID}/app:v1`, { version: "v1" });
  digest = loginAndPush(`${ID}/app:v1`, registry.host, `${registry.host}/${REPO}:${SHA}`, USER, TOKEN);
  docker(["rmi", `${ID}/app:v1`]); // nothing of it on the host: the deploy must pull, with its login
  writeFileSync(join(tmp, "compose.template.yml"), composeTemplate({ appPort }));
  configFile = join(tmp, "pipeline.yaml");
  writeFileSync(
    configFile,
    pipelineYaml({
      registry: registry.host,
      repository: REPO,
      username: USER,
      sshd,
      directory: dir,
      composeFile: "compose.template.yml",
      project: ID,
      health: { url: `http://127.0.0.1:${appPort}/health` },
    }),
  );
});

afterAll(async () => {
  removeComposeProject(ID);
  removeImages(REPO);
  await Promise.all([registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("deploy to a host whose compose plugin is only in ~/.docker/cli-plugins", () => {
  it("the simulated host finds compose only without DOCKER_CONFIG; this machine itself is unchanged", async () => {
    const remote = await connectSsh(
      {
        host: "127.0.0.1",
        port: sshd.port,
        user: sshd.user,
        privateKey: readFileSync(sshd.keyFile, "utf8"),
        hostKey: sshd.hostKeyFingerprint,
      },
      () => undefined,
    );
    try {
      expect((await remote.run(["sh", "-c", 'echo "$HOME"'])).stdout.trim()).toBe(home);
      expect((await remote.run(["docker", "compose", "version", "--short"])).code).toBe(0);
      const under = await remote.run([
        "env",
        `DOCKER_CONFIG=${join(tmp, "deploy-docker-config")}`,
        "docker",
        "compose",
        "version",
      ]);
      expect(under.code).not.toBe(0);
      expect(under.stderr).toMatch(/unknown command|is not a docker command/);
    } finally {
      remote.close();
    }
    expect(execFileSync("docker", ["compose", "version", "--short"], { encoding: "utf8" }).trim()).not.toBe("");
  });

  it("a logged-in deploy pulls the digest with the deploy's login, and compose (from ~/.docker/cli-plugins) brings it up", async () => {
    const r = await run(["deploy", "--sha", SHA]);
    expect(r.code, text(r)).toBe(0);
    // The login lives in a throwaway DOCKER_CONFIG for the pull alone; compose runs without it (and finds its plugin).
    expect(r.stdout).toContain(
      `[pull] pulled ${registry.host}/${REPO}@${digest} (logged in as ${USER} for this command only)`,
    );
    expect(r.stdout).toMatch(/^\[up\] app runs sha256:[0-9a-f]{12}… healthy per compose/m);
    expect((await (await fetch(`http://127.0.0.1:${appPort}/version`)).text()).trim()).toBe("v1");
    expect(text(r)).not.toContain(TOKEN);
    expect(readdirSync(join(dir, ".hamalog")).filter((f) => f.startsWith("docker-"))).toEqual([]);
    expect(existsSync(join(dir, ".docker"))).toBe(false);
    const s = await run(["status"]);
    expect(s.code, text(s)).toBe(0);
    expect(s.stdout).toMatch(/^container: \S+ running, health healthy/m);
  });

  it("without the plugin anywhere, the deploy stops in its probe (before preflight) naming what is missing, host untouched", async () => {
    rmSync(plugin());
    const before = history();
    const r = await run(["deploy", "--sha", SHA]);
    expect(r.code, text(r)).toBe(1);
    // The probe (the session's first command) runs `docker compose version`: it fails there, before preflight.
    expect(r.stdout).toMatch(/^\[probe\] FAILED after/m);
    expect(r.stdout).not.toMatch(/^\[preflight\]/m);
    expect(r.stdout).not.toMatch(/^\[lock\]/m);
    expect(r.stderr).toMatch(
      /`docker compose version` failed on root@127\.0\.0\.1:\d+ \(.*(unknown command|unknown flag|is not a docker command).*\): the Docker Compose v2 plugin is missing for root there\. Install it on the host .*~root\/\.docker\/cli-plugins\/\); nothing on root@127\.0\.0\.1:\d+ was changed/,
    );
    expect(history()).toBe(before);
    expect((await (await fetch(`http://127.0.0.1:${appPort}/version`)).text()).trim()).toBe("v1");
  });
});
