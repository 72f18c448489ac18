// The release a deploy or rollback puts on the host: which commit, under which tag, at which digest. Preflight
// makes one from the registry's answer; rollback makes one from a history line.
import { parseReference } from "../reference.js";
import type { Sha } from "../tags.js";
import type { Running } from "./history.js";

export interface Release {
  sha: Sha;
  /** The tag(s) that named it: the sha tag, or `latest` on fallback. */
  tags: string[];
  digest: string;
  /** `registry/repo` */
  name: string;
  /** `registry/repo:tag@sha256:…`, the value pinned in the compose file. */
  image: string;
  /** `latest` was deployed because the sha tag was missing: `sha` is what was asked for, not what runs. */
  fallback: boolean;
}

/** The release a history line says ran (for rollback). */
export function releaseOf(r: Running): Release {
  const ref = parseReference(r.image, "history image");
  return {
    sha: r.sha,
    tags: ref.tag ? [ref.tag] : [],
    digest: r.digest,
    name: `${ref.registry}/${ref.repository}`,
    image: r.image,
    fallback: r.fallback === true,
  };
}

/** What history records as running once `r` runs. */
export function runningOf(r: Release): Running {
  return { sha: r.sha, digest: r.digest, image: r.image, ...(r.fallback ? { fallback: true } : {}) };
}
