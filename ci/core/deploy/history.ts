// Deploy history on the host: `history.jsonl` in the deploy directory, one JSON line per attempt that got
// the lock. `running` says what runs after the attempt, so status and rollback read the truth from one place.
import { ConfigError } from "../errors.js";
import { isSha, type Sha } from "../tags.js";
import type { Release } from "./release.js";

/** What runs on the host, as history records it. */
export interface Running {
  sha: Sha;
  digest: string;
  /** The pinned reference that ran, `registry/repo:tag@sha256:…`. */
  image: string;
  /** True when `latest` was deployed because the sha tag was missing: `sha` is what was asked for, not what runs. */
  fallback?: boolean;
  /** Blue/green: the colour it runs as. */
  colour?: "blue" | "green";
}

export interface HistoryEntry {
  time: string;
  action: "deploy" | "rollback";
  sha: Sha;
  tags: string[];
  digest: string;
  image: string;
  previousDigest: string | null;
  previousSha: string | null;
  result: "success" | "rolled-back" | "failed";
  fallback: boolean;
  durationMs: number;
  /** What runs after this attempt; null when nothing does (a failed first deploy, a failed rollback). */
  running: Running | null;
  holder: string;
  failedPhase?: string;
  error?: string;
  /** The attempt was stopped by SIGINT/SIGTERM (Ctrl-C), not by a failure of its own. */
  interrupted?: boolean;
  /** Blue/green: the colour the release was started in, when the live route switched to it, and the stopped colour kept for an instant rollback. */
  colour?: "blue" | "green";
  switchedAt?: string;
  kept?: Running | null;
  /** The attempt's run died; the next run found it in the journal and restored the live release (reconcile). */
  recovered?: boolean;
}

/** What an attempt was: known once the lock is held. */
export interface AttemptFacts {
  action: HistoryEntry["action"];
  release: Release;
  /** What ran when the attempt took the lock. */
  previous: Running | null;
  holder: string;
}

/** How it ended. */
export type Ending = Pick<
  HistoryEntry,
  "result" | "running" | "failedPhase" | "error" | "interrupted" | "colour" | "switchedAt" | "kept" | "recovered"
>;

/** What history records as running for a release (a Slot or a Release). */
export function runningOf(r: Release & { colour?: "blue" | "green" }): Running {
  return {
    sha: r.sha,
    digest: r.digest,
    image: r.image,
    ...(r.fallback ? { fallback: true } : {}),
    ...(r.colour ? { colour: r.colour } : {}),
  };
}

/** Longest error text kept in a history line (the full text was printed). */
export const HISTORY_ERROR_MAX = 600;

/** The history line of an attempt: what was asked, what ran before, how it ended; time and duration given. */
export function historyEntry(a: AttemptFacts, end: Ending, time: Date, durationMs: number): HistoryEntry {
  const { error, ...rest } = end;
  return {
    time: time.toISOString(),
    action: a.action,
    sha: a.release.sha,
    tags: a.release.tags,
    digest: a.release.digest,
    image: a.release.image,
    previousDigest: a.previous?.digest ?? null,
    previousSha: a.previous?.sha ?? null,
    fallback: a.release.fallback,
    durationMs: Math.round(durationMs),
    holder: a.holder,
    ...rest,
    ...(error !== undefined ? { error: error.slice(0, HISTORY_ERROR_MAX) } : {}),
  };
}

export function historyLine(entry: HistoryEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

/** Parse history text; lines that are not entries (hand edits, truncation) are skipped, not fatal. */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const e = JSON.parse(line) as HistoryEntry;
      if (e && typeof e === "object" && isSha(e.sha) && "running" in e) out.push(e);
    } catch {
      // not ours
    }
  }
  return out;
}

/** What runs now according to history (the last attempt's `running`). */
export function currentRelease(entries: readonly HistoryEntry[]): Running | null {
  return entries.length > 0 ? entries[entries.length - 1]!.running : null;
}

/** Releases that were deployed successfully, newest first, one per digest. */
export function successfulReleases(entries: readonly HistoryEntry[]): Running[] {
  const seen = new Set<string>();
  const out: Running[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.result !== "success" || !e.running || seen.has(e.running.digest)) continue;
    seen.add(e.running.digest);
    out.push(e.running);
  }
  return out;
}

/** A rollback's --to, parsed at the doors: a commit sha (7–40 hex) or a digest. */
export interface RollbackTo {
  text: string;
  sha?: string;
  digest?: string;
}

/** Parse --to (`flag` names it in the error); undefined when not given. */
export function parseRollbackTo(text: string | undefined, flag = "--to"): RollbackTo | undefined {
  const t = text?.trim().toLowerCase();
  if (!t) return undefined;
  if (/^sha(256|512):[0-9a-f]{64,128}$/.test(t)) return { text: t, digest: t };
  if (/^[0-9a-f]{7,40}$/.test(t)) return { text: t, sha: t };
  throw new ConfigError(
    `${flag}: \`${text}\` is neither a commit sha (7–40 hex characters) nor a digest (sha256:…) — see \`hamalog status\` for deployed releases`,
  );
}

/**
 * The release a rollback goes to from history: `to` among successful releases — a sha matches only releases built
 * from it, never a `latest` fallback — else the newest successful release that is not the live one.
 */
export function rollbackTarget(
  entries: readonly HistoryEntry[],
  to?: RollbackTo,
  liveDigest?: string,
): Running | undefined {
  const releases = successfulReleases(entries);
  if (to?.digest) return releases.find((r) => r.digest === to.digest);
  if (to?.sha) {
    // A fallback release records the sha that was asked for, but runs `latest`: it is not the image built from
    // that sha, so --to SHA never picks one (its digest still can). Searched per entry, not per digest, so a
    // digest deployed both ways is found by its real sha.
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (e.result === "success" && e.running && !e.running.fallback && e.running.sha.startsWith(to.sha))
        return e.running;
    }
    return undefined;
  }
  const current = liveDigest ?? currentRelease(entries)?.digest;
  return releases.find((r) => r.digest !== current);
}

/** The last `n` entries (`status --lines N`); 0 means none, not all (`slice(-0)` is the whole array). */
export function lastEntries(entries: readonly HistoryEntry[], n: number): HistoryEntry[] {
  return n > 0 ? entries.slice(-n) : [];
}

/** Digests to keep when pruning: the newest `keep` successfully deployed ones plus whatever runs now. */
export function digestsToKeep(entries: readonly HistoryEntry[], keep: number): Set<string> {
  const out = new Set(
    successfulReleases(entries)
      .slice(0, keep)
      .map((r) => r.digest),
  );
  const current = currentRelease(entries);
  if (current) out.add(current.digest);
  // Blue/green's stopped colour is an instant rollback: its image stays as long as it is kept.
  const kept = entries.length > 0 ? entries[entries.length - 1]!.kept : null;
  if (kept) out.add(kept.digest);
  return out;
}
