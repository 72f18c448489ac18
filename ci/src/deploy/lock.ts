// The deploy lock: a directory in the deploy directory (mkdir is atomic), holding holder.json with who, which
// sha, when, and this attempt's id. A second deploy fails fast naming the holder, or waits up to --lock-wait;
// --break-lock removes a stale lock explicitly (and says whose it was). Release removes the lock only while its
// holder.json still carries our id, so a deploy whose lock was broken cannot delete the next holder's lock.
import { PipelineError } from "../errors.js";
import { cmd, LOCK_EXIT, type Layout } from "./commands.js";
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
    const who = describeHolder(r.stdout);
    if (opts.signal?.aborted) throw new PipelineError("interrupted while waiting for the lock", "lock");
    if (clock.monotonic() >= deadline) {
      throw new PipelineError(
        `another deploy holds the lock ${l.lock} on ${remote.label}: ${who}. ` +
          "Wait for it (or pass --lock-wait SECONDS); if that deploy is dead, remove the stale lock with --break-lock",
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
