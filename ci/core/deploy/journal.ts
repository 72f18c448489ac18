// The release journal: `DIR/journal.json`, the one source of truth on the host for what serves (`live`), what
// served before (`previous`) and the attempt in flight with its phase. It is rewritten whole (temp file + rename)
// BEFORE each transition, so a deploy that dies at any moment leaves a journal saying exactly what the next run
// must restore. history.jsonl stays the append-only audit log; nothing is ever read back from "whatever compose
// file is on disk". Pure: parse, validate, transitions; commands.ts writes it.
import { createHash } from "node:crypto";
import { PipelineError } from "../errors.js";
import type { Sha } from "../tags.js";
import type { HistoryEntry } from "./history.js";

export const JOURNAL_VERSION = 1;
export type Strategy = "recreate" | "blue-green";
export type Colour = "blue" | "green";
export type AttemptAction = "deploy" | "rollback" | "recover";

/** One release as it sits on the host: its image and the compose file (relative to DIR) that runs it. */
export interface Slot {
  sha: Sha;
  digest: string;
  /** The pinned reference, `registry/repo:tag@sha256:…`. */
  image: string;
  tags: string[];
  /** `latest` was deployed because the sha tag was missing. */
  fallback?: boolean;
  /** Blue/green only: the colour this release runs as. */
  colour?: Colour;
  /** Relative to the deploy directory, e.g. `releases/app-0123456789ab-1a2b3c4d.yaml`. */
  composeFile: string;
  /** When it became live (for `live`/`previous`) or was rendered (for a candidate); ISO time, given by the core's caller. */
  since: string;
}

export interface JournalAttempt {
  /** The lock's attempt id: who owns this attempt. */
  id: string;
  holder: string;
  action: AttemptAction;
  /** The phase about to run (written before it starts), e.g. `render`, `up`, `health`, `rollback`. */
  phase: string;
  startedAt: string;
  candidate: Slot;
}

export interface Journal {
  version: typeof JOURNAL_VERSION;
  strategy: Strategy;
  /** What serves and passed its health gate; null before the first successful deploy. */
  live: Slot | null;
  /** What served before `live` (blue/green: the kept, stopped colour). */
  previous: Slot | null;
  attempt: JournalAttempt | null;
}

export function emptyJournal(strategy: Strategy): Journal {
  return { version: JOURNAL_VERSION, strategy, live: null, previous: null, attempt: null };
}

/** Where a release's compose file lives: named by its colour (or `app`), its digest and what was rendered. */
export function releaseFile(digest: string, rendered: string, colour?: Colour): string {
  const hex = digest.replace(/^[a-z0-9]+:/, "").slice(0, 12);
  // The rendered text is part of the name: the same digest deployed again from a changed template must not
  // overwrite the file the live release runs from.
  const content = createHash("sha256").update(rendered).digest("hex").slice(0, 8);
  return `releases/${colour ?? "app"}-${hex}-${content}.yaml`;
}

/** The journal's text as written to the host (one JSON document, newline-terminated). */
export function journalText(j: Journal): string {
  return `${JSON.stringify(j, null, 2)}\n`;
}

// ---- parsing: every field checked, errors name the field and the fix ----

const DIGEST = /^sha(256|512):[0-9a-f]{64,128}$/;
const SHA = /^[0-9a-f]{40}$/;
const FILE = /^releases\/[A-Za-z0-9._-]+\.yaml$/;

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

function obj(v: unknown, where: string, path: string): Record<string, unknown> {
  if (!v || typeof v !== "object" || Array.isArray(v)) fail(where, path || "(top)", "expected an object");
  return v as Record<string, unknown>;
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
  return {
    sha: str(o, "sha", where, p, SHA) as Sha,
    digest: str(o, "digest", where, p, DIGEST),
    image: str(o, "image", where, p),
    tags: tags as string[],
    ...(o.fallback === true ? { fallback: true } : {}),
    ...(colour ? { colour: colour as Colour } : {}),
    composeFile: str(o, "composeFile", where, p, FILE),
    since: str(o, "since", where, p),
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
  if (o.version !== JOURNAL_VERSION) fail(where, "version", `${JSON.stringify(o.version)} is not ${JOURNAL_VERSION}`);
  if (o.strategy !== "recreate" && o.strategy !== "blue-green")
    fail(where, "strategy", "expected recreate or blue-green");
  let attempt: JournalAttempt | null = null;
  if (o.attempt !== null && o.attempt !== undefined) {
    const a = obj(o.attempt, where, "attempt");
    const action = a.action;
    if (action !== "deploy" && action !== "rollback" && action !== "recover")
      fail(where, "attempt.action", "expected deploy, rollback or recover");
    const candidate = parseSlot(a.candidate, where, "attempt.candidate");
    if (!candidate) fail(where, "attempt.candidate", "missing");
    attempt = {
      id: str(a, "id", where, "attempt."),
      holder: str(a, "holder", where, "attempt."),
      action,
      phase: str(a, "phase", where, "attempt."),
      startedAt: str(a, "startedAt", where, "attempt."),
      candidate,
    };
  }
  return {
    version: JOURNAL_VERSION,
    strategy: o.strategy,
    live: parseSlot(o.live ?? null, where, "live"),
    previous: parseSlot(o.previous ?? null, where, "previous"),
    attempt,
  };
}

/** Where the compose.yaml of a host deployed before the journal is kept once adopted (reconcile copies it there). */
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
      ...(last.fallback ? { fallback: true } : {}),
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
  return { ...j, attempt: { ...j.attempt, phase } };
}

/** The candidate passed its health gate: it is live, what was live is previous (unless it is the same release). */
export function promote(j: Journal, since: string): Journal {
  if (!j.attempt) throw new Error("internal: promote without an attempt");
  const live = { ...j.attempt.candidate, since };
  const same = j.live?.composeFile === live.composeFile && j.live.colour === live.colour;
  return { ...j, live, previous: same ? j.previous : j.live, attempt: null };
}

/** The attempt ended without changing what is live (it failed before the switch, or `live` was restored). */
export function endAttempt(j: Journal): Journal {
  return { ...j, attempt: null };
}

/** A failed first deploy was stopped: nothing serves. */
export function nothingLive(j: Journal): Journal {
  return { ...j, live: null, attempt: null };
}

/** Release files the journal still needs (prune keeps these). */
export function referencedFiles(j: Journal): Set<string> {
  return new Set([j.live, j.previous, j.attempt?.candidate].flatMap((s) => (s ? [s.composeFile] : [])));
}
