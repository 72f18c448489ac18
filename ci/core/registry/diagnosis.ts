// What a failed verification is, as data a person and a program can both use (Diagnosis), the facts it is made
// from (Subject, HttpFacts), and the phrases every diagnosis message shares. The messages themselves are written
// by diagnose-access.ts (the registry could not be asked) and diagnose-image.ts (it answered; the image is wrong).
import type { ImageName } from "../reference.js";
import type { NearMiss } from "./near-miss.js";

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

export function image(s: Subject): string {
  return `${s.registry}/${s.repository}`;
}

export function what(s: Subject): string {
  return s.reference.includes(":") ? `manifest ${s.reference}` : `tag ${s.reference}`;
}

export function who(s: Subject): string {
  return s.username !== undefined ? `user \`${s.username}\`` : "anonymous access";
}

export function short(v: string): string {
  return /^[0-9a-f]{40}$/.test(v) ? `${v.slice(0, 12)}…` : v;
}

export function codesText(f: HttpFacts): string {
  const parts = f.errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code));
  return parts.length ? ` ${parts.join("; ")}` : "";
}

export const isGhcr = (registry: string) => registry === "ghcr.io";

/** Hints about the repository name itself: the seed's `ghcr.io/hamalog`, a missing owner. */
export function nameHints(s: Subject): string[] {
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
