// The lease and journal scripts (journal-commands.ts) on a real filesystem with a real `sh`, each argv quoted by
// shell.ts as sshd would receive it: the journal is replaced atomically or not at all, a heartbeat that lost its
// client is seen as gone, the blue/green Caddyfile is replaced only whole, an unrenewed lease expires, and only one of two runs takes over a stale lock.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { layout, lockIdField } from "../../ci/core/deploy/commands.js";
import { journalCmd, journalLayout } from "../../ci/core/deploy/journal-commands.js";
import { judgeLock, LEASE_SECONDS } from "../../ci/core/deploy/lock.js";
import { proxyCmd } from "../../ci/core/deploy/proxy.js";
import { shellCommand } from "../../ci/core/deploy/shell.js";

const tmp = mkdtempSync(join(tmpdir(), "hamalog-lease-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const sh = (argv: string[], input = "") => {
  const r = spawnSync("sh", ["-c", shellCommand(argv)], { input, encoding: "utf8" });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};
let n = 0;
/** A deploy directory holding a lock of attempt `id` (as cmd.lockAcquire leaves it). */
function locked(id: string) {
  const l = layout(join(tmp, `d${n++}`));
  mkdirSync(l.lock, { recursive: true });
  writeFileSync(
    l.lockHolder,
    `${JSON.stringify({ holder: "A", sha: "a".repeat(40), since: "t", action: "deploy", id })}\n`,
  );
  writeFileSync(journalLayout(l).lease, "");
  return l;
}
const facts = (l: ReturnType<typeof layout>) => {
  const r = sh(journalCmd.leaseFacts(l));
  const nl = r.stdout.lastIndexOf("hamalog-lease");
  return judgeLock(r.stdout.slice(0, nl), r.stdout.slice(nl));
};

describe("journal write", () => {
  it("replaces journal.json whole, leaves no temp file, and keeps the old journal when the write fails", () => {
    const l = layout(join(tmp, "j"));
    mkdirSync(l.dir, { recursive: true });
    const j = journalLayout(l);
    expect(sh(journalCmd.write(l, 8), '{"v":1}\n').code).toBe(0);
    expect(readFileSync(j.journal, "utf8")).toBe('{"v":1}\n');
    expect(existsSync(j.journalTmp)).toBe(false);
    // A client killed mid-write: the channel closes, `cat` sees a normal end of input. Truncated: not renamed.
    for (const cut of ["", '{"v":']) expect(sh(journalCmd.write(l, 8), cut).code, JSON.stringify(cut)).not.toBe(0);
    expect(readFileSync(j.journal, "utf8")).toBe('{"v":1}\n');
    expect(existsSync(j.journalTmp)).toBe(false);
    // A temp path that cannot be written (a directory in its way) stands for a full disk: the old journal stays.
    mkdirSync(j.journalTmp);
    const r = sh(journalCmd.write(l, 8), '{"v":2}\n');
    expect(r.code).not.toBe(0);
    expect(readFileSync(j.journal, "utf8")).toBe('{"v":1}\n');
  });
});

describe("Caddyfile write (blue/green)", () => {
  it("replaces the Caddyfile only when it arrived whole; a truncated one leaves the routes as they were", () => {
    const l = layout(join(tmp, "caddy"));
    mkdirSync(l.dir, { recursive: true });
    const text = "# hamalog live: blue\n:80 {\n}\n";
    // No proxy id: the file is just written (a proxy starting next reads it), no `docker exec`.
    expect(sh(proxyCmd.caddySwitch(l, "", Buffer.byteLength(text)), text).code).toBe(0);
    expect(readFileSync(l.caddyfile, "utf8")).toBe(text);
    const next = "# hamalog live: green\n:80 {\n}\n";
    expect(sh(proxyCmd.caddySwitch(l, "", Buffer.byteLength(next)), next.slice(0, 20)).code).not.toBe(0);
    expect(readFileSync(l.caddyfile, "utf8")).toBe(text);
  });
});

describe("lease", () => {
  it("a fed heartbeat keeps the lock alive; when its client goes away it is provably gone", async () => {
    const l = locked("att-1");
    const hb = spawn("sh", ["-c", shellCommand(journalCmd.heartbeat(l, lockIdField("att-1")))], { stdio: "pipe" });
    const ended = new Promise((r) => hb.on("exit", r));
    for (let i = 0; i < 50 && !existsSync(journalLayout(l).heartbeatPid); i++)
      await new Promise((r) => setTimeout(r, 20));
    hb.stdin.write("\n");
    const alive = facts(l);
    expect(alive).toMatchObject({ stale: false, holder: { id: "att-1" } });
    expect(alive.why).toMatch(/renewed \d+s ago/);
    hb.stdin.end(); // what a killed client or a dropped connection does to the channel
    await ended;
    expect(facts(l)).toMatchObject({ stale: true, why: expect.stringMatching(/heartbeat on the host is gone/) });
  });

  it("a lease not renewed for longer than LEASE_SECONDS is stale even without a heartbeat pid", () => {
    const l = locked("att-2");
    expect(facts(l).stale).toBe(false);
    const past = Date.now() / 1000 - LEASE_SECONDS - 5;
    utimesSync(journalLayout(l).lease, past, past);
    expect(facts(l)).toMatchObject({
      stale: true,
      why: expect.stringMatching(/lease expired \(not renewed for \d+s > 30s\)/),
    });
  });

  it("a heartbeat refuses to run for a lock that is not its attempt's", () => {
    const l = locked("att-3");
    expect(sh(journalCmd.heartbeat(l, lockIdField("someone-else")), "\n").code).toBe(3);
    expect(existsSync(journalLayout(l).heartbeatPid)).toBe(false);
  });

  it("takeover: the new holder in place, one winner, and a second taker of the same stale lock backs off", () => {
    const l = locked("dead");
    writeFileSync(l.history, '{"h":1}\n');
    const mine = `${JSON.stringify({ holder: "B", sha: "b".repeat(40), since: "t", action: "deploy", id: "new" })}\n`;
    const r = sh(journalCmd.lockTakeover(l, lockIdField("dead")), mine);
    expect(r).toMatchObject({ code: 0, stdout: 'compose-absent\n{"h":1}\n' });
    expect(readFileSync(l.lockHolder, "utf8")).toBe(mine);
    expect(existsSync(join(l.lock, "takeover"))).toBe(false);
    expect(sh(journalCmd.lockTakeover(l, lockIdField("dead")), "{}").code).toBe(3);
    expect(readFileSync(l.lockHolder, "utf8")).toBe(mine);
    // a taker in the middle (its takeover dir present) excludes a second one
    mkdirSync(join(l.lock, "takeover"));
    expect(sh(journalCmd.lockTakeover(l, lockIdField("new")), "{}").code).toBe(3);
  });
});

describe("lock judgement", () => {
  const h = JSON.stringify({ holder: "A", sha: "a".repeat(40), since: "t", action: "deploy", id: "x" });
  it.each([
    ["alive and renewed", "hamalog-lease 1000 995 alive", false, /renewed 5s ago/],
    ["heartbeat gone", "hamalog-lease 1000 999 gone", true, /heartbeat on the host is gone/],
    ["no pid file, lease fresh", "hamalog-lease 1000 990 unknown", false, /renewed 10s ago/],
    ["no pid file, lease old", "hamalog-lease 1000 900 unknown", true, /lease expired \(not renewed for 100s/],
    ["alive but not fed (client hung)", "hamalog-lease 1000 900 alive", true, /lease expired/],
    ["unreadable facts", "garbage", false, /could not be read/],
  ])("%s", (_, f, stale, why) => {
    const j = judgeLock(h, f);
    expect(j.stale).toBe(stale);
    expect(j.why).toMatch(why);
    expect(j.holder?.id).toBe("x");
  });
});
