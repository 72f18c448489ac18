// The Dagger door's typed results and enums: what `ship`, `deploy`, `rollback`, `status` and `verify-manifest`
// return, so a caller chains `ship(...).verified().digest()` instead of parsing a log, and a CI log ends the chain
// on `summary`. Data only; the functions at the bottom are the one place the door's plain data becomes these types.
//
// Enum members are named as the engine names them (SCREAMING_SNAKE, kept as is: core/gqlformat.go), so the
// spelling here is the spelling `dagger call` shows, prints and accepts (in any case): `--strategy=blue_green`.
// The value is the config's spelling (deploy/strategy: blue-green), which the function receives.
import { func, object } from "@dagger.io/dagger";
import type { DeploymentData, ShipmentData, StatusData, VerifiedData } from "../core/dagger/api.js";

/** What a deploy does when the commit's sha tag is missing (deploy/fallback). */
export enum Fallback {
  /** Fail: deploy only the exact commit (deploy/fallback none). */
  NONE = "none",
  /** Deploy `latest` instead, loudly (deploy/fallback latest). */
  LATEST = "latest",
}

// A new strategy is one member here, named as the CLI should spell it and valued as the config spells it
// (test/unit/dagger-enum-names.test.ts keeps the members equal to deploy/strategy's values).
/** How the new release replaces the running one (deploy/strategy). */
export enum Strategy {
  /** compose recreates the container in place (deploy/strategy recreate). */
  RECREATE = "recreate",
  /** Start the new colour beside the live one, switch the edge proxy, keep the old one stopped (deploy/strategy blue-green). */
  BLUE_GREEN = "blue-green",
  /** Deploy the stack to a Swarm manager: a rolling start-first update, health-gated, rolled back by Swarm on failure (deploy/strategy swarm). */
  SWARM = "swarm",
}

/** How a deploy or rollback ended (a failure is an error, not a result). */
export enum DeployResult {
  /** The release is live and healthy. */
  SUCCESS = "success",
  /** Nothing on the host changed: the plan is in the log and the rendered compose file in `compose`. */
  DRY_RUN = "dry-run",
  /** The release was already live and healthy: nothing changed (`force` replaces it). */
  ALREADY_LIVE = "already-live",
}

/** An image proven to exist in its registry: pin deploys to `reference` (it carries the digest). */
@object()
export class VerifiedImage {
  /** registry/repository:tag@sha256:… — the pinned reference to deploy. */
  @func()
  reference!: string;

  /** The manifest digest, sha256:… (checked against the bytes received). */
  @func()
  digest!: string;

  /** The manifest's media type (OCI index/manifest, Docker manifest list/v2). */
  @func()
  mediaType!: string;

  /** Platforms the image provides, e.g. linux/amd64; empty for a single image when no platform was checked. */
  @func()
  platforms!: string[];

  /** One screen for a log: the reference, digest, media type and platforms. */
  @func()
  summary!: string;
}

/** What a deploy or rollback left running on the host. */
@object()
export class Deployment {
  /** The pinned reference that runs, registry/repository:tag@sha256:…. */
  @func()
  reference!: string;

  /** Its manifest digest. */
  @func()
  digest!: string;

  /** The commit it was built from (for a fallback: the commit that was asked for). */
  @func()
  sha!: string;

  /** The deploy host. */
  @func()
  host!: string;

  /** SUCCESS, DRY_RUN (nothing changed) or ALREADY_LIVE (nothing changed). */
  @func()
  result!: DeployResult;

  /** For a rollback: the commit rolled back to; empty for a deploy. */
  @func()
  rolledBackTo!: string;

  /** True when `latest` was deployed because the sha tag was missing. */
  @func()
  fallbackUsed!: boolean;

  /** How the release replaced the running one. */
  @func()
  strategy!: Strategy;

  /** Blue/green: the colour the release runs as (blue or green); empty for recreate. */
  @func()
  colour!: string;

  /** Wall time of the deploy in milliseconds. */
  @func()
  durationMs!: number;

  /** What changed on the host, one line each; empty when nothing did. */
  @func()
  changes!: string[];

  /** The rendered compose file, secrets redacted (a dry run shows what it would write). */
  @func()
  compose!: string;

  /** The phase log, one line per step, as printed while it ran. */
  @func()
  log!: string[];

  /** One screen for a log: the outcome, what runs (reference, digest, sha, colour) and what changed. */
  @func()
  summary!: string;
}

/** What runs on the host now, from its release journal, history and compose. */
@object()
export class Status {
  /** The running reference, registry/repository:tag@sha256:…; empty when nothing was deployed. */
  @func()
  reference!: string;

  /** Its digest; empty when nothing was deployed. */
  @func()
  digest!: string;

  /** Its commit; empty when nothing was deployed. */
  @func()
  sha!: string;

  /** The deploy host. */
  @func()
  host!: string;

  /** Blue/green: the live colour; empty for recreate or when nothing was deployed. */
  @func()
  colour!: string;

  /** The container's state (running, exited, …); empty when there is none. */
  @func()
  containerState!: string;

  /** The container's health (healthy, unhealthy, starting, or empty without a healthcheck). */
  @func()
  containerHealth!: string;

  /** The health URL's answer, as checked from the host; empty when not checked. */
  @func()
  health!: string;

  /** Where the release journal and the host disagree; empty when they agree. */
  @func()
  mismatches!: string[];

  /** The last history lines: time action sha result digest [colour]. */
  @func()
  history!: string[];

  /** The log, as printed while it ran. */
  @func()
  log!: string[];

  /** One screen for a log: what status printed (live release, colours, mismatches, lock, health, history). */
  @func()
  summary!: string;
}

/** A shipped commit: what was published, what the registry proved, what the host runs. */
@object()
export class Shipment {
  /** Every published reference, ref@digest, in the tag definition's order. */
  @func()
  published!: string[];

  /** The sha tag as the registry serves it: the digest the host was pinned to. */
  @func()
  verified!: VerifiedImage;

  /** What the host runs now. */
  @func()
  deployment!: Deployment;

  /** One screen for a log: the published references, the verified digest and the deployment's summary. */
  @func()
  summary!: string;
}

/** The enum member whose value is `value` (the core's spelling); a value the enum lacks is this file's bug. */
function member<E extends Record<string, string>>(e: E, name: string, value: string): E[keyof E] {
  const hit = Object.values(e).find((v) => v === value);
  if (hit === undefined)
    throw new Error(
      `internal error: the core answered ${name} \`${value}\`, which the Dagger enum ${name} lacks — add it to ci/src/results.ts`,
    );
  return hit as E[keyof E];
}

// Data-only objects have no constructor: the engine rebuilds them from their fields.

export function verifiedImageOf(v: VerifiedData): VerifiedImage {
  return Object.assign(new VerifiedImage(), v);
}

export function deploymentOf(d: DeploymentData): Deployment {
  return Object.assign(new Deployment(), {
    reference: d.reference,
    digest: d.digest,
    sha: d.sha,
    host: d.host,
    result: member(DeployResult, "DeployResult", d.result),
    rolledBackTo: d.rolledBackTo,
    fallbackUsed: d.fallbackUsed,
    strategy: member(Strategy, "Strategy", d.strategy),
    colour: d.colour,
    durationMs: d.durationMs,
    changes: d.changes,
    compose: d.compose,
    log: d.log,
    summary: d.summary,
  });
}

export function statusOf(s: StatusData): Status {
  return Object.assign(new Status(), {
    reference: s.reference,
    digest: s.digest,
    sha: s.sha,
    host: s.host,
    colour: s.colour,
    containerState: s.containerState,
    containerHealth: s.containerHealth,
    health: s.health,
    mismatches: s.mismatches,
    history: s.history,
    log: s.log,
    summary: s.summary,
  });
}

export function shipmentOf(s: ShipmentData): Shipment {
  return Object.assign(new Shipment(), {
    published: s.published,
    verified: verifiedImageOf(s.verified),
    deployment: deploymentOf(s.deployment),
    summary: s.summary,
  });
}
