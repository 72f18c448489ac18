// A holder frozen past its lease (SIGSTOP: a stuck CI runner, a suspended laptop) on both strategies, against real
// sshd, dockerd + compose v2, Caddy and a registry. The host notices the silence and recovers by itself; a second
// deploy then takes the lock and finishes; the frozen one, resumed, has its next step refused (its fencing token is
// stale), changes nothing and exits 1 naming why. The second deploy's release stays live; on blue/green not one
// request of a loop fails through all of it.
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
import { startLoop } from "./helpers/request-loop.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { pipelineYaml } from "./helpers/stack-files.js";

const ID = `hamalog-fence-it-${process.pid}`;
const REPO = "hamalog-fence-it/app";
const CADDY = process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2";
const SHA = ["1", "2", "3"].map((c) => c.repeat(40));

let registry: Registry;
let sshd: Sshd;
let tmp: string;
const localImages: string[] = [];
const text = (r: CliResult) => `${r.stdout}\n${r.stderr}`;
const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");

beforeAll(async () => {
  [registry, sshd] = await Promise.all([startRegistry(), startSshd()]);
  tmp = mkdtempSync(join(tmpdir(), "hamalog-fence-it-"));
  SHA.forEach((sha, i) => {
    const local = `${ID}/app:v${i + 1}`;
    buildSlowAppImage(local, { version: `v${i + 1}`, closedSeconds: 2, unhealthySeconds: 2 });
    const ref = `${registry.host}/${REPO}:${sha}`;
    pushImage(local, ref);
    localImages.push(local, ref);
  });
});

afterAll(async () => {
  for (const s of ["recreate", "blue-green"]) removeComposeProject(`${ID}-${s}`);
  removeImages(REPO, localImages);
  await Promise.all([registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe.each([
  ["recreate", "[pull]"],
  ["blue-green", "[proxy]"],
] as const)("a frozen holder on %s", (strategy, freezeAfter) => {
  const dir = () => join(tmp, strategy, "srv");
  let port = 0;
  let config = "";
  const flags = () =>
    strategy === "blue-green"
      ? ["--strategy", "blue-green", "--proxy-publish", `127.0.0.1:${port}:80`, "--proxy-image", CADDY]
      : [];
  const deploy = (sha: string, opts: Parameters<typeof hamalog>[1] = {}) =>
    hamalog(["deploy", "--sha", sha, "--config", config, "--ssh-key-file", sshd.keyFile, ...flags()], {
      timeoutMs: 240_000,
      ...opts,
    });
  const journal = () => JSON.parse(read(join(dir(), "journal.json")) || "{}") as Record<string, any>;

  it("v1 is live", async () => {
    port = await freePort();
    writeFileSync(
      join(tmp, `${strategy}.yml`),
      [
        "services:",
        "  app:",
        "    image: placeholder",
        `    ports: ["127.0.0.1:${port}:8080"]`,
        "    stop_grace_period: 5s",
        "",
      ].join("\n"),
    );
    config = join(tmp, `${strategy}.yaml`);
    writeFileSync(
      config,
      pipelineYaml({
        registry: registry.host,
        repository: REPO,
        sshd,
        directory: dir(),
        composeFile: `${strategy}.yml`,
        project: `${ID}-${strategy}`,
        health: { url: `http://127.0.0.1:${port}${SLOW_HEALTH_PATH}`, timeout: 20, interval: 0.25 },
        extra: ["  leaseSeconds: 5"],
      }),
    );
    const r = await deploy(SHA[0]!);
    expect(r.code, text(r)).toBe(0);
  });

  it("A frozen mid-deploy loses the lock to the host; B deploys; A resumed changes nothing and exits 1", async () => {
    const loop = startLoop(`http://127.0.0.1:${port}/version`, 20, 240_000);
    let freeze: ((sig: NodeJS.Signals) => void) | undefined;
    const a = deploy(SHA[1]!, {
      onStdout: (out, signal) => {
        if (freeze || !out.includes(freezeAfter)) return;
        freeze = signal;
        signal("SIGSTOP");
      },
    });
    await waitFor("A to be frozen", async () => freeze !== undefined, 60_000);
    // The host sees no heartbeat for the lease (5 s), lets A's running step end, recovers, frees the lock.
    await waitFor(
      "the host's own recovery",
      async () => !existsSync(join(dir(), ".hamalog", "lock.token")) && journal().attempt === null,
      60_000,
    );
    expect(journal().live.sha).toBe(SHA[0]);
    const b = await deploy(SHA[2]!);
    expect(b.code, text(b)).toBe(0);
    freeze!("SIGCONT");
    const ra = await a;
    const stats = await loop.stop();
    console.log(
      `[${strategy} fencing] A: exit ${ra.code}; loop ${stats.failed}/${stats.requests} failed; answers ${stats.answers.join(" ")}`,
    );
    expect(ra.code, text(ra)).toBe(1);
    expect(text(ra)).toMatch(
      /this run lost its lock on \S+ \(the lock is no longer this run's \(token \d+; (now \d+\): another run took it over|it is free now\): the host recovered after this run went silent, or another run came and went) — nothing was changed\)/,
    );
    // B's release is what runs, and what the journal and history say.
    expect(journal()).toMatchObject({ live: { sha: SHA[2] }, attempt: null });
    expect((await fetch(`http://127.0.0.1:${port}/version`).then((x) => x.text())).trim()).toBe("v3");
    const h = read(join(dir(), "history.jsonl"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(h.filter((e) => e.sha === SHA[1] && e.result === "success")).toEqual([]);
    expect(h.find((e) => e.sha === SHA[1])).toMatchObject({ recovered: true });
    expect(h.at(-1)).toMatchObject({ sha: SHA[2], result: "success" });
    if (strategy === "blue-green") expect(stats.failed, JSON.stringify(stats)).toBe(0);
  });
});
