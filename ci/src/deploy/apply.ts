// The recreate procedure, shared by deploy and rollback: plan → lock → login → render-and-switch → pull-if-missing
// → up + health → record-and-prune, and on a failure after the switch: recover (diagnostics, then the previous
// compose file back up, health-gated). The lock is released in every outcome.
import { renderCompose } from "../compose.js";
import { PipelineError } from "../errors.js";
import { cmd, composeArgs } from "./commands.js";
import { collectDiagnostics } from "./diagnostics.js";
import type { HistoryEntry, Running } from "./history.js";
import { runningOf, type Release } from "./release.js";
import { seconds } from "./report.js";
import { must, type Outcome, type Session } from "./session.js";
import { healthGate, lock, login, pullIfMissing, record, recordAndPrune, unlock, type Held } from "./steps.js";

type Action = HistoryEntry["action"];

export async function apply(s: Session, release: Release, action: Action): Promise<Outcome> {
  const rendered = render(s, release, action);
  if (s.input.dryRun) return plan(s, release, action, rendered);
  const held = await lock(s, release, action);
  try {
    let switched = false;
    try {
      await login(s, held);
      await renderAndSwitch(s, held, rendered);
      switched = true;
      await pullIfMissing(s, release);
      await upAndHealthy(s, false, held.attempt.previous?.colour !== undefined);
    } catch (e) {
      throw await recover(s, held, e, switched);
    }
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
  }
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
      "do not edit: the next deploy replaces this file",
    ],
  });
  for (const w of rendered.warnings) s.rep.warn(`WARNING: ${w}`);
  return rendered.yaml;
}

/** --dry-run: print what would happen and the rendered file; nothing on the host changes. */
async function plan(s: Session, release: Release, action: Action, rendered: string): Promise<Outcome> {
  const { input, rep, remote, l } = s;
  const d = input.deploy;
  const present = (await remote.run(cmd.imagePresent(`${release.name}@${release.digest}`))).code === 0;
  rep.out(
    `[plan] would ${action} ${release.image} on ${remote.label} in ${l.dir} (project ${s.project}, service ${d.service})`,
  );
  rep.out(
    `[plan] phases: lock → ${input.credentials ? "login (token on stdin) → " : ""}render ${l.compose} (previous kept as ${l.previous}) → pull (${present ? "skipped: digest already on the host" : "needed"}) → up --wait (${d.waitTimeout}s) → health (${d.health.url ? `${d.health.url}, ${d.health.timeout}s` : "none configured"}) → history → prune (keep ${d.keepImages}) → unlock`,
  );
  rep.out(`[plan] rendered ${l.compose}:`);
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

/** Write the rendered file, check it with compose, keep the running one as `previous`, rename it into place. */
async function renderAndSwitch(s: Session, held: Held, rendered: string): Promise<void> {
  const { l } = s;
  await s.rep.phase("render", async () => {
    await must(s, cmd.write(l.next), `writing ${l.next}`, "render", { stdin: rendered });
    const steps: Record<string, string> = {
      config: "`docker compose config` on the rendered file",
      keep: `keeping ${l.previous}`,
      rename: `renaming ${l.next} to ${l.compose}`,
    };
    await must(
      s,
      cmd.switchCompose(s.project, l, held.hadCompose),
      (step) => steps[step ?? ""] ?? `checking and switching to ${l.next}`,
      "render",
      { timeoutMs: 60_000 },
    );
    return {
      value: undefined,
      summary: `${l.compose} pins ${held.attempt.release.image}${held.hadCompose ? ` (previous kept as ${l.previous})` : ""}`,
    };
  });
}

/** Bring the app service up from the current compose file and pass the health gate; throws a phase error. */
async function upAndHealthy(s: Session, recovering = false, leavingBlueGreen = false): Promise<void> {
  const d = s.input.deploy;
  const up = recovering ? "rollback-up" : "up";
  const health = recovering ? "rollback-health" : "health";
  await s.rep.phase(up, async () => {
    await must(
      s,
      cmd.compose(s.project, s.l.compose, composeArgs.up(d.service, d.waitTimeout, leavingBlueGreen)),
      "`docker compose up --wait`",
      up,
      {
        timeoutMs: (d.waitTimeout + 120) * 1000,
      },
    );
    return {
      value: undefined,
      summary: `${d.service} running and healthy per compose (--wait-timeout ${d.waitTimeout}s)`,
    };
  });
  await s.rep.phase(health, async () => {
    if (!d.health.url)
      return { value: undefined, summary: "no deploy/health/url; compose's healthcheck gated `up --wait`" };
    return { value: undefined, summary: await healthGate(s, d.health.url, health) };
  });
}

/**
 * A step failed: before the switch nothing ran differently, so record and say so; after it, print diagnostics and
 * bring the previous compose file back up. Returns the error to throw (the failure, plus what recovery did).
 */
async function recover(s: Session, held: Held, e: unknown, switched: boolean): Promise<PipelineError> {
  const { input, rep, remote, l } = s;
  const { action, release, previous } = held.attempt;
  const err = e instanceof PipelineError ? e : new PipelineError((e as Error).message);
  const phase = err.phase ?? "?";
  const interrupted = input.signal?.aborted === true;
  const failure = { failedPhase: phase, error: rep.clean(err.message), ...(interrupted ? { interrupted } : {}) };
  rep.warn(`FAILED in phase ${phase}: ${rep.clean(err.message)}`);
  if (!switched) {
    await record(s, held, { result: "failed", running: previous, ...failure });
    return new PipelineError(
      `${action} of ${release.image} failed in phase ${phase}; the running app was not touched: ${err.message}`,
      err.phase,
    );
  }
  // An interruption stops the new release, not the way back: recovery runs without the abort signal, so
  // Ctrl-C leaves the previous release running (a second Ctrl-C kills the process outright, lock and all).
  if (interrupted)
    rep.warn(
      `interrupted: restoring the previous release first (Ctrl-C again to stop at once; the lock ${l.lock} then stays — remove it with --break-lock)`,
    );
  const diag = await rep.phase("diagnostics", async () => {
    const lines = await collectDiagnostics(remote, {
      layout: l,
      project: s.project,
      composeFile: l.compose,
      service: input.deploy.service,
      name: release.name,
      registry: input.image.registry,
      image: release.image,
      loggedIn: held.loggedIn,
    });
    return { value: lines, summary: `what ${remote.label} looked like:` };
  });
  for (const line of diag) rep.out(line);
  const { signal: _aborted, ...calm } = input;
  const after = await restorePrevious({ ...s, input: calm }, held.hadCompose, previous);
  await record(s, held, { result: after.rolledBack ? "rolled-back" : "failed", running: after.running, ...failure });
  return new PipelineError(
    `${action} of ${release.image} failed in phase ${phase}: ${err.message}\n${after.message}`,
    err.phase,
  );
}

/** Restore the previous compose file and bring it up healthy; a first deploy is stopped instead. */
async function restorePrevious(
  s: Session,
  hadCompose: boolean,
  previous: Running | null,
): Promise<{ rolledBack: boolean; running: Running | null; message: string }> {
  const { rep, l, input } = s;
  const d = input.deploy;
  if (!hadCompose) {
    await rep.phase("rollback", async () => {
      await s.remote.run(cmd.compose(s.project, l.compose, composeArgs.stop(d.service)), { timeoutMs: 120_000 });
      await s.remote.run(cmd.move(l.compose, l.failed));
      return {
        value: undefined,
        summary: `first deploy: nothing to roll back to; ${d.service} stopped, its compose file kept as ${l.failed}`,
      };
    });
    return {
      rolledBack: false,
      running: null,
      message: `nothing to roll back to (first deploy): ${d.service} is left stopped; its compose file is ${l.failed}`,
    };
  }
  const what = previous ? `${previous.digest} (sha ${previous.sha})` : `the previous compose file ${l.previous}`;
  try {
    await rep.phase("rollback", async () => {
      await must(s, cmd.copy(l.compose, l.failed), `keeping ${l.failed}`, "rollback");
      await must(s, cmd.copy(l.previous, l.compose), `restoring ${l.previous}`, "rollback");
      return { value: undefined, summary: `restored ${l.compose} from ${l.previous} → ${what}` };
    });
    await upAndHealthy(s, true);
    rep.out(`rolled back to ${what}`);
    return { rolledBack: true, running: previous, message: `rolled back to ${what}` };
  } catch (e) {
    rep.warn(`ROLLBACK FAILED: ${rep.clean((e as Error).message)}`);
    return {
      rolledBack: false,
      running: null,
      message: `the rollback to ${what} FAILED too (${(e as Error).message}); the host needs attention — see the diagnostics above`,
    };
  }
}
