// The deploy lock, client side: take it (waiting up to --lock-wait while another run holds it), feed its heartbeat,
// and say who holds it. The rules live on the host (agent.ts): the lock is a fencing token under a flock; it is
// stale once its heartbeat process is gone or its lease was not renewed for deploy/leaseSeconds, and then the next
// run takes it over (a new token: the old holder's next step is refused). When the client stops feeding the
// heartbeat — killed, frozen, its connection dropped — the host runs the recovery itself and frees the lock.
import { PipelineError } from "../errors.js";
import type { BundleEntry } from "./host/bundle.js";
import type { Host, LockHolder } from "./host/host.js";
import type { HostView } from "./host/view.js";
import type { Clock } from "./report.js";

/** How often the client feeds the heartbeat; the lease (deploy/leaseSeconds, default 30) is several of these. */
export const RENEW_EVERY_MS = 5000;

/** Who holds a lock, from lock.json's text. */
export function describeHolder(text: string): string {
  if (text.trim() === "") return "an unknown holder (no lock.json)";
  try {
    const h = JSON.parse(text) as LockHolder & { token?: number };
    return `${h.holder} (${h.action} of ${String(h.sha).slice(0, 12)} since ${h.since}${h.token ? `, token ${h.token}` : ""})`;
  } catch {
    return "an unknown holder (unreadable lock.json)";
  }
}

export interface Taken {
  token: number;
  view: HostView;
  /** The attempt's files and journal were installed with the lock. */
  prepared: boolean;
  /** Set when a stale lock was taken over: whose it was and why it was stale. */
  note?: string;
}

export interface TakeOptions {
  holder: LockHolder;
  prepare?: { files: readonly BundleEntry[]; expect: string };
  waitSeconds: number;
  /** --break-lock: take it even from a live holder (its next step is then refused: it is fenced). */
  force: boolean;
  signal?: AbortSignal;
  clock: Clock;
  onWait(who: string): void;
}

export async function takeLock(host: Host, o: TakeOptions): Promise<Taken> {
  const deadline = o.clock.monotonic() + o.waitSeconds * 1000;
  let told = false;
  for (;;) {
    const left = Math.max(0, Math.floor((deadline - o.clock.monotonic()) / 1000));
    const a = await host.lock(o.holder, Math.min(left, 30), o.force, o.prepare);
    if (a.got)
      return {
        token: a.token,
        view: a.view,
        prepared: a.prepared,
        ...(a.tookOver ? { note: tookOver(a.tookOver) } : {}),
      };
    const who = a.busy
      ? `${describeHolder(a.holderText)}, whose host-side step is still running (it holds ${host.dir}/.hamalog/mutex)`
      : `${describeHolder(a.holderText)}, ${a.facts.replace(/^hamalog-lease \S+ \S+ \S+ \S+ /, "")}`;
    if (o.signal?.aborted) throw new PipelineError("interrupted while waiting for the lock", "lock");
    if (o.clock.monotonic() >= deadline)
      throw new PipelineError(
        `another deploy holds the lock in ${host.dir} on ${host.label}: ${who}. Wait for it (or pass --lock-wait SECONDS); ` +
          "a holder that dies is recovered by the host itself and its lock freed, a silent one once its lease lapses; only a holder stuck while alive needs --break-lock",
        "lock",
      );
    if (!told) {
      told = true;
      o.onWait(who);
    }
    await o.clock.sleep(1000);
  }
}

/** What the agent said about a lock it took from someone (whose it was, why, stale or broken). */
function tookOver(text: string): string {
  const [holder = "", why = "", how = "stale"] = text.split("\n");
  return how === "broken"
    ? `broke the lock of ${describeHolder(holder)} (--break-lock; ${why}): its next step is refused`
    : `took over the stale lock of ${describeHolder(holder)}: ${why}`;
}

export interface Heartbeat {
  /**
   * Stop feeding it (after the lock was freed: the host then just lets it end). A run that fails or is interrupted
   * puts the host right through its own failure path first; the host recovers by itself only when the run goes
   * silent (killed, disconnected). The agent also takes an `abort` line; no client sends it.
   */
  stop(): void;
}

/** Feed the heartbeat a line every RENEW_EVERY_MS while this process and its connection live. */
export function startHeartbeat(host: Host, token: number): Heartbeat {
  const p = host.heartbeat(token);
  if (!p) return { stop: () => undefined };
  p.write("beat\n");
  const timer = setInterval(() => p.write("beat\n"), RENEW_EVERY_MS);
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
