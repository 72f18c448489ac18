// Pure parts of the deploy: exact remote commands (the token never in argv), the host layout, platform names,
// and what history says runs, what a rollback goes to and which digests pruning keeps.
import { describe, expect, it } from "vitest";
import { cmd, composeArgs, hostPlatform, layout, projectName } from "../../ci/src/deploy/commands.js";
import { currentRelease, digestsToKeep, lastEntries, parseHistory, rollbackTarget, type HistoryEntry } from "../../ci/src/deploy/history.js";
import { redact } from "../../ci/src/deploy/report.js";

const L = layout("/opt/hamalog/");
const d = (c: string) => `sha256:${c.repeat(64)}`;
const sha = (c: string) => c.repeat(40);

function entry(s: string, digest: string, result: HistoryEntry["result"], running: string | null): HistoryEntry {
  const rel = (x: string) => ({ sha: sha(x), digest: d(x), image: `r/x:${sha(x)}@${d(x)}` });
  return {
    time: "2024-01-01T00:00:00.000Z", action: "deploy", sha: sha(s), tags: [sha(s)], digest: d(digest), image: "", previousDigest: null,
    previousSha: null, result, fallback: false, durationMs: 1, running: running ? rel(running) : null, holder: "t",
  };
}

describe("deploy commands", () => {
  it("lays out the deploy directory", () => {
    expect(L).toMatchObject({ dir: "/opt/hamalog", compose: "/opt/hamalog/compose.yaml", previous: "/opt/hamalog/compose.previous.yaml", history: "/opt/hamalog/history.jsonl", lock: "/opt/hamalog/.deploy.lock", dockerConfig: "/opt/hamalog/.docker" });
  });

  it("logs in with the token on stdin, into the deploy's own Docker config", () => {
    expect(cmd.login(L, "ghcr.io", "deployer")).toEqual(["env", "DOCKER_CONFIG=/opt/hamalog/.docker", "docker", "login", "--username", "deployer", "--password-stdin", "ghcr.io"]);
  });

  it("runs compose with an explicit project and file, and up waits with the configured timeout", () => {
    expect(cmd.compose("hamalog", L.compose, composeArgs.up("hamalog-app", 180))).toEqual([
      "docker", "compose", "--project-name", "hamalog", "--file", "/opt/hamalog/compose.yaml",
      "up", "--detach", "--wait", "--wait-timeout", "180", "hamalog-app",
    ]);
  });

  // The docker CLI finds plugins in $DOCKER_CONFIG/cli-plugins: a compose plugin installed in ~/.docker/cli-plugins
  // is invisible under the deploy's DOCKER_CONFIG. So only built-in commands that need the registry login get it.
  it.each([
    ["login", cmd.login(L, "ghcr.io", "u"), true],
    ["logout", cmd.logout(L, "ghcr.io"), true],
    ["pull by digest", cmd.pull(L, "ghcr.io/a/b@sha256:x"), true],
    ["manifest inspect", cmd.manifestInspect(L, "ghcr.io/a/b:t@sha256:x", false), true],
    ["compose up", cmd.compose("p", L.compose, composeArgs.up("app", 1)), false],
    ["compose config", cmd.compose("p", L.next, composeArgs.validate()), false],
    ["compose ps/logs", cmd.compose("p", L.compose, composeArgs.logs("app", 30)), false],
    ["compose version (preflight)", cmd.composeVersion(), false],
  ])("%s runs with the deploy's DOCKER_CONFIG: %s", (_n, argv, withConfig) => {
    expect(argv.some((w) => w.startsWith("DOCKER_CONFIG="))).toBe(withConfig);
    if (withConfig) expect(argv.slice(0, 3)).toEqual(["env", "DOCKER_CONFIG=/opt/hamalog/.docker", "docker"]);
    else expect(argv.slice(0, 2)).toEqual(["docker", "compose"]);
  });

  it("pulls the pinned digest with plain docker pull (compose then finds it locally) and checks compose in preflight", () => {
    expect(cmd.pull(L, "ghcr.io/a/b@sha256:x")).toEqual(["env", "DOCKER_CONFIG=/opt/hamalog/.docker", "docker", "pull", "--quiet", "ghcr.io/a/b@sha256:x"]);
    expect(cmd.composeVersion()).toEqual(["docker", "compose", "version"]);
  });

  it("writes files through a constant script with the path as $1", () => {
    expect(cmd.write("/opt/x; rm -rf /")).toEqual(["sh", "-c", 'umask 077 && cat > "$1"', "hamalog-write", "/opt/x; rm -rf /"]);
    expect(cmd.lockAcquire(L)).toEqual(["mkdir", "-m", "0700", "--", "/opt/hamalog/.deploy.lock"]);
  });

  it.each([
    ["linux/x86_64", "linux/amd64"],
    ["linux/aarch64", "linux/arm64"],
    ["linux/armv7l", "linux/arm/v7"],
    ["linux/s390x\n", "linux/s390x"],
  ])("host platform %j → %s", (info, platform) => expect(hostPlatform(info)).toBe(platform));

  it("names the compose project after the directory unless configured", () => {
    expect(projectName("/opt/Hamalog.Prod/")).toBe("hamalogprod");
    expect(projectName("/opt/x", "custom")).toBe("custom");
  });
});

describe("history", () => {
  const h = [entry("1", "1", "success", "1"), entry("2", "2", "success", "2"), entry("3", "3", "rolled-back", "2"), entry("4", "4", "success", "4")];

  it("parses JSON lines and skips foreign lines", () => {
    const text = h.map((e) => JSON.stringify(e)).join("\n") + "\nnot json\n{}\n";
    expect(parseHistory(text)).toHaveLength(4);
  });

  it("says what runs now from the last attempt", () => {
    expect(currentRelease(h)?.digest).toBe(d("4"));
    expect(currentRelease(h.slice(0, 3))?.digest).toBe(d("2"));
    expect(currentRelease([])).toBeNull();
  });

  it("rolls back to the previous successful release, or to --to by sha, short sha or digest", () => {
    expect(rollbackTarget(h)?.digest).toBe(d("2"));
    expect(rollbackTarget(h, sha("1"))?.digest).toBe(d("1"));
    expect(rollbackTarget(h, "1111111")?.digest).toBe(d("1"));
    expect(rollbackTarget(h, d("2"))?.sha).toBe(sha("2"));
    expect(rollbackTarget(h, sha("3"))).toBeUndefined(); // never deployed successfully
  });

  it("--to SHA never picks a `latest` fallback that recorded that sha; its digest still can", () => {
    const fb = (s: string, latest: string): HistoryEntry => ({
      ...entry(s, latest, "success", latest),
      fallback: true,
      running: { sha: sha(s), digest: d(latest), image: `r/x:latest@${d(latest)}`, fallback: true },
    });
    // 5 was asked for but missing: `latest` (digest 9) was deployed and history says sha 5.
    expect(rollbackTarget([...h, fb("5", "9")], sha("5"))).toBeUndefined();
    expect(rollbackTarget([...h, fb("5", "9")], "5555555")).toBeUndefined();
    expect(rollbackTarget([...h, fb("5", "9")], d("9"))).toMatchObject({ digest: d("9"), fallback: true });
    // 5 was built and deployed later (digest 5): --to 5 is that one, even with the fallback still in history.
    expect(rollbackTarget([...h, fb("5", "9"), entry("5", "5", "success", "5"), entry("1", "1", "success", "1")], sha("5"))).toMatchObject({ digest: d("5") });
    // The same digest deployed as a fallback later does not hide the release really built from the sha.
    expect(rollbackTarget([entry("9", "9", "success", "9"), fb("5", "9"), entry("1", "1", "success", "1")], sha("9"))).toMatchObject({ sha: sha("9"), digest: d("9") });
  });

  it("status --lines N shows the last N entries, and 0 shows none", () => {
    expect(lastEntries(h, 2).map((e) => e.sha)).toEqual([sha("3"), sha("4")]);
    expect(lastEntries(h, 0)).toEqual([]);
    expect(lastEntries(h, 10)).toHaveLength(4);
  });

  it("keeps the newest N deployed digests plus the running one when pruning", () => {
    expect([...digestsToKeep(h, 2)].sort()).toEqual([d("2"), d("4")]);
    expect([...digestsToKeep(h.slice(0, 3), 1)]).toEqual([d("2")]);
  });
});

describe("redact", () => {
  it("removes every occurrence of each secret", () => {
    expect(redact("token=s3cret! and s3cret!", ["s3cret!", ""])).toBe("token=[redacted] and [redacted]");
  });
});
