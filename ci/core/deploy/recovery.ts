// The recovery planner, pure: for a journal, the host steps that put the host right if the run that wrote it dies
// now, the journal after them and the history line that says what happened. The client writes the plan as
// recover.sh with every journal (so the host can run it alone: a killed client, a dropped connection, a frozen
// one), and runs the same plan itself on its one failure path, and the next run's reconcile runs it for a dead
// attempt the host could not recover. Before promote, the attempt's strategy undoes it and the live release comes
// back (restored by the strategy that placed it); after promote, the attempt is finished forward.
import type { BundleEntry } from "./host/bundle.js";
import { recoverScript, type HostStep } from "./host/steps.js";
import { historyEntry, historyLine, runningOf, type HistoryEntry } from "./history.js";
import { endAttempt, journalText, promoted, type Journal } from "./journal.js";
import { shortRelease } from "./release.js";
import { STRATEGY } from "./strategies.js";
import type { Setting } from "./strategy.js";

export interface RecoveryPlan {
  steps: HostStep[];
  /** Files the steps read (relative to .hamalog/recover/). */
  files: BundleEntry[];
  /** The journal once the steps ran. */
  journal: Journal;
  /** What history records (null: there was no attempt, only drift to put right). */
  entry: HistoryEntry | null;
  /** One line: what the recovery does. */
  describe: string;
}

export interface RecoveryFacts {
  /** When the plan is written (the history line's time). */
  time: Date;
  /** Who recovers (the dead attempt's holder, or the run reconciling). */
  holder: string;
  /** Why: the error, or what happened to the run. */
  error: string;
  interrupted?: boolean;
  /** The phase that failed, when the run knows it (the journal names the last phase that wrote to the host). */
  phase?: string;
  /**
   * The run itself puts things right (its one failure path), this long after it started: history records an
   * ordinary failure with its duration, not a dead attempt something else recovered.
   */
  byRun?: { durationMs: number };
}

/** The plan for journal `j` (its attempt, if any, died now). */
export function planRecovery(j: Journal, s: Setting, f: RecoveryFacts): RecoveryPlan {
  const a = j.attempt;
  if (!a) {
    const live = j.live ? STRATEGY[j.strategy].restore(j.live, s) : { steps: [], files: [] };
    return {
      ...live,
      journal: j,
      entry: null,
      describe: j.live ? `restore ${shortRelease(j.live)}` : "nothing is live",
    };
  }
  const st = STRATEGY[a.strategy];
  const facts = {
    action: a.action,
    release: a.candidate,
    previous: j.live && !promoted(j) ? runningOf(j.live) : j.previous ? runningOf(j.previous) : null,
    holder: a.holder,
  };
  const phase = f.phase ?? a.phase;
  const common = {
    failedPhase: phase,
    error: f.error,
    ...(f.interrupted ? { interrupted: true } : {}),
    ...(a.candidate.colour ? { colour: a.candidate.colour } : {}),
  };
  if (promoted(j)) {
    const plan = st.forward(j, s);
    const after = endAttempt(j);
    return {
      ...plan,
      journal: after,
      entry: historyEntry(
        facts,
        { result: "success", running: runningOf(j.live!), ...common, ...(f.byRun ? {} : { recovered: true }) },
        f.time,
        f.byRun?.durationMs ?? 0,
      ),
      describe: `finish the ${a.action} of ${shortRelease(a.candidate)} (live since the switch)`,
    };
  }
  const back = j.live ? STRATEGY[j.strategy].restore(j.live, s) : { steps: [], files: [] };
  const plan = st.undo(j, s, back);
  // Died before a step that could disturb the live release: it was never touched ("failed"); after: restored.
  const phases = st.steps.map((x) => x.phase);
  const touched = phases.indexOf(phase) >= phases.indexOf(st.touchesLive) && phases.includes(phase);
  const after: Journal = { ...endAttempt(j), ...(plan.dropsPrevious ? { previous: null } : {}) };
  return {
    ...plan,
    journal: after,
    entry: historyEntry(
      facts,
      {
        result: j.live && touched ? "rolled-back" : "failed",
        running: j.live ? runningOf(j.live) : null,
        ...common,
        ...(f.byRun ? {} : { recovered: true }),
      },
      f.time,
      f.byRun?.durationMs ?? 0,
    ),
    describe: j.live
      ? `undo the ${a.action} of ${shortRelease(a.candidate)} (stopped in ${phase}) and keep ${shortRelease(j.live)} serving`
      : `undo the ${a.action} of ${shortRelease(a.candidate)} (stopped in ${phase}); nothing was live before it`,
  };
}

/** recover.sh and .hamalog/recover/… for `j` (its attempt's recovery, or without one, restoring its live release). */
export function recoveryFiles(j: Journal, s: Setting, f: RecoveryFacts): { files: BundleEntry[]; plan: RecoveryPlan } {
  const p = planRecovery(j, s, f);
  const failed = p.entry
    ? historyLine({
        ...p.entry,
        result: "failed",
        running: null,
        error: `${p.entry.error ?? ""}; the recovery failed too: the next run recovers again`,
      })
    : "";
  return {
    plan: p,
    files: [
      { path: "files/.hamalog/recover.sh", content: recoverScript(s.project, p.steps, p.describe) },
      { path: "files/.hamalog/recover/journal.json", content: journalText(p.journal) },
      { path: "files/.hamalog/recover/history.add", content: p.entry ? historyLine(p.entry) : "" },
      { path: "files/.hamalog/recover/history.failed", content: failed },
      ...p.files.map((x) => ({ ...x, path: `files/.hamalog/recover/${x.path}` })),
    ],
  };
}

/** The bundle entries that write journal `j` with its recovery (none without an attempt: an empty recover.sh). */
export function journalFiles(j: Journal, s: Setting, f: RecoveryFacts): BundleEntry[] {
  const journal = { path: "files/journal.json", content: journalText(j) };
  if (!j.attempt) return [journal, { path: "files/.hamalog/recover.sh", content: "" }];
  return [journal, ...recoveryFiles(j, s, f).files];
}
