// `status`: the truth about the host, read-only — the journal's live release against what actually runs (each
// disagreement a MISMATCH line), the strategy's own lines (blue/green: the colours, the kept one, the proxy's
// route), the accessories, the lock and its lease, an attempt that needs recovery, the health URL's answer and the
// last history lines. It changes nothing: recovery is the next deploy's or rollback's first step.
import { accessoriesOf } from "../compose.js";
import { lastEntries, type HistoryEntry } from "./history.js";
import type { LeaseSeen } from "./host/view.js";
import { containersOf, healthOf } from "./host/view.js";
import type { JournalAttempt } from "./journal.js";
import { describeHolder } from "./lock.js";
import { releaseOf, shortRelease, type Release } from "./release.js";
import { withSession, type DeployEnv, type DeployInput } from "./session.js";
import { STRATEGY } from "./strategies.js";
import { CHECK_PORT } from "./colours.js";

export interface StatusReport {
  /** The journal's live release (what passed its health gate last). */
  running: (Release & { colour?: "blue" | "green" }) | null;
  container: { state: string; health: string; image: string } | null;
  /** Where the journal and the host disagree; empty when they agree. */
  mismatches: string[];
  lock: LeaseSeen | null;
  /** An attempt whose run died (or runs now). */
  attempt: JournalAttempt | null;
  health: string | null;
  accessories: { service: string; state: string; health: string }[];
  history: HistoryEntry[];
  /** The lines printed, for the Dagger door's summary. */
  lines: string[];
}

export async function status(input: DeployInput & { lines?: number }, env: DeployEnv): Promise<StatusReport> {
  return withSession(input, env, async (s) => {
    const { rep, host, probe } = s;
    const d = input.deploy;
    const v = probe.view;
    const j = v.journal;
    const st = STRATEGY[j.strategy];
    const out: string[] = [];
    const say = (l: string) => (out.push(l), rep.out(l));
    say(
      `[status] ${host.label} ${host.dir} (project ${host.project}, service ${d.service}, strategy ${j.strategy}${j.strategy !== d.strategy ? `; the config says ${d.strategy}: the next deploy switches` : ""})`,
    );
    const live = j.live;
    if (live)
      say(
        `live: ${live.image} (journal, since ${live.since})\n  digest ${live.digest}\n  sha    ${live.sha}${live.fallback ? " (FALLBACK: latest was deployed for this sha)" : ""}\n  files  ${live.composeFile}${live.envFile ? ` + ${live.envFile}` : ""}${v.adopted ? " (not adopted yet: the next deploy writes the journal)" : ""}`,
      );
    else
      say(
        v.history.length === 0
          ? `live: nothing deployed here yet (no history in ${host.dir} on ${host.label}) — \`hamalog deploy\` makes the first release; if one was made, check deploy/directory`
          : "live: nothing (the journal has no live release)",
      );
    const part = st.status(j, v, s.setting);
    for (const l of part.lines) say(l);
    const mismatches = [...part.mismatches];
    if (!live) {
      const running = st.appContainers(v, s.setting).filter((c) => c.state === "running");
      if (running.length)
        mismatches.push(
          `the journal has no live release, but ${running.map((c) => `${c.name} runs ${c.image}`).join(", ")}`,
        );
    }
    const temp = v.containers.filter((c) => /^[0-9a-f]{12}_/.test(c.name));
    if (temp.length)
      mismatches.push(
        `compose left ${temp.map((c) => c.name).join(", ")} mid-replacement (the next deploy removes it)`,
      );
    if (mismatches.length === 0 && live) say("the host matches the journal");
    for (const m of mismatches) say(`MISMATCH: ${m}`);
    // An orchestrator's accessories are its services, not compose containers: its own status lines show them.
    const accessories = (st.composeHost ? accessoriesOf(input.compose, d.service) : []).map((svc) => {
      const c = containersOf(v, svc)[0];
      return { service: svc, state: c?.state ?? "absent", health: c ? healthOf(c.status) : "none" };
    });
    if (accessories.length)
      say(
        `accessories: ${accessories.map((a) => `${a.service} ${a.state}${a.health !== "none" ? ` (${a.health})` : ""}`).join(", ")}`,
      );
    const lock = v.lock;
    say(
      lock
        ? `lock: held by ${describeHolder(lock.holderText)}, ${lock.why}${lock.stale ? " — STALE: the next deploy takes it over and reconciles" : ""}`
        : "lock: free",
    );
    say(
      j.attempt
        ? `attempt: a ${j.attempt.action} of ${shortRelease(j.attempt.candidate)} by ${j.attempt.holder} (started ${j.attempt.startedAt}) in phase ${j.attempt.phase}${lock && !lock.stale ? " (running now)" : " — NEEDS RECOVERY: the next deploy or rollback recovers it first"}`
        : "attempt: none",
    );
    let health: string | null = null;
    const hp = live?.colour ? v.proxyPorts.get(CHECK_PORT.live) : undefined;
    const url =
      d.health.url && hp
        ? `http://${hp.replace(/^0\.0\.0\.0:/, "127.0.0.1:")}${new URL(d.health.url).pathname}`
        : d.health.url;
    if (url) {
      try {
        const r = await host.remote.httpGet(url, 5000);
        health = `${url} → HTTP ${r.status}${r.status === d.health.expectStatus ? " (healthy)" : ` (expected ${d.health.expectStatus})`}`;
      } catch (e) {
        health = `${url} → no answer (${(e as Error).message})`;
      }
      say(`health: ${health}`);
    }
    const history = lastEntries(v.history, input.lines ?? 5);
    if (history.length > 0) say(`last ${history.length} of ${v.history.length} history line(s):`);
    for (const e of history)
      say(
        `  ${e.time} ${e.action} ${e.sha.slice(0, 12)} ${e.digest.slice(0, 19)}… ${e.colour ? `${e.colour} ` : ""}${e.result}${e.fallback ? " fallback" : ""}${e.failedPhase ? ` (${e.interrupted ? "interrupted" : e.recovered ? "died" : "failed"} in ${e.failedPhase}${e.recovered ? ", recovered" : ""})` : ""} ${(e.durationMs / 1000).toFixed(1)}s`,
      );
    const app = st.appContainers(v, s.setting).find((c) => c.state === "running") ?? st.appContainers(v, s.setting)[0];
    return {
      running: live ? { ...releaseOf(live), ...(live.colour ? { colour: live.colour } : {}) } : null,
      container: app ? { state: app.state, health: healthOf(app.status), image: app.image } : null,
      mismatches,
      lock,
      attempt: j.attempt,
      health,
      accessories,
      history,
      lines: out,
    };
  });
}
