// Image references: parse and format `registry/repository[:tag][@digest]` following the distribution
// reference grammar (github.com/distribution/reference), plus the one way this project builds an image name
// from config (no silent defaults: the seed's `ghcr.io/hamalog` came from one).
import { ConfigError } from "./errors.js";
import { OCI_TAG } from "./tags.js";

const DOCKER_HUB = "docker.io";
export const DEFAULT_REGISTRY = "ghcr.io";

/** An image's name, without tag or digest: what config `image:` and `--image` give. */
export interface ImageName {
  /** Registry host with optional port, e.g. `ghcr.io`, `127.0.0.1:5001`, `docker.io`. */
  registry: string;
  /** Repository path inside the registry, e.g. `daemin-kim/hamalog-backend`, `library/alpine`. */
  repository: string;
}

/** An image name with a tag and/or digest: one exact image. */
interface ImageReference extends ImageName {
  tag?: string;
  /** `algorithm:hex`, e.g. `sha256:…`. */
  digest?: string;
}

const ALNUM = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]+)";
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
// Only the digests the OCI spec registers, in lower-case hex: `md5:`/`sha1:`/upper case are refused up front.
const DIGEST = /^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;

function looksLikeRegistry(first: string): boolean {
  return first.includes(".") || first.includes(":") || first === "localhost" || first.startsWith("[");
}

/** Validate a digest: `sha256:` + 64 or `sha512:` + 128 lower-case hex characters. */
export function validateDigest(digest: string, field = "digest"): string {
  if (!DIGEST.test(digest)) {
    throw new ConfigError(
      `${field}: \`${digest.slice(0, 140)}\` is not a digest (expected sha256: followed by 64 lower-case hex characters, or sha512: and 128)`,
    );
  }
  return digest;
}

/** Validate a registry host (`ghcr.io`, `127.0.0.1:5001`, `[::1]:5000`). */
export function validateRegistry(registry: string, field = "image/registry"): string {
  if (!HOST.test(registry)) {
    throw new ConfigError(`${field}: \`${registry}\` is not a registry host (e.g. ghcr.io or 127.0.0.1:5001)`);
  }
  return registry.toLowerCase();
}

/**
 * Validate a repository path, lowercasing it first: GHCR rejects uppercase and `GITHUB_REPOSITORY` often has it
 * (`Daemin-Kim/Hamalog-Backend`).
 */
export function normalizeRepository(repository: string, field = "image/repository"): string {
  const v = (repository ?? "")
    .trim()
    .replace(/^\/+|\/+$/g, "")
    .toLowerCase();
  if (v === "") {
    throw new ConfigError(`${field}: required — the repository path, e.g. daemin-kim/hamalog-backend`);
  }
  if (!REPOSITORY.test(v) || v.length > 255) {
    throw new ConfigError(
      `${field}: \`${repository}\` is not a valid repository path (lowercase letters, digits, and . _ - separators between / components, e.g. daemin-kim/hamalog-backend)`,
    );
  }
  return v;
}

/** Parse a reference as `docker pull` would, including docker.io defaults. */
export function parseReference(input: string, field = "image"): ImageReference {
  const ref = (input ?? "").trim();
  if (ref === "") throw new ConfigError(`${field}: required — e.g. ghcr.io/daemin-kim/hamalog-backend`);
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = validateDigest(rest.slice(at + 1), field);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!OCI_TAG.test(tag)) throw new ConfigError(`${field}: \`${tag}\` is not a valid tag in \`${ref}\``);
  }
  const slash = rest.indexOf("/");
  let registry = DOCKER_HUB;
  let repository = rest;
  if (slash >= 0 && looksLikeRegistry(rest.slice(0, slash))) {
    registry = validateRegistry(rest.slice(0, slash), field);
    repository = rest.slice(slash + 1);
  }
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DOCKER_HUB;
  if (repository !== repository.toLowerCase()) {
    throw new ConfigError(
      `${field}: repository \`${repository}\` must be lowercase (use \`${repository.toLowerCase()}\`)`,
    );
  }
  repository = normalizeRepository(repository, field);
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** `registry/repository[:tag][@digest]`, the form docker and compose accept. */
export function formatReference(ref: ImageReference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag) s += `:${ref.tag}`;
  if (ref.digest) s += `@${ref.digest}`;
  return s;
}

/** Loopback registries are spoken to over plain HTTP, like Docker's default insecure-registry rule. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith("[") ? registry.slice(1, registry.indexOf("]")) : registry.split(":")[0]!;
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
