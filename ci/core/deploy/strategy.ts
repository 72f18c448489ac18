// A deploy strategy is a record of functions on the one attempt frame (attempt.ts): how it places a release on the
// host (its files and colour), its steps between the frame's accessories and promote, its steps after promote, its
// share of recovery (pure: host steps, which the host can run without the client), its status lines and what its
// dry run says. Recreate, blue/green and swarm are three such records, one file each; the frame, the dry run,
// `--help` and docs/deploy.md's phase tables read their step lists.
import type { ComposeSource } from "../compose.js";
import type { DeployConfig } from "../config.js";
import type { BundleEntry } from "./host/bundle.js";
import type { HostStep } from "./host/steps.js";
import type { ContainerSeen, HostView } from "./host/view.js";
import type { Journal, Slot, StrategyName } from "./journal.js";
import type { Release } from "./release.js";
import type { Attempt } from "./attempt.js";

/** What a strategy needs to know about the deploy, pure data (no connection): for planning and recovery. */
export interface Setting {
  deploy: DeployConfig;
  compose: ComposeSource;
  project: string;
  /** The release's environment as a file's text (deploy/env + deploy/secrets), read when a release is rendered. */
  env(): string | undefined;
  /** deploy/files: installed with each release at the same relative path in the deploy directory. */
  files?: { path: string; content: string }[];
}

/** A release placed on the host: its slot in the journal and the files to install for it. */
export interface Placement {
  slot: Slot;
  /** The release's files: files/<composeFile>, files/<envFile>. */
  files: BundleEntry[];
  /** The rendered compose file (the dry run prints it, redacted). */
  compose: string;
  warnings: string[];
  /** Blue/green taking over from a recreate-layout app: that app's service. */
  migrating?: string;
  /** Strategy-private facts the steps read (e.g. the proxy's definition hash). */
  facts: Record<string, string>;
}

export interface Step {
  /** The phase it prints as `[phase]` and names when it fails. */
  phase: string;
  /** One line for the dry run, `--help` and the docs' phase tables. */
  does: string;
  /** Run it; returns the summary printed after `[phase]`. Host changes go through `a.exec`. */
  run(a: Attempt): Promise<string>;
  /** Whether a failure in it warrants diagnostics of the candidate (it started containers). */
  diagnose?: boolean;
}

/** Host steps and the files they read (e.g. a Caddyfile), for recover.sh. */
export interface HostPlan {
  steps: HostStep[];
  files: BundleEntry[];
  /** The undo removes what the journal keeps as `previous` (a candidate took its place): it is gone from the journal. */
  dropsPrevious?: boolean;
}

export interface StatusPart {
  lines: string[];
  mismatches: string[];
}

export interface Strategy {
  readonly name: StrategyName;
  /** One line: what it is, for --help and the docs. */
  readonly summary: string;
  /**
   * The host runs the app with docker compose: the frame pulls the image there and starts the accessories with
   * compose. False for an orchestrator that does both itself (swarm: the nodes pull, the stack holds them).
   */
  readonly composeHost: boolean;
  /** Place `release` on the host given what runs there (pure); `colour`: as that colour (blue/green). */
  place(s: Setting, release: Release, view: HostView, since: string, colour?: Slot["colour"]): Placement;
  readonly steps: readonly Step[];
  readonly afterLive: readonly Step[];
  /** The first of its steps that can disturb the live release (before it, a failure leaves it untouched). */
  readonly touchesLive: string;
  /**
   * Recovery of an attempt of this strategy that died before promote (pure): undo what it started and bring the
   * journal's live release back — `back`, the live release's own strategy's `restore`, placed where it belongs.
   */
  undo(j: Journal, s: Setting, back: HostPlan): HostPlan;
  /** Recovery of an attempt of this strategy that died after promote: finish it (pure). */
  forward(j: Journal, s: Setting): HostPlan;
  /** Bring `live`, a release this strategy placed, back up and routed (pure, idempotent). */
  restore(live: Slot, s: Setting): HostPlan;
  /** Whether the host runs `live` as this strategy placed it (the check `status`, reconcile and a re-run make). */
  check(live: Slot, view: HostView, s: Setting): string[];
  /** What it adds to `status`. */
  status(j: Journal, view: HostView, s: Setting): StatusPart;
  /** The containers of the app under this strategy (status, diagnostics). */
  appContainers(view: HostView, s: Setting): ContainerSeen[];
  /** A kept release's files fit this strategy, so a rollback reuses them as they are (without it: its colour decides). */
  reuses?(kept: Slot): boolean;
  /** Why a deploy cannot switch between this strategy and `other` (asked both ways; undefined: it can). */
  cannotSwitch?(other: StrategyName): string | undefined;
}
