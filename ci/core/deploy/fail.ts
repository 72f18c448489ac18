// The frame's two recoveries. `reconcile`, first under the lock: a dead attempt in the journal (one the host could
// not recover by itself: a reboot, a killed agent) is recovered now, what killed runs leave behind is cleaned up,
// and a live release that drifted (stopped, routed elsewhere) is brought back. `fail`, the one failure path of
// every strategy: diagnostics, then the recovery the journal names, run by the host to its end — the same plan the
// host runs by itself when this client dies, so a Ctrl-C, a CI cancel, a kill or a dropped connection all end the
// same way. After promote the plan finishes the attempt forward instead of undoing it.
import { ConnectionLost, PipelineError } from "../errors.js";
import type { Attempt } from "./attempt.js";
import { colourService } from "./colours.js";
import { Fenced, Unrecorded } from "./host/host.js";
import { isTempName, type HostView } from "./host/view.js";
import { journalFiles, planRecovery, recoveryFiles } from "./recovery.js";
import { shortRelease } from "./release.js";
import type { Slot } from "./journal.js";
import { seconds } from "./report.js";
import { STRATEGY } from "./strategies.js";

export async function reconcile(a: Attempt): Promise<void> {
  const { rep } = a.s;
  const v = a.view;
  const j = v.journal;
  await rep.phase("reconcile", async () => {
    const did: string[] = [];
    const temp = v.containers.filter((c) => isTempName(c.name));
    if (v.logins.length || temp.length) {
      await a.exec({ op: "clean", args: [] }, "reconcile");
      if (temp.length) did.push(`removed ${temp.map((c) => c.name).join(", ")} (left mid-replacement)`);
      if (v.logins.length) did.push("removed a registry login a killed run left");
    }
    if (v.adopted && j.live) {
      a.write(j);
      await a.exec({ op: "adopt", args: [j.live.composeFile] }, "reconcile");
      did.push(`adopted the release history says runs (sha ${j.live.sha.slice(0, 12)}) into the journal`);
    }
    let recovered = false;
    if (j.attempt) {
      const dead = j.attempt;
      const why = `a ${dead.action} of ${shortRelease(dead.candidate)} by ${dead.holder} died in phase ${dead.phase}`;
      rep.warn(`RECOVERING: ${why}`);
      const facts = a.recoveryFacts(`${why}; recovered by the next run`);
      const { files, plan } = recoveryFiles(j, a.s.setting, facts);
      await a.exec({ op: "recover", args: ["reconcile", "keep"] }, "reconcile", { detach: true, files });
      a.journal = plan.journal;
      did.push(plan.describe);
      recovered = true;
    } else if (j.live) {
      const drift = STRATEGY[j.strategy].check(j.live, v, a.s.setting);
      if (drift.length) {
        rep.warn(`DRIFT: ${drift.join("; ")} — restoring the live release first`);
        const { files, plan } = recoveryFiles(j, a.s.setting, a.recoveryFacts("drift"));
        await a.exec({ op: "recover", args: ["drift", "keep"] }, "reconcile", { detach: true, files });
        did.push(plan.describe);
        recovered = true;
      }
    }
    // What strategies decide from (what runs, the proxy's ports) changed: read it again.
    if (recovered || did.length) a.view = { ...(await a.s.host.observe()), journal: a.journal };
    const live = a.journal.live;
    const state = live ? `live: ${shortRelease(live)}` : "nothing live yet";
    return {
      value: undefined,
      summary: did.length ? `${state}; ${did.join("; ")}` : `${state}; the host matches the journal`,
    };
  });
}

/** The candidate's service (what diagnostics look at). */
function candidateService(a: Attempt): string {
  return a.candidate.colour ? colourService(a.d.service, a.candidate.colour) : a.d.service;
}

/**
 * A step failed (or was interrupted, or the connection dropped): put the host right and say what it is left with.
 * Returns the error to throw (before promote) or to warn with (after).
 */
export async function fail(a: Attempt, e: unknown): Promise<PipelineError> {
  const { rep } = a.s;
  const err = e instanceof PipelineError ? e : new PipelineError((e as Error).message);
  const phase = err.phase ?? "?";
  const interrupted = a.s.input.signal?.aborted === true;
  const what = `${a.action} of ${a.candidate.image}`;
  rep.warn(`FAILED in phase ${phase}: ${rep.clean(err.message)}`);
  if (err instanceof Fenced) {
    a.heartbeat.stop();
    return new PipelineError(`${what} stopped in phase ${phase}: ${err.message}`, phase);
  }
  if (err instanceof ConnectionLost) return afterConnectionLost(a, err, phase);
  if (!interrupted && [...a.strategy.steps].some((s) => s.phase === phase && s.diagnose)) {
    const lines = await rep
      .phase("diagnostics", async () => ({
        value: await a.s.host.diagnose(a.candidate.composeFile, a.candidate.envFile, [candidateService(a)]),
        summary: `what ${a.s.host.label} looked like:`,
      }))
      .catch(() => [] as string[]);
    for (const l of lines) rep.out(l);
  }
  if (interrupted)
    rep.warn("interrupted: the host puts things right now (Ctrl-C again to stop waiting: it finishes all the same)");
  const facts = a.recoveryFacts(rep.clean(err.message), interrupted, phase, true);
  // What the client knows is true now, including what it has not written yet (a promote): the plan starts there.
  const now = a.current;
  const plan = planRecovery(now, a.s.setting, facts);
  // Set when the recovery's steps ran but the host could not record them (a read-only deploy directory).
  let unrecorded: string | undefined;
  try {
    const t = rep.clock.monotonic();
    await rep.phase("recover", async () => {
      try {
        await a.s.host.run(
          a.token,
          { op: "recover", args: ["client"] },
          {
            phase: "recover",
            detach: true,
            files: journalFiles(now, a.s.setting, facts),
            timeoutMs: (a.d.waitTimeout + 300) * 1000,
          },
        );
      } catch (e) {
        if (!(e instanceof Unrecorded)) throw e;
        unrecorded = e.message;
        return { value: undefined, summary: `${plan.describe} (${seconds(rep.clock.monotonic() - t)}); NOT recorded` };
      }
      return { value: undefined, summary: `${plan.describe} (${seconds(rep.clock.monotonic() - t)}); lock freed` };
    });
    a.heartbeat.stop();
  } catch (e2) {
    if (e2 instanceof ConnectionLost) return afterConnectionLost(a, e2, phase);
    if (e2 instanceof Fenced) {
      // Frozen (or cut off) past its lease: the host already recovered and another run may hold the lock now.
      a.heartbeat.stop();
      return new PipelineError(
        `${what} failed in phase ${phase}: ${err.message}
${e2.message}`,
        phase,
      );
    }
    const r = e2 as Error;
    rep.warn(`RECOVERY FAILED: ${rep.clean(r.message)}`);
    return new PipelineError(
      `${what} failed in phase ${phase}: ${err.message}\nthe recovery (${plan.describe}) FAILED too: ${r.message} — the journal still names the attempt, so the next deploy or rollback recovers again; see the diagnostics above and \`hamalog status\``,
      phase,
    );
  }
  // Say what the host is left with as it is, not as the plan meant it (a proxy killed meanwhile, say).
  const left = leftWith(a, plan.journal.live, plan.steps.length === 0 && !!plan.journal.live);
  const after = await a.s.host.observe().catch(() => undefined);
  const live = after?.journal.live;
  const wrong = after && live ? STRATEGY[after.journal.strategy].check(live, after, a.s.setting) : [];
  const record = unrecorded ? ` — but the host could not record it: ${unrecorded}` : "";
  return new PipelineError(
    `${what} failed in phase ${phase}: ${err.message}\n${left}${record}${wrong.length ? ` — BUT the host does not match: ${wrong.join("; ")} (the next deploy restores it first)` : ""}`,
    phase,
  );
}

function leftWith(a: Attempt, live: Slot | null, promotedAlready: boolean): string {
  if (promotedAlready || (live && live.digest === a.candidate.digest && live.colour === a.candidate.colour))
    return `${shortRelease(a.candidate)} is live; the host finished the attempt`;
  if (!live) return `${a.candidate.image} never went live; nothing was live before it (the candidate was removed)`;
  return `${a.candidate.image} never went live; ${shortRelease(live)} ${a.touched ? "serves again (restored)" : "kept serving"}`;
}

/** Pauses before each reconnect attempt (bounded: ~15 s in all). */
const RECONNECT_PAUSES_MS = [1000, 4000, 10_000];

/**
 * The connection dropped: the host saw its heartbeat's input end and runs the recovery by itself. Reconnect only to
 * see the outcome (the lock freed or taken over), and say it.
 */
async function afterConnectionLost(a: Attempt, err: PipelineError, phase: string): Promise<PipelineError> {
  const { rep } = a.s;
  const what = `${a.action} of ${a.candidate.image}`;
  // A bundle that did not unpack (a full disk) comes here over a connection that lives: fed on, the heartbeat would
  // keep the host waiting for this run while the candidate serves. Its input ends now (a no-op once the connection
  // is gone): the host recovers as after any run that went silent.
  a.heartbeat.stop();
  rep.warn(
    `${rep.clean(err.message)} — the host recovers by itself (its heartbeat saw the connection end); reconnecting to see the outcome`,
  );
  let last = err.message;
  for (const pause of RECONNECT_PAUSES_MS) {
    await rep.clock.sleep(pause);
    let host;
    try {
      host = a.s.host.withRemote(await a.s.env.connect());
    } catch (e) {
      last = (e as Error).message;
      continue;
    }
    try {
      const deadline = rep.clock.monotonic() + (a.d.waitTimeout + 120) * 1000;
      let v: HostView = await host.observe();
      while (ours(v, a.token) && rep.clock.monotonic() < deadline) {
        await rep.clock.sleep(1000);
        v = await host.observe();
      }
      if (ours(v, a.token))
        return new PipelineError(
          `${what} failed in phase ${phase}: ${err.message}\nthe host is still recovering after ${a.d.waitTimeout + 120}s — see \`hamalog status\``,
          phase,
        );
      a.seenAfterLoss = v;
      const h = v.history.at(-1);
      const live = v.journal.live;
      rep.out(
        `[connect] reconnected: the host recovered by itself${h?.error ? ` (${rep.clean(h.error).slice(0, 120)})` : ""}`,
      );
      return new PipelineError(
        `${what} failed in phase ${phase}: ${err.message}\n${live ? `the host recovered by itself: ${shortRelease(live)} is live` : "the host recovered by itself: nothing is live"}${v.journal.attempt ? " — but its journal still names an attempt: the next run recovers it" : ""}`,
        phase,
      );
    } catch (e) {
      last = (e as Error).message;
    } finally {
      host.remote.close();
    }
  }
  return new PipelineError(
    `${what} failed in phase ${phase}: ${err.message}\ncould not reconnect to ${a.s.host.label} (${rep.clean(last)}): the host recovers by itself — check with \`hamalog status\``,
    phase,
  );
}

/** The lock is still this attempt's (held with its token: its recovery has not finished). */
function ours(v: HostView, token: number): boolean {
  if (!v.lock) return false;
  try {
    return (JSON.parse(v.lock.holderText) as { token?: number }).token === token;
  } catch {
    return false;
  }
}
