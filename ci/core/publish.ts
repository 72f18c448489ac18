// The engine-free half of the Dagger door's `build` and `push`: which references get published (asked of the one
// tag definition), which OCI labels the image carries, what stays out of the build context, and the checks on
// what the engine reports back. Nothing here talks to an engine, a clock or a random source.
import { PLATFORM, PLATFORM_HINT } from "./platform.js";
import { ConfigError, InternalError, PipelineError } from "./errors.js";
import { formatReference, validateDigest, type ImageName } from "./reference.js";
import { tagsFor, type Sha } from "./tags.js";

/**
 * Kept out of the build context (`@argument({ ignore })` on `source`): dependency trees, VCS data and tool caches
 * that no Dockerfile should COPY and that would otherwise be uploaded to the engine and bust its cache.
 */
export const BUILD_CONTEXT_IGNORE = ["**/node_modules", "**/.git", "**/.gradle", "**/.idea", ".dagger"];

const LABEL_REVISION = "org.opencontainers.image.revision";
const LABEL_SOURCE = "org.opencontainers.image.source";
const LABEL_CREATED = "org.opencontainers.image.created";

/** A name/value pair, the shape of the engine's `BuildArg` and of a label. */
interface NameValue {
  name: string;
  value: string;
}

interface PublishTarget extends ImageName {
  sha: Sha;
  branch: string;
  defaultBranch?: string;
}

/**
 * The full references `push` publishes, in tag-definition order: `REGISTRY/REPO:<sha>` and, on the default branch,
 * `REGISTRY/REPO:latest`. The tags come from `tagsFor`; this function only joins them to the image name.
 */
export function publishReferences(target: PublishTarget): string[] {
  const tags = tagsFor({ sha: target.sha, branch: target.branch, defaultBranch: target.defaultBranch ?? "main" });
  return tags.map((tag) => formatReference({ registry: target.registry, repository: target.repository, tag }));
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

interface LabelInput {
  sha: Sha;
  /** Repository URL (config `image.source`); the label is omitted when unknown. */
  source?: string;
  /** RFC 3339 creation time, given by the caller (never read from a clock here: it would break caching). */
  created?: string;
}

/** The OCI labels `build` puts on the image, in a fixed order. */
export function imageLabels(input: LabelInput): NameValue[] {
  const labels: NameValue[] = [{ name: LABEL_REVISION, value: input.sha }];
  const source = input.source?.trim();
  if (source) {
    if (!/^https?:\/\/[^\s"'`]+$/.test(source)) {
      throw new ConfigError(
        `image/source: \`${source}\` is not an http(s) URL (e.g. https://github.com/daemin-kim/hamalog-backend)`,
      );
    }
    labels.push({ name: LABEL_SOURCE, value: source });
  }
  const created = input.created?.trim();
  if (created) {
    if (!RFC3339.test(created) || Number.isNaN(Date.parse(created))) {
      throw new ConfigError(
        `--created: \`${created}\` is not an RFC 3339 time (e.g. 2024-05-01T12:00:00Z, or $(git log -1 --format=%cI))`,
      );
    }
    labels.push({ name: LABEL_CREATED, value: created });
  }
  return labels;
}

const BUILD_ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Build arguments as the engine wants them, sorted by name so the same map always yields the same build. */
export function buildArgList(args: Record<string, string>): NameValue[] {
  return Object.keys(args)
    .sort()
    .map((name) => {
      if (!BUILD_ARG_NAME.test(name)) {
        throw new ConfigError(
          `build/buildArgs: \`${name}\` is not a build argument name (letters, digits and _, e.g. JAR_FILE)`,
        );
      }
      return { name, value: args[name]! };
    });
}

/** Validate and de-duplicate the platforms to publish as one index; an empty list means "the engine's". */
export function publishPlatforms(platforms: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of platforms) {
    const p = raw.trim();
    if (!PLATFORM.test(p)) throw new ConfigError(`build/platforms: \`${raw}\` ${PLATFORM_HINT}`);
    if (out.includes(p)) throw new ConfigError(`build/platforms: \`${p}\` is listed twice`);
    out.push(p);
  }
  return out;
}

export interface Published {
  /** The one manifest (or index) digest every reference points at. */
  digest: string;
  /** `REGISTRY/REPO:TAG@sha256:…`, one per asked reference, in the same order. */
  published: string[];
}

/**
 * Check what the engine's `publish` returned: one `ref@digest` per asked reference, the asked reference itself,
 * and the same digest for all of them (the tags must name one image, or `latest` and `<sha>` disagree).
 */
export function checkPublished(asked: readonly string[], returned: readonly string[]): Published {
  if (asked.length === 0) throw new InternalError("checkPublished was given no reference to publish");
  if (returned.length !== asked.length) {
    throw new PipelineError(
      `push: asked to publish ${asked.length} references, the engine answered ${returned.length}`,
      "push",
    );
  }
  let digest: string | undefined;
  const published: string[] = [];
  asked.forEach((ref, i) => {
    const got = returned[i]!.trim();
    const at = got.lastIndexOf("@");
    const d = at >= 0 ? got.slice(at + 1) : "";
    const name = at >= 0 ? got.slice(0, at) : got;
    try {
      validateDigest(d, "publish");
    } catch {
      throw new PipelineError(
        `push: publishing ${ref} returned \`${got}\`, which has no digest; cannot prove what was pushed`,
        "push",
      );
    }
    if (name !== ref) {
      throw new PipelineError(`push: asked to publish ${ref}, the engine reports ${name}`, "push");
    }
    if (digest !== undefined && d !== digest) {
      throw new PipelineError(
        `push: ${asked[0]} is ${digest} but ${ref} is ${d}; the tags of one commit must name one image — push again`,
        "push",
      );
    }
    digest = d;
    published.push(`${ref}@${d}`);
  });
  return { digest: digest!, published };
}

/** The registry user from config or argument; GHCR accepts any name with a token, but one must be given. */
export function registryUser(username: string | undefined, configName = "pipeline.yaml"): string {
  const u = username?.trim();
  if (!u) {
    throw new ConfigError(
      `image/username: required to push (set it in ${configName} or pass --registry-username, e.g. --registry-username=\${{ github.actor }})`,
    );
  }
  return u;
}
