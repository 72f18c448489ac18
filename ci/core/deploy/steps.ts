// The steps every deploy procedure shares, each a small named function: lock, login, pull-if-missing, the HTTP
// health gate, record (history) and prune, unlock. The procedures (apply.ts) compose them in a few lines.
import { PipelineError } from "../errors.js";
import { cmd, HISTORY_MARK, IMAGE_PRESENT, IMAGES_MARK } from "./commands.js";
import { waitHealthy } from "./health.js";
import {
  currentRelease,
  digestsToKeep,
  historyEntry,
  historyLine,
  parseHistory,
  type Attempt,
  type Ending,
  type HistoryEntry,
  type Running,
} from "./history.js";
import { journalCmd } from "./journal-commands.js";
import type { Journal } from "./journal.js";
import { acquireLock, releaseLock, startHeartbeat, type Heartbeat } from "./lock.js";
import type { Remote } from "./remote.js";
import type { Release } from "./release.js";
import { must, type DeployPhase, type Session } from "./session.js";

/** An attempt that holds the lock: what it found under the lock, and what it has done so far. */
export interface Held {
  attempt: Attempt;
  lockId: string;
  /** A compose file ran before this attempt (recreate: there is something to roll back to). */
  hadCompose: boolean;
  /**
   * The deploy's registry login may be in place: set before the login runs, so a login that fails halfway is
   * logged out too. Logged out right after the pull, or by the unlock (logging out of nothing is harmless).
   */
  loggedIn: boolean;
  /** Blue/green: the stopped colour the last attempt kept (for an instant rollback), from history. */
  kept: Running | null;
  /** The release journal as last read or written (reconcile sets it). */
  journal?: Journal;
  /** Feeds the lock's lease while this run's connection lives. */
  heartbeat?: Heartbeat;
  /** Connections opened by reconnects (closed when the procedure ends). */
  remotes: Remote[];
}

export async function lock(s: Session, release: Release, action: HistoryEntry["action"]): Promise<Held> {
  const { input, rep, remote, l } = s;
  const clock = rep.clock;
  const lockId = s.env.attemptId();
  return rep.phase("lock", async () => {
    const got = await acquireLock(remote, l, clock, {
      holder: { holder: input.holder, sha: release.sha, since: clock.now().toISOString(), action, id: lockId },
      ...(input.lockWaitSeconds !== undefined ? { waitSeconds: input.lockWaitSeconds } : {}),
      ...(input.breakLock ? { breakLock: true } : {}),
      ...(input.signal ? { signal: input.signal } : {}),
      onWait: (who) => rep.out(`[lock] waiting up to ${input.lockWaitSeconds}s for the lock ${l.lock}, held by ${who}`),
    });
    if (got.note) rep.warn(`WARNING: ${got.note}`);
    const entries = parseHistory(got.history);
    const previous = currentRelease(entries);
    return {
      value: {
        attempt: { action, release, previous, holder: input.holder },
        lockId,
        hadCompose: got.hadCompose,
        loggedIn: false,
        kept: entries.at(-1)?.kept ?? null,
        heartbeat: startHeartbeat(remote, l, lockId),
        remotes: [],
      },
      summary: `${l.lock} held by ${input.holder} (its lease renewed while connected)`,
    };
  });
}

/** Log the host in to the registry (token on stdin, into the deploy's own Docker config); nothing without credentials. */
export async function login(s: Session, held: Held): Promise<void> {
  const { input, rep, l } = s;
  const creds = input.credentials;
  if (!creds) return;
  await rep.phase("login", async () => {
    held.loggedIn = true;
    await must(
      s,
      cmd.login(l, input.image.registry, creds.username),
      (step) => (step === "config-dir" ? `creating ${l.dockerConfig}` : `\`docker login ${input.image.registry}\``),
      "login",
      // Not cut short by Ctrl-C: the login would still finish on the host after we stopped listening, and the
      // unlock's logout must come after it, not race it.
      { stdin: `${creds.password}\n`, timeoutMs: 60_000, uninterruptible: true },
    );
    return {
      value: undefined,
      summary: `${creds.username} @ ${input.image.registry} (token on stdin, config in ${l.dockerConfig})`,
    };
  });
}

/** Log out as soon as nothing needs the registry any more (after the pull): a killed deploy leaves no token behind. */
export async function logout(s: Session, held: Held): Promise<void> {
  if (!held.loggedIn) return;
  const r = await s.remote.run(journalCmd.logout(s.l, s.input.image.registry), { timeoutMs: 30_000 });
  if (r.code === 0) held.loggedIn = false;
  else s.rep.warn(`WARNING: could not log out of ${s.input.image.registry} on ${s.remote.label}: ${r.stderr.trim()}`);
}

export async function pullIfMissing(s: Session, release: Release): Promise<void> {
  await s.rep.phase("pull", async () => {
    const ref = `${release.name}@${release.digest}`;
    const out = await must(
      s,
      cmd.pullMissing(s.l, ref, s.input.deploy.pullStallTimeout),
      `\`docker pull ${ref}\``,
      "pull",
      { timeoutMs: 30 * 60_000 },
    );
    if (out.trim() === IMAGE_PRESENT)
      return { value: undefined, summary: `skipped: ${release.digest.slice(0, 19)}… already on the host` };
    return { value: undefined, summary: `pulled ${ref}` };
  });
}

/** GET `url` from the host until it answers deploy/health/expectStatus (or the timeout passes: the phase fails). */
export async function healthGate(s: Session, url: string, phase: DeployPhase): Promise<string> {
  const d = s.input.deploy;
  const h = await waitHealthy(
    s.remote,
    { url, timeout: d.health.timeout, interval: d.health.interval, expectStatus: d.health.expectStatus },
    s.rep.clock,
    s.input.signal,
  );
  if (!h.ok) {
    if (s.input.signal?.aborted) throw new PipelineError(`interrupted while waiting for ${url}`, phase);
    throw new PipelineError(
      `${url} did not answer ${d.health.expectStatus} within ${d.health.timeout}s (${h.attempts} probes; last: ${h.last}) — raise deploy/health/timeout if the app just starts slowly`,
      phase,
    );
  }
  return `${url} → ${h.last.slice(0, 80)} after ${h.attempts} probe(s)`;
}

/**
 * Append the attempt's history line; with `list`, in the same session read back the history and this repository's
 * images (what prune needs). A failed append is a warning: the deploy itself already happened.
 */
export async function record(
  s: Session,
  held: Held,
  end: Ending,
  list = false,
): Promise<{ history: string; images: string } | undefined> {
  const { rep, remote, l } = s;
  const entry = historyEntry(held.attempt, end, rep.clock.now(), rep.clock.monotonic() - s.started);
  const name = held.attempt.release.name;
  const r = await remote.run(list ? cmd.appendAndList(l, name) : cmd.append(l.history), {
    stdin: rep.clean(historyLine(entry)),
  });
  if (r.code !== 0) rep.warn(`WARNING: could not append to ${l.history}: ${r.stderr.trim()}`);
  return list ? splitListing(r.stdout) : undefined;
}

/** Record the success, then remove this repository's images beyond the last deploy/keepImages deployed digests. */
export async function recordAndPrune(s: Session, held: Held, end: Ending): Promise<void> {
  const { rep, remote } = s;
  const keepImages = s.input.deploy.keepImages;
  const listed = await rep.phase("history", async () => {
    const got = await record(s, held, end, true);
    return { value: got, summary: `appended to ${s.l.history}` };
  });
  await rep.phase("prune", async () => {
    const keep = digestsToKeep(parseHistory(listed?.history ?? ""), keepImages);
    // What the journal may still restore is never pruned.
    for (const slot of [held.journal?.live, held.journal?.previous]) if (slot) keep.add(slot.digest);
    const digests = new Set(
      (listed?.images ?? "")
        .split("\n")
        .map((x) => x.split(" ")[1] ?? "")
        .filter((x) => x.startsWith("sha256:")),
    );
    const name = held.attempt.release.name;
    const refs = [...digests].filter((digest) => !keep.has(digest)).map((digest) => `${name}@${digest}`);
    const removed = refs.length
      ? (await remote.run(cmd.imagesRemove(refs))).stdout.split("\n").filter((x) => refs.includes(x))
      : [];
    return {
      value: undefined,
      summary: removed.length
        ? `removed ${removed.length} image(s) beyond the last ${keepImages} deployed`
        : `nothing beyond the last ${keepImages} deployed digests`,
    };
  });
}

/** Release the lock (logging out first when this attempt logged in); never throws: the outcome is already decided. */
export async function unlock(s: Session, held: Held): Promise<void> {
  const { rep, remote, l } = s;
  held.heartbeat?.stop();
  await releaseLock(remote, l, held.lockId, held.loggedIn ? s.input.image.registry : undefined).then(
    (note) => note && rep.warn(`WARNING: ${note}`),
    (e) =>
      rep.warn(
        `WARNING: could not release ${l.lock}: ${(e as Error).message} — the next deploy takes it over once its holder is gone`,
      ),
  );
}

/** The history script's output (cmd.appendAndList): the history file's text and the image list. */
function splitListing(stdout: string): { history: string; images: string } {
  const h = stdout.indexOf(`${HISTORY_MARK}\n`);
  const i = stdout.lastIndexOf(`\n${IMAGES_MARK}\n`);
  if (h < 0 || i < h) return { history: "", images: "" };
  return {
    history: stdout.slice(h + HISTORY_MARK.length + 1, i + 1),
    images: stdout.slice(i + IMAGES_MARK.length + 2),
  };
}
