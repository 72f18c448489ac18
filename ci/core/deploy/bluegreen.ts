// The blue/green procedure (deploy/strategy blue-green), shared by deploy and rollback: lock → login → pull →
// proxy → candidate (the idle colour, pinned by digest) → candidate-health (through the proxy's check site for
// that colour, before any live traffic) → switch (atomic Caddyfile + graceful reload) → live-health (through the
// public route) → drain → retire (stop, but keep, the old colour) → history → prune. A candidate that fails never
// gets traffic; after the switch, a failure switches back to the old colour, which runs until the drain ends.
// The release journal (journal.ts) is written before each transition: the attempt (candidate colour and digest)
// before `candidate`, its phase before `switch`, live = candidate and previous = the kept colour once `live-health`
// passed, the phase before `retire`, no attempt at the end. A run that dies anywhere leaves the next run (reconcile,
// first thing under the lock) a deterministic recovery: route to the journal's live colour, restore it, remove
// the candidate.
import { PipelineError } from "../errors.js";
import { cmd } from "./commands.js";
import {
  caddyfile,
  colourService,
  other,
  PROXY_SERVICE,
  publicProbe,
  renderColours,
  upstreamPort,
  type Colour,
} from "./colours.js";
import { attemptOf, slotOf } from "./apply.js";
import type { HistoryEntry, Running } from "./history.js";
import { journalCmd } from "./journal-commands.js";
import { atPhase, beginAttempt, endAttempt, promote, releaseFile, type Slot } from "./journal.js";
import { reconcile, saveJournal } from "./recover.js";
import { composeRun, observe, proxyCmd, proxyUp, writeCaddyfile, type HostView, type ProxyRef } from "./proxy.js";
import { runningOf, type Release } from "./release.js";
import { seconds } from "./report.js";
import { must, type Outcome, type Session } from "./session.js";
import { healthGate, lock, login, pullIfMissing, recordAndPrune, unlock, type Held } from "./steps.js";
import { plan, recover } from "./bluegreen-recover.js";

export type Action = HistoryEntry["action"];

/** Where the host stands when the attempt starts, and what the attempt has changed so far. */
export interface Plan {
  release: Release;
  port: number;
  healthPath: string;
  /** The colour the public route serves now (null: nothing is live yet). */
  live: Colour | null;
  liveRelease: Running | null;
  candidate: Colour;
  /** A recreate-layout container that serves the public port itself (the first blue/green deploy migrates it). */
  legacy: string | null;
  /** A compose file is on the host (kept as compose.previous.yaml when replaced). */
  hadCompose: boolean;
  /** What runs now, by compose service (the proxy's id and definition hash, the old colour's id). */
  view: HostView;
  /** The proxy, once it runs with this attempt's definition. */
  proxy?: ProxyRef;
  /** Progress, for recovery: the candidate container was started; the legacy app was stopped; the route switched. */
  candidateStarted?: boolean;
  legacyStopped?: boolean;
  switchedAt?: string;
  /** The candidate's release file under releases/ (a copy of the compose file that starts it), once written. */
  file?: string;
}

export async function applyBlueGreen(s: Session, release: Release, action: Action): Promise<Outcome> {
  const d = s.input.deploy;
  const port = upstreamPort(s.input.compose, d.service);
  const healthPath = new URL(d.health.url!).pathname + new URL(d.health.url!).search;
  if (s.input.dryRun) return plan(s, release, action);
  const held = await lock(s, release, action);
  try {
    await reconcile(s, held);
    const p = await survey(s, held, release, port, healthPath);
    const now = () => s.rep.clock.now().toISOString();
    try {
      await login(s, held);
      await pullIfMissing(s, release);
      const proxy = await startProxy(s, p);
      const candidate: Slot = { ...slotOf(release, p.file!, now()), colour: p.candidate };
      const attempt = { ...attemptOf(s, held, action, candidate), phase: "candidate" };
      await saveJournal(
        s,
        held,
        beginAttempt({ ...held.journal!, strategy: "blue-green" }, attempt),
        true,
        "candidate",
      );
      await startCandidate(s, p);
      await candidateHealth(s, proxy.checkUrls[p.candidate]);
      await saveJournal(s, held, atPhase(held.journal!, "switch"), true, "switch");
      // Ctrl-C before the switch: the candidate goes, the live colour never changed.
      if (s.input.signal?.aborted) throw new PipelineError("interrupted before the switch", "switch");
      await switchTo(s, p);
      await liveHealth(s, p);
      // Live only once the journal says so (a failed write switches back); the attempt stays for drain and retire.
      const promoted = { ...promote(held.journal!, now()), attempt: { ...held.journal!.attempt!, phase: "drain" } };
      await saveJournal(s, held, promoted, true, "live-health");
    } catch (e) {
      throw await recover(s, held, p, e);
    }
    await drain(s);
    await saveJournal(s, held, atPhase(held.journal!, "retire"), false, "retire");
    await retire(s, p);
    await saveJournal(s, held, endAttempt(held.journal!), false, "retire");
    const running = { ...runningOf(release), colour: p.candidate };
    const kept = p.live && p.liveRelease ? { ...p.liveRelease, colour: p.live } : null;
    await recordAndPrune(s, held, {
      result: "success",
      running,
      colour: p.candidate,
      ...(p.switchedAt ? { switchedAt: p.switchedAt } : {}),
      kept,
      ...(s.input.signal?.aborted ? { interrupted: true } : {}),
    });
    const durationMs = s.rep.clock.monotonic() - s.started;
    s.rep.out(
      `${action === "deploy" ? "deployed" : "rolled back to"} ${release.image} (sha ${release.sha}) as ${p.candidate} in ${seconds(durationMs)}, no request dropped by the switch${kept ? `; ${p.live} is stopped and kept for an instant rollback` : ""}`,
    );
    return { result: "success", running, fallback: release.fallback, durationMs, compose: "" };
  } finally {
    await unlock(s, held);
  }
}

/**
 * What serves now: the journal's live colour and release (a host from before the journal: the Caddyfile's, else
 * history's), and a recreate-layout app to migrate.
 */
async function survey(s: Session, held: Held, release: Release, port: number, healthPath: string): Promise<Plan> {
  const view = await observe(s);
  const prev = held.attempt.previous;
  const j = held.journal?.live?.colour ? held.journal.live : null;
  // A recreate-layout app that runs while the proxy does not holds the public port: migrate it, whatever an old
  // Caddyfile from an earlier blue/green era says.
  const legacyC = view.containers.get(s.input.deploy.service);
  const proxyRuns = view.containers.get(PROXY_SERVICE)?.state === "running";
  const legacy = legacyC?.state === "running" && !proxyRuns ? legacyC.id : null;
  const live = legacy ? null : (j?.colour ?? view.caddyLive ?? prev?.colour ?? null);
  if (legacy)
    s.rep.out(`[migrate] ${s.input.deploy.service} runs in the recreate layout; it is stopped once, at the switch`);
  return {
    release,
    port,
    healthPath,
    live,
    liveRelease:
      j && j.colour === live
        ? { sha: j.sha, digest: j.digest, image: j.image, ...(j.fallback ? { fallback: true } : {}), colour: j.colour }
        : prev && (prev.colour === live || !prev.colour)
          ? prev
          : null,
    candidate: live ? other(live) : "blue",
    legacy,
    hadCompose: held.hadCompose,
    view,
  };
}

/**
 * Render both colours and the proxy, then make sure the proxy runs, routing the public port to what is live now.
 * A running proxy whose definition is unchanged (its label's hash) is left as it is: no container is touched.
 */
export async function startProxy(s: Session, p: Plan, withPublic = !p.legacy): Promise<ProxyRef> {
  const d = s.input.deploy;
  return s.rep.phase("proxy", async () => {
    const config = await writeFiles(s, p, withPublic, p.legacy ? null : p.live);
    const running = p.view.containers.get(PROXY_SERVICE);
    const same = running?.state === "running" && running.proxyConfig === config;
    p.proxy = await proxyUp(s, !same, p.healthPath);
    p.view.containers.set(PROXY_SERVICE, { state: "running", id: p.proxy.id, proxyConfig: config });
    return {
      value: p.proxy,
      summary: `${PROXY_SERVICE} (${d.proxy.image}${same ? ", unchanged" : ""}) routes ${d.proxy.publish} → ${p.live ?? "nothing yet"}`,
    };
  });
}

/** The compose file (both colours' pins, the proxy; previous kept) and the Caddyfile routing to `route`. */
async function writeFiles(s: Session, p: Plan, withPublic: boolean, route: Colour | null): Promise<string> {
  const d = s.input.deploy;
  const pins = {
    [p.candidate]: p.release.image,
    ...(p.live && p.liveRelease ? { [p.live]: p.liveRelease.image } : {}),
  };
  const rendered = renderColours(
    s.input.compose,
    d,
    pins,
    [
      `rendered by hamalog (blue/green): ${p.candidate} → sha ${p.release.sha}${p.live ? `, ${p.live} live` : ""}`,
      "do not edit: the next deploy replaces this file",
    ],
    withPublic,
  );
  for (const w of rendered.warnings) s.rep.warn(`WARNING: ${w}`);
  await must(s, cmd.write(s.l.next), `writing ${s.l.next}`, "proxy", { stdin: rendered.yaml });
  await must(s, cmd.switchCompose(s.project, s.l, p.hadCompose), "checking and switching the compose file", "proxy", {
    timeoutMs: 60_000,
  });
  p.hadCompose = true;
  // The journal names the candidate's release by this copy: compose.yaml is replaced by the next attempt.
  p.file ??= releaseFile(p.release.digest, rendered.yaml, p.candidate);
  await must(s, journalCmd.adopt(s.l, p.file), `keeping ${s.l.compose} as ${p.file}`, "proxy");
  // Written before the proxy (re)starts, so it starts with the routes that are true now.
  await writeCaddyfile(s, caddyfile(d, route, p.port), undefined, "proxy");
  return rendered.proxyConfig;
}

async function startCandidate(s: Session, p: Plan): Promise<void> {
  const d = s.input.deploy;
  const svc = colourService(d.service, p.candidate);
  await s.rep.phase("candidate", async () => {
    p.candidateStarted = true;
    await must(
      s,
      composeRun(s, ["up", "--detach", "--no-deps", "--wait", "--wait-timeout", String(d.waitTimeout), svc]),
      `starting ${svc}`,
      "candidate",
      {
        timeoutMs: (d.waitTimeout + 120) * 1000,
      },
    );
    return {
      value: undefined,
      summary: `${svc} runs ${p.release.image.split("@")[1]?.slice(0, 19)}… (no live traffic yet)`,
    };
  });
}

async function candidateHealth(s: Session, url: string): Promise<void> {
  await s.rep.phase("candidate-health", async () => ({
    value: undefined,
    summary: `${await healthGate(s, url, "candidate-health")} (check site, never the live route)`,
  }));
}

/** Route the public port to the candidate: one atomic Caddyfile replacement and a graceful reload; never interrupted halfway. */
async function switchTo(s: Session, p: Plan): Promise<void> {
  const d = s.input.deploy;
  await s.rep.phase("switch", async () => {
    if (p.legacy) {
      // Migration: the recreate app holds the public port until now. Its one stop, then the proxy (re-created
      // with the public port, routing to the candidate) takes the port.
      // Everything is written first and the check-only proxy removed (it serves nobody yet), so the outage is
      // just the old app's stop and the new proxy's start, in one remote command.
      await writeFiles(s, { ...p, live: p.candidate, liveRelease: null }, true, p.candidate);
      p.legacyStopped = true;
      await must(
        s,
        proxyCmd.migrate(s.project, s.l.compose, p.legacy),
        (step) => `${step ?? "migrating"} on the way to blue/green`,
        "switch",
        {
          timeoutMs: 180_000,
        },
      );
      p.proxy = await proxyUp(s, false, p.healthPath);
      p.view.containers.delete(PROXY_SERVICE); // re-created: a recovery must not take it for unchanged
    } else {
      await writeCaddyfile(s, caddyfile(d, p.candidate, p.port), p.proxy, "switch");
    }
    p.switchedAt = s.rep.clock.now().toISOString();
    return { value: undefined, summary: `${d.proxy.publish} → ${p.candidate}${p.live ? ` (was ${p.live})` : ""}` };
  });
}

async function liveHealth(s: Session, p: Plan): Promise<void> {
  const { host, port } = publicProbe(s.input.deploy.proxy.publish!);
  const url = `http://${host}:${port}${p.healthPath}`;
  await s.rep.phase("live-health", async () => ({
    value: undefined,
    summary: s.input.deploy.proxy.domain
      ? "domain site: checked through the check site"
      : await healthGate(s, url, "live-health"),
  }));
}

/** Let the old colour finish what it serves; Ctrl-C cuts the wait short (the new colour is live and healthy). */
async function drain(s: Session): Promise<void> {
  const secs = s.input.deploy.proxy.drainSeconds;
  await s.rep.phase("drain", async () => {
    const end = s.rep.clock.monotonic() + secs * 1000;
    // Even cut short, requests the old colour accepted just before the switch get a second to finish.
    const floor = s.rep.clock.monotonic() + Math.min(secs, 1) * 1000;
    while (s.rep.clock.monotonic() < end && (!s.input.signal?.aborted || s.rep.clock.monotonic() < floor))
      await s.rep.clock.sleep(Math.min(250, end - s.rep.clock.monotonic()));
    const cut = s.input.signal?.aborted ? " (interrupted: cut short, the new colour is live)" : "";
    return { value: undefined, summary: `${secs}s for in-flight requests on the old colour${cut}` };
  });
}

/** Stop the old colour but keep its container (an instant rollback); a migrated recreate container is removed. */
async function retire(s: Session, p: Plan): Promise<void> {
  const d = s.input.deploy;
  await s.rep.phase("retire", async () => {
    if (p.legacy) {
      await s.remote.run(["docker", "rm", "--force", p.legacy], { timeoutMs: 120_000 });
      return { value: undefined, summary: `removed the recreate-layout container of ${d.service} (migrated)` };
    }
    if (!p.live) return { value: undefined, summary: "first blue/green release: no old colour" };
    const svc = colourService(d.service, p.live);
    // Compose gave the container its stop_grace_period as its stop timeout: `docker stop` honours it.
    const old = p.view.containers.get(svc);
    await s.remote.run(old ? ["docker", "stop", old.id] : composeRun(s, ["stop", svc]), { timeoutMs: 300_000 });
    return { value: undefined, summary: `${svc} stopped and kept (rollback starts it again)` };
  });
}
