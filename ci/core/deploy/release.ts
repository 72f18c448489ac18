// The one shape of a release: which commit, under which tag, at which digest. Preflight makes one from the
// registry's answer; a rollback takes one from the journal or history. On the host it becomes a Slot (journal.ts:
// the same fields plus the files that run it); history records the same fields as `running`.
import { parseReference } from "../reference.js";
import type { Sha } from "../tags.js";

export interface Release {
  sha: Sha;
  /** The tag(s) that named it: the sha tag, or `latest` on fallback. */
  tags: string[];
  digest: string;
  /** `registry/repo:tag@sha256:…`, the value pinned in the compose file. */
  image: string;
  /** `latest` was deployed because the sha tag was missing: `sha` is what was asked for, not what runs. */
  fallback: boolean;
}

/** `registry/repo` of a release (what prune lists and `docker image rm` is given with a digest). */
export function nameOf(r: Pick<Release, "image">): string {
  const ref = parseReference(r.image, "release image");
  return `${ref.registry}/${ref.repository}`;
}

/** Just the release's fields (a Slot or a history `running` carries more). */
export function releaseOf(r: Omit<Release, "tags" | "fallback"> & { tags?: string[]; fallback?: boolean }): Release {
  const tag = /:([^:@/]+)@/.exec(r.image)?.[1];
  return {
    sha: r.sha,
    tags: r.tags ?? (tag ? [tag] : []),
    digest: r.digest,
    image: r.image,
    fallback: r.fallback === true,
  };
}

/** `sha 0123456789ab (sha256:abcdef012345…)`: how messages name a release. */
export function shortRelease(r: Pick<Release, "sha" | "digest"> & { colour?: string }): string {
  return `sha ${r.sha.slice(0, 12)} (${r.digest.slice(0, 19)}…${r.colour ? `, ${r.colour}` : ""})`;
}
