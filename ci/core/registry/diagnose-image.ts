// Diagnoses for when the registry answered but the image is not what was asked for: the tag is missing (with
// what was pushed instead), the platform is missing, the digest does not match, or an answer is oversized.
// The seed's `manifest unknown` becomes e.g. "tag 453a…  not found; found main-453a… (branch-prefixed, from
// docker/metadata-action) — push with this module's `tag`". Pure: facts in, Diagnosis out.
import { explainShaLike } from "../tags.js";
import { image, short, what, type Diagnosis, type Subject } from "./diagnosis.js";
import { findNearMisses, rankTags } from "./near-miss.js";
import { registryText } from "./text.js";

const TAGS_SHOWN = 10;
const PLATFORMS_SHOWN = 20;
const TAG_FIX =
  "push with this module's `tag` (`npx hamalog tag --sha <full sha> --branch <branch>` or `dagger call tag`), which tags the full 40-character commit sha (and `latest` on the default branch)";

/**
 * The tag (or digest) is not in the repository. `tags` undefined means they could not be listed
 * (`tagsProblem` says why).
 */
export function manifestUnknownDiagnosis(
  s: Subject,
  tags: readonly string[] | undefined,
  opts: { truncated?: boolean; tagsProblem?: string; status?: number } = {},
): Diagnosis {
  const near = tags ? findNearMisses(s.reference, tags, s.wantedSha) : [];
  const ranked = tags ? rankTags(s.reference, tags, near) : undefined;
  const lines = [
    `${what(s)} not found in ${image(s)} (MANIFEST_UNKNOWN) — the error \`docker pull\` reports as \`manifest unknown\`.`,
  ];
  if (near.length > 0) {
    lines.push("Found instead:");
    for (const n of near) lines.push(`  ${n.tag} — ${n.why}`);
  }
  if (ranked) {
    if (ranked.length === 0) lines.push("The repository has no tags at all: nothing was pushed to it.");
    else {
      const shown = ranked.slice(0, TAGS_SHOWN).map(short);
      const more = ranked.length - shown.length;
      lines.push(
        `Tags in ${image(s)} (${ranked.length}${opts.truncated ? "+" : ""}, most similar first): ${shown.join(", ")}${more > 0 ? `, … (${more} more)` : ""}`,
      );
    }
  } else if (opts.tagsProblem) {
    lines.push(`(Could not list the repository's tags: ${opts.tagsProblem}.)`);
  }
  const shaLike = near.some((n) => explainShaLike(n.tag) !== undefined);
  const next =
    near.length > 0 && shaLike
      ? `the pushing side used another tag convention; ${TAG_FIX}. Or, if the pushed tag is right, verify that one.`
      : near.length > 0
        ? `check the spelling of \`${s.reference}\`.`
        : `check that the build for this commit pushed (its CI log) and that pushing and deploying both use this module's \`tag\`.`;
  lines.push(`Next: ${next}`);
  return {
    kind: "manifest-unknown",
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    ...(opts.status !== undefined ? { status: opts.status, codes: ["MANIFEST_UNKNOWN"] } : {}),
    ...(near.length ? { nearMisses: near } : {}),
    ...(ranked ? { tags: ranked.slice(0, TAGS_SHOWN * 5) } : {}),
    message: lines.join("\n"),
  };
}

export function platformMissingDiagnosis(
  s: Subject,
  wanted: string,
  platforms: string[],
  digest: string,
  isIndex: boolean,
): Diagnosis {
  const shown = platforms.slice(0, PLATFORMS_SHOWN);
  const more = platforms.length - shown.length;
  const has = platforms.length
    ? `${shown.join(", ")}${more > 0 ? `, … (${more} more)` : ""}`
    : "no platform information";
  return {
    kind: "platform-missing",
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    platforms,
    message:
      `${image(s)}:${s.reference} (${digest}) has no ${wanted} image: ${isIndex ? `its index lists ${has}` : `it is a single ${has} image`}. ` +
      `Deployed to a ${wanted} host it would fail with \`exec format error\`.\n` +
      `Next: build for ${wanted} too (build/platforms in pipeline.yaml or --platforms ${[...new Set([...shown, wanted])].join(",")}), or deploy to a host of a listed platform.`,
  };
}

export function digestMismatchDiagnosis(
  s: Subject,
  claimed: string,
  computed: string,
  source: "header" | "reference",
): Diagnosis {
  const said =
    source === "header" ? `the registry's Docker-Content-Digest says ${claimed}` : `the reference asks for ${claimed}`;
  return {
    kind: "digest-mismatch",
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    message:
      `${image(s)}:${s.reference}: ${said}, but the manifest bytes received hash to ${computed}. ` +
      `The manifest was altered in transit (a proxy?) or the registry is inconsistent; do not deploy it.\n` +
      `Next: retry; if it persists, fetch it by digest from another network and report it to the registry's operator.`,
  };
}

/** The registry named the manifest by a digest this project does not accept (md5, sha1, upper-case hex, …). */
export function digestUnsupportedDiagnosis(s: Subject, claimed: string): Diagnosis {
  return {
    kind: "digest-mismatch",
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    message:
      `${image(s)}:${s.reference}: the registry's Docker-Content-Digest \`${registryText(claimed, 80)}\` is not a sha256 or sha512 digest in lower-case hex, so the manifest cannot be verified by it. ` +
      `A registry following the distribution spec never sends this; a proxy or an impostor might. Do not deploy it.\n` +
      `Next: check which server answers for ${s.registry}; retry from another network and report it to the registry's operator.`,
  };
}

/** An answer larger than any honest one (an endless or huge manifest, tag list, config or token). */
export function oversizeDiagnosis(s: Subject, host: string, what: string, limit: number): Diagnosis {
  return {
    kind: "server",
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    host,
    message:
      `${host} sent a ${what} for ${image(s)}:${s.reference} larger than ${Math.round(limit / 1024 / 1024)} MiB; reading stopped there` +
      `${what === "manifest" ? " (the distribution spec caps manifests at 4 MiB, and registries refuse larger pushes)" : ""}.\n` +
      `Next: the registry (or a proxy in front of it) is misbehaving; retry, and report it to its operator if it persists.`,
  };
}
