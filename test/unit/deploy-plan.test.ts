// Pure parts of the deploy: exact remote commands (the token never in argv), the host layout, platform names,
// and what history says runs, what a rollback goes to and which digests pruning keeps.
import { leaseFactsScript } from "../../ci/core/deploy/journal-commands.js";
import { describe, expect, it } from "vitest";
import { cmd, composeArgs, hostPlatform, layout, projectName } from "../../ci/core/deploy/commands.js";
import {
  currentRelease,
  digestsToKeep,
  lastEntries,
  parseHistory,
  rollbackTarget,
  type HistoryEntry,
} from "../../ci/core/deploy/history.js";
import { redact } from "../../ci/core/deploy/report.js";
import { parseSha } from "../../ci/core/tags.js";

const L = layout("/opt/hamalog/");
const d = (c: string) => `sha256:${c.repeat(64)}`;
const sha = (c: string) => parseSha(c.repeat(40));

function entry(s: string, digest: string, result: HistoryEntry["result"], running: string | null): HistoryEntry {
  const rel = (x: string) => ({ sha: sha(x), digest: d(x), image: `r/x:${sha(x)}@${d(x)}` });
  return {
    time: "2024-01-01T00:00:00.000Z",
    action: "deploy",
    sha: sha(s),
    tags: [sha(s)],
    digest: d(digest),
    image: "",
    previousDigest: null,
    previousSha: null,
    result,
    fallback: false,
    durationMs: 1,
    running: running ? rel(running) : null,
    holder: "t",
  };
}

describe("deploy commands", () => {
  it("lays out the deploy directory", () => {
    expect(L).toMatchObject({
      dir: "/opt/hamalog",
      compose: "/opt/hamalog/compose.yaml",
      previous: "/opt/hamalog/compose.previous.yaml",
      history: "/opt/hamalog/history.jsonl",
      lock: "/opt/hamalog/.deploy.lock",
      dockerConfig: "/opt/hamalog/.docker",
    });
  });

  it("logs in with the token on stdin, into the deploy's own Docker config (one session: the config dir, then login)", () => {
    expect(cmd.login(L, "ghcr.io", "deployer")).toEqual([
      "sh",
      "-c",
      'echo hamalog-step:config-dir >&2; mkdir -p -m 0700 -- "$1" || exit; echo hamalog-step:login >&2; exec env DOCKER_CONFIG="$1" docker login --username "$2" --password-stdin "$3"',
      "hamalog-login",
      "/opt/hamalog/.docker",
      "deployer",
      "ghcr.io",
    ]);
  });

  it("runs compose with an explicit project and file, and up waits with the configured timeout", () => {
    expect(cmd.compose("hamalog", L.compose, composeArgs.up("hamalog-app", 180))).toEqual([
      "docker",
      "compose",
      "--project-name",
      "hamalog",
      "--file",
      "/opt/hamalog/compose.yaml",
      "up",
      "--detach",
      "--wait",
      "--wait-timeout",
      "180",
      "hamalog-app",
    ]);
  });

  it("preflight probes the host in one session: docker info only when the platform is not configured, then compose version", () => {
    const script =
      'if [ -n "$1" ]; then echo hamalog-step:info >&2; docker info --format "$1" || exit; fi; echo hamalog-step:compose >&2; docker compose version';
    expect(cmd.probe(true)).toEqual(["sh", "-c", script, "hamalog-probe", "{{.OSType}}/{{.Architecture}}"]);
    expect(cmd.probe(false)).toEqual(["sh", "-c", script, "hamalog-probe", ""]);
    // With the deploy directory, a last step checks it (its own script, the directory as $2).
    const withDir = cmd.probe(false, "/opt/hamalog");
    expect(withDir.slice(3)).toEqual(["hamalog-probe", "", "/opt/hamalog"]);
    expect(withDir[2]!.startsWith(`${script} || exit; echo hamalog-step:dir >&2;`)).toBe(true);
  });

  it("takes the lock and reads the directory under it in one session; --break-lock prints the holder it removes", () => {
    expect(cmd.lockAcquire(L)).toEqual([
      "sh",
      "-c",
      'mkdir -p -m 0700 -- "$1" || exit; if ! mkdir -m 0700 -- "$2"; then if test -e "$2"; then cat -- "$2/holder.json" 2>/dev/null; echo; ' +
        `${leaseFactsScript('"$2"')}; exit 3; fi; exit 4; fi; ` +
        'if ! (umask 077 && cat > "$2/holder.json"); then rm -rf -- "$2"; exit 5; fi; touch -- "$2/lease"; ' +
        'if test -e "$3"; then echo compose-present; else echo compose-absent; fi; cat -- "$4" 2>/dev/null; exit 0',
      "hamalog-lock",
      "/opt/hamalog",
      "/opt/hamalog/.deploy.lock",
      "/opt/hamalog/compose.yaml",
      "/opt/hamalog/history.jsonl",
    ]);
    expect(cmd.lockBreak(L)).toEqual([
      "sh",
      "-c",
      'test -e "$1" || exit 4; cat -- "$1/holder.json" 2>/dev/null; rm -rf -- "$1"',
      "hamalog-break-lock",
      "/opt/hamalog/.deploy.lock",
    ]);
  });

  it("renders in two sessions: the file on stdin, then (tied) compose config + keep the previous file + rename", () => {
    expect(cmd.write("/opt/x; rm -rf /")).toEqual([
      "sh",
      "-c",
      'umask 077 && cat > "$1"',
      "hamalog-write",
      "/opt/x; rm -rf /",
    ]);
    const script =
      'echo hamalog-step:config >&2; docker compose --project-name "$1" --file "$2" config --quiet || exit; ' +
      'if [ -n "$4" ]; then echo hamalog-step:keep >&2; cp -p -- "$3" "$4" || exit; fi; echo hamalog-step:rename >&2; mv -f -- "$2" "$3"';
    expect(cmd.switchCompose("hamalog", L, true)).toEqual([
      "sh",
      "-c",
      script,
      "hamalog-switch",
      "hamalog",
      "/opt/hamalog/.compose.next.yaml",
      "/opt/hamalog/compose.yaml",
      "/opt/hamalog/compose.previous.yaml",
    ]);
    expect(cmd.switchCompose("hamalog", L, false).slice(4)).toEqual([
      "hamalog",
      "/opt/hamalog/.compose.next.yaml",
      "/opt/hamalog/compose.yaml",
      "",
    ]);
  });

  it("pulls the pinned digest under the deploy's DOCKER_CONFIG, only when it is not on the host; watched for stalls when asked", () => {
    const plain = cmd.pullMissing(L, "ghcr.io/a/b@sha256:x");
    expect(plain.slice(3)).toEqual(["hamalog-pull", "/opt/hamalog/.docker", "ghcr.io/a/b@sha256:x", "0"]);
    expect(plain[2]).toMatch(
      /^if docker image inspect "\$2" >\/dev\/null 2>&1; then echo hamalog-image-present; exit 0; fi; if \[ "\$3" -gt 0 \] && command -v script .*; fi; exec env DOCKER_CONFIG="\$1" docker pull --quiet "\$2"$/,
    );
    expect(cmd.pullMissing(L, "ghcr.io/a/b@sha256:x", 120).at(-1)).toBe("120");
  });

  it("appends history and lists it with this repository's images in one session; prune removes in one", () => {
    expect(cmd.appendAndList(L, "ghcr.io/a/b")).toEqual([
      "sh",
      "-c",
      'a=0; (umask 077 && cat >> "$1") || a=$?; echo hamalog-history; cat -- "$1" 2>/dev/null; echo hamalog-images; docker image ls --digests --format "$3" "$2"; exit "$a"',
      "hamalog-history",
      "/opt/hamalog/history.jsonl",
      "ghcr.io/a/b",
      "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}}",
    ]);
    expect(cmd.imagesRemove(["r/a@sha256:1", "r/a@sha256:2"])).toEqual([
      "sh",
      "-c",
      'for ref in "$@"; do docker image rm "$ref" >/dev/null 2>&1 && echo "$ref"; done; exit 0',
      "hamalog-prune",
      "r/a@sha256:1",
      "r/a@sha256:2",
    ]);
  });

  it("logs out (when logged in) and releases the lock in one session", () => {
    const script =
      'if [ -n "$4" ]; then env DOCKER_CONFIG="$3" docker logout "$4" >/dev/null 2>&1; fi; ' +
      'test -d "$1" || exit 4; grep -qF -- "$2" "$1/holder.json" 2>/dev/null || { cat -- "$1/holder.json" 2>/dev/null; exit 3; }; rm -rf -- "$1"';
    expect(cmd.lockRelease(L, "id-1", "ghcr.io")).toEqual([
      "sh",
      "-c",
      script,
      "hamalog-unlock",
      "/opt/hamalog/.deploy.lock",
      '"id":"id-1"',
      "/opt/hamalog/.docker",
      "ghcr.io",
    ]);
    expect(cmd.lockRelease(L, "id-1").slice(-1)).toEqual([""]);
  });

  // The docker CLI finds plugins in $DOCKER_CONFIG/cli-plugins: a compose plugin installed in ~/.docker/cli-plugins
  // is invisible under the deploy's DOCKER_CONFIG. So only built-in commands that need the registry login get it.
  it.each([
    ["login", cmd.login(L, "ghcr.io", "u"), ["login"]],
    ["logout + unlock", cmd.lockRelease(L, "i", "ghcr.io"), ["logout"]],
    ["pull by digest", cmd.pullMissing(L, "ghcr.io/a/b@sha256:x"), ["pull", "pull"]], // watched (under `script`) or not
    ["manifest inspect", cmd.manifestInspect(L, "ghcr.io/a/b:t@sha256:x", false), ["manifest"]],
    ["compose up", cmd.compose("p", L.compose, composeArgs.up("app", 1)), []],
    ["compose config (render)", cmd.switchCompose("p", L, true), []],
    ["compose ps/logs", cmd.compose("p", L.compose, composeArgs.logs("app", 30)), []],
    ["compose version (preflight)", cmd.probe(true), []],
  ])("%s: DOCKER_CONFIG only for docker %j", (_n, argv, withConfig) => {
    const text = argv.join(" ");
    expect([...text.matchAll(/DOCKER_CONFIG=\S+ (?:script -qfec ')?docker ([a-z]+)/g)].map((m) => m[1])).toEqual(
      withConfig,
    );
    expect(text.split("DOCKER_CONFIG=").length - 1).toBe(withConfig.length);
    expect(text).not.toMatch(/DOCKER_CONFIG=\S+ docker compose/);
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
  const h = [
    entry("1", "1", "success", "1"),
    entry("2", "2", "success", "2"),
    entry("3", "3", "rolled-back", "2"),
    entry("4", "4", "success", "4"),
  ];

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
    expect(
      rollbackTarget([...h, fb("5", "9"), entry("5", "5", "success", "5"), entry("1", "1", "success", "1")], sha("5")),
    ).toMatchObject({ digest: d("5") });
    // The same digest deployed as a fallback later does not hide the release really built from the sha.
    expect(
      rollbackTarget([entry("9", "9", "success", "9"), fb("5", "9"), entry("1", "1", "success", "1")], sha("9")),
    ).toMatchObject({ sha: sha("9"), digest: d("9") });
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
