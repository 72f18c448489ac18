// The deploy core's two entries, shared by both doors: `deploy` (a commit's image, verified to a digest first)
// and `rollback` (a release from the host's history). Each opens a session, finds its release in `preflight`,
// and hands it to the procedure (apply.ts).
import { ConfigError, PipelineError } from "../errors.js";
import { validateDigest } from "../reference.js";
import type { Sha } from "../tags.js";
import { apply } from "./apply.js";
import { applyBlueGreen } from "./bluegreen.js";
import { rollbackTarget, successfulReleases, type HistoryEntry, type Running } from "./history.js";
import { journalCmd } from "./journal-commands.js";
import { parseJournal, type Journal } from "./journal.js";
import { preflight, probeForwarding, probeHost } from "./preflight.js";
import { releaseOf } from "./release.js";
import { readHistory, withSession, type DeployEnv, type DeployInput, type Outcome, type Session } from "./session.js";

export type { DeployEnv, DeployInput, Outcome } from "./session.js";

/** The procedure deploy/strategy names: blue/green behind the proxy, or recreate in place. */
const procedure = (s: Session) => (s.input.deploy.strategy === "blue-green" ? applyBlueGreen : apply);

/** Deploy the image built from `sha` (its sha tag, verified to a digest first). */
export function deploy(input: DeployInput & { sha: Sha }, env: DeployEnv): Promise<Outcome> {
  return withSession(input, env, async (s) => {
    const release = await s.rep.phase("preflight", async () => {
      const r = await preflight(
        s.remote,
        {
          registry: input.image.registry,
          repository: input.image.repository,
          sha: input.sha,
          fallback: input.deploy.fallback,
          ...(input.credentials ? { credentials: input.credentials } : {}),
          ...(input.deploy.platform ? { platform: input.deploy.platform } : {}),
          ...(input.signal ? { signal: input.signal } : {}),
          ...(input.deploy.health.url ? { healthUrl: input.deploy.health.url } : {}),
          directory: input.deploy.directory,
        },
        env.verify,
        s.rep,
      );
      return { value: r, summary: `${r.image}${r.fallback ? " (FALLBACK to latest)" : ""}` };
    });
    return procedure(s)(s, release, "deploy");
  });
}

/** Go back to `to` (a sha or digest from history), or to the previous successful release; same health gate. */
export function rollback(input: DeployInput & { to?: string }, env: DeployEnv): Promise<Outcome> {
  const to = input.to?.trim().toLowerCase();
  if (to !== undefined && to !== "") {
    if (to.startsWith("sha256:")) validateDigest(to, "--to");
    else if (!/^[0-9a-f]{7,40}$/.test(to)) {
      throw new ConfigError(
        `--to: \`${input.to}\` is neither a commit sha (7–40 hex characters) nor a digest (sha256:…) — see \`hamalog status\` for deployed releases`,
      );
    }
  }
  return withSession(input, env, async (s) => {
    const release = await s.rep.phase("preflight", async () => {
      await probeHost(s.remote, false, input.signal, input.deploy.directory);
      if (input.deploy.health.url) await probeForwarding(s.remote, input.deploy.health.url);
      const entries = await readHistory(s);
      // Both strategies: the journal's `previous` (blue/green: the kept colour, started again as it is).
      const r = to ? rollbackTarget(entries, to) : defaultRollback(entries, await readJournal(s));
      if (!r) {
        const known = successfulReleases(entries).map(
          (x) => `${x.sha.slice(0, 12)}${x.fallback ? " (as latest fallback)" : ""} ${x.digest.slice(0, 19)}…`,
        );
        throw new PipelineError(
          to
            ? `no successful deploy of \`${to}\` in ${s.l.history} on ${s.remote.label} (deployed: ${known.join(", ") || "none"}) — nothing was changed`
            : `nothing to roll back to: ${s.l.history} on ${s.remote.label} has no earlier successful deploy (deployed: ${known.join(", ") || "none"})`,
          "preflight",
        );
      }
      const release = releaseOf(r);
      return { value: release, summary: `${release.image} from history (sha ${release.sha.slice(0, 12)})` };
    });
    return procedure(s)(s, release, "rollback");
  });
}

/** The journal (null on a host without one yet). */
async function readJournal(s: Session): Promise<Journal | null> {
  const r = await s.remote.run(journalCmd.readJournal(s.l));
  if (r.code === 4) return null;
  if (r.code !== 0) throw new PipelineError(`reading the journal on ${s.remote.label} failed: ${r.stderr.trim()}`);
  return parseJournal(r.stdout, `${s.remote.label} ${s.l.dir}/journal.json`);
}

/**
 * Without --to, a rollback goes to the journal's `previous` (what served before the live release), never to
 * whatever file is on disk; without a journal, to history's newest successful release other than the current one.
 */
function defaultRollback(entries: HistoryEntry[], j: Journal | null): Running | undefined {
  if (!j) return rollbackTarget(entries);
  const p = j.previous;
  if (p) return { sha: p.sha, digest: p.digest, image: p.image, ...(p.fallback ? { fallback: true } : {}) };
  return successfulReleases(entries).find((r) => r.digest !== j.live?.digest);
}
