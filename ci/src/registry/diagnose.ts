// Why an image could not be verified, in words a person can act on in one read: what was asked, what the
// registry answered, what most likely caused it, and the next step. Pure: facts in, Diagnosis out. The seed's
// `manifest unknown` becomes e.g. "tag 453a…  not found; found main-453a… (branch-prefixed, from
// docker/metadata-action) — push with this module's `tag`".
import type { ImageName } from "../reference.js";
import { editDistance } from "../similar.js";
import { explainShaLike } from "../tags.js";
import { registryText } from "./text.js";

type DiagnosisKind =
  | "network"
  | "unauthorized"
  | "anonymous-unauthorized"
  | "denied"
  | "name-unknown"
  | "manifest-unknown"
  | "platform-missing"
  | "rate-limited"
  | "server"
  | "digest-mismatch";

interface NearMiss {
  tag: string;
  why: string;
}

export interface Diagnosis {
  kind: DiagnosisKind;
  registry: string;
  repository: string;
  reference: string;
  /** The whole human explanation, ending with the next step. Never contains a credential. */
  message: string;
  nearMisses?: NearMiss[];
  /** Tags of the repository, most similar to the reference first, bounded. */
  tags?: string[];
  /** Platforms the image provides (platform-missing). */
  platforms?: string[];
  /** The HTTP status behind it, when there was one. */
  status?: number;
  /** The registry's error codes (MANIFEST_UNKNOWN, DENIED, …). */
  codes?: string[];
  /** The host that failed (the registry, or its token service). */
  host?: string;
}

export interface Subject extends ImageName {
  reference: string;
  /** Username when credentials were given (never the password). */
  username?: string;
  wantedSha?: string;
}

/** HTTP facts of a failed request (a RegistryHttpError, as plain data). */
export interface HttpFacts {
  what: "manifest" | "blob" | "tags" | "token";
  host: string;
  status: number;
  errors: { code: string; message: string }[];
  presented: "none" | "anonymous-token" | "basic" | "token";
  retryAfterMs?: number;
  challengeError?: string;
}

const TAGS_SHOWN = 10;
const PLATFORMS_SHOWN = 20;
const NEAR_MISSES_SHOWN = 5;
const TAG_FIX =
  "push with this module's `tag` (`npx hamalog tag --sha <full sha> --branch <branch>` or `dagger call tag`), which tags the full 40-character commit sha (and `latest` on the default branch)";

function image(s: Subject): string {
  return `${s.registry}/${s.repository}`;
}

function what(s: Subject): string {
  return s.reference.includes(":") ? `manifest ${s.reference}` : `tag ${s.reference}`;
}

function who(s: Subject): string {
  return s.username !== undefined ? `user \`${s.username}\`` : "anonymous access";
}

function short(v: string): string {
  return /^[0-9a-f]{40}$/.test(v) ? `${v.slice(0, 12)}…` : v;
}

function codesText(f: HttpFacts): string {
  const parts = f.errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code));
  return parts.length ? ` ${parts.join("; ")}` : "";
}

const isGhcr = (registry: string) => registry === "ghcr.io";

/** Hints about the repository name itself: the seed's `ghcr.io/hamalog`, a missing owner. */
function nameHints(s: Subject): string[] {
  const hints: string[] = [];
  if (!s.repository.includes("/")) {
    hints.push(
      isGhcr(s.registry)
        ? `ghcr.io names are OWNER/IMAGE (e.g. ghcr.io/daemin-kim/hamalog-backend); \`${image(s)}\` has no owner — the seed's default \`ghcr.io/hamalog\` came from an unset GITHUB_REPOSITORY`
        : `\`${s.repository}\` has no OWNER/ part; most registries expect OWNER/IMAGE`,
    );
  }
  hints.push(
    "set image/repository in pipeline.yaml or pass --image REGISTRY/OWNER/IMAGE; names are lowercase (GITHUB_REPOSITORY can hold uppercase, e.g. Daemin-Kim/Hamalog-Backend — this module lowercases it, hand-written scripts often do not)",
  );
  return hints;
}

/**
 * Tags that are probably what was meant: the wanted commit under another convention (`<branch>-<sha>`,
 * `sha-<7>`, a short sha, other case), the full-sha tag when a short/prefixed form was asked for, or a
 * near-typo of a non-sha reference. Most convincing first, bounded.
 */
export function findNearMisses(reference: string, tags: readonly string[], wantedSha?: string): NearMiss[] {
  const refLike = explainShaLike(reference);
  const wanted = (wantedSha ?? (/^[0-9a-fA-F]{40}$/.test(reference) ? reference : refLike?.hex))?.toLowerCase();
  const strong: NearMiss[] = [];
  const weak: NearMiss[] = [];
  for (const tag of tags) {
    if (tag === reference) continue;
    if (wanted) {
      const like = explainShaLike(tag);
      if (like?.kind === "case") {
        if (like.hex === wanted) strong.push({ tag, why: like.explanation });
        continue;
      }
      if (like && (wanted.startsWith(like.hex) || like.hex.startsWith(wanted))) {
        const full = like.hex.length === 40 && like.hex === wanted;
        (full ? strong : weak).push({
          tag,
          why: `the same commit (${like.hex.length === 40 ? "full sha" : `prefix ${like.hex}`}): ${like.explanation}`,
        });
        continue;
      }
      if (/^[0-9a-f]{40}$/.test(tag) && tag.startsWith(wanted) && tag !== reference) {
        strong.push({ tag, why: `the full-sha tag this pipeline pushes for \`${reference}\`; ask for the full sha` });
        continue;
      }
      continue;
    }
    const d = editDistance(reference.toLowerCase(), tag.toLowerCase());
    if (d <= Math.max(1, Math.floor(reference.length / 4)))
      weak.push({ tag, why: `differs from \`${reference}\` by ${d} character${d === 1 ? "" : "s"} (a typo?)` });
  }
  return [...strong, ...weak].slice(0, NEAR_MISSES_SHOWN);
}

/** Tags ordered for display: near-misses first, then by similarity to the reference; registry order breaks ties. */
export function rankTags(reference: string, tags: readonly string[], nearMisses: readonly NearMiss[] = []): string[] {
  const near = new Set(nearMisses.map((n) => n.tag));
  const ref = reference.toLowerCase();
  return tags
    .map((tag, i) => ({ tag, i, near: near.has(tag) ? 0 : 1, d: editDistance(ref, tag.toLowerCase()) }))
    .sort((a, b) => a.near - b.near || a.d - b.d || a.i - b.i)
    .map((x) => x.tag);
}

export function networkDiagnosis(s: Subject, host: string, reason: string, detail: string): Diagnosis {
  const next: Record<string, string> = {
    refused: `check the registry address and port (image/registry or --image); if it is a local registry, start it`,
    dns: `check the host name for typos (image/registry or --image) and this machine's DNS`,
    tls: `the certificate is not trusted here (a proxy re-signing TLS? point NODE_EXTRA_CA_CERTS at its CA); plain HTTP is used only for loopback registries`,
    timeout: `the registry was too slow; retry, or check proxies/firewalls between here and ${host}`,
  };
  return {
    kind: "network",
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    host,
    message:
      `cannot verify ${what(s)} of ${image(s)}: ${host} could not be reached — ${detail}.\n` +
      `Next: ${next[reason] ?? `retry; if it persists, check the network path to ${host}`}.`,
  };
}

/** A failed HTTP answer (after retries) turned into a diagnosis. 404s on manifests go to notFound* instead. */
export function httpDiagnosis(s: Subject, f: HttpFacts): Diagnosis {
  const base = {
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    status: f.status,
    codes: f.errors.map((e) => e.code),
    host: f.host,
  };
  const codes = codesText(f);
  const ghcrToken = isGhcr(s.registry)
    ? " For ghcr.io: a personal access token (classic) with `read:packages`, or GITHUB_TOKEN with `permissions: packages: read`; any username works."
    : "";
  if (f.status === 0) {
    return {
      kind: "unauthorized",
      ...base,
      message: `cannot authenticate to ${s.registry} for ${image(s)}:${codes}.\nNext: use an https token service or a loopback registry.`,
    };
  }
  if (f.status === 401 || (f.what === "token" && f.status === 403)) {
    if (s.username === undefined) {
      return {
        kind: "anonymous-unauthorized",
        ...base,
        message:
          `${image(s)} requires credentials: ${f.host} answered HTTP ${f.status}${codes} to an anonymous request. ` +
          `Either the image is private, or the repository does not exist (ghcr.io answers 401 rather than reveal whether a private name exists) — asked for exactly \`${image(s)}\`.\n` +
          `Next: pass --username and --password-env VAR / --password-file FILE (Dagger: --registry-username U --registry-token=env://VAR).${ghcrToken}` +
          (s.repository.includes("/") ? "" : `\nAlso: ${nameHints(s)[0]}.`),
      };
    }
    const stage =
      f.what === "token"
        ? `the token service ${f.host} rejected the credentials of ${who(s)} (HTTP ${f.status}${codes})`
        : f.presented === "basic"
          ? `${s.registry} rejected the username/password of ${who(s)} (HTTP 401${codes})`
          : `${s.registry} refused the token issued to ${who(s)} for pulling ${s.repository} (HTTP 401${codes}${f.challengeError ? `, ${f.challengeError}` : ""}): the credentials were accepted but grant no pull on this repository, or the repository does not exist`;
    return {
      kind: "unauthorized",
      ...base,
      message:
        `cannot verify ${what(s)} of ${image(s)}: ${stage}.\n` +
        `Next: check the password/token is current (tokens expire) and may read this repository.${ghcrToken}`,
    };
  }
  if (f.status === 403) {
    return {
      kind: "denied",
      ...base,
      message:
        `${s.registry} denied ${who(s)} access to ${image(s)} (HTTP 403${codes}): the credentials are valid but may not pull this repository.\n` +
        `Next: grant access (ghcr.io: the package's settings → Manage access, or link the package to the repository running CI), or check the name \`${image(s)}\`.`,
    };
  }
  if (f.status === 429) {
    const wait =
      f.retryAfterMs !== undefined ? ` The registry asks to wait ${Math.ceil(f.retryAfterMs / 1000)} s.` : "";
    return {
      kind: "rate-limited",
      ...base,
      message:
        `${f.host} is rate-limiting (HTTP 429${codes || " TOOMANYREQUESTS"}) and still was after retrying with backoff.${wait}\n` +
        `Next: retry later; authenticated pulls get higher limits${s.username === undefined ? " (pass --username and a token)" : ""}.`,
    };
  }
  if (f.status === 400 && f.errors.some((e) => e.code === "NAME_INVALID")) {
    return {
      kind: "name-unknown",
      ...base,
      message: `${s.registry} says \`${s.repository}\` is not a valid repository name (HTTP 400${codes}).\nNext: ${nameHints(s).join("; ")}.`,
    };
  }
  const server = f.status >= 500;
  return {
    kind: "server",
    ...base,
    message:
      `${f.host} answered HTTP ${f.status}${codes} to the ${f.what} request for ${image(s)}${server ? " and kept failing after retries with backoff: the registry is failing, not your image" : " (unexpected for a pull)"}.\n` +
      `Next: retry later${isGhcr(s.registry) ? "; check https://www.githubstatus.com" : ""}${server ? "" : "; if it persists, report it with this message"}.`,
  };
}

export function nameUnknownDiagnosis(s: Subject, f?: Pick<HttpFacts, "host" | "status" | "errors">): Diagnosis {
  return {
    kind: "name-unknown",
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    ...(f ? { status: f.status, codes: f.errors.map((e) => e.code), host: f.host } : {}),
    message:
      `repository \`${image(s)}\` does not exist or is not visible to ${who(s)} (NAME_UNKNOWN) — asked for exactly \`${image(s)}\`.\n` +
      `Next: ${nameHints(s).join("; ")}.`,
  };
}

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
