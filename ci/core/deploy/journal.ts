// The release journal: `DIR/journal.json`, the one record on the host of what serves (`live`), what served before
// (`previous`: blue/green's kept colour) and the attempt in flight with its phase. It is rewritten whole (inside a
// bundle the agent renames into place) BEFORE each transition, together with the recovery for that journal
// (recovery.ts), so a run that dies at any moment leaves the host what it needs to put itself right. history.jsonl
// stays the append-only audit log. Pure: parse, validate, transitions. Version 1 journals (before env files) read.
import { createHash } from "node:crypto";
import { PipelineError } from "../errors.js";
import type { Sha } from "../tags.js";
import type { HistoryEntry } from "./history.js";
import type { Release } from "./release.js";

export const JOURNAL_VERSION = 2;
export const STRATEGIES = ["recreate", "blue-green", "swarm"] as const;
export type StrategyName = (typeof STRATEGIES)[number];
export type Colour = "blue" | "green";
export type AttemptAction = "deploy" | "rollback";

/** A release as it sits on the host: the release, the files that run it, where and since when. */
export interface Slot extends Release {
  /** Blue/green only: the colour this release runs as. */
  colour?: Colour;
  /** Relative to the deploy directory, e.g. `releases/app-0123456789ab-1a2b3c4d.yaml`. */
  composeFile: string;
  /** The release's environment (mode 0600), e.g. `releases/app-0123456789ab-1a2b3c4d.env`; absent without one. */
  envFile?: string;
  /** When it became live (for `live`/`previous`) or was rendered (for a candidate); ISO time from the caller. */
  since: string;
  /** Blue/green `previous`: kept running until this time (ISO) for an instant rollback, then stopped. */
  warmUntil?: string;
}

export interface JournalAttempt {
  /** The lock's attempt id and fencing token: who owns this attempt. */
  id: string;
  token?: number;
  holder: string;
  action: AttemptAction;
  /** The phase about to run (written before it starts), e.g. `pull`, `up`, `switch`, `drain`. */
  phase: string;
  startedAt: string;
  /** The strategy the attempt runs (the journal's `strategy` is the live release's). */
  strategy: StrategyName;
  candidate: Slot;
  /** Blue/green taking over from a recreate-layout app: that app's compose service (stopped once, at the switch). */
  migrating?: string;
}

export interface Journal {
  version: typeof JOURNAL_VERSION;
  /** The strategy that placed the live release. */
  strategy: StrategyName;
  /** What serves and passed its health gate; null before the first successful deploy. */
  live: Slot | null;
  /** What served before `live` (blue/green: the kept colour). */
  previous: Slot | null;
  attempt: JournalAttempt | null;
}

export function emptyJournal(strategy: StrategyName): Journal {
  return { version: JOURNAL_VERSION, strategy, live: null, previous: null, attempt: null };
}

/** A release's file base (no extension): its colour (or `app`), its digest, and a hash of what was rendered. */
export function releaseBase(digest: string, content: string, colour?: Colour): string {
  const hex = digest.replace(/^[a-z0-9]+:/, "").slice(0, 12);
  // The rendered text (and the environment) are part of the name: the same digest deployed again from a changed
  // template must not overwrite the files the live release runs from.
  const h = createHash("sha256").update(content).digest("hex").slice(0, 8);
  return `releases/${colour ?? "app"}-${hex}-${h}`;
}

/** The journal's text as written to the host (one JSON document, newline-terminated). */
export function journalText(j: Journal): string {
  return `${JSON.stringify(j, null, 2)}\n`;
}

// ---- parsing: every field checked, errors name the field and the fix ----

const DIGEST = /^sha(256|512):[0-9a-f]{64,128}$/;
const SHA = /^[0-9a-f]{40}$/;
const FILE = /^releases\/[A-Za-z0-9._-]+\.(yaml|env)$/;

function fail(where: string, field: string, why: string): never {
  throw new PipelineError(
    `${where}: ${field}: ${why} — the journal is written only by hamalog; restore it from a backup, or move it ` +
      "aside and run `hamalog deploy` again (it is rebuilt from history.jsonl)",
    "reconcile",
  );
}

function str(o: Record<string, unknown>, k: string, where: string, path: string, re?: RegExp): string {
  const v = o[k];
  if (typeof v !== "string" || v === "" || (re && !re.test(v)))
    fail(where, `${path}${k}`, `invalid ${JSON.stringify(v)}`);
  return v;
}

function optStr(o: Record<string, unknown>, k: string, where: string, path: string, re?: RegExp): string | undefined {
  return o[k] === undefined ? undefined : str(o, k, where, path, re);
}

function obj(v: unknown, where: string, path: string): Record<string, unknown> {
  if (!v || typeof v !== "object" || Array.isArray(v)) fail(where, path || "(top)", "expected an object");
  return v as Record<string, unknown>;
}

function strategyOf(v: unknown, where: string, field: string): StrategyName {
  if (!STRATEGIES.includes(v as StrategyName)) fail(where, field, `expected ${STRATEGIES.join(", ")}`);
  return v as StrategyName;
}

function parseSlot(v: unknown, where: string, path: string): Slot | null {
  if (v === null) return null;
  const o = obj(v, where, path);
  const p = `${path}.`;
  const tags = o.tags;
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === "string"))
    fail(where, `${p}tags`, "expected a list of tags");
  const colour = o.colour;
  if (colour !== undefined && colour !== "blue" && colour !== "green")
    fail(where, `${p}colour`, "expected blue or green");
  if (o.fallback !== undefined && typeof o.fallback !== "boolean")
    fail(where, `${p}fallback`, "expected true or false");
  const envFile = optStr(o, "envFile", where, p, FILE);
  const warmUntil = optStr(o, "warmUntil", where, p);
  return {
    sha: str(o, "sha", where, p, SHA) as Sha,
    digest: str(o, "digest", where, p, DIGEST),
    image: str(o, "image", where, p),
    tags: tags as string[],
    fallback: o.fallback === true,
    ...(colour ? { colour: colour as Colour } : {}),
    composeFile: str(o, "composeFile", where, p, FILE),
    ...(envFile ? { envFile } : {}),
    since: str(o, "since", where, p),
    ...(warmUntil ? { warmUntil } : {}),
  };
}

/** Parse and validate the journal's text; `where` names the file in errors (e.g. `user@host:22 /srv/app/journal.json`). */
export function parseJournal(text: string, where: string): Journal {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(where, "(file)", `not JSON (${(e as Error).message.slice(0, 80)})`);
  }
  const o = obj(raw, where, "");
  if (o.version !== JOURNAL_VERSION && o.version !== 1)
    fail(where, "version", `${JSON.stringify(o.version)} is not ${JOURNAL_VERSION}`);
  const strategy = strategyOf(o.strategy, where, "strategy");
  let attempt: JournalAttempt | null = null;
  if (o.attempt !== null && o.attempt !== undefined) {
    const a = obj(o.attempt, where, "attempt");
    const action = a.action === "recover" ? "deploy" : a.action;
    if (action !== "deploy" && action !== "rollback") fail(where, "attempt.action", "expected deploy or rollback");
    const candidate = parseSlot(a.candidate, where, "attempt.candidate");
    if (!candidate) fail(where, "attempt.candidate", "missing");
    if (a.token !== undefined && (typeof a.token !== "number" || !Number.isInteger(a.token)))
      fail(where, "attempt.token", "expected a whole number");
    const migrating = optStr(a, "migrating", where, "attempt.");
    attempt = {
      id: str(a, "id", where, "attempt."),
      ...(typeof a.token === "number" ? { token: a.token } : {}),
      holder: str(a, "holder", where, "attempt."),
      action,
      phase: str(a, "phase", where, "attempt."),
      startedAt: str(a, "startedAt", where, "attempt."),
      // A version 1 attempt ran the journal's strategy.
      strategy: a.strategy === undefined ? strategy : strategyOf(a.strategy, where, "attempt.strategy"),
      candidate,
      ...(migrating ? { migrating } : {}),
    };
  }
  return {
    version: JOURNAL_VERSION,
    strategy,
    live: parseSlot(o.live ?? null, where, "live"),
    previous: parseSlot(o.previous ?? null, where, "previous"),
    attempt,
  };
}

/** Where the compose.yaml of a host deployed before the journal is kept once adopted. */
export function adoptedFile(digest: string): string {
  return `releases/app-${digest.replace(/^[a-z0-9]+:/, "").slice(0, 12)}-adopted.yaml`;
}

/**
 * A host deployed before the journal existed: adopt what history says runs, from the compose file that runs it
 * (`compose.yaml`, copied to adoptedFile), once. Without a compose file there is nothing live to restore.
 */
export function journalFromHistory(entries: readonly HistoryEntry[], composePresent: boolean, since: string): Journal {
  const j = emptyJournal("recreate");
  const last = entries.length > 0 ? entries[entries.length - 1]!.running : null;
  // A blue/green compose file runs colours, not the app service: nothing to adopt for recreate.
  if (!last || !composePresent || last.colour) return j;
  const tag = /:([^:@/]+)@/.exec(last.image)?.[1];
  return {
    ...j,
    live: {
      sha: last.sha,
      digest: last.digest,
      image: last.image,
      tags: tag ? [tag] : [],
      fallback: last.fallback === true,
      composeFile: adoptedFile(last.digest),
      since,
    },
  };
}

// ---- transitions: each returns the journal to write before the step it names ----

export function beginAttempt(j: Journal, attempt: JournalAttempt): Journal {
  return { ...j, attempt };
}

/** The attempt is about to run `phase`. */
export function atPhase(j: Journal, phase: string): Journal {
  if (!j.attempt) throw new Error(`internal: journal phase ${phase} without an attempt`);
  return j.attempt.phase === phase ? j : { ...j, attempt: { ...j.attempt, phase } };
}

/**
 * The candidate passed its gates: it is live, what was live is previous (unless it is the same release). The
 * attempt stays (at `phase`) while after-live steps run (blue/green's drain and retire).
 */
export function promote(j: Journal, since: string, phase: string): Journal {
  const a = j.attempt;
  if (!a) throw new Error("internal: promote without an attempt");
  const live = { ...a.candidate, since };
  const same = j.live?.composeFile === live.composeFile && j.live.colour === live.colour;
  return { ...j, strategy: a.strategy, live, previous: same ? j.previous : j.live, attempt: { ...a, phase } };
}

/** The attempt ended; what is live stays as the journal says. */
export function endAttempt(j: Journal): Journal {
  return { ...j, attempt: null };
}

/** Whether `j`'s attempt was promoted (its candidate is the live release). */
export function promoted(j: Journal): boolean {
  const a = j.attempt;
  return !!a && !!j.live && j.live.composeFile === a.candidate.composeFile && j.live.colour === a.candidate.colour;
}

/** Release files the journal still needs (prune keeps these, and their env files). */
export function referencedFiles(j: Journal): Set<string> {
  return new Set(
    [j.live, j.previous, j.attempt?.candidate].flatMap((s) =>
      s ? [s.composeFile, ...(s.envFile ? [s.envFile] : [])] : [],
    ),
  );
}

/** The journal once the warm window is over: the kept colour stopped, `previous` no longer warm (the timer writes it). */
export function cooled(j: Journal): Journal {
  if (!j.previous?.warmUntil) return j;
  const { warmUntil: _gone, ...previous } = j.previous;
  return { ...j, previous };
}
