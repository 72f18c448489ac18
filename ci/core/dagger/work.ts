// The Dagger door's engine-free work: everything its functions do besides the engine calls themselves — the
// config with --set, the build and publish plans, ship's order, the deploy core's door, the checks — taking what
// the class read through the engine (api.ts) and returning plain data. The class (ci/src/index.ts) imports this
// module on first use only, so the engine's runtime does not load or type-check the core on every call (api.ts).
import { preparePlan } from "../build-plan.js";
import { LOCAL_HOST, parseConfig, requireImage, type PipelineConfig } from "../config.js";
import { ConfigError, InternalError, PipelineError } from "../errors.js";
import { mergeOverrides, parseSetPairs, type Overrides } from "../overrides.js";
import { buildArgList, imageLabels, publishPlatforms, publishReferences, registryUser } from "../publish.js";
import { formatReference, parseReference } from "../reference.js";
import { checkDeployed, pinVerify, precheckCompose, runShip, shipDeployConfig } from "../ship.js";
import { OCI_TAG, parseSha, shaTag, tagsFor, type Sha } from "../tags.js";
import { openDoor, remoteTarget } from "../deploy/door.js";
import { parseDotenv, pickSecrets } from "../deploy/env.js";
import { parseRollbackTo, type HistoryEntry } from "../deploy/history.js";
import { keygenLine, scanHostKey } from "../deploy/host-key.js";
import { deploy as deployRelease, rollback as rollbackRelease, type Outcome } from "../deploy/run.js";
import { status as deployStatus } from "../deploy/status.js";
import { chooseReference, verifyManifest, type VerifyResult } from "../registry/verify.js";
import type {
  BuildSpec,
  ConfigSource,
  DeploymentData,
  Print,
  PublishPlan,
  RemoteReads,
  StatusData,
  VerifiedData,
  Work,
} from "./api.js";
import { deploymentSummary, shipmentSummary, statusSummary, verifiedSummary } from "./summary.js";

/** The commit the checks compute tags and render with: `dagger check` takes no arguments, so no real sha. */
export const PROBE_SHA = parseSha("0123456789abcdef0123456789abcdef01234567");

/**
 * A config error in this door's words: the core names the CLI flag for a missing field (`or pass --host`); here
 * every field is set with the constructor's `--set PATH=VALUE`.
 */
export function daggerFlags(message: string): string {
  return message.replace(
    /(\b[A-Za-z]+(?:\/[A-Za-z]+)*): required \(set it in (\S+) or pass --[\w-]+\)/g,
    "$1: required (set it in $2 or pass `dagger call --set $1=VALUE …`)",
  );
}

/** Run a config step of the core, its ConfigErrors reworded for this door. */
function inDaggerWords<T>(step: () => T): T {
  try {
    return step();
  } catch (e) {
    throw e instanceof ConfigError ? new ConfigError(daggerFlags(e.message)) : e;
  }
}

/**
 * The constructor's --set as overrides. The dagger CLI reads a [String] flag as CSV (pflag's StringSlice), so
 * `--set deploy/x=a,b` reaches the module as two entries, `deploy/x=a` and `b`: an entry that is no PATH=VALUE
 * but completes the one before it is named as that split, with the quoting that keeps the comma.
 */
export function setPairs(set: readonly string[]): Overrides {
  try {
    return parseSetPairs(set, "--set");
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const valid = (pair: string) => {
      try {
        parseSetPairs([pair]);
        return true;
      } catch {
        return false;
      }
    };
    const i = set.findIndex((p) => !valid(p));
    const joined = i > 0 ? `${set[i - 1]},${set[i]}` : "";
    if (i > 0 && valid(set[i - 1]!) && valid(joined)) {
      throw new ConfigError(
        `--set: \`${set[i - 1]}\` and \`${set[i]}\` arrived as two entries — the dagger CLI splits a --set value at ` +
          `commas (it reads each --set as CSV). To keep the comma, quote the whole pair inside the argument: ` +
          `--set '"${joined}"' (in a GitHub Actions \`args:\` input: --set "\\"${joined}\\""); a module calling ` +
          `dag.hamalog({ set: [...] }) passes the list as it is`,
      );
    }
    throw e;
  }
}

/** The config from source with overrides (by config path) applied: named argument › constructor --set › file › default. */
function settings(src: ConfigSource, named: Overrides = {}): PipelineConfig {
  return inDaggerWords(() => parseConfig(src.text, src.name, mergeOverrides(setPairs(src.set), named)));
}

/** One labelled image build. */
function buildOf(cfg: PipelineConfig, sha: Sha, platform?: string, created?: string): BuildSpec {
  const labels = imageLabels({ sha, source: cfg.image.source, created });
  return {
    context: cfg.build.context,
    ...(cfg.build.prepare ? { prepare: preparePlan(cfg.build.prepare) } : {}),
    dockerfile: cfg.build.dockerfile,
    buildArgs: buildArgList(cfg.build.buildArgs),
    ...(platform ? { platform: publishPlatforms([platform])[0]! } : {}),
    labels,
  };
}

/** The builds (one per build/platforms entry, published as one index; or one for the engine's platform) and references. */
function planOf(cfg: PipelineConfig, sha: Sha, branch: string, created?: string): PublishPlan {
  const image = requireImage(cfg);
  const platforms = publishPlatforms(cfg.build.platforms);
  const builds = platforms.length
    ? platforms.map((p) => buildOf(cfg, sha, p, created))
    : [buildOf(cfg, sha, undefined, created)];
  const references = publishReferences({ ...image, sha, branch, defaultBranch: cfg.defaultBranch });
  return {
    builds,
    index: platforms.length > 0,
    registry: image.registry,
    repository: image.repository,
    username: registryUser(cfg.image.username),
    references,
  };
}

/** The values of deploy/secrets' names from the dotenv Secret given as --app-env. */
function appSecrets(names: readonly string[], envText: string | undefined): Record<string, string> {
  if (envText === undefined)
    throw new ConfigError(
      `--app-env: required — deploy/secrets names ${names.join(", ")}; give their values as one dotenv Secret, e.g. --app-env=env://HAMALOG_ENV`,
    );
  return pickSecrets(
    names,
    parseDotenv(envText, "--app-env"),
    "--app-env",
    "add NAME=value lines to the dotenv Secret given as --app-env",
  );
}

/**
 * The one way into the deploy core (deploy, rollback, status, ship): read the compose template and Secrets, in
 * this order, and open the door (deploy/door.ts), which checks the config, the key and the login.
 */
async function openRemote(cfg: PipelineConfig, reads: RemoteReads, print: Print) {
  const target = inDaggerWords(() => remoteTarget(cfg));
  // A function runs inside the engine's container: "this machine" there is not the server.
  if (target.deploy.host === LOCAL_HOST)
    throw new ConfigError(
      "deploy/host: `local` deploys on the machine that runs the command, and a Dagger function runs inside the engine's container — run `npx hamalog deploy` on the server itself (a self-hosted runner), or give the server's SSH address (--set deploy/host=HOST) to deploy through Dagger",
    );
  // What the door may ask for, read ahead (its reads are synchronous): the compose template, then the files it
  // bind-mounts (deploy/files), each by its path in --source.
  const d = target.deploy;
  const named = [...(d.composeFile ? [d.composeFile] : []), ...d.files];
  const texts = new Map<string, string>();
  for (const path of named) if (!texts.has(path)) texts.set(path, await reads.readSource(path));
  const readTemplate = (path: string) => {
    const text = texts.get(path);
    if (text === undefined)
      throw new InternalError(`the deploy door asked for ${path}, which the Dagger door did not read`);
    return text;
  };
  const log: string[] = [];
  const say = (line: string) => (log.push(line), print(line));
  const envText = reads.appEnv ? await reads.appEnv() : undefined;
  const sshKey = reads.sshKey ? await reads.sshKey() : undefined;
  const registryToken = reads.registryToken ? await reads.registryToken() : undefined;
  const door = openDoor(
    target,
    {
      readTemplate,
      sshKey,
      sshKeyFrom: "--ssh-key",
      ...(reads.places ? { secrets: (names: readonly string[]) => appSecrets(names, envText) } : {}),
      tokenFlag: "--registry-token",
      usernameFlag: "--set image/username=NAME",
      insecureAcceptHostKey: reads.insecureAcceptHostKey,
      ...(registryToken ? { registryToken } : {}),
    },
    { out: say, warn: say },
  );
  return { ...door, log, say, host: target.deploy.host };
}

function verifiedOf(r: Pick<VerifyResult, "reference" | "digest" | "mediaType" | "platforms">): VerifiedData {
  const v = { reference: r.reference, digest: r.digest, mediaType: r.mediaType, platforms: r.platforms };
  return { ...v, summary: verifiedSummary(v) };
}

/** The one mapping from the deploy core's outcome to a deployment (deploy, rollback, ship). */
export function deploymentOf(
  o: Outcome,
  at: { action: "deploy" | "rollback"; host: string; strategy: string; log: string[] },
): DeploymentData {
  const d = {
    action: at.action,
    reference: o.running.image,
    digest: o.running.digest,
    sha: o.running.sha,
    host: at.host,
    result: o.result,
    rolledBackTo: at.action === "rollback" ? o.running.sha : "",
    fallbackUsed: o.running.fallback,
    strategy: at.strategy,
    colour: o.running.colour ?? "",
    durationMs: Math.round(o.durationMs),
    changes: o.changes,
    compose: o.compose,
    log: at.log,
  };
  return { ...d, summary: deploymentSummary(d) };
}

const historyLine = (e: HistoryEntry) =>
  `${e.time} ${e.action} ${e.sha} ${e.result} ${e.digest}${e.colour ? ` ${e.colour}` : ""}`;

/** Accessory names as given: each once, none empty (the core applies the ones the compose file has). */
function accessories(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of names.map((x) => x.trim())) {
    if (n === "") throw new ConfigError("--recreate-accessory: empty — give a compose service name, e.g. redis");
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

export const work: Work = {
  buildSpec(src, sha, opts) {
    const cfg = settings(src);
    return buildOf(cfg, parseSha(sha), opts.platform, opts.created);
  },

  publishPlan(src, sha, branch, opts) {
    const cfg = settings(src, { "image/username": opts.username });
    return planOf(cfg, parseSha(sha), branch, opts.created);
  },

  async ship(src, args, reads, engine, print) {
    // Every config, key and template error surfaces here, before anything is built: ship opens the deploy through
    // the same door as `deploy`, renders the compose file with a placeholder digest and plans the publish.
    const commit = parseSha(args.sha);
    const cfg = settings(src, { "image/username": args.registryUsername });
    // The host keeps what it logs in with in its Docker config while it pulls: a read-only token limits what a
    // compromised host can do with it. Without one, the push token goes there, and ship says so.
    const hostCfg = args.deployUsername ? { ...cfg, image: { ...cfg.image, username: args.deployUsername } } : cfg;
    const remote = await openRemote(hostCfg, reads, print);
    if (!args.ownDeployToken)
      remote.say(
        "[ship] note: the host logs in with the push token (--registry-token); give it a read-only one with --deploy-token",
      );
    const { image, deploy: target } = remote.input;
    precheckCompose(remote.input.compose, target.service, image, commit);
    const plan = planOf(cfg, commit, args.branch, args.created);
    let verified: VerifiedData | undefined;
    const result = await runShip(
      {
        build: () => engine.build(plan),
        push: (built) => engine.push(built, plan),
        verify: async () => {
          verified = verifiedOf(
            await verifyManifest({
              registry: image.registry,
              repository: image.repository,
              reference: shaTag(commit),
              wantedSha: commit,
              credentials: { username: plan.username, password: await args.pushToken() },
              ...(target.platform ? { platform: target.platform } : {}),
            }),
          );
          return { reference: verified.reference, digest: verified.digest };
        },
        deploy: async (v) => {
          const outcome = await deployRelease(
            {
              ...remote.input,
              deploy: shipDeployConfig(target),
              sha: commit,
              force: args.force,
              recreateAccessories: accessories(args.recreateAccessory),
              holder: `dagger ship ${commit.slice(0, 12)} (${args.branch})`,
            },
            { ...remote.env, verify: pinVerify(remote.env.verify, v.digest) },
          );
          checkDeployed(outcome.running.digest, v);
          return outcome;
        },
      },
      (phase) => remote.say(`[ship] ${phase}`),
    );
    const deployment = deploymentOf(result.deployed, {
      action: "deploy",
      host: remote.host,
      strategy: cfg.deploy.strategy,
      log: remote.log,
    });
    const shipped = { published: result.published, verified: verified!, deployment };
    return { ...shipped, summary: shipmentSummary({ ...shipped, sha: commit, branch: args.branch }) };
  },

  async deploy(src, args, reads, print) {
    const commit = parseSha(args.sha);
    const cfg = settings(src, {
      "image/username": args.registryUsername,
      "deploy/fallback": args.fallback,
      "deploy/strategy": args.strategy,
    });
    const remote = await openRemote(cfg, reads, print);
    const outcome = await deployRelease(
      {
        ...remote.input,
        sha: commit,
        dryRun: args.dryRun,
        lockWaitSeconds: args.lockWait,
        breakLock: args.breakLock,
        force: args.force,
        recreateAccessories: accessories(args.recreateAccessory),
        holder: `dagger deploy ${commit.slice(0, 12)}`,
      },
      remote.env,
    );
    return deploymentOf(outcome, {
      action: "deploy",
      host: remote.host,
      strategy: cfg.deploy.strategy,
      log: remote.log,
    });
  },

  async rollback(src, args, reads, print) {
    const cfg = settings(src);
    const remote = await openRemote(cfg, reads, print);
    const to = args.to ? parseRollbackTo(args.to, "--to") : undefined;
    const outcome = await rollbackRelease(
      {
        ...remote.input,
        ...(to ? { to } : {}),
        dryRun: args.dryRun,
        force: args.force,
        recreateAccessories: accessories(args.recreateAccessory),
        holder: "dagger rollback",
      },
      remote.env,
    );
    return deploymentOf(outcome, {
      action: "rollback",
      host: remote.host,
      strategy: cfg.deploy.strategy,
      log: remote.log,
    });
  },

  async status(src, lines, reads, print) {
    const cfg = settings(src);
    const remote = await openRemote(cfg, reads, print);
    const r = await deployStatus({ ...remote.input, lines, holder: "dagger status" }, remote.env);
    const s = {
      reference: r.running?.image ?? "",
      digest: r.running?.digest ?? "",
      sha: r.running?.sha ?? "",
      host: remote.host,
      colour: r.running?.colour ?? "",
      containerState: r.container?.state ?? "",
      containerHealth: r.container?.health ?? "",
      health: r.health ?? "",
      mismatches: r.mismatches,
      history: r.history.map(historyLine),
      log: remote.log,
    };
    return { ...s, summary: statusSummary(s, r.lines) } satisfies StatusData;
  },

  async verify(src, args, registryToken) {
    const cfg = settings(src, { "image/username": args.registryUsername, "deploy/platform": args.platform });
    const image = requireImage(cfg);
    const { reference, wantedSha } = chooseReference(args.tag, args.sha, { tag: "--tag", sha: "--sha" });
    const credentials = registryToken
      ? { username: registryUser(cfg.image.username), password: await registryToken() }
      : undefined;
    const r = await verifyManifest({
      ...image,
      reference,
      ...(wantedSha ? { wantedSha } : {}),
      ...(credentials ? { credentials } : {}),
      ...(cfg.deploy.platform ? { platform: cfg.deploy.platform } : {}),
    });
    return verifiedOf(r);
  },

  async hostKey(host, port) {
    return keygenLine(await scanHostKey(host, port), host, port);
  },

  checkConfig(src) {
    const cfg = settings(src);
    const image = requireImage(cfg);
    const name = formatReference({ ...image });
    if (!cfg.deploy.host) return `${src.name}: valid — image ${name}; no deploy/host, so no deploy is configured`;
    const target = inDaggerWords(() => remoteTarget(cfg, src.name));
    const d = target.deploy;
    return `${src.name}: valid — image ${name}; deploys to ${d.host} (${d.directory}, service ${d.service}, strategy ${d.strategy})`;
  },

  checkTagPolicy(src) {
    const cfg = settings(src);
    const image = requireImage(cfg);
    const main = cfg.defaultBranch;
    const other = main === "feature/check" ? "feature/check-2" : "feature/check";
    for (const [branch, policy] of [
      [main, [PROBE_SHA, "latest"]],
      [other, [PROBE_SHA]],
    ] as const) {
      const where = `tag policy: on branch ${branch} (defaultBranch ${main})`;
      const tags = tagsFor({ sha: PROBE_SHA, branch, defaultBranch: main });
      if (tags.join() !== policy.join())
        throw new PipelineError(
          `${where} the tags are ${tags.join(", ")}, the policy is ${policy.join(", ")}`,
          "check",
        );
      for (const r of publishReferences({ ...image, sha: PROBE_SHA, branch, defaultBranch: main })) {
        const p = parseReference(r, "reference");
        if (p.registry !== image.registry || p.repository !== image.repository || !OCI_TAG.test(p.tag ?? ""))
          throw new PipelineError(`${where} push would publish ${r}, not ${formatReference(image)}:<tag>`, "check");
      }
    }
    return `tag policy holds for ${formatReference(image)}: ${main} → <sha>, latest; other branches (e.g. ${other}) → <sha>`;
  },

  async checkCompose(src, readSource) {
    const cfg = settings(src);
    const d = cfg.deploy;
    if (!d.composeFile && !d.services)
      return `${src.name} sets neither deploy/composeFile nor deploy/services: no compose file to render`;
    if (!d.service)
      throw new ConfigError(
        daggerFlags(`deploy/service: required (set it in ${src.name} or pass --service)`) +
          " — the app's service in the compose file, the one pinned to the image",
      );
    const image = requireImage(cfg);
    const compose = d.composeFile
      ? { template: await readSource(d.composeFile), templateName: d.composeFile }
      : { services: d.services! };
    precheckCompose(compose, d.service, image, PROBE_SHA);
    return `${d.composeFile ?? "deploy/services"} renders: service ${d.service} pinned to ${formatReference({ ...image, tag: shaTag(PROBE_SHA) })}@sha256:…`;
  },
};
