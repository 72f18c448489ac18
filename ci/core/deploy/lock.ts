// The deploy lock: a directory in the deploy directory (mkdir is atomic), holding holder.json with who, which
// sha, when, and this attempt's id. A second deploy fails fast naming the holder, or waits up to --lock-wait;
// --break-lock removes a stale lock explicitly (and says whose it was). Release removes the lock only while its
// holder.json still carries our id, so a deploy whose lock was broken cannot delete the next holder's lock.
import { PipelineError } from "../errors.js";
import { cmd, LOCK_EXIT, lockIdField, type Layout } from "./commands.js";
import { journalCmd, LEASE_MARK } from "./journal-commands.js";
import type { Remote } from "./remote.js";
import type { Clock } from "./report.js";

export interface LockHolder {
  holder: string;
  sha: string;
  since: string;
  action: string;
  /** Unique per attempt (the doors pass a random UUID): release checks it. */
  id: string;
}

export interface LockOptions {
  holder: LockHolder;
  waitSeconds?: number;
  breakLock?: boolean;
  signal?: AbortSignal;
  /** Told once, when the lock is held and waitSeconds > 0: who holds it. */
  onWait?: (holder: string) => void;
}

/** Who holds the lock, from the text of its holder.json (empty: there was none). */
function describeHolder(text: string): string {
  if (text.trim() === "") return "an unknown holder (no holder.json: the lock is being created or was left half-made)";
  try {
    const h = JSON.parse(text) as LockHolder;
    return `${h.holder} (${h.action} of ${h.sha.slice(0, 12)} since ${h.since})`;
  } catch {
    return "an unknown holder (unreadable holder.json)";
  }
}

/** The lock script's "held" output: holder.json's text, then the lease line (journal-commands.ts LEASE_FACTS). */
function splitHeld(stdout: string): { holder: string; facts: string } {
  const i = stdout.lastIndexOf(LEASE_MARK);
  return i < 0 ? { holder: stdout, facts: "" } : { holder: stdout.slice(0, i), facts: stdout.slice(i) };
}

/** What the lock script read under the lock: whether a compose file runs there, and the history file's text. */
export interface Locked {
  /** Set when a stale lock was broken (--break-lock): whose it was. */
  note: string | undefined;
  hadCompose: boolean;
  history: string;
}

/**
 * Acquire the lock — one remote session in the common case: the deploy directory, the lock, holder.json, and what
 * the deploy needs to read under the lock (see cmd.lockAcquire).
 */
export async function acquireLock(remote: Remote, l: Layout, clock: Clock, opts: LockOptions): Promise<Locked> {
  let note: string | undefined;
  if (opts.breakLock) {
    const b = await remote.run(cmd.lockBreak(l));
    if (b.code !== LOCK_EXIT.absent) note = `broke the lock held by ${describeHolder(b.stdout)}`;
  }
  const deadline = clock.monotonic() + (opts.waitSeconds ?? 0) * 1000;
  let waiting = false;
  let retried = false;
  for (;;) {
    const r = await remote.run(cmd.lockAcquire(l), { stdin: `${JSON.stringify(opts.holder)}\n` });
    if (r.code === LOCK_EXIT.ok) {
      const nl = r.stdout.indexOf("\n");
      return { note, hadCompose: r.stdout.slice(0, nl) === "compose-present", history: r.stdout.slice(nl + 1) };
    }
    if (r.code === LOCK_EXIT.holderUnwritable)
      throw new PipelineError(`cannot write ${l.lockHolder} on ${remote.label}: ${r.stderr.trim()}`, "lock");
    if (r.code === LOCK_EXIT.absent) {
      // The holder released it between our mkdir and its check: try again at once. Failing twice with no lock
      // there is a real failure (permissions, a read-only filesystem).
      if (!retried) {
        retried = true;
        continue;
      }
      throw new PipelineError(
        `cannot create the lock ${l.lock} on ${remote.label}: ${r.stderr.trim()} — check that ${l.dir} is writable`,
        "lock",
      );
    }
    if (r.code !== LOCK_EXIT.held) {
      const detail = (r.stderr || r.stdout).trim().split("\n").slice(-8).join("\n");
      throw new PipelineError(`creating ${l.dir} failed on ${remote.label} (exit ${r.code}): ${detail}`, "lock");
    }
    retried = false;
    const held = splitHeld(r.stdout);
    const judged = judgeLock(held.holder, held.facts);
    if (judged.stale) {
      // Dead holder: take the lock over in place (one taker wins) and let the procedure reconcile.
      const t = await remote.run(journalCmd.lockTakeover(l, judged.holder ? lockIdField(judged.holder.id) : ""), {
        stdin: `${JSON.stringify(opts.holder)}\n`,
      });
      if (t.code === 0) {
        const nl = t.stdout.indexOf("\n");
        return {
          note: `took over the stale lock of ${describeHolder(held.holder)}: ${judged.why}`,
          hadCompose: t.stdout.slice(0, nl) === "compose-present",
          history: t.stdout.slice(nl + 1),
        };
      }
      if (t.code !== LOCK_EXIT.held)
        throw new PipelineError(
          `cannot take over the stale lock ${l.lock} on ${remote.label}: ${t.stderr.trim()}`,
          "lock",
        );
      continue;
    }
    const who = `${describeHolder(held.holder)}, ${judged.why}`;
    if (opts.signal?.aborted) throw new PipelineError("interrupted while waiting for the lock", "lock");
    if (clock.monotonic() >= deadline) {
      throw new PipelineError(
        `another deploy holds the lock ${l.lock} on ${remote.label}: ${who}. ` +
          "Wait for it (or pass --lock-wait SECONDS); a dead holder's lock is taken over once its lease lapses " +
          `(${LEASE_SECONDS}s without renewal); only a holder stuck while alive needs --break-lock`,
        "lock",
      );
    }
    if (!waiting) {
      waiting = true;
      opts.onWait?.(who);
    }
    await clock.sleep(1000);
  }
}

/**
 * Release our lock, logging out of `logoutRegistry` first when given (one remote session); resolves with a warning
 * when it was not ours any more (or already gone), else undefined.
 */
export async function releaseLock(
  remote: Remote,
  l: Layout,
  id: string,
  logoutRegistry?: string,
): Promise<string | undefined> {
  const r = await remote.run(cmd.lockRelease(l, id, logoutRegistry));
  if (r.code === LOCK_EXIT.ok) return undefined;
  if (r.code === LOCK_EXIT.absent)
    return `the lock ${l.lock} on ${remote.label} was already gone (broken with --break-lock while this deploy ran?)`;
  if (r.code === LOCK_EXIT.held) {
    return `left the lock ${l.lock} on ${remote.label} alone: it was broken with --break-lock while this deploy ran and is now held by ${describeHolder(r.stdout)}`;
  }
  throw new Error(`exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
}

// ---- the lease: when a held lock is stale ----

/** A holder whose lease was not renewed for this long is presumed dead (the heartbeat renews it every few seconds). */
export const LEASE_SECONDS = 30;
/** How often the client feeds the heartbeat (journalCmd.heartbeat). */
export const RENEW_EVERY_MS = 5000;

export interface LeaseFacts {
  /** The host's clock and the lease's last renewal, in epoch seconds (both read on the host: no clock skew). */
  now: number;
  renewed: number;
  /** Whether the holder's heartbeat process exists on the host. */
  presence: "alive" | "gone" | "unknown";
}

/** The `hamalog-lease NOW RENEWED PRESENCE` line (journal-commands.ts LEASE_MARK). */
export function parseLeaseFacts(text: string): LeaseFacts | undefined {
  const m = /^hamalog-lease (\d+) (\d+) (alive|gone|unknown)$/m.exec(text);
  if (!m) return undefined;
  return { now: Number(m[1]), renewed: Number(m[2]), presence: m[3] as LeaseFacts["presence"] };
}

export interface HeldLock {
  holder: LockHolder | null;
  /** Seconds since the lease was last renewed (host clock); undefined when the facts were unreadable. */
  idleSeconds: number | undefined;
  stale: boolean;
  /** Why it is (or is not) stale, for messages and status. */
  why: string;
}

/**
 * The liveness rule. A lock is stale — taken over by the next run, which then reconciles — when its holder is
 * provably gone (its heartbeat process on the host has ended: the SSH connection that fed it closed), or when its
 * lease was not renewed for LEASE_SECONDS (the client stopped feeding it: hung, or its network went silent).
 */
export function judgeLock(holderText: string, factsText: string, leaseSeconds = LEASE_SECONDS): HeldLock {
  let holder: LockHolder | null = null;
  try {
    const h = JSON.parse(holderText) as LockHolder;
    if (h && typeof h === "object" && typeof h.id === "string") holder = h;
  } catch {
    // no holder.json (half-made, or a lock from before ids): judged by the lease alone
  }
  const f = parseLeaseFacts(factsText);
  if (!f) return { holder, idleSeconds: undefined, stale: false, why: "its lease could not be read" };
  const idle = Math.max(0, f.now - f.renewed);
  if (f.presence === "gone")
    return {
      holder,
      idleSeconds: idle,
      stale: true,
      why: "its heartbeat on the host is gone (its SSH connection closed)",
    };
  if (idle > leaseSeconds)
    return {
      holder,
      idleSeconds: idle,
      stale: true,
      why: `its lease expired (not renewed for ${idle}s > ${leaseSeconds}s)`,
    };
  return { holder, idleSeconds: idle, stale: false, why: `its lease was renewed ${idle}s ago` };
}

export interface Heartbeat {
  stop(): void;
}

/**
 * Feed the lease's heartbeat on the host (journalCmd.heartbeat) a line every RENEW_EVERY_MS while this process
 * and its SSH connection live. stop() ends it; so do this process's death and a dropped connection.
 */
export function startHeartbeat(remote: Remote, l: Layout, id: string): Heartbeat {
  if (!remote.spawn) return { stop: () => undefined };
  const p = remote.spawn(journalCmd.heartbeat(l, lockIdField(id)));
  p.write("\n");
  const timer = setInterval(() => p.write("\n"), RENEW_EVERY_MS);
  // The heartbeat must never keep a finished CLI alive.
  timer.unref();
  void p.done.then(() => clearInterval(timer));
  return {
    stop: () => {
      clearInterval(timer);
      p.end();
    },
  };
}
