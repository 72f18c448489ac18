// The recreate procedure, shared by deploy and rollback: plan → lock → reconcile → login → render → pull-if-missing
// → up + health → promote, record and prune; on a failure after the switch: recover (diagnostics, then the
// journal's live release back up, health-gated). The journal on the host is written before each transition, so a
// run that dies anywhere leaves the next run a deterministic recovery. The lock is released in every outcome.
import { renderCompose } from "../compose.js";
import { ConnectionLost, PipelineError } from "../errors.js";
import { cmd, composeArgs } from "./commands.js";
import { collectDiagnostics } from "./diagnostics.js";
import type { HistoryEntry, Running } from "./history.js";
import { journalCmd } from "./journal-commands.js";
import { atPhase, beginAttempt, endAttempt, nothingLive, promote, releaseFile, type Slot } from "./journal.js";
import { reconcile, reconnect, saveJournal, upRelease } from "./recover.js";
import { runningOf, type Release } from "./release.js";
import { seconds } from "./report.js";
import { must, type Outcome, type Session } from "./session.js";
import { lock, login, logout, pullIfMissing, record, recordAndPrune, unlock, type Held } from "./steps.js";

type Action = HistoryEntry["action"];

export async function apply(s0: Session, release: Release, action: Action): Promise<Outcome> {
  const rendered = render(s0, release, action);
  if (s0.input.dryRun) return plan(s0, release, action, rendered);
  const held = await lock(s0, release, action);
  let s = s0;
  try {
    await reconcile(s, held);
    const candidate = slotOf(release, releaseFile(release.digest, rendered), s.rep.clock.now().toISOString());
    let switched = false;
    try {
      await login(s, held);
      await renderRelease(s, candidate, rendered);
      const j = { ...held.journal!, strategy: "recreate" as const };
      await saveJournal(s, held, beginAttempt(j, attemptOf(s, held, action, candidate)), true, "render");
      await pullIfMissing(s, release);
      await logout(s, held);
      await saveJournal(s, held, atPhase(held.journal!, "up"), true, "up");
      switched = true;
      await upRelease(s, candidate.composeFile, "", {
        beforeHealth: () =>
          saveJournal(s, held, atPhase(held.journal!, "health"), true, "health").then(() => undefined),
        // A recreate deploy on a host that ran blue/green: the colours and the proxy go.
        removeOrphans: held.attempt.previous?.colour !== undefined,
      });
      // Live only once the journal says so: if this write fails, the rollback below makes the host match it.
      await saveJournal(s, held, promote(held.journal!, s.rep.clock.now().toISOString()), true, "health");
    } catch (e) {
      const r = await recover(s, held, e, switched);
      s = r.session;
      throw r.error;
    }
    await keepComposeCopy(s, candidate);
    await recordAndPrune(s, held, { result: "success", running: runningOf(release) });
    const durationMs = s.rep.clock.monotonic() - s.started;
    s.rep.out(
      `${action === "deploy" ? "deployed" : "rolled back to"} ${release.image} (sha ${release.sha}) in ${seconds(durationMs)}${release.fallback ? " — FALLBACK: this is `latest`, not the requested sha" : ""}`,
    );
    return {
      result: "success",
      running: runningOf(release),
      fallback: release.fallback,
      durationMs,
      compose: rendered,
    };
  } finally {
    await unlock(s, held);
    for (const r of held.remotes) r.close();
  }
}

export function slotOf(r: Release, composeFile: string, since: string): Slot {
  return {
    sha: r.sha,
    digest: r.digest,
    image: r.image,
    tags: r.tags,
    ...(r.fallback ? { fallback: true } : {}),
    composeFile,
    since,
  };
}

export function attemptOf(s: Session, held: Held, action: Action, candidate: Slot) {
  return {
    id: held.lockId,
    holder: s.input.holder,
    action,
    phase: "pull",
    startedAt: candidate.since,
    candidate,
  };
}

/** The compose file pinning `release` (template warnings printed). */
function render(s: Session, release: Release, action: Action): string {
  const rendered = renderCompose({
    ...s.input.compose,
    service: s.input.deploy.service,
    image: release.image,
    header: [
      `rendered by hamalog ${action}: sha ${release.sha}${release.fallback ? " (fallback: latest)" : ""}`,
      `image ${release.image}`,
      "do not edit: hamalog runs it from the release journal (journal.json)",
    ],
  });
  for (const w of rendered.warnings) s.rep.warn(`WARNING: ${w}`);
  return rendered.yaml;
}

/** --dry-run: print what would happen and the rendered file; nothing on the host changes. */
async function plan(s: Session, release: Release, action: Action, rendered: string): Promise<Outcome> {
  const { input, rep, remote, l } = s;
  const d = input.deploy;
  const file = releaseFile(release.digest, rendered);
  const present = (await remote.run(cmd.imagePresent(`${release.name}@${release.digest}`))).code === 0;
  rep.out(
    `[plan] would ${action} ${release.image} on ${remote.label} in ${l.dir} (project ${s.project}, service ${d.service})`,
  );
  rep.out(
    `[plan] phases: lock → reconcile (recover a dead attempt from journal.json) → ${input.credentials ? "login (token on stdin) → " : ""}render ${file} → pull (${present ? "skipped: digest already on the host" : "needed"}) → up --wait (${d.waitTimeout}s) → health (${d.health.url ? `${d.health.url}, ${d.health.timeout}s` : "none configured"}) → journal (live) → history → prune (keep ${d.keepImages}) → unlock`,
  );
  rep.out(`[plan] rendered ${file}:`);
  for (const line of rendered.trimEnd().split("\n")) rep.out(`  ${line}`);
  rep.out("[plan] dry run: nothing on the host was changed");
  return {
    result: "dry-run",
    running: runningOf(release),
    fallback: release.fallback,
    durationMs: rep.clock.monotonic() - s.started,
    compose: rendered,
  };
}

/** Write the candidate's compose file under releases/, checked by compose; what runs is not touched. */
async function renderRelease(s: Session, candidate: Slot, rendered: string): Promise<void> {
  await s.rep.phase("render", async () => {
    const steps: Record<string, string> = { config: "`docker compose config` on the rendered file" };
    await must(
      s,
      journalCmd.writeRelease(s.l, s.project, candidate.composeFile),
      (step) => steps[step ?? ""] ?? `writing ${candidate.composeFile}`,
      "render",
      { stdin: rendered, timeoutMs: 60_000 },
    );
    return { value: undefined, summary: `${candidate.composeFile} pins ${candidate.image}` };
  });
}

/** compose.yaml mirrors the live release's file, for people running `docker compose` in the directory. */
async function keepComposeCopy(s: Session, live: Slot): Promise<void> {
  const r = await s.remote.run(journalCmd.mirror(s.l, live.composeFile));
  if (r.code !== 0) s.rep.warn(`WARNING: could not refresh ${s.l.compose}: ${r.stderr.trim()} (the journal is right)`);
}

/**
 * A step failed. Before the switch nothing ran differently: end the attempt and say so. After it: diagnostics
 * (best effort), then the journal's live release back up, health-gated — on a new connection when the old one
 * dropped. Every journal write here is best effort: it still names the attempt if it cannot be updated.
 */
async function recover(
  s0: Session,
  held: Held,
  e: unknown,
  switched: boolean,
): Promise<{ session: Session; error: PipelineError }> {
  const err = e instanceof PipelineError ? e : new PipelineError((e as Error).message);
  let s = s0;
  const { input, rep } = s;
  const { action, release } = held.attempt;
  const phase = err.phase ?? "?";
  const interrupted = input.signal?.aborted === true;
  const failure = { failedPhase: phase, error: rep.clean(err.message), ...(interrupted ? { interrupted } : {}) };
  rep.warn(`FAILED in phase ${phase}: ${rep.clean(err.message)}`);
  const { signal: _aborted, ...calmInput } = input;
  try {
    if (err instanceof ConnectionLost) s = { ...(await reconnect(s, held, err)), input: calmInput };
    else s = { ...s, input: calmInput };
  } catch (re) {
    return {
      session: s,
      error: new PipelineError(
        `${action} of ${release.image} failed in phase ${phase}: ${err.message}\n${(re as Error).message}`,
        err.phase,
      ),
    };
  }
  const live = held.journal?.live ?? null;
  if (!switched) {
    if (held.journal?.attempt) await saveJournal(s, held, endAttempt(held.journal), false, phase as never);
    await logout(s, held);
    await record(s, held, { result: "failed", running: live ? runningOfSlot(live) : null, ...failure });
    return {
      session: s,
      error: new PipelineError(
        `${action} of ${release.image} failed in phase ${phase}; the running app was not touched: ${err.message}`,
        err.phase,
      ),
    };
  }
  if (interrupted)
    rep.warn(
      `interrupted: restoring the live release first (Ctrl-C again to stop at once; the next run then recovers)`,
    );
  if (held.journal?.attempt) await saveJournal(s, held, atPhase(held.journal, "rollback"), false, "rollback");
  const diag = await rep
    .phase("diagnostics", async () => {
      const lines = await collectDiagnostics(s.remote, {
        layout: s.l,
        project: s.project,
        composeFile: `${s.l.dir}/${held.journal?.attempt?.candidate.composeFile ?? ""}`,
        service: input.deploy.service,
        name: release.name,
        registry: input.image.registry,
        image: release.image,
        loggedIn: held.loggedIn,
      });
      return { value: lines, summary: `what ${s.remote.label} looked like:` };
    })
    .catch(() => [] as string[]);
  for (const line of diag) rep.out(line);
  const after = await restoreLive(s, held, live);
  s = after.session;
  await record(s, held, { result: after.rolledBack ? "rolled-back" : "failed", running: after.running, ...failure });
  return {
    session: s,
    error: new PipelineError(
      `${action} of ${release.image} failed in phase ${phase}: ${err.message}\n${after.message}`,
      err.phase,
    ),
  };
}

const runningOfSlot = (x: Slot): Running => ({
  sha: x.sha,
  digest: x.digest,
  image: x.image,
  ...(x.fallback ? { fallback: true } : {}),
});

/** Bring the journal's live release back up, health-gated (reconnecting once more if the connection drops); a first deploy is stopped instead. */
async function restoreLive(
  s0: Session,
  held: Held,
  live: Slot | null,
): Promise<{ session: Session; rolledBack: boolean; running: Running | null; message: string }> {
  let s = s0;
  const { rep, input } = s;
  const d = input.deploy;
  if (!live) {
    const candidate = held.journal?.attempt?.candidate;
    await rep.phase("rollback", async () => {
      if (candidate)
        await s.remote.run(journalCmd.compose(s.l, s.project, candidate.composeFile, composeArgs.stop(d.service)), {
          timeoutMs: 120_000,
        });
      return { value: undefined, summary: `first deploy: nothing to roll back to; ${d.service} stopped` };
    });
    if (held.journal) await saveJournal(s, held, nothingLive(held.journal), false, "rollback");
    return {
      session: s,
      rolledBack: false,
      running: null,
      message: `nothing to roll back to (first deploy): ${d.service} is left stopped`,
    };
  }
  const what = `${live.digest} (sha ${live.sha})`;
  for (let tries = 0; ; tries++) {
    try {
      await upRelease(s, live.composeFile, "rollback");
      if (held.journal) await saveJournal(s, held, endAttempt(held.journal), false, "rollback");
      rep.out(`rolled back to ${what}`);
      return { session: s, rolledBack: true, running: runningOfSlot(live), message: `rolled back to ${what}` };
    } catch (e) {
      if (e instanceof ConnectionLost && tries === 0) {
        try {
          s = { ...(await reconnect(s, held, e)), input: s.input };
          continue;
        } catch (re) {
          e = re;
        }
      }
      rep.warn(`ROLLBACK FAILED: ${rep.clean((e as Error).message)}`);
      return {
        session: s,
        rolledBack: false,
        running: null,
        message: `the rollback to ${what} FAILED too (${(e as Error).message}); the journal still names the attempt, so the next deploy or rollback restores ${what} — see the diagnostics above`,
      };
    }
  }
}
