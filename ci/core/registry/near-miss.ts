// Which of a repository's tags the person probably meant: the wanted commit under another tag convention
// (`<branch>-<sha>`, `sha-<7>`, a short sha, other case) or a near-typo, and the tags ranked for display.
import { editDistance } from "../similar.js";
import { explainShaLike } from "../tags.js";

export interface NearMiss {
  tag: string;
  why: string;
}

const NEAR_MISSES_SHOWN = 5;

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
