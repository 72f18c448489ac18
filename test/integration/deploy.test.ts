// `hamalog deploy / status / rollback` end to end against real components: sshd on 127.0.0.1 (the SSH host is
// this machine), dockerd + compose v2, distribution registries (open, and htpasswd-protected), busybox test
// images serving /version and /health. Runs as one ordered story; each step asserts what the host looks like.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hamalog, type CliResult } from "../helpers/cli.js";
import {
  buildAppImage,
  docker,
  projectContainers,
  pushImage,
  removeComposeProject,
  removeImages,
} from "./helpers/images.js";
import { freePort, waitFor } from "./helpers/ports.js";
import { startGate } from "./helpers/http-gate.js";
import { loginAndPush, startRegistry, type Registry } from "./helpers/registry.js";
import { startRegistryProxy } from "./helpers/registry-proxy.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { composeTemplate, pipelineYaml } from "./helpers/stack-files.js";

const ID = `hamalog-deploy-it-${process.pid}`;
const REPO = "hamalog-deploy-it/app";
const SHA = {
  v1: "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a",
  v2: "2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b",
  v3: "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c",
  missing: "dddddddddddddddddddddddddddddddddddddddd",
};
const TOKEN = "tok-Zq8!s3cr3t-not-in-output";
const USER = "deployer";

let registry: Registry;
let authRegistry: Registry;
let sshd: Sshd;
let tmp: string;
let dir: string;
let appPort: number;
let configFile: string;
let marker: string;
let keyLine: string;
const digests: Record<string, string> = {};
const localImages: string[] = [];
const outputs: CliResult[] = [];

const history = () => (existsSync(join(dir, "history.jsonl")) ? readFileSync(join(dir, "history.jsonl"), "utf8") : "");
const historyEntries = () =>
  history()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const composeFile = () =>
  existsSync(join(dir, "compose.yaml")) ? readFileSync(join(dir, "compose.yaml"), "utf8") : "";
const containers = () => projectContainers(ID);

async function version(): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${appPort}/version`);
  return (await r.text()).trim();
}

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const r = await hamalog([...args, "--config", configFile, "--ssh-key-file", sshd.keyFile], {
    env,
    timeoutMs: 180_000,
  });
  outputs.push(r);
  return r;
}
const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;

beforeAll(async () => {
  [registry, authRegistry, sshd] = await Promise.all([
    startRegistry(),
    startRegistry({ auth: { htpasswd: { [USER]: TOKEN } } }),
    startSshd(),
  ]);
  tmp = mkdtempSync(join(tmpdir(), "hamalog-deploy-it-"));
  dir = join(tmp, "srv", "app");
  marker = join(tmp, "MARKER");
  appPort = await freePort();
  keyLine = readFileSync(sshd.keyFile, "utf8").split("\n")[2]!;
  for (const [name, opts] of [
    ["v1", { version: "v1" }],
    ["v2", { version: "v2" }],
    ["v3", { version: "v3", healthy: false }],
    ["latest", { version: "vlatest" }],
  ] as const) {
    const local = `${ID}/app:${name}`;
    buildAppImage(local, opts);
    localImages.push(local);
    const tag = name === "latest" ? "latest" : SHA[name];
    const ref = `${registry.host}/${REPO}:${tag}`;
    digests[name] = pushImage(local, ref);
    localImages.push(ref);
  }
  digests.auth = loginAndPush(`${ID}/app:v2`, authRegistry.host, `${authRegistry.host}/${REPO}:${SHA.v2}`, USER, TOKEN);
  // The template carries hostile text that must reach the host as data, never as shell (compose keeps `$$` as `$`).
  writeFileSync(
    join(tmp, "compose.template.yml"),
    composeTemplate({
      preamble: ['version: "3.8"'],
      appPort,
      extraLines: [
        "    labels:",
        `      hostile: "x'; touch ${marker}; $$(touch ${marker}) \`touch ${marker}\` \\" | & \\n touch ${marker}"`,
      ],
    }),
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
      health: { url: `http://127.0.0.1:${appPort}/health` },
      keepImages: 10,
    }),
  );
});

afterAll(async () => {
  removeComposeProject(ID);
  removeImages(REPO, localImages);
  await Promise.all([registry?.stop(), authRegistry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("hamalog deploy / status / rollback over SSH", () => {
  it("dry run prints the pinned compose file and the phases, and changes nothing", async () => {
    const r = await run(["deploy", "--sha", SHA.v1, "--dry-run"]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toContain(`image: ${registry.host}/${REPO}:${SHA.v1}@${digests.v1}`);
    expect(r.stdout).toMatch(
      /^\[plan\] phases:\n\[plan\]   lock .*\n\[plan\]   reconcile .*\n\[plan\]   prepare .*\n\[plan\]   pull .*\n\[plan\]   accessories .*\n\[plan\]   up .*\n\[plan\]   health .*\n\[plan\]   dependents .*\n\[plan\]   finish /m,
    );
    expect(r.stdout).not.toMatch(/^version:/m);
    expect(r.stderr).toMatch(/removed the top-level `version: 3.8`.*obsolete/);
    expect(existsSync(dir)).toBe(false);
  });

  it("deploys v1: pinned by digest, phases timed, the app answers v1, history has one line", async () => {
    const r = await run(["deploy", "--sha", SHA.v1]);
    expect(r.code, text(r)).toBe(0);
    for (const phase of [
      "connect",
      "probe",
      "preflight",
      "lock",
      "reconcile",
      "prepare",
      "pull",
      "up",
      "health",
      "finish",
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^\\[${phase}\\] .* \\d+\\.\\ds$`, "m"));
    }
    expect(await version()).toBe("v1");
    expect(composeFile()).toContain(`image: ${registry.host}/${REPO}:${SHA.v1}@${digests.v1}`);
    expect(composeFile()).not.toMatch(/^version:/m);
    expect(historyEntries()).toMatchObject([
      {
        action: "deploy",
        sha: SHA.v1,
        digest: digests.v1,
        result: "success",
        fallback: false,
        tags: [SHA.v1],
        previousDigest: null,
      },
    ]);
    expect(existsSync(join(dir, ".hamalog", "lock.token"))).toBe(false);
  });

  it("deploys v2: answers v2, history has both, status shows it", async () => {
    const r = await run(["deploy", "--sha", SHA.v2]);
    expect(r.code, text(r)).toBe(0);
    expect(await version()).toBe("v2");
    const h = historyEntries();
    expect(h.map((e) => [e.sha, e.result])).toEqual([
      [SHA.v1, "success"],
      [SHA.v2, "success"],
    ]);
    expect(h[1]).toMatchObject({ previousDigest: digests.v1, previousSha: SHA.v1 });
    // The journal, not a file left on disk, says what was live before.
    const j = JSON.parse(readFileSync(join(dir, "journal.json"), "utf8"));
    expect(j).toMatchObject({ live: { digest: digests.v2 }, previous: { digest: digests.v1 }, attempt: null });
    expect(readFileSync(join(dir, j.previous.composeFile), "utf8")).toContain(digests.v1);
    const s = await run(["status"]);
    expect(s.code, text(s)).toBe(0);
    expect(s.stdout).toContain(`digest ${digests.v2}`);
    expect(s.stdout).toContain(`sha    ${SHA.v2}`);
    expect(s.stdout).toMatch(/container: \S+ running, health healthy/);
    expect(s.stdout).toMatch(/the host matches the journal/);
    expect(s.stdout).toMatch(/→ HTTP 200 \(healthy\)/);
    expect(s.stdout).toMatch(/last 2 of 2 history line/);
  });

  it("a v3 that never gets healthy fails with diagnostics and is rolled back: the app still answers v2", async () => {
    const r = await run(["deploy", "--sha", SHA.v3]);
    expect(r.code, text(r)).toBe(1);
    const t = text(r);
    expect(t).toMatch(/FAILED in phase up/);
    expect(t).toMatch(/\[diagnostics\]/);
    expect(t).toMatch(/service app:\n.*state=running exit=0 .*health=unhealthy/);
    expect(t).toMatch(/check exit 1: /);
    expect(t).toMatch(/ ps:\n/);
    expect(t).toMatch(/\[recover\] undo the deploy of sha 3c3c3c3c3c3c .* and keep sha 2b2b2b2b2b2b .* serving/);
    expect(t).toMatch(/never went live; sha 2b2b2b2b2b2b \(sha256:[0-9a-f]{12}…\) serves again \(restored\)/);
    expect(await version()).toBe("v2");
    expect(historyEntries().at(-1)).toMatchObject({
      sha: SHA.v3,
      result: "rolled-back",
      failedPhase: "up",
      running: { digest: digests.v2, sha: SHA.v2 },
    });
    expect(composeFile()).toContain(digests.v2);
    expect(existsSync(join(dir, ".hamalog", "lock.token"))).toBe(false);
  });

  it("a sha that was never pushed stops in preflight: compose file, containers and history unchanged", async () => {
    const before = { compose: composeFile(), history: history(), containers: containers() };
    const r = await run(["deploy", "--sha", SHA.missing]);
    expect(r.code, text(r)).toBe(1);
    expect(r.stdout).toMatch(/^\[preflight\] FAILED after \d+\.\ds$/m);
    expect(r.stderr).toMatch(/not found in .*MANIFEST_UNKNOWN/);
    expect(r.stderr).toMatch(
      /The deploy stopped in preflight; deploy\/fallback is `none`.*: nothing on root@127\.0\.0\.1:\d+ was changed/,
    );
    expect(r.stdout).not.toMatch(/^\[lock\]/m);
    expect({ compose: composeFile(), history: history(), containers: containers() }).toEqual(before);
    expect(await version()).toBe("v2");
  });

  it("with fallback latest, a missing sha deploys latest's digest loudly and history records fallback", async () => {
    const r = await run(["deploy", "--sha", SHA.missing, "--fallback", "latest"]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stderr).toMatch(/WARNING: .*:dddddddd+ does not exist; deploy\/fallback is `latest`/);
    expect(await version()).toBe("vlatest");
    expect(composeFile()).toContain(`${REPO}:latest@${digests.latest}`);
    expect(historyEntries().at(-1)).toMatchObject({
      sha: SHA.missing,
      digest: digests.latest,
      fallback: true,
      result: "success",
      tags: ["latest"],
    });
  });

  it("two deploys at once: the second, started while the first is inside its critical section, is refused by the lock naming the holder", async () => {
    // A's health URL is a gate answering 503 until the test opens it: while A probes it, A provably holds the
    // lock (health comes after lock, before unlock), however fast or slow the rest of the machine is.
    const gate = await startGate(503);
    try {
      const before = historyEntries().length;
      const probing = gate.nextRequest();
      const a = run(["deploy", "--sha", SHA.v1, "--health-url", gate.url, "--health-timeout", "120"]);
      await Promise.race([
        probing,
        a.then((r) => Promise.reject(new Error(`A ended before its health phase:\n${text(r)}`))),
      ]);
      const b = await run(["deploy", "--sha", SHA.v2]);
      gate.mode = 200;
      const ra = await a;
      expect(b.code, text(b)).toBe(1);
      expect(b.stderr).toMatch(
        /another deploy holds the lock in \S+ on root@127\.0\.0\.1:\d+: \S+@\S+ \(hamalog CLI, pid \d+\) \(deploy of 1a1a1a1a1a1a since \S+, token \d+\), its lease was renewed \d+ s ago/,
      );
      expect(b.stderr).toMatch(/--break-lock/);
      expect(ra.code, text(ra)).toBe(0);
      expect(await version()).toBe("v1");
      expect(historyEntries()).toHaveLength(before + 1); // B never got the lock, so it left no history line
      expect(historyEntries().at(-1)).toMatchObject({ sha: SHA.v1, result: "success" });
      expect(existsSync(join(dir, ".hamalog", "lock.token"))).toBe(false);
    } finally {
      await gate.stop();
    }
  });

  it("a wrong pinned host key is refused, naming both fingerprints, before anything runs", async () => {
    const before = history();
    const wrong = `SHA256:${"A".repeat(43)}`;
    const r = await run(["deploy", "--sha", SHA.v1, "--host-key", wrong]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`its host key is ${sshd.hostKeyFingerprint}, but ${wrong} is pinned`);
    expect(history()).toBe(before);
  });

  it("without a pinned host key nothing connects (exit 2); --insecure-accept-host-key connects, loudly", async () => {
    const cfg = readFileSync(configFile, "utf8").replace(/^ {2}hostKey: .*\n/m, "");
    const unpinned = join(tmp, "unpinned.yaml");
    writeFileSync(unpinned, cfg);
    const refused = await hamalog(["status", "--config", unpinned, "--ssh-key-file", sshd.keyFile]);
    outputs.push(refused);
    expect(refused.code, text(refused)).toBe(2);
    expect(refused.stderr).toContain("deploy/hostKey: required — no host key is pinned for 127.0.0.1");
    expect(refused.stderr).toContain(`npx hamalog host-key --host 127.0.0.1 --port ${sshd.port}`);
    expect(refused.stdout).toBe("");
    const u = await hamalog([
      "status",
      "--config",
      unpinned,
      "--ssh-key-file",
      sshd.keyFile,
      "--insecure-accept-host-key",
    ]);
    outputs.push(u);
    expect(u.code, text(u)).toBe(0);
    expect(u.stderr).toContain(
      `--insecure-accept-host-key: ${sshd.user}@127.0.0.1:${sshd.port} host key ${sshd.hostKeyFingerprint} was accepted without a pin`,
    );
    expect(u.stderr).toContain(`deploy/hostKey: ${sshd.hostKeyFingerprint}`);
  });

  it("a bad registry token is a clear error and leaves the host unchanged", async () => {
    const before = { compose: composeFile(), history: history(), containers: containers() };
    const r = await run(
      [
        "deploy",
        "--sha",
        SHA.v2,
        "--registry",
        authRegistry.host,
        "--username",
        USER,
        "--password-env",
        "HAMALOG_IT_TOKEN",
      ],
      {
        HAMALOG_IT_TOKEN: "wrong-token",
      },
    );
    expect(r.code, text(r)).toBe(1);
    expect(r.stderr).toMatch(/unauthori[sz]ed|credentials|rejected/i);
    expect(r.stderr).toMatch(/stopped in preflight: nothing on root@127\.0\.0\.1:\d+ was changed/);
    expect({ compose: composeFile(), history: history(), containers: containers() }).toEqual(before);
  });

  it("with the right token the host logs in via --password-stdin: the token and key never show in ps, output, history or files", async () => {
    const seen: string[] = [];
    const loginSeen = () => seen.some((s) => /docker login --username deployer --password-stdin /.test(s));
    // `docker login` lasts ~20 ms, shorter than a ps snapshot: the registry (behind a loopback proxy) holds the
    // login's authenticated ping until a snapshot has caught the login, so the check below cannot pass by luck.
    const proxy = await startRegistryProxy(authRegistry.url, {
      hold: async (req) => {
        if (
          req.path !== "/v2/" ||
          !req.headers.authorization ||
          !String(req.headers["user-agent"]).startsWith("docker/")
        )
          return;
        await waitFor("`docker login` in the host's process list", async () => loginSeen(), 10_000).catch(
          () => undefined,
        );
      },
    });
    let polling = true;
    const poll = (async () => {
      while (polling) {
        seen.push(execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    let r: CliResult;
    try {
      r = await run(
        ["deploy", "--sha", SHA.v2, "--registry", proxy.host, "--username", USER, "--password-env", "HAMALOG_IT_TOKEN"],
        {
          HAMALOG_IT_TOKEN: TOKEN,
        },
      );
    } finally {
      polling = false;
      await poll;
      await proxy.stop();
    }
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(
      /\[pull\] pulled 127\.0\.0\.1:\d+\/\S+@sha256:\S+ \(logged in as deployer for this command only\)/,
    );
    expect(await version()).toBe("v2");
    expect(loginSeen(), "a ps snapshot caught the host's `docker login ... --password-stdin`").toBe(true);
    for (const snapshot of seen) {
      expect(snapshot).not.toContain(TOKEN);
      expect(snapshot).not.toContain(keyLine);
    }
    // The login lived in a throwaway Docker config for the pull alone: nothing of it is left.
    expect(readdirSync(join(dir, ".hamalog")).filter((f) => f.startsWith("docker-"))).toEqual([]);
    expect(existsSync(join(dir, ".docker"))).toBe(false);
  });

  it("rollback --to v1 goes back through the same health gate and records it", async () => {
    const r = await run(["rollback", "--to", SHA.v1]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/^\[health\] /m);
    expect(r.stdout).toContain(`rolled back to ${registry.host}/${REPO}:${SHA.v1}@${digests.v1}`);
    expect(await version()).toBe("v1");
    expect(historyEntries().at(-1)).toMatchObject({
      action: "rollback",
      sha: SHA.v1,
      digest: digests.v1,
      result: "success",
    });
    const bad = await run(["rollback", "--to", SHA.v3]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no successful deploy of `3c3c/);
  });

  it.each([
    ["--sha", ["--sha", `$(touch ${marker})`]],
    ["--sha with newline", ["--sha", `${SHA.v1}\ntouch ${marker}`]],
    ["--service", ["--sha", SHA.v1, "--service", `app;touch ${marker}`]],
    ["--directory", ["--sha", SHA.v1, "--directory", `${tmp}/../x`]],
    ["--directory quotes", ["--sha", SHA.v1, "--directory", `${tmp}/'x'`]],
    ["--host", ["--sha", SHA.v1, "--host", `127.0.0.1;touch ${marker}`]],
    ["--user", ["--sha", SHA.v1, "--user", "root$(id)"]],
    ["--project", ["--sha", SHA.v1, "--project", "p`id`"]],
    ["--health-url", ["--sha", SHA.v1, "--health-url", `http://127.0.0.1/"$(touch ${marker})"`]],
    ["--compose-file", ["--sha", SHA.v1, "--compose-file", "../../etc/passwd"]],
    ["--lock-wait", ["--sha", SHA.v1, "--lock-wait", "1; touch x"]],
  ])("hostile %s is rejected as a usage error before anything runs", async (_n, args) => {
    const before = history();
    const r = await run(["deploy", ...args]);
    expect(r.code, text(r)).toBe(2);
    expect(existsSync(marker)).toBe(false);
    expect(history()).toBe(before);
  });

  it("hostile --to and hostile text that passes validation (registry username, template labels) are quoted harmlessly", async () => {
    const to = await run(["rollback", "--to", `'; touch ${marker}; '`]);
    expect(to.code).toBe(2);
    docker(["rmi", `${registry.host}/${REPO}@${digests.v2}`]);
    const r = await run(
      [
        "deploy",
        "--sha",
        SHA.v2,
        "--username",
        `x;touch\${IFS}${marker};$(touch\${IFS}${marker})\`touch\${IFS}${marker}\`'"`,
        "--password-env",
        "HAMALOG_IT_TOKEN",
      ],
      {
        HAMALOG_IT_TOKEN: TOKEN,
      },
    );
    // The open registry ignores credentials; the host's `docker login` gets the username as one word (the digest
    // was removed first, so the pull, and its login, runs).
    expect([0, 1]).toContain(r.code);
    expect(r.stdout).toMatch(/\[pull\] pulled .*\(logged in as x;touch/);
    expect(existsSync(marker)).toBe(false);
    expect(composeFile()).toContain(`touch ${marker}`); // the hostile label arrived as data
  });

  it("never prints the registry token or the SSH key, nor writes them to history or the compose file", () => {
    expect(outputs.length).toBeGreaterThan(15);
    for (const o of outputs) {
      expect(text(o)).not.toContain(TOKEN);
      expect(text(o)).not.toContain(keyLine);
      expect(text(o)).not.toContain("PRIVATE KEY");
    }
    const files = [
      join(dir, "journal.json"),
      ...readdirSync(join(dir, "releases")).map((f) => join(dir, "releases", f)),
    ];
    for (const f of [history(), composeFile(), ...files.map((x) => readFileSync(x, "utf8"))]) {
      expect(f).not.toContain(TOKEN);
      expect(f).not.toContain(keyLine);
    }
  });
});
