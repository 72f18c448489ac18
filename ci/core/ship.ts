// `ship`, the job CI runs: build → push → verify-manifest → deploy, in that order, stopping at the first failure
// with the phase named. The phases themselves are handed in (the Dagger door passes engine calls, tests pass
// recorders), so the order, the fail-fast rule and the digest hand-over are plain code with plain tests.
import { renderCompose, type ComposeSource } from "./compose.js";
import { ConfigError, PipelineError } from "./errors.js";
import { formatReference, type ImageName } from "./reference.js";
import { shaTag, type Sha } from "./tags.js";
import type { Published } from "./publish.js";

export const SHIP_PHASES = ["build", "push", "verify-manifest", "deploy"] as const;
export type ShipPhase = (typeof SHIP_PHASES)[number];

/** What verify-manifest proved: the registry serves `digest` for `reference`. */
export interface Verified {
  reference: string;
  digest: string;
}

export interface ShipSteps<B, D> {
  /** Build (and force) the image; nothing has left the machine yet. */
  build(): Promise<B>;
  /** Publish exactly the tag-definition references; returns the one digest they point at. */
  push(built: B): Promise<Published>;
  /** Ask the registry what the sha reference resolves to, as the deploy host will. */
  verify(published: Published): Promise<Verified>;
  /** Deploy the verified digest (never a tag that could have moved since). */
  deploy(verified: Verified): Promise<D>;
}

export interface ShipResult<D> {
  published: string[];
  verified: Verified;
  deployed: D;
}

function fail(phase: ShipPhase, done: ShipPhase[], err: unknown): Error {
  const notRun = SHIP_PHASES.slice(SHIP_PHASES.indexOf(phase) + 1);
  const msg = err instanceof Error ? err.message : String(err);
  const text =
    `ship failed in phase \`${phase}\`: ${msg}` +
    `\n(done: ${done.length > 0 ? done.join(", ") : "nothing"}; not run: ${notRun.length > 0 ? notRun.join(", ") : "nothing"})`;
  const out = err instanceof ConfigError ? new ConfigError(text) : new PipelineError(text, phase);
  (out as Error).cause = err;
  return out;
}

/** Run the four phases in order; the first failure stops the run and names its phase. */
export async function runShip<B, D>(
  steps: ShipSteps<B, D>,
  onPhase: (phase: ShipPhase) => void = () => {},
): Promise<ShipResult<D>> {
  const done: ShipPhase[] = [];
  async function phase<T>(name: ShipPhase, fn: () => Promise<T>): Promise<T> {
    onPhase(name);
    try {
      const out = await fn();
      done.push(name);
      return out;
    } catch (e) {
      throw fail(name, done, e);
    }
  }
  const built = await phase("build", () => steps.build());
  const published = await phase("push", () => steps.push(built));
  const verified = await phase("verify-manifest", async () => {
    const v = await steps.verify(published);
    if (v.digest !== published.digest) {
      throw new PipelineError(
        `pushed ${published.digest} but the registry answers ${v.digest} for ${v.reference}; the tag moved after the push ` +
          `(another pipeline pushed it?) — not deploying an image this run did not build; run ship again`,
        "verify-manifest",
      );
    }
    return v;
  });
  const deployed = await phase("deploy", () => steps.deploy(verified));
  return { published: published.published, verified, deployed };
}

/**
 * The deploy settings ship uses: those of the config, but never the `latest` fallback. Ship just pushed the sha
 * tag; if the host cannot find it, deploying `latest` would deploy an image this run did not build.
 */
export function shipDeployConfig<D extends { fallback: "none" | "latest" }>(deploy: D): D {
  return { ...deploy, fallback: "none" };
}

/**
 * Wrap the deploy's own registry check so it accepts only the digest ship pushed and verified: the deploy
 * resolves the sha tag again on its own, and a tag that moved in between must stop it, not be deployed.
 */
export function pinVerify<Req, Res extends { reference: string; digest: string }>(
  verify: (req: Req, signal?: AbortSignal) => Promise<Res>,
  digest: string,
): (req: Req, signal?: AbortSignal) => Promise<Res> {
  return async (req, signal) => {
    const res = await verify(req, signal);
    if (res.digest !== digest) {
      throw new PipelineError(
        `${res.reference} resolves to ${res.digest}, not ${digest} that this ship pushed and verified; the tag moved — not deploying it; run ship again`,
        "preflight",
      );
    }
    return res;
  };
}

/** After the deploy: what runs must be what was verified. */
export function checkDeployed(runningDigest: string, verified: Verified): void {
  if (runningDigest !== verified.digest) {
    throw new PipelineError(
      `the host runs ${runningDigest}, but ship verified ${verified.digest} (${verified.reference})`,
      "deploy",
    );
  }
}

/**
 * Render the production compose file with a placeholder digest, so a template that lacks the app service (or
 * does not parse) fails before anything is built or pushed rather than after the push.
 */
export function precheckCompose(compose: ComposeSource, service: string, image: ImageName, sha: Sha): void {
  renderCompose({
    ...compose,
    service,
    image: formatReference({ ...image, tag: shaTag(sha), digest: `sha256:${"0".repeat(64)}` }),
  });
}
