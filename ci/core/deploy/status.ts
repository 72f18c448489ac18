// `status`: the truth about the host, read-only — the journal's live release against the container that actually
// runs (any mismatch flagged), the lock (holder, age, whether its lease still holds); blue/green: the proxy's route and the kept colour too, an attempt that needs
// recovery, the health URL's answer and the last history lines. It changes nothing: recovery is the next
// deploy's or rollback's first step.
import { PipelineError } from "../errors.js";
import { currentRelease, lastEntries, type HistoryEntry, type Running } from "./history.js";
import { journalCmd, journalLayout } from "./journal-commands.js";
import type { Journal, JournalAttempt } from "./journal.js";
import { judgeLock, LEASE_SECONDS, type HeldLock } from "./lock.js";
import { checkLive, describeDead, parseObservation, type ContainerSeen } from "./reconcile.js";
import { colourService, other, PROXY_SERVICE, type Colour } from "./colours.js";
import { observe } from "./proxy.js";
import { readHistory, withSession, type DeployEnv, type DeployInput, type Session } from "./session.js";

export interface StatusReport {
  /** The journal's live release (what passed its health gate last). */
  running: Running | null;
  container: { state: string; health: string; image: string } | null;
  /** Where the journal and the host disagree; empty when they agree. */
  mismatches: string[];
  lock: HeldLock | null;
  /** An attempt whose run died: the next deploy or rollback recovers it. */
  attempt: JournalAttempt | null;
  health: string | null;
  history: HistoryEntry[];
}

export async function status(input: DeployInput & { lines?: number }, env: DeployEnv): Promise<StatusReport> {
  return withSession(input, env, async (s) => {
    const { rep, remote, l, project } = s;
    const d = input.deploy;
    const where = `${remote.label} ${journalLayout(l).journal}`;
    const [obsRun, leaseRun, entries] = await Promise.all([
      remote.run(journalCmd.observe(l, project), { timeoutMs: 30_000 }),
      remote.run(journalCmd.leaseFacts(l), { timeoutMs: 30_000 }),
      readHistory(s),
    ]);
    if (obsRun.code !== 0)
      throw new PipelineError(
        `reading ${l.dir} on ${remote.label} failed (exit ${obsRun.code}): ${obsRun.stderr.trim().slice(0, 300)}`,
      );
    const obs = parseObservation(obsRun.stdout, where, rep.clock.now().toISOString());
    const j = obs.journal;
    const check = checkLive(j, obs.containers, [d.service]);
    const mine = obs.containers.find((c) => c.service === d.service && !/^[0-9a-f]{12}_/.test(c.name));
    const container = mine ? { state: mine.state, health: healthOf(mine.status ?? ""), image: mine.image } : null;
    let lock: HeldLock | null = null;
    if (leaseRun.code === 0) {
      const i = leaseRun.stdout.lastIndexOf("hamalog-lease");
      lock = judgeLock(leaseRun.stdout.slice(0, Math.max(0, i)), leaseRun.stdout.slice(Math.max(0, i)));
    }
    let health: string | null = null;
    if (d.health.url) {
      try {
        const r = await remote.httpGet(d.health.url, 5000);
        health = `${d.health.url} → HTTP ${r.status}${r.status === d.health.expectStatus ? " (healthy)" : ` (expected ${d.health.expectStatus})`}`;
      } catch (e) {
        health = `${d.health.url} → no answer (${(e as Error).message})`;
      }
    }
    const history = lastEntries(entries, input.lines ?? 5);
    const live = j.live;
    rep.out(`[status] ${remote.label} ${l.dir} (project ${project}, service ${d.service})`);
    const blueGreen = await blueGreenStatus(s, j, obs.containers, entries);
    if (blueGreen) for (const line of blueGreen.lines) rep.out(line);
    else {
      rep.out(
        live
          ? `live: ${live.image} (journal, since ${live.since})\n  digest ${live.digest}\n  sha    ${live.sha}${live.fallback ? " (FALLBACK: latest was deployed for this sha)" : ""}\n  file   ${live.composeFile}${obs.adopted ? " (not adopted yet: the next deploy adopts history's release into the journal)" : ""}`
          : entries.length === 0
            ? `live: nothing deployed here yet (${l.history} on ${remote.label} has no history) — \`hamalog deploy\` makes the first release; if one was made, check deploy/directory`
            : "live: nothing (the journal has no live release)",
      );

      rep.out(
        container
          ? `container: ${container.state}, health ${container.health}, image ${container.image}${check.mismatches.length ? "" : " — matches the journal"}`
          : `container: none for ${d.service}`,
      );
      for (const m of check.mismatches) rep.out(`MISMATCH: ${m}`);
    }
    rep.out(
      lock
        ? `lock: held by ${lock.holder ? `${lock.holder.holder} (${lock.holder.action} of ${lock.holder.sha.slice(0, 12)} since ${lock.holder.since})` : "an unknown holder"}, ${lock.why}${lock.stale ? ` — STALE: the next deploy takes it over (lease ${LEASE_SECONDS}s) and reconciles` : ""}`
        : "lock: free",
    );
    rep.out(
      j.attempt
        ? `attempt: ${describeDead(j.attempt)}${lock && !lock.stale ? " (still running, or its holder is alive)" : " — NEEDS RECOVERY: the next deploy or rollback restores the live release first"}`
        : "attempt: none",
    );
    if (health) rep.out(`health: ${health}`);
    if (history.length > 0) rep.out(`last ${history.length} of ${entries.length} history line(s) (${l.history}):`);
    for (const e of history) {
      rep.out(
        `  ${e.time} ${e.action} ${e.sha.slice(0, 12)} ${e.digest.slice(0, 19)}… ${e.colour ? `${e.colour} ` : ""}${e.result}${e.fallback ? " fallback" : ""}${e.failedPhase ? ` (${e.interrupted ? "interrupted" : e.recovered ? "died" : "failed"} in ${e.failedPhase}${e.recovered ? ", recovered by the next run" : ""})` : ""} ${(e.durationMs / 1000).toFixed(1)}s`,
      );
    }
    const running: Running | null = live
      ? { sha: live.sha, digest: live.digest, image: live.image, ...(live.fallback ? { fallback: true } : {}) }
      : null;
    const mismatches = blueGreen ? blueGreen.mismatches : check.mismatches;
    return { running, container, mismatches, lock, attempt: j.attempt, health, history };
  });
}

/**
 * Blue/green: the journal's live colour and release against what the proxy routes to and what runs, the kept
 * colour (`previous`), the proxy. A host from before the journal shows the Caddyfile's route and history's release.
 * Undefined on a recreate host.
 */
async function blueGreenStatus(s: Session, j: Journal, seen: ContainerSeen[], entries: HistoryEntry[]) {
  const d = s.input.deploy;
  const view = await observe(s);
  const proxy = view.containers.get(PROXY_SERVICE);
  const jl = j.live?.colour ? j.live : null;
  if (!jl && j.strategy !== "blue-green" && !proxy) return undefined;
  const fromHistory = jl ? null : currentRelease(entries);
  const live = jl?.colour ?? view.caddyLive ?? fromHistory?.colour ?? null;
  const state = (c: Colour) => {
    const st = view.containers.get(colourService(d.service, c))?.state ?? "absent";
    return st === "exited" ? "stopped" : st;
  };
  const check = checkLive(j, seen, live ? [colourService(d.service, live)] : []);
  const mismatches = [...check.mismatches];
  if (jl && view.caddyLive !== jl.colour)
    mismatches.push(
      `the journal's live colour is ${jl.colour}, but the proxy routes to ${view.caddyLive ?? "nothing"}`,
    );
  if (jl && proxy?.state !== "running") mismatches.push(`the proxy ${PROXY_SERVICE} is ${proxy?.state ?? "absent"}`);
  const rel = jl ?? fromHistory;
  const lines = [`live: ${live ?? "none"}${live ? ` (${colourService(d.service, live)} ${state(live)})` : ""}`];
  if (rel)
    lines.push(
      `${jl ? `release (journal, since ${jl.since})` : "running (history; the next deploy writes the journal)"}: ${rel.image}`,
      `  digest ${rel.digest}`,
      `  sha    ${rel.sha}`,
    );
  const kept = j.previous?.colour ? j.previous : jl ? null : (entries.at(-1)?.kept ?? null);
  if (live) {
    const idle = other(live);
    lines.push(
      kept
        ? `kept: ${kept.colour ?? idle} ${kept.sha.slice(0, 12)} ${kept.digest.slice(0, 19)}… (${state(kept.colour ?? idle)}; \`hamalog rollback\` starts it)`
        : `kept: none (${colourService(d.service, idle)} ${state(idle)})`,
    );
  }
  lines.push(`proxy: ${proxy?.state ?? "absent"}, routes ${d.proxy.publish ?? "?"} → ${view.caddyLive ?? "nothing"}`);
  if (jl && mismatches.length === 0) lines.push("the proxy, the running colour and the journal agree");
  for (const m of mismatches) lines.push(`MISMATCH: ${m}`);
  return { lines, mismatches };
}

/** `Up 3 seconds (healthy)` → healthy; no parenthesis → no healthcheck. */
function healthOf(status: string): string {
  const m = /\((healthy|unhealthy|health: starting)\)/.exec(status);
  return m ? m[1]!.replace("health: ", "") : "no healthcheck";
}
