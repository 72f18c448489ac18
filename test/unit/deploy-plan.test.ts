// Pure parts of the deploy: the project name, platform names, --to parsed at the doors, and what history says
// runs, what a rollback goes to and which digests pruning keeps.
import { describe, expect, it } from "vitest";
import { hostPlatform } from "../../ci/core/deploy/preflight.js";
import { projectName } from "../../ci/core/deploy/session.js";
import {
  parseRollbackTo,
  currentRelease,
  digestsToKeep,
  lastEntries,
  parseHistory,
  rollbackTarget,
  type HistoryEntry,
} from "../../ci/core/deploy/history.js";
import { redact } from "../../ci/core/deploy/report.js";
import { parseSha } from "../../ci/core/tags.js";

const d = (c: string) => `sha256:${c.repeat(64)}`;
const sha = (c: string) => parseSha(c.repeat(40));
const to = (t: string) => parseRollbackTo(t)!;

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

describe("deploy plumbing", () => {
  it("names the compose project after the directory unless configured", () => {
    expect(projectName("/opt/Hamalog App/")).toBe("hamalogapp");
    expect(projectName("/opt/x", "given")).toBe("given");
    expect(projectName("/")).toBe("hamalog");
  });

  it.each([
    ["linux/x86_64", "linux/amd64"],
    ["linux/aarch64", "linux/arm64"],
    ["linux/armv7l", "linux/arm/v7"],
    ["linux/s390x", "linux/s390x"],
  ])("docker info's %s is the image platform %s", (info, platform) => expect(hostPlatform(info)).toBe(platform));

  it.each([
    [undefined, undefined],
    ["1111111", { text: "1111111", sha: "1111111" }],
    [` ${"A".repeat(40)} `, { text: "a".repeat(40), sha: "a".repeat(40) }],
    [d("2"), { text: d("2"), digest: d("2") }],
  ])("--to %s is parsed at the door", (text, to) => expect(parseRollbackTo(text)).toEqual(to));

  it.each(["123456", "main-1111111", "sha256:zz", "1111111; rm -rf /"])("--to %s is refused as a usage error", (t) =>
    expect(() => parseRollbackTo(t)).toThrow(/--to: .* is neither a commit sha \(7–40 hex characters\) nor a digest/),
  );
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
    expect(rollbackTarget(h, undefined, d("2"))?.digest).toBe(d("4"));
    expect(rollbackTarget(h, to(sha("1")))?.digest).toBe(d("1"));
    expect(rollbackTarget(h, to("1111111"))?.digest).toBe(d("1"));
    expect(rollbackTarget(h, to(d("2")))?.sha).toBe(sha("2"));
    expect(rollbackTarget(h, to(sha("3")))).toBeUndefined(); // never deployed successfully
  });

  it("--to SHA never picks a `latest` fallback that recorded that sha; its digest still can", () => {
    const fb = (s: string, latest: string): HistoryEntry => ({
      ...entry(s, latest, "success", latest),
      fallback: true,
      running: { sha: sha(s), digest: d(latest), image: `r/x:latest@${d(latest)}`, fallback: true },
    });
    // 5 was asked for but missing: `latest` (digest 9) was deployed and history says sha 5.
    expect(rollbackTarget([...h, fb("5", "9")], to(sha("5")))).toBeUndefined();
    expect(rollbackTarget([...h, fb("5", "9")], to("5555555"))).toBeUndefined();
    expect(rollbackTarget([...h, fb("5", "9")], to(d("9")))).toMatchObject({ digest: d("9"), fallback: true });
    // 5 was built and deployed later (digest 5): --to 5 is that one, even with the fallback still in history.
    expect(
      rollbackTarget(
        [...h, fb("5", "9"), entry("5", "5", "success", "5"), entry("1", "1", "success", "1")],
        to(sha("5")),
      ),
    ).toMatchObject({ digest: d("5") });
    // The same digest deployed as a fallback later does not hide the release really built from the sha.
    expect(
      rollbackTarget([entry("9", "9", "success", "9"), fb("5", "9"), entry("1", "1", "success", "1")], to(sha("9"))),
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
