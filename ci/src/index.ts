/**
 * Hamalog's build-and-deploy pipeline: the ONE place image names and tags are defined.
 *
 * Build, tag, push, verify the manifest and deploy with the same code from a laptop (`dagger call`), from
 * GitHub Actions, and from other Dagger modules. All logic lives in engine-free modules next to this file;
 * this class is a thin door onto them (the `hamalog` CLI is the other door).
 */
import { object, func } from "@dagger.io/dagger";
import { tagsFor } from "./tags.js";

/** Hamalog's pipeline functions: tag, verify-manifest, deploy and friends, one definition for CI and laptops. */
@object()
export class Hamalog {
  /**
   * Compute the image tags for a commit: the full 40-character sha, then `latest` on the default branch.
   *
   * Example: dagger call tag --sha=453a6545b97fe240727c378291230abeb793d851 --branch=main
   *
   * @param sha Full 40-character commit sha (e.g. $GITHUB_SHA); short or prefixed forms are rejected.
   * @param branch Branch being built (e.g. $GITHUB_REF_NAME); `refs/heads/` is stripped.
   * @param defaultBranch Branch that also gets the `latest` tag.
   */
  @func()
  tag(sha: string, branch: string, defaultBranch = "main"): string[] {
    return tagsFor({ sha, branch, defaultBranch });
  }
}
