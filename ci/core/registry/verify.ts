// Prove an image exists in its registry before anything touches the server, and explain why when it does not.
// One verification = one manifest GET when the client is warm (digest from Docker-Content-Digest, checked
// against the sha256 of the exact bytes; platforms from the index), plus the config blob only when a platform
// must be checked on a single-platform image. Failures throw RegistryError carrying a structured Diagnosis.
import { PLATFORM, PLATFORM_HINT } from "../platform.js";
import { ConfigError, PipelineError } from "../errors.js";
import {
  formatReference,
  normalizeRepository,
  validateDigest,
  validateRegistry,
  type ImageName,
} from "../reference.js";
import { OCI_TAG, parseSha, shaTag, type Sha } from "../tags.js";
import { basicAuthorization, type Credentials } from "./auth.js";
import { RegistryClient } from "./client.js";
import { RegistryHttpError } from "./http-error.js";
import { httpDiagnosis, nameUnknownDiagnosis, networkDiagnosis } from "./diagnose-access.js";
import {
  digestMismatchDiagnosis,
  digestUnsupportedDiagnosis,
  manifestUnknownDiagnosis,
  oversizeDiagnosis,
  platformMissingDiagnosis,
} from "./diagnose-image.js";
import type { Diagnosis, Subject } from "./diagnosis.js";
import { BodyTooLarge, NetworkFailure, type Call } from "./http.js";
import {
  configDescriptor,
  configPlatform,
  digestOf,
  indexPlatforms,
  isIndex,
  mediaTypeOf,
  platformMatches,
  SUPPORTED_DIGEST,
} from "./manifest.js";

export { RegistryClient } from "./client.js";

export interface VerifyRequest extends ImageName {
  /** A tag (`<sha>` or `latest`) or a digest `sha256:…`. */
  reference: string;
  credentials?: Credentials;
  /** e.g. `linux/amd64`: fail if the image does not provide it. */
  platform?: string;
  /** The commit sha the caller wanted, for near-miss diagnosis. */
  wantedSha?: Sha;
}

export interface VerifyResult {
  /** `registry/repo:tag@sha256:…` (or `registry/repo@sha256:…` for a digest reference). */
  reference: string;
  digest: string;
  mediaType: string;
  /** `["linux/amd64", …]`; for a single-image manifest, read from its config only when a platform was asked for, else []. */
  platforms: string[];
  /** HTTP requests this verification made (token fetches and retries included). */
  requests: number;
}

/** A verification that failed; `diagnosis` says why and what to do. Exit code 1. */
export class RegistryError extends PipelineError {
  constructor(readonly diagnosis: Diagnosis) {
    super(diagnosis.message, "verify-manifest");
    this.name = "RegistryError";
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * What to verify, from a tag or a commit sha (exactly one): a sha gives the tag the tag definition gives it
 * (tags.ts; this module never spells tags itself) and is kept as `wantedSha` for near-miss diagnosis.
 */
export function chooseReference(
  tag: string | undefined,
  sha: string | undefined,
  flags = { tag: "--tag", sha: "--sha" },
): { reference: string; wantedSha?: Sha } {
  if (tag !== undefined && sha !== undefined) throw new ConfigError(`${flags.tag} and ${flags.sha}: give only one`);
  if (sha !== undefined) {
    const wantedSha = parseSha(sha, flags.sha);
    return { reference: shaTag(wantedSha), wantedSha };
  }
  if (tag === undefined || tag.trim() === "") {
    throw new ConfigError(
      `${flags.tag} or ${flags.sha}: required — the tag (or digest) to verify, or the commit sha whose tag to verify`,
    );
  }
  return { reference: tag.trim() };
}

/** Validate a request's fields (ConfigError naming the field) and normalise them. */
export function checkRequest(req: VerifyRequest): VerifyRequest {
  const registry = validateRegistry((req.registry ?? "").trim(), "registry");
  const repository = normalizeRepository(req.repository, "repository");
  const reference = (req.reference ?? "").trim();
  if (reference === "")
    throw new ConfigError("reference: required — a tag (the full commit sha, or latest) or a digest sha256:…");
  if (reference.includes(":")) validateDigest(reference, "reference");
  else if (!OCI_TAG.test(reference)) {
    throw new ConfigError(
      `reference: \`${reference.slice(0, 140)}\` is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)`,
    );
  }
  const platform = req.platform?.trim().toLowerCase();
  if (platform !== undefined && platform !== "" && !PLATFORM.test(platform)) {
    throw new ConfigError(`platform: \`${req.platform}\` ${PLATFORM_HINT}`);
  }
  if (req.credentials && (req.credentials.username.trim() === "" || req.credentials.password === "")) {
    throw new ConfigError(
      "credentials: both a username and a password/token are required (GHCR accepts any username with a token)",
    );
  }
  return {
    registry,
    repository,
    reference,
    ...(req.credentials
      ? { credentials: { username: req.credentials.username.trim(), password: req.credentials.password } }
      : {}),
    ...(platform ? { platform } : {}),
    ...(req.wantedSha ? { wantedSha: req.wantedSha } : {}),
  };
}

/** Replace every occurrence of the secrets in the diagnosis' strings: defence in depth, since none should be there. */
function scrub(d: Diagnosis, secrets: string[]): Diagnosis {
  const live = secrets.filter((s) => s.length >= 3);
  if (live.length === 0) return d;
  const clean = (v: unknown): unknown => {
    if (typeof v === "string") return live.reduce((acc, s) => acc.split(s).join("[redacted]"), v);
    if (Array.isArray(v)) return v.map(clean);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clean(x)]));
    return v;
  };
  return clean(d) as Diagnosis;
}

function facts(e: RegistryHttpError) {
  return {
    what: e.what,
    host: e.host,
    status: e.status,
    errors: e.errors,
    presented: e.presented,
    ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
    ...(e.challengeError !== undefined ? { challengeError: e.challengeError } : {}),
  };
}

/** Turn a client failure into a Diagnosis; a 404 on the manifest lists the tags to find near-misses. */
async function diagnose(
  e: unknown,
  s: Subject,
  target: ImageName,
  req: VerifyRequest,
  client: RegistryClient,
  call: Call,
): Promise<Diagnosis> {
  if (e instanceof NetworkFailure) return networkDiagnosis(s, e.host, e.reason, e.detail);
  if (e instanceof BodyTooLarge) return oversizeDiagnosis(s, e.host, e.what ?? "answer", e.limit);
  if (!(e instanceof RegistryHttpError)) throw e;
  if (e.what === "manifest" && e.status === 404) {
    if (e.codes.includes("NAME_UNKNOWN")) return nameUnknownDiagnosis(s, e);
    try {
      const listed = await client.listTags(target, req.credentials, call);
      return manifestUnknownDiagnosis(s, listed.tags, { truncated: listed.truncated, status: 404 });
    } catch (t) {
      if (t instanceof RegistryHttpError && t.codes.includes("NAME_UNKNOWN")) return nameUnknownDiagnosis(s, t);
      const problem = t instanceof NetworkFailure ? t.message : t instanceof RegistryHttpError ? t.message : String(t);
      return manifestUnknownDiagnosis(s, undefined, { tagsProblem: problem, status: 404 });
    }
  }
  return httpDiagnosis(s, facts(e));
}

/**
 * Verify that `registry/repository:reference` exists (and provides `platform`), returning its digest.
 * Throws ConfigError for a malformed request, RegistryError (with `.diagnosis`) when the registry says no.
 */
export async function verifyManifest(
  request: VerifyRequest,
  opts: { client?: RegistryClient; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<VerifyResult> {
  const req = checkRequest(request);
  const client = opts.client ?? new RegistryClient();
  const call = {
    ...client.newCall(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const target: ImageName = { registry: req.registry, repository: req.repository };
  const subject: Subject = {
    registry: req.registry,
    repository: req.repository,
    reference: req.reference,
    ...(req.credentials ? { username: req.credentials.username } : {}),
    ...(req.wantedSha ? { wantedSha: req.wantedSha } : {}),
  };
  const secrets = req.credentials
    ? [req.credentials.password, basicAuthorization(req.credentials.username, req.credentials.password).slice(6)]
    : [];
  const fail = (d: Diagnosis): never => {
    throw new RegistryError(scrub(d, secrets));
  };
  try {
    const answer = await client.getManifest(target, req.reference, req.credentials, call);
    const claimed = answer.digestHeader?.trim() || undefined;
    if (claimed && !SUPPORTED_DIGEST.test(claimed)) fail(digestUnsupportedDiagnosis(subject, claimed));
    const algorithm = (claimed ?? (req.reference.includes(":") ? req.reference : "sha256:")).split(":")[0]!;
    let computed: string;
    try {
      computed = digestOf(answer.body, algorithm);
    } catch {
      computed = digestOf(answer.body);
    }
    if (claimed && claimed !== computed) fail(digestMismatchDiagnosis(subject, claimed, computed, "header"));
    if (req.reference.includes(":") && req.reference !== computed)
      fail(digestMismatchDiagnosis(subject, req.reference, computed, "reference"));
    let manifest: unknown;
    try {
      manifest = JSON.parse(answer.body.toString("utf8"));
    } catch {
      return fail(
        httpDiagnosis(subject, {
          what: "manifest",
          host: target.registry,
          status: 200,
          errors: [{ code: "MANIFEST_INVALID", message: "the manifest is not JSON" }],
          presented: "none",
        }),
      );
    }
    const mediaType = mediaTypeOf(answer.contentType, manifest);
    const index = isIndex(mediaType);
    let platforms = index ? indexPlatforms(manifest) : [];
    if (req.platform) {
      if (!index) {
        // A single image states its platform only in its config blob: one more request, made only when asked.
        const config = configDescriptor(manifest);
        const blob = config ? await client.getBlob(target, config.digest, req.credentials, call) : undefined;
        let parsed: unknown;
        try {
          parsed = blob ? JSON.parse(blob.toString("utf8")) : undefined;
        } catch {
          parsed = undefined;
        }
        const p = configPlatform(parsed);
        platforms = p ? [p] : [];
      }
      const wanted = req.platform;
      if (!platforms.some((p) => platformMatches(wanted, p)))
        fail(platformMissingDiagnosis(subject, wanted, platforms, computed, index));
    }
    const tagged = req.reference.includes(":") ? {} : { tag: req.reference };
    return {
      reference: formatReference({ registry: req.registry, repository: req.repository, ...tagged, digest: computed }),
      digest: computed,
      mediaType,
      platforms,
      requests: call.requests,
    };
  } catch (e) {
    if (e instanceof RegistryError || e instanceof ConfigError) throw e;
    return fail(await diagnose(e, subject, target, req, client, call));
  }
}
