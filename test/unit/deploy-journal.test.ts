// The release journal (ci/core/deploy/journal.ts) and the recovery planner (reconcile.ts): every field of the
// journal validated with an error naming it, the transitions a deploy writes, and, table-driven, what a run does
// for each state a dead attempt can leave behind.
import { describe, expect, it } from "vitest";
import {
  atPhase,
  beginAttempt,
  emptyJournal,
  endAttempt,
  journalFromHistory,
  journalText,
  parseJournal,
  promote,
  referencedFiles,
  releaseFile,
  type Journal,
  type Slot,
} from "../../ci/core/deploy/journal.js";
import {
  checkLive,
  isTempName,
  parseObservation,
  planRecovery,
  type ContainerSeen,
} from "../../ci/core/deploy/reconcile.js";
import type { HistoryEntry } from "../../ci/core/deploy/history.js";
import type { Sha } from "../../ci/core/tags.js";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const slot = (c: string, extra: Partial<Slot> = {}): Slot => ({
  sha: c.repeat(40) as Sha,
  digest: D(c),
  image: `127.0.0.1:5000/app:${c.repeat(40)}@${D(c)}`,
  tags: [c.repeat(40)],
  composeFile: `releases/app-${c.repeat(12)}-00000000.yaml`,
  since: "2026-01-01T00:00:00.000Z",
  ...extra,
});
const attempt = (c: string, phase = "up", extra: Partial<Slot> = {}) => ({
  id: "attempt-1",
  holder: "ci pid 1",
  action: "deploy" as const,
  phase,
  startedAt: "2026-01-01T00:01:00.000Z",
  candidate: slot(c, extra),
});
const journal = (j: Partial<Journal>): Journal => ({ ...emptyJournal("recreate"), ...j });
const ctr = (name: string, image: string, state = "running", service = "app"): ContainerSeen => ({
  id: `id-${name}`,
  name,
  image,
  state,
  service,
});

describe("journal file", () => {
  it("round-trips through its text", () => {
    const j = journal({ live: slot("a"), previous: slot("b", { fallback: true }), attempt: attempt("c") });
    expect(parseJournal(journalText(j), "J")).toEqual(j);
  });

  it.each([
    ["not JSON", "{", /J: \(file\): not JSON/],
    ["a future version", JSON.stringify({ ...emptyJournal("recreate"), version: 2 }), /J: version: 2 is not 1/],
    ["an unknown strategy", JSON.stringify({ ...emptyJournal("recreate"), strategy: "canary" }), /J: strategy:/],
    ["a short digest", JSON.stringify(journal({ live: { ...slot("a"), digest: "sha256:abc" } })), /J: live\.digest:/],
    [
      "an upper-case sha",
      JSON.stringify(journal({ live: { ...slot("a"), sha: "A".repeat(40) as Sha } })),
      /J: live\.sha:/,
    ],
    [
      "a compose file outside releases/",
      JSON.stringify(journal({ live: { ...slot("a"), composeFile: "../../etc/x.yaml" } })),
      /J: live\.composeFile:/,
    ],
    [
      "a colour that is not blue or green",
      JSON.stringify(journal({ previous: { ...slot("a"), colour: "red" as never } })),
      /J: previous\.colour: expected blue or green/,
    ],
    [
      "an attempt with an unknown action",
      JSON.stringify(journal({ attempt: { ...attempt("a"), action: "nuke" as never } })),
      /J: attempt\.action:/,
    ],
    [
      "an attempt without a candidate",
      JSON.stringify(journal({ attempt: { ...attempt("a"), candidate: undefined as never } })),
      /J: attempt\.candidate: expected an object/,
    ],
  ])("refuses %s, naming the field and what to do", (_, text, re) => {
    expect(() => parseJournal(text, "J")).toThrow(re);
    expect(() => parseJournal(text, "J")).toThrow(/move it aside and run `hamalog deploy` again/);
  });

  it("names release files by colour, digest and content; another render of the same digest gets another file", () => {
    expect(releaseFile(D("a"), "x")).toMatch(/^releases\/app-aaaaaaaaaaaa-[0-9a-f]{8}\.yaml$/);
    expect(releaseFile(D("a"), "x", "blue")).toMatch(/^releases\/blue-aaaaaaaaaaaa-/);
    expect(releaseFile(D("a"), "x")).toBe(releaseFile(D("a"), "x"));
    expect(releaseFile(D("a"), "x")).not.toBe(releaseFile(D("a"), "y"));
  });
});

describe("journal transitions", () => {
  it("a deploy: begin, phases, promote — what was live becomes previous", () => {
    let j = journal({ live: slot("a") });
    j = beginAttempt(j, attempt("b", "render"));
    j = atPhase(j, "health");
    expect(j.attempt?.phase).toBe("health");
    const p = promote(j, "2026-01-01T00:02:00.000Z");
    expect(p).toEqual(
      journal({ live: { ...slot("b"), since: "2026-01-01T00:02:00.000Z" }, previous: slot("a"), attempt: null }),
    );
    expect(referencedFiles(j)).toEqual(new Set([slot("a").composeFile, slot("b").composeFile]));
  });

  it("redeploying the live release keeps previous; a failed attempt leaves live and previous alone", () => {
    const j = journal({ live: slot("a"), previous: slot("b"), attempt: attempt("a") });
    expect(promote(j, "t").previous).toEqual(slot("b"));
    expect(endAttempt(j)).toEqual(journal({ live: slot("a"), previous: slot("b") }));
  });

  it("adopts a host deployed before the journal from history's last running release and compose.yaml", () => {
    const e = {
      running: { sha: "a".repeat(40), digest: D("a"), image: `r/app:latest@${D("a")}`, fallback: true },
    } as unknown as HistoryEntry;
    expect(journalFromHistory([e], true, "T").live).toEqual({
      sha: "a".repeat(40),
      digest: D("a"),
      image: `r/app:latest@${D("a")}`,
      tags: ["latest"],
      fallback: true,
      composeFile: "releases/app-aaaaaaaaaaaa-adopted.yaml",
      since: "T",
    });
    expect(journalFromHistory([e], false, "T").live).toBeNull();
    expect(journalFromHistory([], true, "T").live).toBeNull();
  });
});

describe("recovery plan", () => {
  const tmp = ctr("0123456789ab_hamalog-app-1", slot("b").image, "created");
  it.each<[string, Journal, ContainerSeen[], boolean, string[]]>([
    ["a clean host: nothing", journal({ live: slot("a") }), [ctr("hamalog-app-1", slot("a").image)], false, []],
    ["a login left by a killed deploy: log out", journal({ live: slot("a") }), [], true, ["logout"]],
    [
      "killed mid-replacement (temp-named container): remove it, restore live, clear",
      journal({ live: slot("a"), attempt: attempt("b", "up") }),
      [ctr("hamalog-app-1", slot("a").image, "exited"), tmp],
      true,
      ["remove-containers", "logout", "restore-live", "clear-attempt"],
    ],
    [
      "died in health with the candidate running: restore live",
      journal({ live: slot("a"), attempt: attempt("b", "health") }),
      [ctr("hamalog-app-1", slot("b").image)],
      false,
      ["restore-live", "clear-attempt"],
    ],
    [
      "died before the switch (pull): restoring live is a health-gated no-op",
      journal({ live: slot("a"), attempt: attempt("b", "pull") }),
      [ctr("hamalog-app-1", slot("a").image)],
      false,
      ["restore-live", "clear-attempt"],
    ],
    [
      "a first deploy died: nothing live, stop the candidate",
      journal({ attempt: attempt("b", "health") }),
      [ctr("hamalog-app-1", slot("b").image)],
      false,
      ["stop-candidate", "clear-attempt"],
    ],
    [
      "blue/green died in the idle colour: route to live, restore it, remove the candidate",
      {
        ...emptyJournal("blue-green"),
        live: slot("a", { colour: "blue" }),
        previous: slot("c", { colour: "green" }),
        attempt: attempt("b", "switch", { colour: "green" }),
      },
      [],
      false,
      ["route-proxy", "restore-live", "remove-colour", "clear-attempt"],
    ],
  ])("%s", (_, j, containers, loginLeft, kinds) => {
    const plan = planRecovery({ journal: j, containers, loginLeft });
    expect(plan.actions.map((a) => a.kind)).toEqual(kinds);
    expect(plan.dead).toEqual(j.attempt);
    const restore = plan.actions.find((a) => a.kind === "restore-live");
    if (restore) expect(restore).toMatchObject({ slot: j.live });
    const clear = plan.actions.find((a) => a.kind === "clear-attempt");
    if (clear?.kind === "clear-attempt") expect(clear.journal.attempt).toBeNull();
  });

  it("blue/green: the candidate replaced the kept colour, so the cleared journal has no previous", () => {
    const j: Journal = {
      ...emptyJournal("blue-green"),
      live: slot("a", { colour: "blue" }),
      previous: slot("c", { colour: "green" }),
      attempt: attempt("b", "health", { colour: "green" }),
    };
    const clear = planRecovery({ journal: j, containers: [], loginLeft: false }).actions.at(-1);
    expect(clear).toEqual({ kind: "clear-attempt", journal: { ...j, previous: null, attempt: null } });
    expect(planRecovery({ journal: j, containers: [], loginLeft: false }).actions[2]).toEqual({
      kind: "remove-colour",
      colour: "green",
    });
  });

  it.each([
    ["0123456789ab_hamalog-app-1", true],
    ["/0123456789ab_hamalog-app-1", true],
    ["hamalog-app-1", false],
    ["0123456789AB_hamalog-app-1", false],
  ])("temp-named %s: %s", (name, temp) => expect(isTempName(name)).toBe(temp));
});

describe("status's comparison of the journal with the host", () => {
  it.each<[string, Journal, ContainerSeen[], RegExp[]]>([
    ["agreement", journal({ live: slot("a") }), [ctr("hamalog-app-1", slot("a").image)], []],
    [
      "another image runs than the journal's live release",
      journal({ live: slot("a") }),
      [ctr("hamalog-app-1", slot("b").image)],
      [/live release is sha aaaaaaaaaaaa .* but hamalog-app-1 runs .*bbbbbbbb/],
    ],
    [
      "the live release is not running",
      journal({ live: slot("a") }),
      [ctr("hamalog-app-1", slot("a").image, "exited")],
      [/is not running/],
    ],
    ["a container but no live release", journal({}), [ctr("hamalog-app-1", slot("a").image)], [/no live release, but/]],
    [
      "a leftover temp-named container",
      journal({ live: slot("a") }),
      [ctr("hamalog-app-1", slot("a").image), ctr("0123456789ab_hamalog-app-1", slot("b").image, "created")],
      [/mid-replacement/],
    ],
    [
      "another service's container is not ours",
      journal({ live: slot("a") }),
      [ctr("hamalog-app-1", slot("a").image), ctr("db", "postgres", "running", "db")],
      [],
    ],
  ])("%s", (_, j, containers, res) => {
    const got = checkLive(j, containers, ["app"]);
    expect(got.mismatches).toHaveLength(res.length);
    res.forEach((re, i) => expect(got.mismatches[i]).toMatch(re));
  });
});

describe("observation", () => {
  const ps = `c1\t/hamalog-app-1\t${slot("a").image}\trunning\tapp\nc2\t0123456789ab_hamalog-app-1\t${slot("b").image}\tcreated\tapp\n`;
  it("reads the journal, the containers and a leftover login from cmd.observe's sections", () => {
    const j = journal({ live: slot("a"), attempt: attempt("b") });
    const out = `hamalog-journal\n${journalText(j)}\nhamalog-containers\n${ps}hamalog-login\nyes\n`;
    const o = parseObservation(out, "J", "T");
    expect(o.journal).toEqual(j);
    expect(o.adopted).toBe(false);
    expect(o.loginLeft).toBe(true);
    expect(o.containers.map((c) => [c.id, c.name, c.state, c.service])).toEqual([
      ["c1", "hamalog-app-1", "running", "app"],
      ["c2", "0123456789ab_hamalog-app-1", "created", "app"],
    ]);
  });

  it("adopts a host from before the journal: history's running release, from compose.yaml", () => {
    const h = JSON.stringify({
      sha: "a".repeat(40),
      running: { sha: "a".repeat(40), digest: D("a"), image: slot("a").image },
    });
    const out = `hamalog-journal-absent\ncompose-present\nhamalog-history\n${h}\n\nhamalog-containers\nhamalog-login\nno\n`;
    const o = parseObservation(out, "J", "T");
    expect(o.adopted).toBe(true);
    expect(o.loginLeft).toBe(false);
    expect(o.journal.live).toMatchObject({ digest: D("a"), composeFile: "releases/app-aaaaaaaaaaaa-adopted.yaml" });
    const fresh = parseObservation(
      "hamalog-journal-absent\nhamalog-history\n\nhamalog-containers\nhamalog-login\nno\n",
      "J",
      "T",
    );
    expect(fresh).toMatchObject({ adopted: false, journal: emptyJournal("recreate"), containers: [] });
  });
});
