/**
 * Hamalog's build-and-deploy pipeline: the ONE place image names and tags are defined.
 *
 * Build, tag, push, verify the manifest and deploy with the same code from a laptop (`dagger call`), from
 * GitHub Actions, and from other Dagger modules. All logic lives in engine-free modules next to this file;
 * this class is a thin door onto them (the `hamalog` CLI is the other door).
 */
import { object, func, argument, dag, Container, Directory, Secret, type Platform } from "@dagger.io/dagger";
import { parseSha, shaTag, tagsFor, type Sha } from "../core/tags.js";
import { parseConfig, requireImage, type PipelineConfig } from "../core/config.js";
import { mergeOverrides, parseSetPairs, type Overrides } from "../core/overrides.js";
import {
  BUILD_CONTEXT_IGNORE,
  buildArgList,
  checkPublished,
  imageLabels,
  publishPlatforms,
  publishReferences,
  registryUser,
  type Published,
} from "../core/publish.js";
import { deploy as deployRelease, rollback as rollbackRelease } from "../core/deploy/run.js";
import { status as deployStatus } from "../core/deploy/status.js";
import { openDoor, remoteTarget } from "../core/deploy/door.js";
import { keygenLine, scanHostKey } from "../core/deploy/host-key.js";
import { chooseReference, verifyManifest as verifyRegistry } from "../core/registry/verify.js";
import { explainPushFailure } from "../core/push-error.js";
import { ConfigError } from "../core/errors.js";
import { parseDotenv, pickSecrets } from "../core/deploy/env.js";
import { parseRollbackTo } from "../core/deploy/history.js";
import {
  Deployment,
  Fallback,
  Shipment,
  Status,
  Strategy,
  VerifiedImage,
  deploymentOf,
  shipmentOf,
  statusOf,
} from "./results.js";
import { checkDeployed, pinVerify, precheckCompose, runShip, shipDeployConfig } from "../core/ship.js";

/** Builds to publish: one image, or the platform variants of one index. */
interface Images {
  containers: Container[];
  index: boolean;
}

/**
 * A config error in this door's words: the core names the CLI flag for a missing field (`or pass --host`); here
 * every field is set with the constructor's `--set PATH=VALUE`.
 */
function daggerFlags(message: string): string {
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

/** Hamalog's pipeline functions: tag, verify-manifest, deploy and friends, one definition for CI and laptops. */
@object()
export class Hamalog {
  /** The repository: build context, pipeline config and compose template (without node_modules, .git, tool caches). */
  source: Directory;

  /** The pipeline config's path inside source. */
  config: string;

  /** Config overrides as PATH=VALUE, applied to every function. */
  set: string[];

  /**
   * Hamalog's pipeline over a repository: its build context, pipeline config and compose template.
   *
   * Example: dagger call --set deploy/host=203.0.113.7 ship --sha=$GITHUB_SHA ...
   *
   * @param source The repository (default: the one `dagger call` runs in). Another module passes its own: dag.hamalog({ source }) then reads that repository's config and compose file, never Hamalog's.
   * @param config Path of the pipeline config inside source.
   * @param set Override any config field as PATH=VALUE by its config path, e.g. deploy/health/url=http://127.0.0.1:8080/actuator/health (repeatable).
   */
  constructor(
    @argument({ defaultPath: "/", ignore: BUILD_CONTEXT_IGNORE }) source: Directory,
    config = "pipeline.yaml",
    set: string[] = [],
  ) {
    // The ignore list applies only to defaultPath; a Directory passed from module code arrives whole.
    this.source = source.filter({ exclude: BUILD_CONTEXT_IGNORE });
    this.config = config;
    this.set = set;
  }

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
    return tagsFor({ sha: parseSha(sha), branch, defaultBranch });
  }

  /**
   * Build the image from the Dockerfile as a lazy Container, labelled with the commit and the source repository.
   *
   * Example: dagger call build --sha=453a6545b97fe240727c378291230abeb793d851 export --path=image.tar
   *
   * @param sha Full 40-character commit sha, written to the org.opencontainers.image.revision label.
   * @param platform Platform to build, e.g. linux/amd64 (default: the engine's).
   * @param created Creation time for the org.opencontainers.image.created label (RFC 3339); never read from a clock.
   */
  @func()
  async build(sha: string, platform?: Platform, created?: string): Promise<Container> {
    const cfg = await this.settings();
    return this.image(cfg, parseSha(sha), platform, created);
  }

  /**
   * Publish the image to exactly the references of the tag definition and return them as ref@digest.
   *
   * Example: dagger call push --sha=$GITHUB_SHA --branch=$GITHUB_REF_NAME --registry-username=$GITHUB_ACTOR --registry-token=env://GITHUB_TOKEN
   *
   * @param sha Full 40-character commit sha (e.g. $GITHUB_SHA); gives the `<sha>` tag.
   * @param branch Branch being built (e.g. $GITHUB_REF_NAME); the default branch also gets `latest`.
   * @param registryToken Registry password or token (a Secret, e.g. env://GITHUB_TOKEN); used only through withRegistryAuth.
   * @param registryUsername Registry user (default: image/username from the config).
   * @param container An already built image to publish instead of building from source (build/platforms is then ignored).
   * @param created Creation time for the org.opencontainers.image.created label (RFC 3339).
   */
  @func({ cache: "never" })
  async push(
    sha: string,
    branch: string,
    registryToken: Secret,
    registryUsername?: string,
    container?: Container,
    created?: string,
  ): Promise<string[]> {
    const commit = parseSha(sha);
    const cfg = await this.settings({ "image/username": registryUsername });
    const images = container ? { containers: [container], index: false } : this.images(cfg, commit, created);
    return (await this.publish(images, cfg, commit, branch, registryToken)).published;
  }

  /**
   * Ship a commit: build → push → verify-manifest → deploy, stopping at the first failure with the phase named.
   *
   * This is what CI runs. The digest the push returned must be the digest the registry answers for the sha tag,
   * and the host must end up running exactly that digest (ship never falls back to `latest`).
   *
   * Example: dagger call ship --sha=$GITHUB_SHA --branch=$GITHUB_REF_NAME --registry-username=$GITHUB_ACTOR --registry-token=env://GITHUB_TOKEN --ssh-key=env://DEPLOY_SSH_KEY verified digest
   *
   * @param sha Full 40-character commit sha (e.g. $GITHUB_SHA).
   * @param branch Branch being built (e.g. $GITHUB_REF_NAME); the default branch also gets `latest`.
   * @param registryToken Registry password or token (a Secret, e.g. env://GITHUB_TOKEN): push auth, verification, and the host's login.
   * @param sshKey SSH private key for the deploy host (a Secret, e.g. env://DEPLOY_SSH_KEY).
   * @param registryUsername Registry user (default: image/username from the config).
   * @param created Creation time for the org.opencontainers.image.created label (RFC 3339).
   * @param deployToken Read-only registry token the host logs in with (a Secret); without it the host gets registryToken, the push token.
   * @param deployUsername Registry user for deployToken (default: registryUsername / image/username).
   * @param insecureAcceptHostKey Connect without a pinned host key, accepting whatever key the host shows (never for production).
   */
  @func({ cache: "never" })
  async ship(
    sha: string,
    branch: string,
    registryToken: Secret,
    sshKey: Secret,
    registryUsername?: string,
    created?: string,
    deployToken?: Secret,
    deployUsername?: string,
    insecureAcceptHostKey = false,
  ): Promise<Shipment> {
    // Every config, key and template error surfaces here, before anything is built: ship opens the deploy through
    // the same door as `deploy`, and renders the compose file with a placeholder digest.
    const commit = parseSha(sha);
    const cfg = await this.settings({ "image/username": registryUsername });
    // The host keeps what it logs in with in its Docker config while it pulls: a read-only token limits what
    // a compromised host can do with it. Without one, the push token goes there, and ship says so.
    const hostCfg = deployUsername ? { ...cfg, image: { ...cfg.image, username: deployUsername } } : cfg;
    const door = await this.openRemote(hostCfg, sshKey, deployToken ?? registryToken, insecureAcceptHostKey);
    if (!deployToken)
      door.say(
        "[ship] note: the host logs in with the push token (--registry-token); give it a read-only one with --deploy-token",
      );
    const { image, deploy: target } = door.input;
    precheckCompose(door.input.compose, target.service, image, commit);
    const username = registryUser(cfg.image.username);
    const say = door.say;
    let verifiedImage: Awaited<ReturnType<typeof verifyRegistry>> | undefined;
    const result = await runShip(
      {
        build: async () => {
          const images = this.images(cfg, commit, created);
          for (const c of images.containers) await c.sync();
          return images;
        },
        push: (images) => this.publish(images, cfg, commit, branch, registryToken),
        verify: async () => {
          verifiedImage = await verifyRegistry({
            registry: image.registry,
            repository: image.repository,
            reference: shaTag(commit),
            wantedSha: commit,
            credentials: { username, password: await registryToken.plaintext() },
            ...(target.platform ? { platform: target.platform } : {}),
          });
          return { reference: verifiedImage.reference, digest: verifiedImage.digest };
        },
        deploy: async (verified) => {
          const outcome = await deployRelease(
            {
              ...door.input,
              deploy: shipDeployConfig(target),
              sha: commit,
              holder: `dagger ship ${commit.slice(0, 12)} (${branch})`,
            },
            { ...door.env, verify: pinVerify(door.env.verify, verified.digest) },
          );
          checkDeployed(outcome.running.digest, verified);
          return outcome;
        },
      },
      (phase) => say(`[ship] ${phase}`),
    );
    const v = verifiedImage!;
    return shipmentOf(
      result.published,
      new VerifiedImage(v.reference, v.digest, v.mediaType, v.platforms),
      deploymentOf(result.deployed, { host: target.host, strategy: cfg.deploy.strategy, log: door.log }),
    );
  }

  /**
   * Deploy a commit's image to the compose host over SSH: verified to a digest, pinned, health-gated, rolled back on failure.
   *
   * Phases: connect → preflight (verify-manifest, host platform) → lock → login → render → pull (only if the
   * digest is absent) → up --wait → health → history → prune; the lock is released in every outcome.
   *
   * Example: dagger call deploy --sha=$GITHUB_SHA --ssh-key=env://DEPLOY_SSH_KEY --registry-token=env://GITHUB_TOKEN digest
   *
   * @param sha Full 40-character commit sha whose image (its sha tag) to deploy.
   * @param sshKey SSH private key for the deploy host (a Secret, e.g. env://DEPLOY_SSH_KEY or file://~/.ssh/id_ed25519).
   * @param registryToken Registry password or token the host logs in with on stdin (omit for public images).
   * @param registryUsername Registry user (default: image/username from the config).
   * @param fallback What to do when the sha tag is missing: NONE fails, LATEST deploys `latest` loudly (default: deploy/fallback).
   * @param strategy How the release replaces the running one (default: deploy/strategy).
   * @param dryRun Print the plan and the rendered compose file; change nothing on the host.
   * @param lockWait Seconds to wait for another deploy's lock (0: fail fast naming the holder).
   * @param breakLock Remove a stale lock first (and say whose it was).
   * @param insecureAcceptHostKey Connect without a pinned host key, accepting whatever key the host shows (never for production).
   */
  @func({ cache: "never" })
  async deploy(
    sha: string,
    sshKey: Secret,
    registryToken?: Secret,
    registryUsername?: string,
    fallback?: Fallback,
    strategy?: Strategy,
    dryRun = false,
    lockWait = 0,
    breakLock = false,
    insecureAcceptHostKey = false,
  ): Promise<Deployment> {
    const commit = parseSha(sha);
    const cfg = await this.settings({
      "image/username": registryUsername,
      "deploy/fallback": fallback,
      "deploy/strategy": strategy,
    });
    const door = await this.openRemote(cfg, sshKey, registryToken, insecureAcceptHostKey);
    const outcome = await deployRelease(
      {
        ...door.input,
        sha: commit,
        dryRun,
        lockWaitSeconds: lockWait,
        breakLock,
        holder: `dagger deploy ${commit.slice(0, 12)}`,
      },
      door.env,
    );
    return deploymentOf(outcome, { host: cfg.deploy.host ?? "", strategy: cfg.deploy.strategy, log: door.log });
  }

  /**
   * Roll the compose host back to the previous successful deploy, or to a sha or digest from its history.
   *
   * Same lock, health gate and automatic recovery as deploy.
   *
   * Example: dagger call rollback --ssh-key=env://DEPLOY_SSH_KEY --to=453a6545b97fe240727c378291230abeb793d851 rolled-back-to
   *
   * @param sshKey SSH private key for the deploy host (a Secret).
   * @param to A deployed commit sha (7+ characters) or digest (sha256:…); default: the previous successful deploy.
   * @param registryToken Registry password or token, needed only when the image must be pulled again.
   * @param dryRun Print the plan and the rendered compose file; change nothing on the host.
   * @param insecureAcceptHostKey Connect without a pinned host key, accepting whatever key the host shows (never for production).
   */
  @func({ cache: "never" })
  async rollback(
    sshKey: Secret,
    to?: string,
    registryToken?: Secret,
    dryRun = false,
    insecureAcceptHostKey = false,
  ): Promise<Deployment> {
    const cfg = await this.settings();
    const door = await this.openRemote(cfg, sshKey, registryToken, insecureAcceptHostKey);
    const outcome = await rollbackRelease(
      { ...door.input, ...(to ? { to: parseRollbackTo(to, "--to")! } : {}), dryRun, holder: "dagger rollback" },
      door.env,
    );
    const at = { host: cfg.deploy.host ?? "", strategy: cfg.deploy.strategy, log: door.log, rollback: true };
    return deploymentOf(outcome, at);
  }

  /**
   * Show what runs on the compose host now: digest, sha, container health and the last history lines.
   *
   * Example: dagger call status --ssh-key=env://DEPLOY_SSH_KEY sha
   *
   * @param sshKey SSH private key for the deploy host (a Secret).
   * @param lines History lines to show.
   * @param insecureAcceptHostKey Connect without a pinned host key, accepting whatever key the host shows (never for production).
   */
  @func({ cache: "never" })
  async status(sshKey: Secret, lines = 5, insecureAcceptHostKey = false): Promise<Status> {
    const cfg = await this.settings();
    const door = await this.openRemote(cfg, sshKey, undefined, insecureAcceptHostKey);
    const report = await deployStatus({ ...door.input, lines, holder: "dagger status" }, door.env);
    return statusOf(report, { host: cfg.deploy.host ?? "", log: door.log });
  }

  /**
   * Print the deploy host's SSH key fingerprint to pin as deploy.hostKey, as `ssh-keyscan | ssh-keygen -lf -` shows it.
   *
   * The scan trusts the network between the engine and the host: check the fingerprint on the host's console
   * (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) before pinning it.
   *
   * Example: dagger call host-key --host=hamalog.example.com
   *
   * @param host The deploy host.
   * @param port Its SSH port.
   */
  @func({ cache: "never" })
  async hostKey(host: string, port = 22): Promise<string> {
    return keygenLine(await scanHostKey(host, port), host, port);
  }

  /**
   * The one way into the deploy core (deploy, rollback, status, ship): read the compose template and Secrets and
   * open the door (deploy/door.ts), which checks the config, the key and the login; output is streamed and collected.
   */
  private async openRemote(
    cfg: PipelineConfig,
    sshKey: Secret | undefined,
    registryToken?: Secret,
    insecureAcceptHostKey = false,
    appEnv?: Secret,
  ) {
    const target = inDaggerWords(() => remoteTarget(cfg));
    const template = target.deploy.composeFile ? await this.source.file(target.deploy.composeFile).contents() : "";
    const log: string[] = [];
    const say = (line: string) => (log.push(line), console.error(line));
    const envText = appEnv ? await appEnv.plaintext() : undefined;
    const reads = {
      readTemplate: () => template,
      sshKey: sshKey ? await sshKey.plaintext() : undefined,
      sshKeyFrom: "--ssh-key",
      secrets: (names: readonly string[]) => appSecrets(names, envText),
      tokenFlag: "--registry-token",
      usernameFlag: "--set image/username=NAME",
      insecureAcceptHostKey,
    };
    const door = openDoor(
      target,
      { ...reads, ...(registryToken ? { registryToken: await registryToken.plaintext() } : {}) },
      { out: say, warn: say },
    );
    return { ...door, log, say };
  }

  /**
   * Verify that an image tag exists in its registry (and provides a platform) and return its digest, before anything is deployed.
   *
   * Speaks the OCI distribution API directly (no engine work). On failure the error explains why: near-miss tags
   * such as main-<sha> or sha-<7 hex> (and what produced them), credentials, repository name, missing platform.
   *
   * Example: dagger call verify-manifest --sha=$GITHUB_SHA --registry-username=$GITHUB_ACTOR --registry-token=env://GITHUB_TOKEN digest
   *
   * @param sha Full 40-character commit sha: verifies the tag the tag definition gives it and diagnoses near-misses.
   * @param tag Tag (or sha256 digest) to verify instead of the sha's tag, e.g. latest.
   * @param registryToken Registry password or token (a Secret, e.g. env://GITHUB_TOKEN); anonymous when absent.
   * @param registryUsername Registry user (default: image/username from the config; GHCR accepts any name with a token).
   * @param platform Platform the image must provide, e.g. linux/amd64 (default: deploy/platform from the config).
   */
  @func({ cache: "never" })
  async verifyManifest(
    sha?: string,
    tag?: string,
    registryToken?: Secret,
    registryUsername?: string,
    platform?: Platform,
  ): Promise<VerifiedImage> {
    const cfg = await this.settings({ "image/username": registryUsername, "deploy/platform": platform });
    const image = requireImage(cfg);
    const { reference, wantedSha } = chooseReference(tag, sha, { tag: "--tag", sha: "--sha" });
    const credentials = registryToken
      ? { username: registryUser(cfg.image.username), password: await registryToken.plaintext() }
      : undefined;
    const result = await verifyRegistry({
      ...image,
      reference,
      ...(wantedSha ? { wantedSha } : {}),
      ...(credentials ? { credentials } : {}),
      ...(cfg.deploy.platform ? { platform: cfg.deploy.platform } : {}),
    });
    return new VerifiedImage(result.reference, result.digest, result.mediaType, result.platforms);
  }

  /** The config from source with overrides (by config path) applied: named argument › constructor `set` › file › default. */
  private async settings(named: Overrides = {}): Promise<PipelineConfig> {
    if (!(await this.source.exists(this.config))) {
      throw new ConfigError(
        `--config ${this.config}: no such file in the source directory. The pipeline config is read from the source ` +
          `it configures, never from Hamalog's own repository: add ${this.config} at the root of the directory passed ` +
          `as --source (dag.hamalog({ source }) from another module), or pass --config=PATH relative to it.`,
      );
    }
    const text = await this.source.file(this.config).contents();
    return inDaggerWords(() => parseConfig(text, this.config, mergeOverrides(parseSetPairs(this.set), named)));
  }

  /** One labelled, lazy image build. */
  private image(cfg: PipelineConfig, sha: Sha, platform?: string, created?: string): Container {
    let c = this.source.dockerBuild({
      dockerfile: cfg.build.dockerfile,
      buildArgs: buildArgList(cfg.build.buildArgs),
      ...(platform ? { platform: publishPlatforms([platform])[0] as Platform } : {}),
    });
    for (const l of imageLabels({ sha, source: cfg.image.source, created })) c = c.withLabel(l.name, l.value);
    return c;
  }

  /** The builds to publish: one per configured platform (published as one index), or one for the engine's. */
  private images(cfg: PipelineConfig, sha: Sha, created?: string): Images {
    const platforms = publishPlatforms(cfg.build.platforms);
    if (platforms.length === 0) return { containers: [this.image(cfg, sha, undefined, created)], index: false };
    return { containers: platforms.map((p) => this.image(cfg, sha, p, created)), index: true };
  }

  /** Publish to every tag-definition reference with the Secret as registry auth; check one digest came back. */
  private async publish(
    images: Images,
    cfg: PipelineConfig,
    sha: Sha,
    branch: string,
    token: Secret,
  ): Promise<Published> {
    const image = requireImage(cfg);
    const refs = publishReferences({ ...image, sha, branch, defaultBranch: cfg.defaultBranch });
    const username = registryUser(cfg.image.username);
    const base = (images.index ? dag.container() : images.containers[0]!).withRegistryAuth(
      image.registry,
      username,
      token,
    );
    const returned: string[] = [];
    for (const ref of refs) {
      try {
        returned.push(await base.publish(ref, images.index ? { platformVariants: images.containers } : {}));
      } catch (e) {
        throw explainPushFailure(e, { ...image, username, reference: ref });
      }
    }
    return checkPublished(refs, returned);
  }
}
