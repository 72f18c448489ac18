// The release journal (ci/core/deploy/journal.ts) and the recovery planner (recovery.ts): every field of the
// journal validated with an error naming it, the transitions a deploy writes, and, table-driven, what the host
// runs (recover.sh) for each state an attempt of each strategy can die in; the observe sections parsed.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig, requireDeploy } from "../../ci/core/config.js";
import type { HistoryEntry } from "../../ci/core/deploy/history.js";
import { recoverScript, step } from "../../ci/core/deploy/host/steps.js";
import { isTempName, parseView } from "../../ci/core/deploy/host/view.js";
import {
  atPhase,
  beginAttempt,
  cooled,
  emptyJournal,
  endAttempt,
  journalFromHistory,
  journalText,
  parseJournal,
  promote,
  promoted,
  referencedFiles,
  releaseBase,
  type Journal,
  type JournalAttempt,
  type Slot,
} from "../../ci/core/deploy/journal.js";
import { journalFiles, planRecovery } from "../../ci/core/deploy/recovery.js";
import type { Setting } from "../../ci/core/deploy/strategy.js";
import type { Sha } from "../../ci/core/tags.js";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const slot = (c: string, extra: Partial<Slot> = {}): Slot => ({
  sha: c.repeat(40) as Sha,
  digest: D(c),
  image: `127.0.0.1:5000/app:${c.repeat(40)}@${D(c)}`,
  tags: [c.repeat(40)],
  fallback: false,
  composeFile: `releases/${extra.colour ?? "app"}-${c.repeat(12)}-00000000.yaml`,
  since: "2026-01-01T00:00:00.000Z",
  ...extra,
});
const attempt = (
  c: string,
  phase: string,
  extra: Partial<Slot> = {},
  more: Partial<JournalAttempt> = {},
): JournalAttempt => ({
  id: "attempt-1",
  token: 7,
  holder: "ci pid 1",
  action: "deploy",
  phase,
  startedAt: "2026-01-01T00:01:00.000Z",
  strategy: extra.colour ? "blue-green" : "recreate",
  candidate: slot(c, extra),
  ...more,
});
const journal = (j: Partial<Journal>): Journal => ({ ...emptyJournal("recreate"), ...j });
const setting = (strategy: string): Setting => {
  const cfg = parseConfig(
    `image: {repository: a/b}\ndeploy: {host: h, user: u, directory: /srv/app, composeFile: c.yml, service: app, strategy: ${strategy}, health: {url: "http://127.0.0.1:8080/health"}}\n`,
  );
  return {
    deploy: requireDeploy(cfg),
    compose: { template: "services:\n  app: {image: x, expose: ['8080']}\n  db: {image: postgres}\n" },
    project: "app",
    env: () => undefined,
  };
};
const facts = { time: new Date("2026-01-01T00:02:00.000Z"), holder: "next run", error: "died" };
const ops = (j: Journal, strategy: string) =>
  planRecovery(j, setting(strategy), facts).steps.map((s) =>
    `${s.op} ${s.args.filter((x) => !x.startsWith("releases/") && x !== "" && x !== "180").join(" ")}`.trim(),
  );

describe("journal file", () => {
  it("round-trips through its text, and reads a version 1 journal (the attempt runs the journal's strategy)", () => {
    const j = journal({
      live: slot("a", { envFile: "releases/app-aaaaaaaaaaaa-00000000.env" }),
      attempt: attempt("b", "up"),
    });
    expect(parseJournal(journalText(j), "h")).toEqual(j);
    const v1 = { ...JSON.parse(journalText(j)), version: 1, attempt: { ...attempt("b", "up"), strategy: undefined } };
    expect(parseJournal(JSON.stringify(v1), "h").attempt?.strategy).toBe("recreate");
  });

  it.each([
    ["not JSON", "{", /\(file\): not JSON/],
    ["a future version", JSON.stringify({ version: 9 }), /version: 9 is not 2/],
    [
      "an unknown strategy",
      JSON.stringify({ version: 2, strategy: "canary" }),
      /strategy: expected recreate, blue-green/,
    ],
    [
      "a bad digest",
      JSON.stringify({ ...journal({}), live: { ...slot("a"), digest: "sha256:zz" } }),
      /live\.digest: invalid/,
    ],
    [
      "an env file outside releases/",
      JSON.stringify({ ...journal({}), live: { ...slot("a"), envFile: "../x.env" } }),
      /live\.envFile: invalid/,
    ],
    [
      "a colour that is not one",
      JSON.stringify({ ...journal({}), live: { ...slot("a"), colour: "red" } }),
      /live\.colour: expected blue or green/,
    ],
  ])("refuses %s, naming the field and the fix", (_, text, err) => {
    expect(() => parseJournal(text, "u@h:22 /srv/app/journal.json")).toThrow(err);
    expect(() => parseJournal(text, "u@h:22 /srv/app/journal.json")).toThrow(
      /move it aside and run `hamalog deploy` again/,
    );
  });

  it("names release files by colour, digest and content; another render of the same digest gets another file", () => {
    expect(releaseBase(D("a"), "x")).toMatch(/^releases\/app-aaaaaaaaaaaa-[0-9a-f]{8}$/);
    expect(releaseBase(D("a"), "x", "green")).toMatch(/^releases\/green-aaaaaaaaaaaa-/);
    expect(releaseBase(D("a"), "x")).not.toBe(releaseBase(D("a"), "y"));
  });
});

describe("journal transitions", () => {
  it("a deploy: begin, phases, promote (the attempt stays for after-live steps), end — what was live becomes previous", () => {
    const j0 = journal({ live: slot("a") });
    const j1 = atPhase(beginAttempt(j0, attempt("b", "pull")), "up");
    expect(j1.attempt?.phase).toBe("up");
    expect(promoted(j1)).toBe(false);
    const j2 = promote(j1, "2026-01-01T00:03:00.000Z", "drain");
    expect(promoted(j2)).toBe(true);
    expect(j2.live).toMatchObject({ sha: "b".repeat(40), since: "2026-01-01T00:03:00.000Z" });
    expect(j2.previous).toEqual(slot("a"));
    expect(j2.attempt?.phase).toBe("drain");
    expect(endAttempt(j2).attempt).toBeNull();
  });

  it("redeploying the live release keeps previous; referenced files include env files; the warm window ends", () => {
    const j = promote(
      beginAttempt(journal({ live: slot("a"), previous: slot("c") }), attempt("a", "up")),
      "t",
      "finish",
    );
    expect(j.previous).toEqual(slot("c"));
    expect([...referencedFiles(journal({ live: slot("a", { envFile: "releases/x.env" }) }))]).toEqual([
      slot("a").composeFile,
      "releases/x.env",
    ]);
    const warm = journal({ previous: slot("c", { colour: "green", warmUntil: "t" }) });
    expect(cooled(warm).previous).toEqual(slot("c", { colour: "green" }));
  });

  it("adopts a host deployed before the journal from history's last running release and compose.yaml", () => {
    const e = { running: { sha: "a".repeat(40), digest: D("a"), image: slot("a").image } } as HistoryEntry;
    expect(journalFromHistory([e], true, "t").live).toMatchObject({
      sha: "a".repeat(40),
      composeFile: `releases/app-${"a".repeat(12)}-adopted.yaml`,
    });
    expect(journalFromHistory([e], false, "t").live).toBeNull();
  });
});

describe("the recovery each state needs (what recover.sh runs)", () => {
  const blue = { colour: "blue" as const };
  const green = { colour: "green" as const };
  it.each<[string, string, Journal, string[], Partial<Journal>]>([
    [
      "recreate died before anything changed (pull)",
      "recreate",
      journal({ live: slot("a"), attempt: attempt("b", "pull") }),
      ["up app"],
      { live: slot("a") },
    ],
    [
      "recreate died mid-replacement (up)",
      "recreate",
      journal({ live: slot("a"), attempt: attempt("b", "up") }),
      ["up app"],
      { live: slot("a") },
    ],
    [
      "recreate: a first deploy died",
      "recreate",
      journal({ attempt: attempt("b", "health") }),
      ["remove app"],
      { live: null },
    ],
    [
      "recreate leaving blue/green died: the app goes, the live colour comes back and is routed",
      "recreate",
      { ...emptyJournal("blue-green"), live: slot("a", blue), attempt: attempt("b", "up") },
      ["remove app", "up app-blue", "route .hamalog/recover/Caddyfile"],
      { live: slot("a", blue) },
    ],
    [
      "blue/green died before the switch: the live colour is (re)started and routed, the candidate removed",
      "blue-green",
      {
        ...emptyJournal("blue-green"),
        live: slot("a", blue),
        previous: slot("c", green),
        attempt: attempt("b", "candidate-health", green),
      },
      ["up app-blue", "route .hamalog/recover/Caddyfile", "remove app-green"],
      { live: slot("a", blue), previous: null },
    ],
    [
      "blue/green died before its candidate started (proxy): the kept colour is left as it is",
      "blue-green",
      {
        ...emptyJournal("blue-green"),
        live: slot("a", blue),
        previous: slot("c", green),
        attempt: attempt("b", "proxy", green),
      },
      ["up app-blue", "route .hamalog/recover/Caddyfile"],
      { live: slot("a", blue), previous: slot("c", green) },
    ],
    [
      "blue/green rollback to the kept colour died: it is stopped, not removed, and stays previous",
      "blue-green",
      {
        ...emptyJournal("blue-green"),
        live: slot("a", blue),
        previous: slot("c", green),
        attempt: attempt("c", "switch", green, { action: "rollback" }),
      },
      ["up app-blue", "route .hamalog/recover/Caddyfile", "stop app-green"],
      { previous: slot("c", green) },
    ],
    [
      "blue/green died after promote (drain): finished forward, the old colour stopped",
      "blue-green",
      {
        ...emptyJournal("blue-green"),
        live: slot("b", green),
        previous: slot("a", blue),
        attempt: attempt("b", "drain", green),
      },
      ["stop app-blue"],
      { live: slot("b", green), previous: slot("a", blue) },
    ],
    [
      "a migration from recreate died: the proxy and the candidate go, the recreate app comes back",
      "blue-green",
      journal({ live: slot("a"), attempt: attempt("b", "switch", blue, { migrating: "app" }) }),
      ["remove hamalog-proxy app-blue", "up app"],
      { live: slot("a") },
    ],
    [
      "a first blue/green deploy died: the proxy routes nothing, the candidate goes",
      "blue-green",
      { ...emptyJournal("blue-green"), attempt: attempt("b", "candidate", blue) },
      ["route .hamalog/recover/Caddyfile", "remove app-blue"],
      { live: null },
    ],
  ])("%s", (_, strategy, j, steps, after) => {
    expect(ops(j, strategy)).toEqual(steps);
    const p = planRecovery(j, setting(strategy), facts);
    expect(p.journal.attempt).toBeNull();
    expect(p.journal).toMatchObject(after);
    expect(p.entry).toMatchObject({ recovered: true, failedPhase: j.attempt!.phase, error: "died" });
    const touched = ["up", "health", "switch", "live-health"].includes(j.attempt!.phase);
    expect(p.entry?.result).toBe(promoted(j) ? "success" : j.live && touched ? "rolled-back" : "failed");
  });

  it("a journal without an attempt restores its live release (drift) and writes no history", () => {
    const p = planRecovery(
      { ...emptyJournal("blue-green"), live: slot("a", { colour: "blue" }) },
      setting("blue-green"),
      facts,
    );
    expect(p.steps.map((s) => s.op)).toEqual(["up", "route"]);
    expect(p.files[0]).toMatchObject({ path: "Caddyfile" });
    expect(p.files[0]!.content).toMatch(/^# hamalog live: blue/);
    expect(p.entry).toBeNull();
  });

  it("journalFiles carries the journal with its recover.sh (an empty one without an attempt)", () => {
    const j = journal({ live: slot("a"), attempt: attempt("b", "up") });
    const files = journalFiles(j, setting("recreate"), facts);
    expect(files.map((f) => f.path)).toEqual([
      "files/journal.json",
      "files/.hamalog/recover.sh",
      "files/.hamalog/recover/journal.json",
      "files/.hamalog/recover/history.add",
      "files/.hamalog/recover/history.failed",
    ]);
    expect(JSON.parse(files[2]!.content).attempt).toBeNull();
    expect(JSON.parse(files[3]!.content)).toMatchObject({ result: "rolled-back", recovered: true });
    expect(JSON.parse(files[4]!.content)).toMatchObject({
      result: "failed",
      error: expect.stringMatching(/the recovery failed too/),
    });
    expect(journalFiles(endAttempt(j), setting("recreate"), facts).map((f) => [f.path, f.content === ""])).toEqual([
      ["files/journal.json", false],
      ["files/.hamalog/recover.sh", true],
    ]);
  });

  it("recover.sh is valid sh; every argument is one quoted word whatever it holds", () => {
    const text = recoverScript("p'; rm -rf / #", [step.remove(["a$(x)", "b`y`"]), step.stop(["c\nd"])], "x");
    expect(spawnSync("sh", ["-n", "-c", text]).status).toBe(0);
    // Sourced with stand-ins for the agent's functions, it passes each word through untouched.
    const file = join(mkdtempSync(join(tmpdir(), "hamalog-recover-")), "recover.sh");
    writeFileSync(file, text);
    const r = spawnSync(
      "sh",
      [
        "-c",
        `rstep() { printf '[%s]' "$@"; echo; }; rjournal() { :; }; rhistory() { :; }; f() { . "$1"; }; f "$1"; printf '%s' "$P"`,
        "sh",
        file,
      ],
      { encoding: "utf8" },
    );
    expect(r.stdout).toBe("[remove][a$(x)][b`y`]\n[stop][c\nd]\np'; rm -rf / #");
  });
});

describe("what the host shows (observe's sections)", () => {
  it("reads the journal, lock and lease, containers, the proxy's route and ports, images, releases, logins", () => {
    const j = journal({ live: slot("a") });
    const out = [
      "hamalog-section journal",
      journalText(j).trimEnd(),
      "hamalog-section lock",
      '{"token":3,"holder":"ci"}',
      "hamalog-lease 100 90 alive no its lease was renewed 10 s ago",
      "hamalog-section containers",
      `id1\t/app-app-1\t${slot("a").image}\trunning\tapp\tUp 3 seconds (healthy)\thash1\t`,
      `id2\t0123456789ab_app-app-1\tx\tcreated\tapp\tCreated\thash2\t`,
      "hamalog-section compose-file",
      "hamalog-section caddy",
      "# hamalog live: green",
      "hamalog-section proxy-ports",
      "9900/tcp -> 127.0.0.1:49153",
      "9900/tcp -> [::1]:49153",
      "hamalog-section images",
      `127.0.0.1:5000/app ${D("a")}`,
      "hamalog-section releases",
      "app-aaaaaaaaaaaa-00000000.yaml",
      "hamalog-section logins",
      "/srv/app/.hamalog/docker-AbC123",
      "hamalog-section history",
      "hamalog-section end",
    ].join("\n");
    const v = parseView(out, "h", "t");
    expect(v.journal).toEqual(j);
    expect(v.lock).toMatchObject({
      holderText: '{"token":3,"holder":"ci"}',
      presence: "alive",
      stale: false,
      why: "its lease was renewed 10 s ago",
    });
    expect(v.containers.map((c) => [c.name, c.state, c.configHash])).toEqual([
      ["app-app-1", "running", "hash1"],
      ["0123456789ab_app-app-1", "created", "hash2"],
    ]);
    expect(v.caddyLive).toBe("green");
    expect(v.proxyPorts.get(9900)).toBe("127.0.0.1:49153");
    expect(v.images).toEqual([D("a")]);
    expect(v.releases).toEqual(["app-aaaaaaaaaaaa-00000000.yaml"]);
    expect(v.logins).toHaveLength(1);
  });

  it.each([
    ["0123456789ab_hamalog-app-1", true],
    ["/0123456789ab_hamalog-app-1", true],
    ["hamalog-app-1", false],
    ["0123456789AB_hamalog-app-1", false],
  ])("temp-named %s: %s", (name, temp) => expect(isTempName(name)).toBe(temp));
});
