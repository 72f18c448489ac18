// deploy/host `local`: the same procedure on this machine without SSH (a self-hosted runner on the server, as
// Hamalog deploys today), against the real dockerd + compose v2 and a registry: deploys, status, and the CLI killed
// in the middle of `up` — the heartbeat is a child whose input ends with the CLI, and the host (this machine)
// recovers by itself exactly as after a dropped SSH connection.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hamalog, type CliResult } from "../helpers/cli.js";
import {
  buildSlowAppImage,
  pushImage,
  removeComposeProject,
  removeImages,
  SLOW_HEALTH_PATH,
} from "./helpers/images.js";
import { freePort, waitFor } from "./helpers/ports.js";
import { startRegistry, type Registry } from "./helpers/registry.js";

const ID = `hamalog-local-it-${process.pid}`;
const REPO = "hamalog-local-it/app";
const SHA = ["1", "2", "3"].map((c) => c.repeat(40));

let registry: Registry;
let tmp: string;
let dir: string;
let port: number;
let config: string;
const refs: string[] = [];
const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
const journal = () => JSON.parse(readFileSync(join(dir, "journal.json"), "utf8")) as Record<string, any>;
const version = () =>
  fetch(`http://127.0.0.1:${port}/version`)
    .then((x) => x.text())
    .catch(() => "");
const run = (args: string[], opts: Parameters<typeof hamalog>[1] = {}) =>
  hamalog([...args, "--config", config], { timeoutMs: 180_000, ...opts });

beforeAll(async () => {
  registry = await startRegistry();
  tmp = mkdtempSync(join(tmpdir(), "hamalog-local-it-"));
  dir = join(tmp, "srv", "app");
  port = await freePort();
  SHA.forEach((sha, i) => {
    const local = `${ID}/app:v${i + 1}`;
    buildSlowAppImage(local, { version: `v${i + 1}`, closedSeconds: 2, unhealthySeconds: 2 });
    const ref = `${registry.host}/${REPO}:${sha}`;
    pushImage(local, ref);
    refs.push(local, ref);
  });
  writeFileSync(
    join(tmp, "compose.yml"),
    [
      "services:",
      "  app:",
      "    image: placeholder",
      `    ports: ["127.0.0.1:${port}:8080"]`,
      "    stop_grace_period: 5s",
      "",
    ].join("\n"),
  );
  config = join(tmp, "pipeline.yaml");
  writeFileSync(
    config,
    [
      "image:",
      `  registry: ${registry.host}`,
      `  repository: ${REPO}`,
      "deploy:",
      "  host: local",
      `  directory: ${dir}`,
      "  composeFile: compose.yml",
      `  project: ${ID}`,
      "  service: app",
      `  health: {url: "http://127.0.0.1:${port}${SLOW_HEALTH_PATH}", timeout: 20, interval: 0.25}`,
      "",
    ].join("\n"),
  );
});

afterAll(async () => {
  removeComposeProject(ID);
  removeImages(REPO, refs);
  await registry?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("deploy/host local (no SSH, no key, no host key)", () => {
  it("deploys v1 through a local shell, the same phases as over SSH", async () => {
    const r = await run(["deploy", "--sha", SHA[0]!]);
    expect(r.code, text(r)).toBe(0);
    expect(r.stdout).toMatch(/^\[connect\] local \(\S+@\S+\) \d+\.\ds$/m);
    for (const phase of ["probe", "preflight", "lock", "prepare", "pull", "up", "health", "finish"])
      expect(r.stdout).toMatch(new RegExp(`^\\[${phase}\\] .* \\d+\\.\\ds$`, "m"));
    expect((await version()).trim()).toBe("v1");
    const s = await run(["status"]);
    expect(s.code, text(s)).toBe(0);
    expect(s.stdout).toMatch(/the host matches the journal/);
  });

  it("the CLI killed in the middle of up: the replacement finishes, the host restores v1 by itself, no further deploy", async () => {
    // Killed once the journal says `up` (written with the up step's own bundle): the replacement is under way.
    let at = 0;
    let kill: ((s: NodeJS.Signals) => void) | undefined;
    const watch = setInterval(() => {
      if (at || !kill || !existsSync(join(dir, "journal.json"))) return;
      if (journal().attempt?.phase !== "up") return;
      at = Date.now();
      kill("SIGKILL");
    }, 20);
    const r = await run(["deploy", "--sha", SHA[1]!], { onStdout: (_out, signal) => (kill = signal) }).finally(() =>
      clearInterval(watch),
    );
    expect(at, text(r)).toBeGreaterThan(0);
    expect(r.code).not.toBe(0);
    await waitFor(
      "the host's own recovery",
      async () => !existsSync(join(dir, ".hamalog", "lock.token")) && journal().attempt === null,
      60_000,
    );
    expect(journal().live.sha).toBe(SHA[0]);
    // The restored v1 starts like the app does (its port closed for 2 s): answering within 30 s of the kill.
    await waitFor("v1 answering again", async () => (await version()).trim() === "v1", 30_000 - (Date.now() - at));
  });

  it("and the next deploy goes through", async () => {
    const r = await run(["deploy", "--sha", SHA[2]!]);
    expect(r.code, text(r)).toBe(0);
    expect((await version()).trim()).toBe("v3");
  });
});
