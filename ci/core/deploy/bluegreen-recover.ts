// Blue/green when something goes wrong, and its dry run: a candidate that failed (or was interrupted) before it was
// proven live is removed after its diagnostics, the public route is switched back when it had moved, a recreate
// app being migrated is started again, the journal's attempt is ended (its `previous` cleared when the candidate
// took the kept colour's place); the run ends with "… never went live; … kept serving". A run that dies without
// getting here is recovered by the next one from the journal (recover.ts, bluegreen-reconcile.ts).
import { PipelineError } from "../errors.js";
import { startProxy, type Action, type Plan } from "./bluegreen.js";
import { caddyfile, colourService, other } from "./colours.js";
import { collectDiagnostics } from "./diagnostics.js";
import { endAttempt } from "./journal.js";
import { composeRun, observe, writeCaddyfile } from "./proxy.js";
import { saveJournal } from "./recover.js";
import { runningOf, type Release } from "./release.js";
import type { Outcome, Session } from "./session.js";
import { record, type Held } from "./steps.js";

/** Anything failed before the candidate was proven live: it is removed, the old colour (or app) serves. */
export async function recover(s: Session, held: Held, p: Plan, e: unknown): Promise<PipelineError> {
  const { rep } = s;
  const d = s.input.deploy;
  const err = e instanceof PipelineError ? e : new PipelineError((e as Error).message);
  const phase = err.phase ?? "?";
  const interrupted = s.input.signal?.aborted === true;
  rep.warn(`FAILED in phase ${phase}: ${rep.clean(err.message)}`);
  const calm: Session = { ...s, input: (({ signal: _s, ...rest }) => rest)(s.input) };
  const svc = colourService(d.service, p.candidate);
  const started = p.candidateStarted === true;
  if (started) {
    const diag = await rep.phase("diagnostics", async () => ({
      value: await collectDiagnostics(s.remote, {
        layout: s.l,
        project: s.project,
        composeFile: s.l.compose,
        service: svc,
        name: p.release.name,
        registry: s.input.image.registry,
        image: p.release.image,
        loggedIn: held.loggedIn,
      }),
      summary: `what ${s.remote.label} looked like:`,
    }));
    for (const line of diag) rep.out(line);
  }
  const old = p.legacy
    ? "the recreate-layout app"
    : p.live
      ? `${p.live} (${p.liveRelease?.sha.slice(0, 12) ?? "?"})`
      : null;
  if (p.switchedAt || p.legacyStopped) {
    await rep.phase("switch-back", async () => {
      if (p.legacy) {
        await startProxy(calm, p, false);
        await calm.remote.run(["docker", "start", p.legacy], { timeoutMs: 120_000 });
      } else await writeCaddyfile(calm, caddyfile(d, p.live, p.port), p.proxy, "switch-back");
      return { value: undefined, summary: `${d.proxy.publish} → ${old ?? "nothing (first release)"}` };
    });
  }
  if (started)
    await rep.phase("discard", async () => {
      await calm.remote.run(composeRun(calm, ["rm", "--stop", "--force", svc]), { timeoutMs: 300_000 });
      return { value: undefined, summary: `${svc} stopped and removed` };
    });
  // The candidate takes the idle colour, where the kept release was: once started, that one is gone.
  const kept = started ? null : held.kept;
  const j = held.journal;
  if (j?.attempt) {
    const gone = started && j.previous?.colour === p.candidate;
    await saveJournal(calm, held, { ...endAttempt(j), ...(gone ? { previous: null } : {}) }, false, "discard");
  }
  await record(calm, held, {
    result: "failed",
    running: held.attempt.previous,
    failedPhase: phase,
    error: rep.clean(err.message),
    colour: p.candidate,
    kept,
    ...(interrupted ? { interrupted } : {}),
  });
  const said = old
    ? `${p.release.image} never went live; ${old} kept serving`
    : `${p.release.image} never went live; nothing was live before it`;
  return new PipelineError(`${held.attempt.action} failed in phase ${phase}: ${err.message}\n${said}`, err.phase);
}

/** --dry-run: what would happen; nothing on the host changes. */
export async function plan(s: Session, release: Release, action: Action): Promise<Outcome> {
  const d = s.input.deploy;
  const view = await observe(s);
  const live = view.caddyLive;
  const cand = live ? other(live) : "blue";
  s.rep.out(`[plan] would ${action} ${release.image} on ${s.remote.label} as ${cand} (live now: ${live ?? "nothing"})`);
  s.rep.out(
    `[plan] phases: lock → login → pull → proxy (${d.proxy.image}, ${d.proxy.publish}) → candidate ${colourService(d.service, cand)} → candidate-health → switch → live-health → drain ${d.proxy.drainSeconds}s → retire ${live ?? "nothing"} → history → prune → unlock`,
  );
  s.rep.out("[plan] dry run: nothing on the host was changed");
  return { result: "dry-run", running: runningOf(release), fallback: release.fallback, durationMs: 0, compose: "" };
}
