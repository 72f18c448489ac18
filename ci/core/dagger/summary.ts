// The one-screen summaries the Dagger door's results carry (`dagger call … deploy … summary`): `dagger call` prints
// an object as its type and ID only, so a chain that ends on `summary` is how a CI log shows what shipped. Plain
// text from plain data; the same words whatever the enum spellings of the engine.
import type { DeploymentData, StatusData, VerifiedData } from "./api.js";

/** More lines than this in a list (changes) are cut, with how many were left out: a summary fits one screen. */
export const MAX_LIST = 12;

function list(title: string, items: readonly string[], more: string): string[] {
  if (items.length === 0) return [];
  const shown = items.slice(0, MAX_LIST).map((x) => `  - ${x}`);
  if (items.length > MAX_LIST) shown.push(`  … ${items.length - MAX_LIST} more (${more})`);
  return [`${title}:`, ...shown];
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export function verifiedSummary(v: Omit<VerifiedData, "summary">): string {
  return [
    `verified ${v.reference}`,
    `  digest     ${v.digest}`,
    `  media type ${v.mediaType}`,
    ...(v.platforms.length ? [`  platforms  ${v.platforms.join(", ")}`] : []),
  ].join("\n");
}

export function deploymentSummary(d: Omit<DeploymentData, "summary">): string {
  const what = d.action === "rollback" ? "rollback" : "deploy";
  const as = d.colour ? ` as ${d.colour}` : "";
  const head = {
    success: `${what} succeeded on ${d.host} in ${seconds(d.durationMs)} (strategy ${d.strategy}): it runs sha ${d.sha}${as}`,
    "dry-run": `${what} dry run on ${d.host} (strategy ${d.strategy}): nothing was changed; it would run sha ${d.sha}${as}`,
    "already-live": `${what}: sha ${d.sha} is already live and healthy on ${d.host}${as} — nothing was changed (force replaces it)`,
  }[d.result];
  return [
    head,
    `  reference ${d.reference}`,
    `  digest    ${d.digest}`,
    ...(d.fallbackUsed
      ? [`  FALLBACK: the sha tag was missing, \`latest\` was deployed (deploy/fallback latest)`]
      : []),
    ...(d.rolledBackTo ? [`  rolled back to sha ${d.rolledBackTo}`] : []),
    ...(d.result === "dry-run" ? ["  the rendered compose file: end the call on `compose` instead of `summary`"] : []),
    ...list("changed", d.changes, "end the call on `changes`"),
  ].join("\n");
}

export function statusSummary(s: Omit<StatusData, "summary">, lines: readonly string[]): string {
  // What status printed is already a screen about the host; it is the summary.
  return lines.length ? lines.join("\n") : `status of ${s.host}: nothing was reported`;
}

export function shipmentSummary(p: {
  sha: string;
  branch: string;
  published: readonly string[];
  verified: VerifiedData;
  deployment: DeploymentData;
}): string {
  return [
    `shipped sha ${p.sha} (${p.branch}) to ${p.deployment.host}`,
    "published:",
    ...p.published.map((r) => `  ${r}`),
    `verified: ${p.verified.reference} (the registry serves ${p.verified.digest})`,
    p.deployment.summary,
  ].join("\n");
}
