// THE tag definition. No other code in this project builds tag strings: every push, verification and deploy
// asks this file. The seed's incident (`manifest unknown`) came from two places defining tags differently.
import { ConfigError, InternalError } from "./errors.js";

/** OCI distribution tag grammar. */
export const OCI_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

const FULL_SHA = /^[0-9a-f]{40}$/;
const HEX = /^[0-9a-f]+$/;

/** A commit sha as 40 lowercase hex characters. Made only by `parseSha`, once at each door; the core takes it as is. */
export type Sha = string & { readonly __brand: "Sha" };

interface TagInput {
  /** The commit sha, parsed at the door. */
  sha: Sha;
  /** The branch being built, e.g. `main` or `refs/heads/main`. */
  branch: string;
  /** The repository's default branch; only it gets `latest`. Default `main`. */
  defaultBranch?: string;
}

/** A tag that looks like a commit but was made by another convention; see `explainShaLike`. */
interface ShaLikeForm {
  kind: "branch-prefixed" | "sha-prefixed" | "short" | "case";
  /** The hex part, lowercased. */
  hex: string;
  /** The prefix in front of the hex part, without the dash (branch name or `sha`). */
  prefix?: string;
  /** Where such a tag comes from and what to do instead. */
  explanation: string;
}

/**
 * Recognise the tag conventions that are not ours: `main-<sha>` / `<branch>-<sha>` (docker/metadata-action
 * `type=sha,prefix={{branch}}-`), `sha-<7 hex>` (metadata-action's bare `type=sha`), short shas, upper case.
 * Returns undefined for a full lowercase sha or for something that is not sha-like at all.
 */
export function explainShaLike(value: string): ShaLikeForm | undefined {
  const v = value.trim();
  const m = /^(.+?)-([0-9a-fA-F]{7,40})$/.exec(v);
  if (m) {
    const prefix = m[1]!;
    const hex = m[2]!.toLowerCase();
    if (prefix === "sha") {
      return {
        kind: "sha-prefixed",
        prefix,
        hex,
        explanation:
          "`sha-<short sha>` is what docker/metadata-action's `type=sha` produces by default (a `sha-` prefix and 7 characters), not the commit sha",
      };
    }
    return {
      kind: "branch-prefixed",
      prefix,
      hex,
      explanation: `\`${prefix}-<sha>\` is a branch-prefixed tag, as docker/metadata-action makes with \`type=sha,prefix={{branch}}-\`; this pipeline tags the bare commit sha`,
    };
  }
  if (/^[0-9a-fA-F]{40}$/.test(v) && v !== v.toLowerCase()) {
    return { kind: "case", hex: v.toLowerCase(), explanation: "the sha is in upper case; tags here are lowercase" };
  }
  if (/^[0-9a-fA-F]{4,39}$/.test(v)) {
    return {
      kind: "short",
      hex: v.toLowerCase(),
      explanation: `\`${v}\` is a short sha (${v.length} characters); tags here are the full 40-character sha`,
    };
  }
  return undefined;
}

/** True for a sha as `parseSha` returns it (for data read back, e.g. the host's history). */
export function isSha(value: unknown): value is Sha {
  return typeof value === "string" && FULL_SHA.test(value);
}

/** Validate and normalise a commit sha to 40 lowercase hex characters, or explain what is wrong with it. */
export function parseSha(sha: string | undefined, flag = "--sha"): Sha {
  const v = (sha ?? "").trim();
  if (v === "") {
    throw new ConfigError(
      `${flag}: required — give the full 40-character commit sha, e.g. from \`git rev-parse HEAD\` or \`$GITHUB_SHA\``,
    );
  }
  const lower = v.toLowerCase();
  if (FULL_SHA.test(lower)) return lower as Sha;
  const like = explainShaLike(v);
  if (like && like.kind !== "case") {
    const hint = like.kind === "short" ? "" : ` (prefix \`${like.prefix}-\`)`;
    throw new ConfigError(
      `${flag}: \`${v}\` is not a full commit sha${hint}: ${like.explanation}. ` +
        "Give the full 40-character sha, e.g. from `git rev-parse HEAD` or `$GITHUB_SHA`.",
    );
  }
  if (HEX.test(lower)) {
    throw new ConfigError(
      `${flag}: \`${v}\` has ${v.length} hex characters; give the full 40-character sha, e.g. from \`git rev-parse HEAD\` or \`$GITHUB_SHA\``,
    );
  }
  throw new ConfigError(
    `${flag}: \`${v.slice(0, 80)}\` is not a commit sha (expected 40 hex characters, e.g. from \`git rev-parse HEAD\` or \`$GITHUB_SHA\`)`,
  );
}

/** Strip `refs/heads/`, reject empty branch names. */
export function normalizeBranch(branch: string, flag = "--branch"): string {
  const v = (branch ?? "").trim().replace(/^refs\/heads\//, "");
  if (v === "") {
    throw new ConfigError(`${flag}: required — the branch being built, e.g. \`main\` or \`$GITHUB_REF_NAME\``);
  }
  if (/[\s\x00-\x1f]/.test(v)) throw new ConfigError(`${flag}: \`${JSON.stringify(v)}\` is not a branch name`);
  return v;
}

/**
 * The tags for a commit, in order: the full lowercase sha, then `latest` when the branch is the default branch.
 * This is the whole tag policy.
 */
export function tagsFor(input: TagInput): string[] {
  const sha: string = input.sha;
  const branch = normalizeBranch(input.branch);
  const defaultBranch = normalizeBranch(input.defaultBranch ?? "main", "--default-branch");
  const tags = [sha];
  if (branch === defaultBranch) tags.push("latest");
  for (const t of tags) {
    // Cannot fail with the rules above; kept as the guard that any future rule must also pass.
    if (!OCI_TAG.test(t)) throw new InternalError(`tag ${t} violates the OCI tag grammar`);
  }
  return tags;
}

/** The tag deploys use for a commit (the sha tag; `latest` is only ever a fallback, resolved to a digest). */
export function shaTag(sha: Sha): string {
  return sha;
}

/** The moving tag given to default-branch builds. Exposed so fallback code does not spell it itself. */
export const LATEST = "latest";
