// The attempt frame: ONE procedure for every strategy and both actions (deploy, rollback).
//   lock → reconcile → prepare → pull → accessories → the strategy's steps → promote → its after-live steps
//   → dependents → finish (history, prune, unlock)
// The journal (with the recovery for it, recovery.ts) is written to the host before every step that changes what
// serves, in the same remote command as the step. Any failure takes the one failure path (fail.ts): diagnostics,
// then the recovery the journal names, run by the host to its end. The strategies (strategy.ts) supply the steps.
import { createHash } from "node:crypto";
import { parse, stringify } from "yaml";
import { accessoriesOf, dependentsOf, type ComposeSource } from "../compose.js";
import type { DeployConfig } from "../config.js";
import { PipelineError } from "../errors.js";
import { waitHealthy } from "./health.js";
import { historyEntry, historyLine, runningOf, digestsToKeep, type HistoryEntry } from "./history.js";
import type { BundleEntry } from "./host/bundle.js";
import { Fenced } from "./host/host.js";
import type { HostStep } from "./host/steps.js";
import { containersOf, isTempName, type HostView } from "./host/view.js";
import {
  atPhase,
  beginAttempt,
  endAttempt,
  promote,
  promoted,
  referencedFiles,
  cooled,
  journalText,
  type AttemptAction,
  type Journal,
  type JournalAttempt,
  type Slot,
} from "./journal.js";
import { startHeartbeat, takeLock, type Heartbeat } from "./lock.js";
import { journalFiles, type RecoveryFacts } from "./recovery.js";
import { nameOf, shortRelease, type Release } from "./release.js";
import { seconds } from "./report.js";
import type { Outcome, Session } from "./session.js";
import type { Placement, Step, Strategy } from "./strategy.js";
import { diffServices } from "./accessory-diff.js";
import { fail, reconcile } from "./fail.js";
import { STRATEGY } from "./strategies.js";

export class Attempt {
  /** The journal to write with the next host step (and its recovery). */
  private pending: Journal | undefined;
  heartbeat: Heartbeat = { stop: () => undefined };
  /** What this attempt changed that users may have noticed (an outage, a re-created proxy): the last line says it. */
  readonly outages: string[] = [];
  /** What else changed (accessories started or recreated, …), for the summary. */
  readonly changes: string[] = [];
  /** Strategy-private facts (the placement's, and what steps learn, e.g. the proxy's check ports). */
  readonly facts: Record<string, string>;
  /** Set once the switch moved live traffic (blue/green) or the app was replaced (recreate). */
  switchedAt: string | undefined;
  /** Set just before a step that touches what serves (the live route, the app's container). */
  touched = false;
  /** What the host showed after a dropped connection, read again over a new one (fail.ts, afterConnectionLost). */
  seenAfterLoss: HostView | undefined;

  constructor(
    readonly s: Session,
    readonly strategy: Strategy,
    readonly action: AttemptAction,
    readonly placement: Placement,
    readonly token: number,
    readonly lockId: string,
    public journal: Journal,
    public view: HostView,
  ) {
    this.facts = { ...placement.facts };
  }

  get d(): DeployConfig {
    return this.s.input.deploy;
  }
  get compose(): ComposeSource {
    return this.s.input.compose;
  }
  get candidate(): Slot {
    return this.placement.slot;
  }
  get now(): string {
    return this.s.env.clock.now().toISOString();
  }

  /** The journal as it will be on the host after the next host step. */
  get current(): Journal {
    return this.pending ?? this.journal;
  }

  /** The journal's phase becomes `phase` with the next host step. */
  at(phase: string): void {
    const j = this.pending ?? this.journal;
    if (j.attempt) this.pending = atPhase(j, phase);
  }

  /** Write `j` (and its recovery) with the next host step. */
  write(j: Journal): void {
    this.pending = j;
  }

  /** Facts for a recovery plan; `byRun`: this run puts things right itself (its failure path). */
  recoveryFacts(error: string, interrupted = false, phase?: string, byRun = false): RecoveryFacts {
    return {
      time: this.s.env.clock.now(),
      holder: this.s.input.holder,
      error,
      ...(interrupted ? { interrupted } : {}),
      ...(phase ? { phase } : {}),
      ...(byRun ? { byRun: { durationMs: Math.round(this.s.rep.clock.monotonic() - this.s.started) } } : {}),
    };
  }

  /** The files that write `j` with its recovery. */
  journalBundle(
    j: Journal,
    facts = this.recoveryFacts(
      `the run died during or after phase ${j.attempt?.phase ?? "?"} (the last one that wrote to the host); the host recovered by itself`,
    ),
  ): BundleEntry[] {
    return journalFiles(j, this.s.setting, facts);
  }

  /**
   * One host step under the lock, after the pending journal: `detach` for a step that changes what serves (it runs
   * to its end on the host whatever happens to this client; Ctrl-C stops only the waiting).
   */
  async exec(
    step: HostStep | { op: string; args: string[] },
    phase: string,
    o: { detach?: boolean; files?: BundleEntry[]; timeoutMs?: number } = {},
  ): Promise<string> {
    const j = this.pending;
    const files = [...(j ? this.journalBundle(j) : []), ...(o.files ?? [])];
    try {
      const out = await this.s.host.run(this.token, step, {
        phase,
        files,
        ...(o.detach ? { detach: true } : {}),
        timeoutMs: o.timeoutMs ?? (this.d.waitTimeout + 120) * 1000,
        ...(o.detach && this.s.input.signal ? { signal: this.s.input.signal } : {}),
      });
      if (j) this.settle(j);
      return out;
    } catch (e) {
      // The bundle is installed before the step: a step that failed on its own left the journal written.
      if (j && e instanceof PipelineError && !(e instanceof Fenced) && !/did not reach|interrupted/.test(e.message))
        this.settle(j);
      throw e;
    }
  }

  private settle(j: Journal): void {
    this.journal = j;
    if (this.pending === j) this.pending = undefined;
  }

  /** GET `url` from the host until it answers deploy/health/expectStatus; the summary, or a PipelineError. */
  async gate(url: string, phase: string): Promise<string> {
    const h = this.d.health;
    const r = await waitHealthy(
      this.s.host.remote,
      { url, timeout: h.timeout, interval: h.interval, expectStatus: h.expectStatus },
      this.s.env.clock,
      this.s.input.signal,
    );
    if (r.ok) return `${url} → ${r.last.slice(0, 80)} after ${r.attempts} probe(s)`;
    if (this.s.input.signal?.aborted) throw new PipelineError(`interrupted while waiting for ${url}`, phase);
    throw new PipelineError(
      `${url} did not answer ${h.expectStatus} within ${h.timeout}s (${r.attempts} probes; last: ${r.last}) — raise deploy/health/timeout if the app just starts slowly`,
      phase,
    );
  }
}

/** The frame's own phases around the strategy's (dry run, --help, docs). */
export const FRAME = {
  before: [
    { phase: "lock", does: "take the deploy lock (a fencing token; a dead holder's lock is taken over)" },
    { phase: "reconcile", does: "recover a dead attempt from the journal; restore the live release if it drifted" },
    { phase: "prepare", does: "write the release's compose and env files and the journal's attempt" },
    { phase: "pull", does: "log in (token on stdin), pull the digest unless present, log out — one command" },
    { phase: "accessories", does: "start the stack's other services that are missing; report changed ones" },
  ],
  promote: { phase: "promote", does: "the journal names the candidate live (written with the next host step)" },
  after: [
    { phase: "dependents", does: "start the services that reach the app (e.g. nginx) if missing" },
    { phase: "finish", does: "history line, prune old images and release files, unlock — one command" },
  ],
} as const;

/** Every phase of `st`'s attempt, in order (what the dry run prints and the docs tabulate). */
export function phasesOf(st: Strategy): { phase: string; does: string }[] {
  const composeOnly = new Set(["pull", "accessories", "dependents"]);
  const frame = (xs: readonly { phase: string; does: string }[]) =>
    st.composeHost ? xs : xs.filter((x) => !composeOnly.has(x.phase));
  return [
    ...frame(FRAME.before),
    ...st.steps,
    ...(st.afterLive.length ? [FRAME.promote, ...st.afterLive] : []),
    ...frame(FRAME.after),
  ].map((x) => ({ phase: x.phase, does: x.does }));
}

/** Run one attempt of `st` for `release`; the lock is released in every outcome (by finish, or by the recovery). */
export async function runAttempt(
  s: Session,
  st: Strategy,
  action: AttemptAction,
  release: Release,
  placement: Placement,
): Promise<Outcome> {
  const { input, rep } = s;
  const lockId = s.env.attemptId();
  const now = rep.clock.now().toISOString();
  const record: JournalAttempt = {
    id: lockId,
    holder: input.holder,
    action,
    phase: "pull",
    startedAt: now,
    strategy: st.name,
    candidate: placement.slot,
    ...(placement.migrating ? { migrating: placement.migrating } : {}),
  };
  // A calm host (as probed: no lock, no dead attempt, nothing drifted or left behind) gets the attempt's files and
  // journal with the lock, in one command — if the journal is still the one probed (the agent compares hashes).
  const v0 = s.probe.view;
  const calm =
    !v0.lock &&
    !v0.journal.attempt &&
    !v0.adopted &&
    v0.logins.length === 0 &&
    !v0.containers.some((c) => isTempName(c.name)) &&
    (!v0.journal.live || STRATEGY[v0.journal.strategy].check(v0.journal.live, v0, s.setting).length === 0);
  const facts = {
    time: s.env.clock.now(),
    holder: input.holder,
    error: "the run died in phase pull; the host recovered by itself",
  };
  const prepare = calm
    ? {
        files: [...placement.files, ...journalFiles(beginAttempt(v0.journal, record), s.setting, facts)],
        expect: v0.journalHash,
      }
    : undefined;
  const taken = await rep.phase("lock", async () => {
    const t = await takeLock(s.host, {
      ...(prepare ? { prepare } : {}),
      holder: { holder: input.holder, sha: release.sha, since: now, action, id: lockId },
      waitSeconds: input.lockWaitSeconds ?? 0,
      force: input.breakLock === true,
      ...(input.signal ? { signal: input.signal } : {}),
      clock: rep.clock,
      onWait: (who) => rep.out(`[lock] waiting up to ${input.lockWaitSeconds ?? 0}s for the lock, held by ${who}`),
    });
    if (t.note) rep.warn(`WARNING: ${t.note}`);
    return {
      value: t,
      summary: `token ${t.token} for ${input.holder} (heartbeat on the host; lease ${input.deploy.leaseSeconds}s)`,
    };
  });
  // Prepared with the lock: the agent sent the journal and the lease again; the rest is the probe's view (the journal
  // it was taken with is the one the agent found under the lock).
  const view = taken.prepared
    ? { ...v0, journal: taken.view.journal, journalHash: taken.view.journalHash, lock: taken.view.lock }
    : taken.view;
  const a = new Attempt(s, st, action, placement, taken.token, lockId, view.journal, view);
  a.heartbeat = startHeartbeat(s.host, taken.token);
  try {
    try {
      if (taken.prepared) {
        rep.out(`[reconcile] the host matches the journal (as probed; unchanged under the lock) 0.0s`);
        rep.out(`[prepare] ${prepared(a)} (with the lock) 0.0s`);
      } else {
        await reconcile(a);
        await prepareStep(a, record);
      }
      await pull(a, release);
      await accessories(a, "accessories");
      for (const step of st.steps) await run(a, step);
      if (st.afterLive.length) await promoteStep(a);
    } catch (e) {
      throw await fail(a, e);
    }
    try {
      for (const step of st.afterLive) await run(a, step);
      await accessories(a, "dependents");
      await finish(a);
    } catch (e) {
      // Past the gates the recovery finishes the attempt forward: a warning — if the release is in fact live (a run
      // fenced past its lease may have been undone by the host meanwhile: then it failed).
      const err = await fail(a, e);
      if (!(await stillLive(a))) throw err;
      rep.warn(`WARNING: ${err.message}`);
    }
    return outcome(a, release);
  } finally {
    a.heartbeat.stop();
  }
}

/**
 * Whether the host's journal names this attempt's candidate live (read again: the host may have moved on). After a
 * dropped connection the old one cannot answer: what the failure path saw over a new connection is the answer.
 */
async function stillLive(a: Attempt): Promise<boolean> {
  const v = a.seenAfterLoss ?? (await a.s.host.observe().catch(() => undefined));
  const live = v?.journal.live;
  return !!live && live.composeFile === a.candidate.composeFile && live.colour === a.candidate.colour;
}

function outcome(a: Attempt, release: Release): Outcome {
  const durationMs = a.s.rep.clock.monotonic() - a.s.started;
  const what = `${a.action === "deploy" ? "deployed" : "rolled back to"} ${release.image} (sha ${release.sha})${a.candidate.colour ? ` as ${a.candidate.colour}` : ""} in ${seconds(durationMs)}`;
  const how = a.outages.length
    ? `; users saw: ${a.outages.join("; ")}`
    : a.strategy.name === "blue-green"
      ? ", no request dropped: a route stayed open throughout"
      : "";
  a.s.rep.out(`${what}${how}${release.fallback ? " — FALLBACK: this is `latest`, not the requested sha" : ""}`);
  return {
    result: "success",
    running: { ...release, ...(a.candidate.colour ? { colour: a.candidate.colour } : {}) },
    durationMs,
    compose: a.s.rep.clean(a.placement.compose),
    changes: [...a.changes, ...a.outages],
  };
}

async function run(a: Attempt, step: Step): Promise<void> {
  a.at(step.phase);
  await a.s.rep.phase(step.phase, async () => ({ value: undefined, summary: await step.run(a) }));
}

/** The release's files and the journal's attempt, one command; nothing that serves changes. */
async function prepareStep(a: Attempt, record: JournalAttempt): Promise<void> {
  await a.s.rep.phase("prepare", async () => {
    a.write(beginAttempt(a.journal, record));
    await a.exec({ op: "noop", args: [] }, "prepare", { files: a.placement.files });
    return { value: undefined, summary: prepared(a) };
  });
}

function prepared(a: Attempt): string {
  const env = a.candidate.envFile ? ` and ${a.candidate.envFile} (mode 0600)` : "";
  return `${a.candidate.composeFile}${env} pin ${a.candidate.image}`;
}

async function pull(a: Attempt, release: Release): Promise<void> {
  // An orchestrator's nodes pull for themselves (the strategy passes the login on, e.g. swarm's --with-registry-auth).
  if (!a.strategy.composeHost) return;
  const { input, rep, host } = a.s;
  await rep.phase("pull", async () => {
    const ref = `${nameOf(release)}@${release.digest}`;
    // The host listed this repository's digests: one already there needs no command at all (and no login).
    if (a.view.images.includes(release.digest))
      return { value: undefined, summary: `skipped: ${release.digest.slice(0, 19)}… already on the host` };
    const creds = input.credentials;
    const got = await host.pull(ref, input.deploy.pullStallTimeout, input.image.registry, creds, input.signal);
    return {
      value: undefined,
      summary:
        got === "present"
          ? `skipped: ${release.digest.slice(0, 19)}… already on the host`
          : `pulled ${ref}${creds ? ` (logged in as ${creds.username} for this command only)` : ""}`,
    };
  });
}

/**
 * The stack's other services. Before the app (`accessories`): those it does not reach through are started when
 * missing; a changed definition is reported with a diff and applied only when asked. After it is live
 * (`dependents`): the ones that reach the app by name (nginx, a tunnel) are started when missing.
 */
async function accessories(a: Attempt, phase: "accessories" | "dependents"): Promise<void> {
  // An orchestrator runs the whole stack from one spec (swarm): there is nothing for compose to start.
  if (!a.strategy.composeHost) return;
  const all = accessoriesOf(a.compose, a.d.service);
  const dependents = dependentsOf(a.compose, a.d.service);
  const mine = phase === "accessories" ? all : dependents;
  if (mine.length === 0) return;
  const running = (svc: string) => containersOf(a.view, svc).some((c) => c.state === "running");
  // The dependents are checked for changes before the app too, but started only once it is live.
  const startable = phase === "accessories" ? all.filter((x) => !dependents.includes(x)) : dependents;
  const asked = (a.s.input.recreateAccessories ?? []).filter((x) => startable.includes(x));
  if (phase === "dependents" && startable.every(running) && asked.length === 0) return;
  const key = accessoriesKey(a, all);
  if (phase === "accessories" && asked.length === 0 && unchanged(a, all, key)) {
    a.s.rep.out(`[accessories] ${all.join(", ")} running, unchanged (as compose hashed them last time) 0.0s`);
    return;
  }
  a.at(phase);
  await a.s.rep.phase(phase, async () => {
    const live = a.journal.live;
    const out = await a.exec(
      {
        op: "accessories",
        args: [
          a.candidate.composeFile,
          a.candidate.envFile ?? "",
          String(a.d.waitTimeout),
          asked.join(","),
          "1",
          live?.composeFile ?? "",
          key,
          NODEPS,
          ...startable,
          // The dependents: checked for changes in the same command, started only once the app is live.
          ...(phase === "accessories" && dependents.length ? ["--", ...dependents] : []),
        ],
      },
      phase,
      { detach: true, files: [{ path: NODEPS, content: withoutDependsOn(a.placement.compose) }] },
    );
    return { value: undefined, summary: reportAccessories(a, out, mine) };
  });
}

/** The release file without any depends_on: what compose hashes for a service it starts with --no-deps. */
const NODEPS = "stage/accessories-nodeps.yaml";
function withoutDependsOn(compose: string): string {
  const doc = (parse(compose) ?? {}) as { services?: Record<string, Record<string, unknown>> };
  for (const svc of Object.values(doc.services ?? {})) if (svc && typeof svc === "object") delete svc.depends_on;
  return stringify(doc);
}

/**
 * A hash of what compose's config hash of the accessories depends on: their definitions as rendered, the release's
 * environment they interpolate, the project and its directory. Equal keys mean equal definitions.
 */
function accessoriesKey(a: Attempt, services: string[]): string {
  const rendered = (parse(a.placement.compose) as { services?: Record<string, unknown> } | null)?.services ?? {};
  const env = a.placement.files.find((f) => f.path === `files/${a.candidate.envFile}`)?.content ?? "";
  return createHash("sha256")
    .update(JSON.stringify([a.s.host.project, a.d.directory, services.map((x) => [x, rendered[x] ?? null]), env]))
    .digest("hex");
}

/** Every accessory runs with the config hash compose gave its definition last time, under the same key. */
function unchanged(a: Attempt, services: string[], key: string): boolean {
  const seen = a.view.accessories;
  if (seen.key !== key) return false;
  return services.every((svc) => {
    const want = seen.hashes.get(svc) ?? [];
    const c = containersOf(a.view, svc).filter((x) => x.state === "running");
    return c.length > 0 && c.every((x) => want.includes(x.configHash));
  });
}

function reportAccessories(a: Attempt, out: string, mine: string[]): string {
  const said = (verb: string) =>
    out
      .split("\n")
      .filter((l) => l.startsWith(`${verb} `))
      .map((l) => l.slice(verb.length + 1).trim());
  const started = said("started");
  const recreated = said("recreated");
  const changed = [...new Set(said("changed"))];
  const missing = said("missing");
  if (started.length) a.changes.push(`started ${started.join(", ")}`);
  if (recreated.length) a.outages.push(`${recreated.join(", ")} recreated (asked with --recreate-accessory)`);
  const oldFile = out.includes("hamalog-section old-file")
    ? out.slice(out.indexOf("hamalog-section old-file") + 25)
    : "";
  for (const svc of changed) {
    a.s.rep.warn(
      `NOTE: accessory ${svc}'s definition changed; it keeps running as it is (apply it with --recreate-accessory ${svc}, which restarts it):`,
    );
    for (const l of diffServices(oldFile, a.placement.compose, svc)) a.s.rep.warn(`  ${l}`);
  }
  const parts = [
    started.length ? `started ${started.join(", ")}` : "",
    recreated.length ? `recreated ${recreated.join(", ")}` : "",
    changed.length ? `changed (left running): ${changed.join(", ")}` : "",
    missing.length ? `${missing.join(", ")} start once the app is live` : "",
  ].filter(Boolean);
  return parts.length ? parts.join("; ") : `${mine.join(", ")} running, unchanged`;
}

/**
 * The candidate passed its gates: the journal names it live, written with the next host step (the old colour's
 * stop, or the finish) — a crash before that undoes the switch to what still runs, without a failed request.
 */
async function promoteStep(a: Attempt): Promise<void> {
  await a.s.rep.phase("promote", async () => {
    a.write(promote(a.current, a.now, a.strategy.afterLive[0]!.phase));
    return { value: undefined, summary: `live: ${shortRelease(a.candidate)} (the journal says so with the next step)` };
  });
}

/** History, prune and unlock in one command; the journal ends the attempt (promoting it first when not yet). */
async function finish(a: Attempt): Promise<void> {
  const { rep } = a.s;
  const j = promoted(a.current) ? a.current : promote(a.current, a.now, "finish");
  const ended = endAttempt(j);
  const entry = successEntry(a, ended);
  const keep = digestsToKeep([...a.view.history, entry], a.d.keepImages);
  for (const s of [ended.live, ended.previous]) if (s) keep.add(s.digest);
  const name = nameOf(a.candidate);
  const refs = a.view.images.filter((d) => !keep.has(d)).map((d) => `${name}@${d}`);
  const referenced = referencedFiles(ended);
  const keptHex = new Set([...keep].map((d) => d.replace(/^[a-z0-9]+:/, "").slice(0, 12)));
  const files = a.view.releases.filter((f) => {
    if (referenced.has(`releases/${f}`)) return false;
    const hex = /^[a-z]+-([0-9a-f]{12})-/.exec(f)?.[1];
    return hex !== undefined && !keptHex.has(hex);
  });
  a.write(ended);
  const warm = a.facts.warmUntil ? [a.facts.warmUntil, a.facts.warmService ?? ""] : ["", ""];
  const out = await rep.phase("finish", async () => {
    const o = await a.exec(
      { op: "finish", args: [ended.live?.composeFile ?? "", ...warm, ...refs, "--", ...files] },
      "finish",
      {
        files: [
          { path: "history.add", content: rep.clean(historyLine(entry)) },
          ...(a.facts.warmUntil ? [{ path: "files/.hamalog/warm.journal", content: journalText(cooled(ended)) }] : []),
        ],
      },
    );
    const removed = o.split("\n").filter((l) => l.startsWith("removed "));
    return {
      value: o,
      summary: `history appended; ${removed.length ? `pruned ${removed.length} image(s)/file(s) beyond the last ${a.d.keepImages} deployed` : `nothing to prune beyond the last ${a.d.keepImages} deployed`}; unlocked`,
    };
  });
  void out;
}

function successEntry(a: Attempt, ended: Journal): HistoryEntry {
  const prev = a.view.journal.live;
  return historyEntry(
    { action: a.action, release: a.candidate, previous: prev ? runningOf(prev) : null, holder: a.s.input.holder },
    {
      result: "success",
      running: runningOf(ended.live ?? a.candidate),
      ...(a.candidate.colour ? { colour: a.candidate.colour } : {}),
      ...(a.switchedAt ? { switchedAt: a.switchedAt } : {}),
      ...(ended.previous?.colour ? { kept: runningOf(ended.previous) } : {}),
      ...(a.s.input.signal?.aborted ? { interrupted: true } : {}),
    },
    a.s.env.clock.now(),
    a.s.rep.clock.monotonic() - a.s.started,
  );
}
