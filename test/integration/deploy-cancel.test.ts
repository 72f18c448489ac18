// GitHub's cancel sequence (SIGINT, SIGTERM 7.5 s later, SIGKILL 2.5 s after that) landing in each phase of both
// strategies, against real sshd, dockerd + compose v2, Caddy and a registry, with an app that starts like Spring
// Boot. What is asserted is what the host is left with, with NO further deploy: a healthy release answering within
// 30 s of the cancel, the lock freed and the journal naming no attempt within a minute, history saying what
// happened; blue/green under a request loop loses no request at all. The host does the work: critical steps run to
// their end there, and the recovery the journal names runs whether the client lives to ask for it or not.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hamalog, type CliResult } from "../helpers/cli.js";
import {
  buildSlowAppImage,
  docker,
  pushImage,
  removeComposeProject,
  removeImages,
  SLOW_HEALTH_PATH,
} from "./helpers/images.js";
import { freePort, waitFor } from "./helpers/ports.js";
import { startRegistry, type Registry } from "./helpers/registry.js";
import { startRegistryProxy, type RegistryProxy } from "./helpers/registry-proxy.js";
import { startLoop, type LoopStats } from "./helpers/request-loop.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { pipelineYaml } from "./helpers/stack-files.js";

const ID = `hamalog-cancel-it-${process.pid}`;
const REPO = "hamalog-cancel-it/app";
const CADDY = process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2";
const N = 15;
const SHA = Array.from({ length: N }, (_, i) => (i + 1).toString(16).repeat(40));

let registry: Registry;
let slow: RegistryProxy;
let sshd: Sshd;
let tmp: string;
const localImages: string[] = [];

interface Side {
  name: "recreate" | "blue-green";
  dir: string;
  port: number;
  config: string;
  flags: string[];
}
const sides: Record<Side["name"], Side> = {} as never;
let next = 0;

const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");
const journal = (s: Side) => JSON.parse(read(join(s.dir, "journal.json")) || "{}") as Record<string, any>;
const history = (s: Side) =>
  read(join(s.dir, "history.jsonl"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
const healthy = async (s: Side) =>
  (await fetch(`http://127.0.0.1:${s.port}${SLOW_HEALTH_PATH}`).catch(() => null))?.status === 200;
const version = async (s: Side) => (await fetch(`http://127.0.0.1:${s.port}/version`)).text();

function deploy(s: Side, sha: string, extra: string[] = [], opts: Parameters<typeof hamalog>[1] = {}) {
  return hamalog(["deploy", "--sha", sha, "--config", s.config, "--ssh-key-file", sshd.keyFile, ...s.flags, ...extra], {
    timeoutMs: 180_000,
    ...opts,
  });
}

/** Deploy the next version and cancel it the way GitHub cancels a job once `after` was printed. */
async function cancelled(s: Side, after: string, extra: string[] = [], registryHost = registry.host) {
  const sha = SHA[next++]!;
  let at = 0;
  const timers: NodeJS.Timeout[] = [];
  const r = await deploy(s, sha, ["--registry", registryHost, ...extra], {
    onStdout: (out, signal) => {
      if (at || !out.includes(after)) return;
      at = Date.now();
      signal("SIGINT");
      timers.push(
        setTimeout(() => signal("SIGTERM"), 7500),
        setTimeout(() => signal("SIGKILL"), 10_000),
      );
    },
  });
  for (const t of timers) clearTimeout(t);
  expect(at, `never saw ${after}:\n${text(r)}`).toBeGreaterThan(0);
  return { r, sha, at };
}

/** With no further deploy: healthy within 30 s of the cancel; lock free and no attempt within a minute. */
async function settles(s: Side, at: number, r: CliResult) {
  await waitFor("the app answering healthy", () => healthy(s), Math.max(1000, 30_000 - (Date.now() - at)));
  await waitFor(
    "the lock freed and the attempt ended",
    async () => !existsSync(join(s.dir, ".hamalog", "lock.token")) && journal(s).attempt === null,
    60_000,
  );
  const j = journal(s);
  expect(j.live, text(r)).not.toBeNull();
  expect((await version(s)).trim()).toBe(`v${SHA.indexOf(j.live.sha) + 1}`);
  return j;
}

beforeAll(async () => {
  [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
  // Blobs held for 6 s: a pull that is still going when the cancel lands.
  slow = await startRegistryProxy(registry.url, {
    hold: async (req) => {
      if (/\/blobs\/sha256:/.test(req.path)) await new Promise((res) => setTimeout(res, 6000));
    },
  });
  tmp = mkdtempSync(join(tmpdir(), "hamalog-cancel-it-"));
  for (let i = 0; i < N; i++) {
    const local = `${ID}/app:v${i + 1}`;
    buildSlowAppImage(local, { version: `v${i + 1}`, closedSeconds: 2, unhealthySeconds: 2 });
    localImages.push(local);
    const ref = `${registry.host}/${REPO}:${SHA[i]}`;
    pushImage(local, ref);
    localImages.push(ref);
  }
  for (const name of ["recreate", "blue-green"] as const) {
    const dir = join(tmp, name, "srv");
    const port = await freePort();
    writeFileSync(
      join(tmp, `${name}.yml`),
      [
        "services:",
        "  app:",
        "    image: placeholder",
        `    ports: ["127.0.0.1:${port}:8080"]`,
        "    stop_grace_period: 5s",
        "",
      ].join("\n"),
    );
    const config = join(tmp, `${name}.yaml`);
    writeFileSync(
      config,
      pipelineYaml({
        registry: registry.host,
        repository: REPO,
        sshd,
        directory: dir,
        composeFile: `${name}.yml`,
        project: `${ID}-${name}`,
        health: { url: `http://127.0.0.1:${port}${SLOW_HEALTH_PATH}`, timeout: 15, interval: 0.25 },
        keepImages: 20,
      }),
    );
    const flags =
      name === "blue-green"
        ? ["--strategy", "blue-green", "--proxy-publish", `127.0.0.1:${port}:80`, "--proxy-image", CADDY]
        : [];
    sides[name] = { name, dir, port, config, flags };
  }
});

afterAll(async () => {
  for (const name of ["recreate", "blue-green"]) removeComposeProject(`${ID}-${name}`);
  removeImages(REPO, localImages);
  await Promise.all([registry?.stop(), sshd?.stop(), slow?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("GitHub's cancel sequence in each phase, recreate", () => {
  const s = () => sides.recreate;
  it("a first release", async () => {
    const r = await deploy(s(), SHA[next++]!);
    expect(r.code, text(r)).toBe(0);
  });

  it.each([
    ["pull (a slow download)", "[prepare]", true],
    ["up (the replacement)", "[pull]", false],
    ["health (the new container starting)", "[up]", false],
  ])("in %s: healthy within 30 s, no further deploy", async (_, after, slowPull) => {
    const before = journal(s()).live;
    const { r, sha, at } = await cancelled(s(), after, [], slowPull ? slow.host : registry.host);
    const j = await settles(s(), at, r);
    // Recreate undoes an attempt that was cut short: the release that was live before serves again.
    expect(j.live.sha, text(r)).toBe(before.sha);
    const h = history(s()).at(-1)!;
    expect(h, text(r)).toMatchObject({ sha, interrupted: true });
    expect(["failed", "rolled-back"]).toContain(h.result);
    // Nothing the killed run started is left: one container for the app, and no throwaway login.
    expect(
      docker(["ps", "-aq", "--filter", `label=com.docker.compose.project=${ID}-recreate`])
        .trim()
        .split("\n"),
    ).toHaveLength(1);
  });
});

describe("GitHub's cancel sequence in each phase, blue/green (under a request loop: not one request may fail)", () => {
  const s = () => sides["blue-green"];
  let loop: { stop: () => Promise<LoopStats> };
  let loopStart = 0;
  it("a first release, and the loop starts", async () => {
    const r = await deploy(s(), SHA[next++]!);
    expect(r.code, text(r)).toBe(0);
    loop = startLoop(`http://127.0.0.1:${s().port}/version`, 20, 900_000);
    loopStart = performance.now();
  });

  it.each([
    ["pull (a slow download)", "[prepare]", [], true],
    ["candidate (its start)", "[proxy]", [], false],
    ["candidate-health", "[candidate]", [], false],
    ["switch", "[candidate-health]", [], false],
    ["drain (the old colour stopping after it)", "[promote]", ["--warm-seconds", "0", "--drain-seconds", "6"], false],
  ])("in %s: healthy within 30 s, no further deploy", async (_, after, extra, slowPull) => {
    const before = journal(s()).live;
    const { r, sha, at } = await cancelled(s(), after, extra as string[], slowPull ? slow.host : registry.host);
    const j = await settles(s(), at, r);
    const h = history(s())
      .filter((e) => e.sha === sha)
      .at(-1);
    expect(h, text(r)).toBeDefined();
    if (after === "[promote]") {
      // Past the gates: the cancel cuts the drain short and the new colour stays live.
      expect(j.live.sha, text(r)).toBe(sha);
      expect(h).toMatchObject({ result: "success", interrupted: true });
    } else {
      expect(j.live.sha, text(r)).toBe(before.sha);
      expect(h).toMatchObject({ interrupted: true });
      expect(["failed", "rolled-back"]).toContain(h!.result);
    }
    // One colour routed and healthy; the other, if any, is the kept one.
    expect(read(join(s().dir, "proxy", "Caddyfile"))).toMatch(new RegExp(`^# hamalog live: ${j.live.colour} `));
  });

  it("not one request failed through all of it", async () => {
    const stats = await loop.stop();
    console.log(`[cancel, blue/green] ${stats.failed}/${stats.requests} failed; answers ${stats.answers.join(" ")}`);
    expect(stats.failed, JSON.stringify(stats)).toBe(0);
    expect(stats.requests).toBeGreaterThan(500);
  });
});

describe("the connection dropped, and a migration killed at its switch", () => {
  /** Kill this test's sshd sessions (its children): the network going away under the deploy. */
  const dropConnections = () => {
    for (const pid of execFileSync("pgrep", ["-P", String(sshd.pid)], { encoding: "utf8" }).split("\n"))
      if (pid.trim()) process.kill(Number(pid), "SIGKILL");
  };

  it.each([
    ["recreate, during up", "recreate", "[pull]", 0, [] as string[]],
    [
      "blue/green, during the drain",
      "blue-green",
      "[live-health]",
      1500,
      ["--warm-seconds", "0", "--drain-seconds", "8"],
    ],
  ] as const)(
    "%s: the host recovers by itself; the client reconnects and says so",
    async (_, name, after, delay, extra) => {
      const s = sides[name];
      const before = journal(s).live;
      const sha = SHA[next++]!;
      let at = 0;
      const r = await deploy(s, sha, [...extra], {
        onStdout: (out) => {
          if (at || !out.includes(after)) return;
          at = Date.now();
          setTimeout(dropConnections, delay);
        },
      });
      expect(at, text(r)).toBeGreaterThan(0);
      // Past the gates the release is live and the host finished the attempt: a warning, exit 0.
      expect(r.code, text(r)).toBe(name === "recreate" ? 1 : 0);
      expect(r.stderr).toMatch(/the host recovers by itself \(its heartbeat saw the connection end\); reconnecting/);
      expect(r.stderr).toMatch(
        /the host recovered by itself: sha [0-9a-f]{12} \(sha256:[0-9a-f]{12}…(, \w+)?\) is live/,
      );
      const j = await settles(s, at, r);
      // Before the gates passed it is undone; past them (the drain) it is finished forward.
      expect(j.live.sha).toBe(name === "recreate" ? before.sha : sha);
    },
  );

  it("a migration from recreate killed at its switch: the recreate app serves again by itself; the next deploy migrates and says so", async () => {
    const s = sides.recreate;
    const bg = ["--strategy", "blue-green", "--proxy-publish", `127.0.0.1:${s.port}:80`, "--proxy-image", CADDY];
    const before = journal(s).live;
    const sha = SHA[next++]!;
    let at = 0;
    const r = await deploy(s, sha, bg, {
      onStdout: (out, signal) => {
        if (at || !out.includes("[candidate-health]")) return;
        at = Date.now();
        setTimeout(() => signal("SIGKILL"), 300);
      },
    });
    expect(at, text(r)).toBeGreaterThan(0);
    const j = await settles(s, at, r);
    expect(j.live.sha).toBe(before.sha);
    expect(j.strategy).toBe("recreate");
    expect(
      docker([
        "ps",
        "-q",
        "--filter",
        `label=com.docker.compose.project=${ID}-recreate`,
        "--filter",
        "label=com.docker.compose.service=hamalog-proxy",
      ]).trim(),
    ).toBe("");
    const again = await deploy(s, sha, bg);
    expect(again.code, text(again)).toBe(0);
    expect(again.stdout).toMatch(/users saw: migrated from recreate: the public port was closed for \d+\.\ds/);
    expect(journal(s)).toMatchObject({ strategy: "blue-green", live: { sha }, attempt: null });
  });
});
