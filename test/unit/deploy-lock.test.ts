// The deploy lock (ci/core/deploy/lock.ts) on a real filesystem: every remote command is the exact argv the core
// builds, turned into one shell line by shell.ts and run by a real `sh -c` — what sshd does with it. The point:
// a deploy whose lock was broken with --break-lock (and taken by another deploy) must not delete the new lock.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cmd, layout } from "../../ci/core/deploy/commands.js";
import { acquireLock, releaseLock, type LockHolder } from "../../ci/core/deploy/lock.js";
import type { Remote } from "../../ci/core/deploy/remote.js";
import type { Clock } from "../../ci/core/deploy/report.js";
import { shellCommand } from "../../ci/core/deploy/shell.js";

const tmp = mkdtempSync(join(tmpdir(), "hamalog-lock-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** This machine as the host: argv → shell.ts → `sh -c`, stdin fed as given. */
const local: Remote = {
  label: "root@local",
  hostKeyFingerprint: "SHA256:local",
  async run(argv, opts = {}) {
    const r = spawnSync("sh", ["-c", shellCommand(argv)], { input: opts.stdin ?? "", encoding: "utf8" });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  },
  httpGet: () => Promise.reject(new Error("not used")),
  close: () => undefined,
};
const clock: Clock = { now: () => new Date("2025-01-01T00:00:00Z"), monotonic: () => 0, sleep: async () => undefined };
const holder = (name: string, id: string): LockHolder => ({
  holder: name,
  sha: "a".repeat(40),
  since: "2025-01-01T00:00:00.000Z",
  action: "deploy",
  id,
});

describe("deploy lock ownership", () => {
  it("a broken deploy's release leaves the new holder's lock in place and says so; the holder's own release removes it", async () => {
    const l = layout(join(tmp, "app"));
    const a0 = await acquireLock(local, l, clock, { holder: holder("A (pid 1)", "attempt-a") }); // makes the directory too
    expect(a0).toEqual({ note: undefined, hadCompose: false, history: "" });
    expect(JSON.parse(readFileSync(l.lockHolder, "utf8"))).toMatchObject({ holder: "A (pid 1)", id: "attempt-a" });
    // B decides A is dead, breaks the lock and takes it while A is still running.
    const { note } = await acquireLock(local, l, clock, { holder: holder("B (pid 2)", "attempt-b"), breakLock: true });
    expect(note).toMatch(/^broke the lock held by A \(pid 1\)/);
    // A finishes and releases "its" lock: it is B's now.
    const a = await releaseLock(local, l, "attempt-a");
    expect(a).toMatch(
      /left the lock .*\.deploy\.lock on root@local alone: it was broken with --break-lock while this deploy ran and is now held by B \(pid 2\)/,
    );
    expect(JSON.parse(readFileSync(l.lockHolder, "utf8"))).toMatchObject({ holder: "B (pid 2)", id: "attempt-b" });
    // B's own release works, and a release with nothing left says so.
    expect(await releaseLock(local, l, "attempt-b")).toBeUndefined();
    expect(existsSync(l.lock)).toBe(false);
    expect(await releaseLock(local, l, "attempt-b")).toMatch(/was already gone/);
  });

  it("an id that is a prefix of the holder's does not count as the holder's", async () => {
    const l = layout(join(tmp, "prefix"));
    await acquireLock(local, l, clock, { holder: holder("C", "attempt-c-long") });
    expect(await releaseLock(local, l, "attempt-c")).toMatch(/left the lock/);
    expect(existsSync(l.lock)).toBe(true);
    expect(await releaseLock(local, l, "attempt-c-long")).toBeUndefined();
    expect(existsSync(l.lock)).toBe(false);
  });

  it("reads, under the lock, whether a compose file runs and the history; a held lock fails naming its holder", async () => {
    const l = layout(join(tmp, "state"));
    mkdirSync(l.dir);
    writeFileSync(l.compose, "services: {}\n");
    writeFileSync(l.history, '{"sha":"x"}\n');
    expect(await acquireLock(local, l, clock, { holder: holder("D (pid 4)", "attempt-d") })).toEqual({
      note: undefined,
      hadCompose: true,
      history: '{"sha":"x"}\n',
    });
    await expect(acquireLock(local, l, clock, { holder: holder("E", "attempt-e") })).rejects.toThrow(
      /another deploy holds the lock .*\.deploy\.lock on root@local: D \(pid 4\) \(deploy of aaaaaaaaaaaa since 2025-01-01T00:00:00\.000Z\)/,
    );
    expect(JSON.parse(readFileSync(l.lockHolder, "utf8"))).toMatchObject({ id: "attempt-d" });
    expect(await releaseLock(local, l, "attempt-d")).toBeUndefined();
  });

  it("a directory that cannot be made fails the lock phase naming it", async () => {
    const file = join(tmp, "not-a-dir");
    writeFileSync(file, "");
    await expect(acquireLock(local, layout(join(file, "app")), clock, { holder: holder("F", "f") })).rejects.toThrow(
      /creating .*not-a-dir\/app failed on root@local \(exit 1\): mkdir: .*Not a directory/,
    );
  });

  it("release is one remote step whose paths and id are arguments, never script text", () => {
    const l = layout("/srv/it's; rm -rf /");
    const argv = cmd.lockRelease(l, "id-1");
    expect(argv.slice(3)).toEqual([
      "hamalog-unlock",
      "/srv/it's; rm -rf /.deploy.lock",
      '"id":"id-1"',
      "/srv/it's; rm -rf /.docker",
      "",
    ]);
    expect(argv[2]).not.toContain("it's");
  });
});

describe("stale locks", () => {
  it("a lock whose lease lapsed is taken over without --break-lock, naming whose it was and why", async () => {
    const l = layout(join(tmp, "stale"));
    await acquireLock(local, l, clock, { holder: holder("A (pid 1)", "dead-attempt") });
    const past = Date.now() / 1000 - 120;
    utimesSync(join(l.lock, "lease"), past, past);
    const got = await acquireLock(local, l, clock, { holder: holder("B (pid 2)", "attempt-b") });
    expect(got.note).toMatch(
      /^took over the stale lock of A \(pid 1\) .*: its lease expired \(not renewed for \d+s > 30s\)$/,
    );
    expect(JSON.parse(readFileSync(l.lockHolder, "utf8")).id).toBe("attempt-b");
  });

  it("a lock with a fresh lease is not taken over: the error names the holder and the lease", async () => {
    const l = layout(join(tmp, "fresh"));
    await acquireLock(local, l, clock, { holder: holder("A (pid 1)", "live-attempt") });
    await expect(acquireLock(local, l, clock, { holder: holder("B (pid 2)", "attempt-b") })).rejects.toThrow(
      /holds the lock .*: A \(pid 1\) .*, its lease was renewed \d+s ago.*taken over once its lease lapses \(30s without renewal\)/,
    );
    expect(JSON.parse(readFileSync(l.lockHolder, "utf8")).id).toBe("live-attempt");
  });
});
