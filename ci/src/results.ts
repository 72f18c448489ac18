// The Dagger door's typed results and enums: what `ship`, `deploy`, `rollback`, `status` and `verify-manifest`
// return, so a caller chains `ship(...).verified().digest()` instead of parsing a log. Data only; the two mapping
// functions at the bottom are the one place the deploy core's outcomes become these types.
import { func, object } from "@dagger.io/dagger";
import type { HistoryEntry } from "../core/deploy/history.js";
import type { Outcome } from "../core/deploy/session.js";
import type { StatusReport } from "../core/deploy/status.js";

/** What a deploy does when the commit's sha tag is missing (deploy/fallback). */
export enum Fallback {
  /** Fail: deploy only the exact commit. */
  None = "none",
  /** Deploy `latest` instead, loudly. */
  Latest = "latest",
}

/** How the new release replaces the running one (deploy/strategy). */
export enum Strategy {
  /** compose recreates the container in place. */
  Recreate = "recreate",
  /** Start the new colour, switch the edge proxy, then stop the old one. */
  BlueGreen = "blue-green",
}

/** How a deploy or rollback ended (a failure is an error, not a result). */
export enum DeployResult {
  Success = "success",
  /** Nothing on the host changed: the plan and the rendered compose file are in the log. */
  DryRun = "dry-run",
}

/** An image proven to exist in its registry: pin deploys to `reference` (it carries the digest). */
@object()
export class VerifiedImage {
  /** registry/repository:tag@sha256:… — the pinned reference to deploy. */
  @func()
  reference: string;

  /** The manifest digest, sha256:… (checked against the bytes received). */
  @func()
  digest: string;

  /** The manifest's media type (OCI index/manifest, Docker manifest list/v2). */
  @func()
  mediaType: string;

  /** Platforms the image provides, e.g. linux/amd64; empty for a single image when no platform was checked. */
  @func()
  platforms: string[];

  constructor(reference: string, digest: string, mediaType: string, platforms: string[]) {
    this.reference = reference;
    this.digest = digest;
    this.mediaType = mediaType;
    this.platforms = platforms;
  }
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

  /** success, or dry-run when nothing changed. */
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

  /** Wall time of the deploy in milliseconds. */
  @func()
  durationMs!: number;

  /** The phase log, one line per step, as printed while it ran. */
  @func()
  log!: string[];
}

/** What runs on the host now, from its deploy history and compose. */
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

  /** The container's state (running, exited, …); empty when there is none. */
  @func()
  containerState!: string;

  /** The container's health (healthy, unhealthy, starting, or empty without a healthcheck). */
  @func()
  containerHealth!: string;

  /** The health URL's answer, as checked from the host; empty when not checked. */
  @func()
  health!: string;

  /** The last history lines: time action sha result digest. */
  @func()
  history!: string[];

  /** The log, as printed while it ran. */
  @func()
  log!: string[];
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
}

/** A Shipment from its parts (data-only objects have no constructor: the engine rebuilds them from their fields). */
export function shipmentOf(published: string[], verified: VerifiedImage, deployment: Deployment): Shipment {
  return Object.assign(new Shipment(), { published, verified, deployment });
}

/** The one mapping from the deploy core's outcome to a Deployment (deploy, rollback, ship). */
export function deploymentOf(
  o: Outcome,
  at: { host: string; strategy: string; log: string[]; rollback?: boolean },
): Deployment {
  return Object.assign(new Deployment(), {
    reference: o.running.image,
    digest: o.running.digest,
    sha: o.running.sha,
    host: at.host,
    result: o.result === "dry-run" ? DeployResult.DryRun : DeployResult.Success,
    rolledBackTo: at.rollback ? o.running.sha : "",
    fallbackUsed: o.running.fallback,
    strategy: at.strategy === "blue-green" ? Strategy.BlueGreen : Strategy.Recreate,
    durationMs: Math.round(o.durationMs),
    log: at.log,
  });
}

/** The one mapping from the deploy core's status report to a Status. */
export function statusOf(r: StatusReport, at: { host: string; log: string[] }): Status {
  const line = (e: HistoryEntry) => `${e.time} ${e.action} ${e.sha} ${e.result} ${e.digest}`;
  return Object.assign(new Status(), {
    reference: r.running?.image ?? "",
    digest: r.running?.digest ?? "",
    sha: r.running?.sha ?? "",
    host: at.host,
    containerState: r.container?.state ?? "",
    containerHealth: r.container?.health ?? "",
    health: r.health ?? "",
    history: r.history.map(line),
    log: at.log,
  });
}
