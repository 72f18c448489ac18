// The journal's steps in a procedure: write the journal before each transition, reconcile under the lock before
// anything else (recover a dead attempt: restore the live release health-gated, remove what compose left
// mid-replacement, log out a leftover login), switch a compose file without ever stopping compose midway, and
// reconnect (bounded) when the SSH connection drops so a rollback can finish.
import { posix } from "node:path";
import { ConnectionLost, PipelineError } from "../errors.js";
import { cmd, composeArgs, lockIdField } from "./commands.js";
import { historyLine } from "./history.js";
import { journalCmd, journalLayout } from "./journal-commands.js";
import { journalText, type Journal, type Slot } from "./journal.js";
import { removeColour, restoreColour, routeProxy, type ColourRecovery } from "./bluegreen-reconcile.js";
import { startHeartbeat } from "./lock.js";
import { describeAction, describeDead, parseObservation, planRecovery, type RecoveryAction } from "./reconcile.js";
import { must, type DeployPhase, type Session } from "./session.js";
import { healthGate, type Held } from "./steps.js";

/**
 * Write the journal. `required`: before a step that changes what runs — a journal that cannot say what the step
 * is about to do stops the step (nothing changed yet). Otherwise (the way back) a failed write is a warning: the
 * journal still describes the attempt, which is exactly what the next run must recover from.
 */
export async function saveJournal(s: Session, held: Held, j: Journal, required: boolean, phase: DeployPhase) {
  const text = journalText(j);
  const r = await s.remote.run(journalCmd.write(s.l, Buffer.byteLength(text)), { stdin: text, timeoutMs: 30_000 });
  if (r.code === 0) {
    held.journal = j;
    return true;
  }
  const path = journalLayout(s.l).journal;
  const why = `could not write ${path} on ${s.remote.label} (exit ${r.code}: ${s.rep.clean(r.stderr.trim()).slice(0, 200)})`;
  if (required)
    throw new PipelineError(`${why} — the step was not started; free space in or make writable ${s.l.dir}`, phase);
  s.rep.warn(`WARNING: ${why}; it still names the attempt, so the next deploy or rollback recovers from it`);
  return false;
}

/** The phase a rollback or recovery prints for bringing a release up and for its health gate. */
const phases = (prefix: "" | "rollback" | "recover") =>
  prefix === ""
    ? { up: "up" as const, health: "health" as const }
    : { up: `${prefix}-up` as const, health: `${prefix}-health` as const };

/**
 * Run `file` and pass the health gate. The container replacement (`up --detach`) is never interrupted: stopped
 * midway, compose leaves a never-started temp-named container and the old one stopped (the app down). Ctrl-C
 * lets it finish, then stops the rest (the wait and the gate) so the caller rolls back.
 */
export async function upRelease(
  s: Session,
  file: string,
  prefix: "" | "rollback" | "recover",
  opts: { beforeHealth?: () => Promise<void>; removeOrphans?: boolean } = {},
): Promise<void> {
  const d = s.input.deploy;
  const p = phases(prefix);
  const { signal: _signal, ...calmInput } = s.input;
  const calm = { ...s, input: calmInput };
  await s.rep.phase(p.up, async () => {
    const removed = await must(
      calm,
      journalCmd.removeTempContainers(s.project),
      "removing temp-named containers",
      p.up,
    );
    if (removed.trim())
      s.rep.out(`[${p.up}] removed what compose left mid-replacement: ${removed.trim().split("\n").join(", ")}`);
    const onAbort = () =>
      s.rep.warn(
        "interrupted: letting compose finish replacing the container first (stopped midway it leaves the app down)",
      );
    s.input.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await must(
        calm,
        journalCmd.compose(s.l, s.project, file, [
          "up",
          "--detach",
          ...(opts.removeOrphans ? ["--remove-orphans"] : []),
          d.service,
        ]),
        "`docker compose up --detach`",
        p.up,
        {
          timeoutMs: (d.waitTimeout + 120) * 1000,
        },
      );
    } finally {
      s.input.signal?.removeEventListener("abort", onAbort);
    }
    if (s.input.signal?.aborted)
      throw new PipelineError("interrupted (after compose finished replacing the container)", p.up);
    await must(
      s,
      journalCmd.compose(s.l, s.project, file, composeArgs.up(d.service, d.waitTimeout, opts.removeOrphans)),
      "`docker compose up --wait`",
      p.up,
      {
        timeoutMs: (d.waitTimeout + 120) * 1000,
      },
    );
    return {
      value: undefined,
      summary: `${d.service} running and healthy per compose (--wait-timeout ${d.waitTimeout}s), from ${file}`,
    };
  });
  await opts.beforeHealth?.();
  await s.rep.phase(p.health, async () => {
    if (!d.health.url)
      return { value: undefined, summary: "no deploy/health/url; compose's healthcheck gated `up --wait`" };
    return { value: undefined, summary: await healthGate(s, d.health.url, p.health) };
  });
}

/**
 * Reconcile: read the host, and when a dead attempt (or what it left) is there, recover before this run's own
 * work. Runs under the lock, so an attempt in the journal is one whose holder is gone. Sets held.journal.
 */
export async function reconcile(s: Session, held: Held): Promise<void> {
  const { rep, l } = s;
  const where = `${s.remote.label} ${journalLayout(l).journal}`;
  const obs = await rep.phase("reconcile", async () => {
    const out = await must(
      s,
      journalCmd.observe(l, s.project),
      "reading the journal and the project's containers",
      "reconcile",
      {
        timeoutMs: 60_000,
      },
    );
    const o = parseObservation(out, where, rep.clock.now().toISOString());
    const plan = planRecovery(o);
    const summary = o.journal.live
      ? `live: sha ${o.journal.live.sha.slice(0, 12)} from ${o.journal.live.composeFile}`
      : "nothing live yet";
    return {
      value: { o, plan },
      summary: plan.dead
        ? `${summary}; ${describeDead(plan.dead)} — recovering`
        : plan.actions.length
          ? `${summary}; cleaning up after an earlier run`
          : `${summary}; the host agrees with the journal${o.adopted ? " (adopted from history)" : ""}`,
    };
  });
  held.journal = obs.o.journal;
  if (obs.o.adopted && obs.o.journal.live) {
    const live = obs.o.journal.live;
    await must(s, journalCmd.adopt(l, live.composeFile), `keeping ${l.compose} as ${live.composeFile}`, "reconcile");
    await saveJournal(s, held, obs.o.journal, true, "reconcile");
    rep.out(`[reconcile] adopted the release history says runs (sha ${live.sha.slice(0, 12)}) into the journal`);
  }
  const { plan } = obs;
  if (plan.actions.length === 0) return;
  if (plan.dead) rep.warn(`RECOVERING: ${describeDead(plan.dead)}`);
  const done: string[] = [];
  const colours: ColourRecovery = {};
  for (const a of plan.actions) {
    rep.out(`[reconcile] ${describeAction(a)}`);
    await perform(s, held, a, colours);
    done.push(describeAction(a));
  }
  if (plan.dead) {
    const dead = plan.dead;
    const live = held.journal?.live ?? null;
    const line = historyLine({
      time: rep.clock.now().toISOString(),
      action: dead.action === "recover" ? "deploy" : dead.action,
      sha: dead.candidate.sha,
      tags: dead.candidate.tags,
      digest: dead.candidate.digest,
      image: dead.candidate.image,
      previousDigest: live?.digest ?? null,
      previousSha: live?.sha ?? null,
      result: live ? "rolled-back" : "failed",
      fallback: dead.candidate.fallback === true,
      durationMs: 0,
      running: live
        ? { sha: live.sha, digest: live.digest, image: live.image, ...(live.fallback ? { fallback: true } : {}) }
        : null,
      holder: s.input.holder,
      failedPhase: dead.phase,
      error: rep.clean(`${describeDead(dead)}; recovered by the next run: ${done.join("; ")}`),
      recovered: true,
    });
    const r = await s.remote.run(cmd.append(l.history), { stdin: line });
    if (r.code !== 0) rep.warn(`WARNING: could not append the recovery to ${l.history}: ${r.stderr.trim()}`);
    rep.out(
      `recovered: ${live ? `the live release sha ${live.sha.slice(0, 12)} runs again` : "nothing was live; the dead first deploy is stopped"}`,
    );
  }
}

async function perform(s: Session, held: Held, a: RecoveryAction, colours: ColourRecovery): Promise<void> {
  const d = s.input.deploy;
  const calm = { ...s, input: withoutSignal(s) };
  switch (a.kind) {
    case "remove-containers":
      await must(
        s,
        journalCmd.removeContainers(a.containers.map((c) => c.id)),
        "removing temp-named containers",
        "reconcile",
      );
      return;
    case "logout": {
      const r = await s.remote.run(journalCmd.logout(s.l, s.input.image.registry), { timeoutMs: 30_000 });
      if (r.code !== 0)
        s.rep.warn(`WARNING: could not log out of ${s.input.image.registry} on ${s.remote.label}: ${r.stderr.trim()}`);
      return;
    }
    case "restore-live": {
      const colour = a.slot.colour;
      if (colour) await restoreColour(calm, colours, { ...a.slot, colour });
      else await upRelease(calm, a.slot.composeFile, "recover");
      return;
    }
    case "stop-candidate":
      await must(
        s,
        journalCmd.compose(s.l, s.project, a.slot.composeFile, composeArgs.stop(d.service)),
        `stopping ${d.service}`,
        "reconcile",
        {
          timeoutMs: 120_000,
        },
      );
      return;
    case "clear-attempt":
      await saveJournal(s, held, a.journal, false, "reconcile");
      return;
    case "route-proxy":
      await routeProxy(calm, colours, a.colour, held.journal!.live!);
      return;
    case "remove-colour":
      await removeColour(calm, a.colour);
      return;
  }
}

function withoutSignal(s: Session) {
  const { signal: _signal, ...rest } = s.input;
  return rest;
}

/** Reconnect attempts after the SSH connection dropped, and the pause before each (bounded: ~15 s in all). */
const RECONNECT_PAUSES_MS = [1000, 4000, 10_000];

/**
 * The connection dropped mid-procedure: connect again (bounded), make sure the lock is still this attempt's, and
 * feed the heartbeat again. Returns the session on the new connection; throws when the host stays unreachable or
 * another run took the lock over (that run recovers from the journal).
 */
export async function reconnect(s: Session, held: Held, cause: ConnectionLost): Promise<Session> {
  const attempt = held.journal?.attempt;
  const next = attempt
    ? `the journal says a ${attempt.action} of sha ${attempt.candidate.sha.slice(0, 12)} was in phase ${attempt.phase}: the next deploy or rollback restores the live release`
    : "the next deploy or rollback reconciles the host";
  s.rep.warn(`WARNING: ${s.rep.clean(cause.message)} — reconnecting`);
  let last = cause.message;
  for (const pause of RECONNECT_PAUSES_MS) {
    await s.rep.clock.sleep(pause);
    let remote;
    try {
      remote = await s.env.connect();
    } catch (e) {
      last = (e as Error).message;
      continue;
    }
    held.remotes.push(remote);
    const r = await remote.run(journalCmd.reclaim(s.l, lockIdField(held.lockId)));
    if (r.code !== 0) {
      throw new PipelineError(
        `reconnected to ${remote.label}, but the lock ${s.l.lock} is no longer this deploy's (${r.stdout.trim().slice(0, 200) || "gone"}): another run took it over and recovers the host — ${next}`,
        cause.phase,
      );
    }
    held.heartbeat?.stop();
    held.heartbeat = startHeartbeat(remote, s.l, held.lockId);
    s.rep.out(`[connect] reconnected to ${remote.label}; the lock is still this deploy's`);
    return { ...s, remote };
  }
  throw new ConnectionLost(`could not reconnect to ${s.remote.label} (${s.rep.clean(last)}) — ${next}`, cause.phase);
}

/** The release file's path on the host (for messages). */
export const onHost = (s: Session, slot: Slot) => posix.join(s.l.dir, slot.composeFile);
