// Manifest media types, digests and platforms: what a manifest answer means, without any I/O.
import { createHash } from "node:crypto";

export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

/** The Accept header: indexes first, so a multi-platform tag answers with its index (as docker pull asks). */
export const MANIFEST_ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(", ");

export function isIndex(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_LIST;
}

/**
 * The digests this project accepts, from a registry or a user: sha256 and sha512 in lower-case hex, as the
 * OCI spec registers them. An `md5:`/`sha1:` header is not "verified" by hashing the bytes with md5.
 */
export const SUPPORTED_DIGEST = /^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;

/** `sha256:<hex>` (or sha512) of exactly these bytes. */
export function digestOf(bytes: Uint8Array, algorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

// RFC 6838 type/subtype: it is printed, so anything else a registry sends is ignored.
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

/** The media type: the Content-Type header without parameters, else the body's `mediaType`. */
export function mediaTypeOf(contentType: string | null, body: unknown): string {
  let header = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (!MEDIA_TYPE.test(header)) header = "";
  if (header !== "" && header !== "application/json" && header !== "application/octet-stream") return header;
  const fromBody = (body as { mediaType?: unknown } | undefined)?.mediaType;
  if (typeof fromBody === "string" && MEDIA_TYPE.test(fromBody.toLowerCase())) return fromBody.toLowerCase();
  // An OCI index may omit mediaType; `manifests` tells them apart.
  return Array.isArray((body as { manifests?: unknown })?.manifests) ? OCI_INDEX : header || OCI_MANIFEST;
}

interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

/** `os/arch[/variant]`. */
function formatPlatform(p: PlatformSpec): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

function parsePlatform(s: string): PlatformSpec {
  const [os = "", architecture = "", variant] = s.trim().toLowerCase().split("/");
  return { os, architecture, ...(variant ? { variant } : {}) };
}

// A platform word (os, architecture, variant) as the OCI spec's values look; others are not printed or matched.
const PLATFORM_WORD = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const MAX_INDEX_PLATFORMS = 256;
const isWord = (v: unknown): v is string => typeof v === "string" && PLATFORM_WORD.test(v);

/**
 * The runnable platforms of an index, in its order, each once (a Set: linear in the entries, however many a
 * registry sends). Entries with `unknown/unknown` (buildx attestation manifests) are not platforms anyone can
 * run, so they are left out, and so are entries whose words are not platform words. Real indexes list a
 * handful; past MAX_INDEX_PLATFORMS the rest is not reported (it would only flood messages and JSON).
 */
export function indexPlatforms(index: unknown): string[] {
  const manifests = (index as { manifests?: unknown })?.manifests;
  if (!Array.isArray(manifests)) return [];
  const out = new Set<string>();
  for (const m of manifests) {
    const p = (m as { platform?: Partial<PlatformSpec> })?.platform;
    if (!isWord(p?.os) || !isWord(p.architecture) || p.os === "unknown" || p.architecture === "unknown") continue;
    if (p.variant !== undefined && p.variant !== "" && !isWord(p.variant)) continue;
    out.add(formatPlatform({ os: p.os, architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}) }));
    if (out.size >= MAX_INDEX_PLATFORMS) break;
  }
  return [...out];
}

/** The platform of a single image, read from its config blob (`os`, `architecture`, `variant`). */
export function configPlatform(config: unknown): string | undefined {
  const c = config as Partial<PlatformSpec> | undefined;
  if (!isWord(c?.os) || !isWord(c.architecture) || (c.variant && !isWord(c.variant))) return undefined;
  return formatPlatform({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) });
}

/** The config descriptor of a single-image manifest. */
export function configDescriptor(manifest: unknown): { digest: string; mediaType?: string } | undefined {
  const c = (manifest as { config?: { digest?: unknown; mediaType?: unknown } })?.config;
  return typeof c?.digest === "string"
    ? { digest: c.digest, ...(typeof c.mediaType === "string" ? { mediaType: c.mediaType } : {}) }
    : undefined;
}

function normalizeVariant(p: PlatformSpec): string | undefined {
  if (p.architecture === "arm64" && (p.variant === undefined || p.variant === "v8")) return "v8";
  return p.variant;
}

/**
 * Whether `available` (e.g. `linux/arm64/v8`) satisfies `wanted` (e.g. `linux/arm64`): os and architecture
 * must be equal; a wanted variant must match (arm64's implicit variant is v8), an unstated one accepts any.
 */
export function platformMatches(wanted: string, available: string): boolean {
  const w = parsePlatform(wanted);
  const a = parsePlatform(available);
  if (w.os !== a.os || w.architecture !== a.architecture) return false;
  if (w.variant === undefined) return true;
  return normalizeVariant(w) === normalizeVariant(a);
}
