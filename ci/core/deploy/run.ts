// The deploy core's two entries, shared by both doors: `deploy` (a commit's image, verified to a digest first)
// and `rollback` (the journal's previous release, or one from history). Each opens a session, finds its release in
// `preflight`, and hands it to the one attempt frame (attempt.ts) — unless it is a dry run, or the release is
// already live and healthy (a re-run changes nothing; --force replaces it).
import { accessoriesOf, memoryLimit } from "../compose.js";
import { ConfigError, PipelineError } from "../errors.js";
import type { Sha } from "../tags.js";
import { phasesOf, runAttempt } from "./attempt.js";
import { rollbackTarget, successfulReleases, type RollbackTo } from "./history.js";
import type { Slot } from "./journal.js";
import { planRecovery } from "./recovery.js";
import { preflight } from "./preflight.js";
import { releaseOf, shortRelease, type Release } from "./release.js";
import { withSession, type DeployEnv, type DeployInput, type Outcome, type Session } from "./session.js";
import { STRATEGY } from "./strategies.js";
import type { Placement, Strategy } from "./strategy.js";
import { CHECK_PORT, colourService } from "./colours.js";

export type { DeployEnv, DeployInput, Outcome } from "./session.js";

const MiB = 1024 * 1024;

/** Deploy the image built from `sha` (its sha tag, verified to a digest first). */
export function deploy(input: DeployInput & { sha: Sha }, env: DeployEnv): Promise<Outcome> {
  return withSession(
    input,
    env,
    async (s) => {
      const st = STRATEGY[input.deploy.strategy];
      const release = await s.rep.phase("preflight", async () => {
        const r = await preflight(
          s.host.remote,
          {
            registry: input.image.registry,
            repository: input.image.repository,
            sha: input.sha,
            fallback: input.deploy.fallback,
            ...(input.credentials ? { credentials: input.credentials } : {}),
            ...(input.deploy.platform ? { platform: input.deploy.platform } : {}),
            ...(s.probe.platform ? { hostInfo: s.probe.platform } : {}),
            ...(input.signal ? { signal: input.signal } : {}),
            ...(input.deploy.health.url ? { healthUrl: input.deploy.health.url } : {}),
          },
          env.verify,
          s.rep,
        );
        return { value: r, summary: `${r.image}${r.fallback ? " (FALLBACK to latest)" : ""}${memoryNote(s, st)}` };
      });
      return start(s, st, "deploy", release);
    },
    { wantPlatform: !input.deploy.platform },
  );
}

/** Go back to `to` (a sha or digest from history), or to the journal's previous release; same frame, same gates. */
export function rollback(input: DeployInput & { to?: RollbackTo }, env: DeployEnv): Promise<Outcome> {
  return withSession(input, env, async (s) => {
    const st = STRATEGY[input.deploy.strategy];
    const { release, reuse } = await s.rep.phase("preflight", async () => {
      const j = s.probe.view.journal;
      const entries = s.probe.view.history;
      const prev = j.previous;
      const matches = (x: Slot) =>
        !input.to || (input.to.digest ? x.digest === input.to.digest : !x.fallback && x.sha.startsWith(input.to.sha!));
      // The journal's previous release runs from its own files (its environment as it ran): reused as it is.
      const fromJournal = prev && matches(prev) ? prev : null;
      const r = fromJournal
        ? releaseOf(fromJournal)
        : (() => {
            const h = rollbackTarget(entries, input.to, j.live?.digest);
            return h ? releaseOf(h) : undefined;
          })();
      if (!r) {
        const known = successfulReleases(entries).map(
          (x) => `${x.sha.slice(0, 12)}${x.fallback ? " (as latest fallback)" : ""} ${x.digest.slice(0, 19)}…`,
        );
        throw new PipelineError(
          input.to
            ? `no successful deploy of \`${input.to.text}\` in the history on ${s.host.label} (deployed: ${known.join(", ") || "none"}) — nothing was changed`
            : `nothing to roll back to: the history on ${s.host.label} has no earlier successful deploy (deployed: ${known.join(", ") || "none"})`,
          "preflight",
        );
      }
      return {
        value: { release: r, reuse: fromJournal },
        summary: `${shortRelease(r)} from ${fromJournal ? `the journal (${fromJournal.colour ? `the kept colour ${fromJournal.colour}` : "the previous release"})` : "history"}${memoryNote(s, st)}`,
      };
    });
    return start(s, st, "rollback", release, reuse ?? undefined);
  });
}

/** The memory two colours need against what the host has (blue/green); fails when even one more does not fit. */
function memoryNote(s: Session, st: Strategy): string {
  if (st.name !== "blue-green" || s.probe.memAvailable === undefined) return "";
  const have = Math.round(s.probe.memAvailable / MiB);
  const limit = memoryLimit(s.input.compose, s.input.deploy.service);
  if (limit === undefined)
    return `; memory: ${have} MiB available (the app sets no deploy.resources.limits.memory: two colours' need is unknown)`;
  const need = Math.round(limit / MiB);
  if (s.probe.memAvailable < limit)
    throw new PipelineError(
      `${s.host.label} has ${have} MiB of memory available, and the candidate colour may use up to ${need} MiB (the app's deploy.resources.limits.memory) beside the live one: it does not fit. Free memory on the host, lower the limit, or deploy with deploy/strategy recreate — nothing was changed`,
      "preflight",
    );
  const warm = s.input.deploy.proxy.warmSeconds;
  return `; memory: ${have} MiB available, a second colour needs up to ${need} MiB (during the deploy${warm ? ` and ${warm}s after, while the old one stays warm` : ""})`;
}

async function start(
  s: Session,
  st: Strategy,
  action: "deploy" | "rollback",
  release: Release,
  reuse?: Slot,
): Promise<Outcome> {
  const input = s.input;
  const unknown = (input.recreateAccessories ?? []).filter(
    (x) => !accessoriesOf(input.compose, input.deploy.service).includes(x),
  );
  if (unknown.length)
    throw new ConfigError(
      `--recreate-accessory: ${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not an accessory of the template (its other services: ${accessoriesOf(input.compose, input.deploy.service).join(", ") || "none"}) — nothing was changed`,
    );
  const now = s.env.clock.now().toISOString();
  const view = s.probe.view;
  // Some strategies cannot take over from each other in one deploy (a stack on a Swarm manager and a compose app).
  const from = view.journal.live ? view.journal.strategy : undefined;
  const refused =
    from && from !== st.name ? (st.cannotSwitch?.(from) ?? STRATEGY[from].cannotSwitch?.(st.name)) : undefined;
  if (refused) throw new ConfigError(refused);
  // A kept release runs from its own files (and env file) when it fits this strategy: placing it again needs no
  // environment. Anything else is rendered with the app's environment (read now: a missing secret stops here).
  const bare = reuse ? st.place({ ...s.setting, env: () => undefined }, release, view, now) : undefined;
  const fits =
    reuse &&
    bare &&
    (st.reuses ? st.reuses(reuse) : st.name === "blue-green" ? reuse.colour === bare.slot.colour : !reuse.colour);
  const placement: Placement =
    fits && bare && reuse
      ? { ...bare, slot: { ...reuse, since: now }, files: [] }
      : st.place(s.setting, release, view, now);
  for (const w of placement.warnings) s.rep.warn(`WARNING: ${w}`);
  if (s.input.dryRun) return dryRun(s, st, action, release, placement);
  if (!s.input.force) {
    const same = await alreadyLive(s, st, release, placement);
    if (same) return same;
  }
  return runAttempt(s, st, action, release, placement);
}

/**
 * The release is live, placed the same way (same files: same template and environment), the host matches the
 * journal and the app answers: nothing to do.
 */
async function alreadyLive(s: Session, st: Strategy, release: Release, placement: Placement): Promise<Outcome | null> {
  const v = s.probe.view;
  const live = v.journal.live;
  if (!live || v.journal.attempt || v.lock || live.digest !== release.digest) return null;
  if (v.journal.strategy !== st.name) return null;
  const same = live.colour ? st.place(s.setting, release, v, live.since, live.colour) : placement;
  if (live.composeFile !== same.slot.composeFile) return null;
  if (st.check(live, v, s.setting).length) return null;
  const d = s.input.deploy;
  const hp = live.colour ? v.proxyPorts.get(CHECK_PORT.live) : undefined;
  const url =
    live.colour && hp && d.health.url
      ? `http://${hp.replace(/^0\.0\.0\.0:/, "127.0.0.1:")}${new URL(d.health.url).pathname}`
      : d.health.url;
  let answer = "compose's healthcheck";
  if (url) {
    try {
      const r = await s.host.remote.httpGet(url, 5000);
      if (r.status !== d.health.expectStatus) return null;
      answer = `${url} → HTTP ${r.status}`;
    } catch {
      return null;
    }
  }
  s.rep.out(
    `already live: ${live.image} (sha ${live.sha})${live.colour ? ` as ${colourService(d.service, live.colour)}` : ""} since ${live.since}, healthy (${answer}) — nothing changed; --force replaces it`,
  );
  return {
    result: "already-live",
    running: { ...releaseOf(live), ...(live.colour ? { colour: live.colour } : {}) },
    durationMs: s.rep.clock.monotonic() - s.started,
    compose: "",
    changes: [],
  };
}

/** --dry-run: what would happen, from the strategy's own step list; nothing on the host changes. */
function dryRun(s: Session, st: Strategy, action: string, release: Release, p: Placement): Outcome {
  const { rep, host, probe } = s;
  const d = s.input.deploy;
  const v = probe.view;
  rep.out(
    `[plan] would ${action} ${release.image} on ${host.label} in ${host.dir} (project ${host.project}, service ${d.service}, strategy ${st.name}${p.slot.colour ? `, as ${p.slot.colour}` : ""})`,
  );
  if (v.lock) rep.out(`[plan] the lock is held now (${v.lock.why}): a real run would wait or take it over`);
  if (v.journal.attempt) {
    const plan = planRecovery(v.journal, s.setting, {
      time: s.env.clock.now(),
      holder: s.input.holder,
      error: "dry run",
    });
    rep.out(
      `[plan] reconcile: a dead attempt — ${plan.describe}: ${plan.steps.map((x) => x.why).join("; ") || "nothing to run"}`,
    );
  } else if (v.journal.live) {
    const drift = STRATEGY[v.journal.strategy].check(v.journal.live, v, s.setting);
    rep.out(
      `[plan] reconcile: ${drift.length ? `restore the live release first (${drift.join("; ")})` : "the host matches the journal"}`,
    );
  }
  if (p.migrating)
    rep.out(
      `[plan] migrate: ${p.migrating} runs in the recreate layout; the proxy takes over its name${d.proxy.publish ? " and port (one stop of it, at the switch)" : ""}`,
    );
  const present = v.images.includes(release.digest);
  // An orchestrator's nodes pull for themselves: the host's images say nothing about them.
  if (st.composeHost) rep.out(`[plan] pull: ${present ? "skipped (the digest is on the host)" : "needed"}`);
  rep.out("[plan] phases:");
  for (const x of phasesOf(st)) rep.out(`[plan]   ${x.phase.padEnd(16)} ${x.does}`);
  rep.out(
    `[plan] ${p.files.length ? "would write" : "runs from"} ${p.slot.composeFile}${p.slot.envFile ? ` and ${p.slot.envFile} (mode 0600, values not shown)` : ""}:`,
  );
  for (const line of rep.clean(p.compose).trimEnd().split("\n")) rep.out(`  ${line}`);
  rep.out("[plan] dry run: nothing on the host was changed");
  return {
    result: "dry-run",
    running: { ...release, ...(p.slot.colour ? { colour: p.slot.colour } : {}) },
    durationMs: rep.clock.monotonic() - s.started,
    compose: rep.clean(p.compose),
    changes: [],
  };
}
