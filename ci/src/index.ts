/**
 * Hamalog's build-and-deploy pipeline: the ONE place image names and tags are defined.
 *
 * Build, tag, push, verify the manifest and deploy with the same code from a laptop (`dagger call`), from
 * GitHub Actions, and from other Dagger modules. All logic lives in engine-free modules beside this directory;
 * this class is a thin door onto them (the `hamalog` CLI is the other door).
 */
import { argument, check, dag, func, object, Container, Directory, Secret, type Platform } from "@dagger.io/dagger";
import type { BuildSpec, ConfigSource, PublishedData, PublishPlan, RemoteReads, Work } from "../core/dagger/api.js";
import { ConfigError } from "../core/errors.js";
import { BUILD_CONTEXT_IGNORE, checkPublished } from "../core/publish.js";
import { explainPushFailure } from "../core/push-error.js";
import { parseSha, tagsFor } from "../core/tags.js";
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
  verifiedImageOf,
} from "./results.js";

/**
 * The door's engine-free work (../core/dagger/work.ts), imported on first use. The engine's runtime starts this
 * module for every call, and the SDK's introspector builds a TypeScript program from ci/src each time, following
 * every import with a literal specifier — `import("…")` included — into the deploy core, zod, yaml and ssh2. A
 * specifier held in a variable is not followed: the core is loaded only by the calls that use it
 * (docs/dagger.md#load-time; test/unit/dagger-load.test.ts keeps it so).
 */
const WORK = "../core/dagger/work.js";
let loaded: Promise<Work> | undefined;
const work = (): Promise<Work> => (loaded ??= import(WORK).then((m: { work: Work }) => m.work));

/** Progress lines of remote functions go to the engine's log as they happen (and into each result's `log`). */
const print = (line: string) => console.error(line);

/** Builds to publish: one image, or the platform variants of one index. */
interface Images {
  containers: Container[];
  index: boolean;
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
   * @param source The repository (default: this module's own repository; from another repository pass it: --source=. with dagger -m, dag.hamalog({ source }) from a module). Its config and compose file are read, never Hamalog's.
   * @param config Path of the pipeline config inside source.
   * @param set Override any config field as PATH=VALUE by its config path, e.g. deploy/health/url=http://127.0.0.1:8080/actuator/health; repeat the flag for more. The dagger CLI splits each value at commas: quote a pair that has one, --set '"build/buildArgs=PROFILES=prod,metrics"'.
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
    const src = await this.configSource();
    const spec = (await work()).buildSpec(src, sha, { ...(platform ? { platform } : {}), created });
    return this.container(spec);
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
    parseSha(sha);
    const plan = (await work()).publishPlan(await this.configSource(), sha, branch, {
      username: registryUsername,
      created,
    });
    const images = container ? { containers: [container], index: false } : this.containers(plan);
    return (await this.publish(images, plan, registryToken)).published;
  }

  /**
   * Ship a commit: build → push → verify-manifest → deploy, stopping at the first failure with the phase named.
   *
   * This is what CI runs. The digest the push returned must be the digest the registry answers for the sha tag,
   * and the host must end up running exactly that digest (ship never falls back to `latest`). End the call on
   * `summary` to print what shipped (a Shipment alone prints only its ID).
   *
   * Example: dagger call ship --sha=$GITHUB_SHA --branch=$GITHUB_REF_NAME --registry-username=$GITHUB_ACTOR --registry-token=env://GITHUB_TOKEN --ssh-key=env://DEPLOY_SSH_KEY summary
   *
   * @param sha Full 40-character commit sha (e.g. $GITHUB_SHA).
   * @param branch Branch being built (e.g. $GITHUB_REF_NAME); the default branch also gets `latest`.
   * @param registryToken Registry password or token (a Secret, e.g. env://GITHUB_TOKEN): push auth, verification, and the host's login.
   * @param sshKey SSH private key for the deploy host (a Secret, e.g. env://DEPLOY_SSH_KEY).
   * @param registryUsername Registry user (default: image/username from the config).
   * @param created Creation time for the org.opencontainers.image.created label (RFC 3339).
   * @param deployToken Read-only registry token the host logs in with (a Secret); without it the host gets registryToken, the push token.
   * @param deployUsername Registry user for deployToken (default: registryUsername / image/username).
   * @param force Replace the live release even when it is this one and healthy (a re-run otherwise changes nothing).
   * @param recreateAccessory Apply the changed definition of this accessory service, recreating it (repeatable); other changed accessories are reported and left running.
   * @param insecureAcceptHostKey Connect without a pinned host key, accepting whatever key the host shows (never for production).
   * @param appEnv The app's secrets as one dotenv Secret (NAME=value lines for deploy/secrets' names, e.g. env://HAMALOG_ENV); required when the config names secrets.
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
    force = false,
    recreateAccessory: string[] = [],
    insecureAcceptHostKey = false,
    appEnv?: Secret,
  ): Promise<Shipment> {
    parseSha(sha);
    const shipped = await (
      await work()
    ).ship(
      await this.configSource(),
      {
        sha,
        branch,
        registryUsername,
        created,
        deployUsername,
        pushToken: () => registryToken.plaintext(),
        ownDeployToken: deployToken !== undefined,
        force,
        recreateAccessory,
      },
      this.reads(sshKey, deployToken ?? registryToken, insecureAcceptHostKey, appEnv),
      {
        build: async (plan) => {
          const images = this.containers(plan);
          for (const c of images.containers) await c.sync();
          return images;
        },
        push: (images, plan) => this.publish(images, plan, registryToken),
      },
      print,
    );
    return shipmentOf(shipped);
  }

  /**
   * Deploy a commit's image to the compose host over SSH: verified to a digest, pinned, health-gated, rolled back on failure.
   *
   * Reconciles the host with its release journal first, then runs the strategy's phases (docs/deploy.md); a
   * release that is already live and healthy is left as it is (ALREADY_LIVE) unless --force. End the call on
   * `summary` (or `digest`, `result`) to print the outcome: a Deployment alone prints only its ID.
   *
   * Example: dagger call deploy --sha=$GITHUB_SHA --ssh-key=env://DEPLOY_SSH_KEY --registry-token=env://GITHUB_TOKEN --strategy=blue_green summary
   *
   * @param sha Full 40-character commit sha whose image (its sha tag) to deploy.
   * @param sshKey SSH private key for the deploy host (a Secret, e.g. env://DEPLOY_SSH_KEY or file://~/.ssh/id_ed25519).
   * @param registryToken Registry password or token the host logs in with on stdin (omit for public images).
   * @param registryUsername Registry user (default: image/username from the config).
   * @param fallback What to do when the sha tag is missing: none fails, latest deploys `latest` loudly (default: deploy/fallback).
   * @param strategy How the release replaces the running one: recreate or blue_green (default: deploy/strategy).
   * @param dryRun Print the plan and the rendered compose file; change nothing on the host.
   * @param lockWait Seconds to wait for another deploy's lock (0: fail fast naming the holder).
   * @param breakLock Take the lock even from a live holder, which is then fenced (a dead or silent holder's lock is taken over without it).
   * @param force Replace the live release even when it is this one and healthy.
   * @param recreateAccessory Apply the changed definition of this accessory service, recreating it (repeatable); other changed accessories are reported and left running.
   * @param insecureAcceptHostKey Connect without a pinned host key, accepting whatever key the host shows (never for production).
   * @param appEnv The app's secrets as one dotenv Secret (NAME=value lines for deploy/secrets' names, e.g. env://HAMALOG_ENV); required when the config names secrets.
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
    force = false,
    recreateAccessory: string[] = [],
    insecureAcceptHostKey = false,
    appEnv?: Secret,
  ): Promise<Deployment> {
    parseSha(sha);
    const deployed = await (
      await work()
    ).deploy(
      await this.configSource(),
      { sha, registryUsername, fallback, strategy, dryRun, lockWait, breakLock, force, recreateAccessory },
      this.reads(sshKey, registryToken, insecureAcceptHostKey, appEnv),
      print,
    );
    return deploymentOf(deployed);
  }

  /**
   * Roll the compose host back to the previous successful deploy, or to a sha or digest from its history.
   *
   * Same journal, lock, health gate and automatic recovery as deploy; blue/green starts the kept colour again.
   *
   * Example: dagger call rollback --ssh-key=env://DEPLOY_SSH_KEY --to=453a6545b97fe240727c378291230abeb793d851 summary
   *
   * @param sshKey SSH private key for the deploy host (a Secret).
   * @param to A deployed commit sha (7+ characters) or digest (sha256:…); default: the previous successful deploy.
   * @param registryToken Registry password or token, needed only when the image must be pulled again.
   * @param dryRun Print the plan and the rendered compose file; change nothing on the host.
   * @param force Replace the live release even when it is the one rolled back to and healthy.
   * @param recreateAccessory Apply the changed definition of this accessory service, recreating it (repeatable); other changed accessories are reported and left running.
   * @param insecureAcceptHostKey Connect without a pinned host key, accepting whatever key the host shows (never for production).
   * @param appEnv The app's secrets as one dotenv Secret; needed when the release rolled back to is rendered again (one from history, not the kept one).
   */
  @func({ cache: "never" })
  async rollback(
    sshKey: Secret,
    to?: string,
    registryToken?: Secret,
    dryRun = false,
    force = false,
    recreateAccessory: string[] = [],
    insecureAcceptHostKey = false,
    appEnv?: Secret,
  ): Promise<Deployment> {
    const rolledBack = await (
      await work()
    ).rollback(
      await this.configSource(),
      { to, dryRun, force, recreateAccessory },
      this.reads(sshKey, registryToken, insecureAcceptHostKey, appEnv),
      print,
    );
    return deploymentOf(rolledBack);
  }

  /**
   * Show what runs on the compose host now: the live release against the journal, health, lock and history.
   *
   * Reads only: recovery is the next deploy's or rollback's first step. End the call on `summary` to print it.
   *
   * Example: dagger call status --ssh-key=env://DEPLOY_SSH_KEY summary
   *
   * @param sshKey SSH private key for the deploy host (a Secret).
   * @param lines History lines to show.
   * @param insecureAcceptHostKey Connect without a pinned host key, accepting whatever key the host shows (never for production).
   */
  @func({ cache: "never" })
  async status(sshKey: Secret, lines = 5, insecureAcceptHostKey = false): Promise<Status> {
    const report = await (
      await work()
    ).status(
      await this.configSource(),
      lines,
      this.reads(sshKey, undefined, insecureAcceptHostKey, undefined, false),
      print,
    );
    return statusOf(report);
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
    return (await work()).hostKey(host, port);
  }

  /**
   * Verify that an image tag exists in its registry (and provides a platform) and return its digest, before anything is deployed.
   *
   * Speaks the OCI distribution API directly (no engine work). On failure the error explains why: near-miss tags
   * such as main-<sha> or sha-<7 hex> (and what produced them), credentials, repository name, missing platform.
   *
   * Example: dagger call verify-manifest --sha=$GITHUB_SHA --registry-username=$GITHUB_ACTOR --registry-token=env://GITHUB_TOKEN summary
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
    const verified = await (
      await work()
    ).verify(
      await this.configSource(),
      { sha, tag, registryUsername, platform },
      registryToken ? () => registryToken.plaintext() : undefined,
    );
    return verifiedImageOf(verified);
  }

  /**
   * Check that the pipeline config is valid: the file at --config with --set applied, the image name, and every deploy field when a deploy host is set.
   *
   * A check: `dagger check` runs it (as hamalog:config-valid) with the others; it reads the source only.
   *
   * Example: dagger call config-valid
   */
  @func()
  @check()
  async configValid(): Promise<string> {
    return (await work()).checkConfig(await this.configSource());
  }

  /**
   * Check the tag policy for this repository's image and default branch: `<sha>` and `latest` there, `<sha>` alone elsewhere, every reference valid.
   *
   * A check: `dagger check` runs it (as hamalog:tag-policy); the commit is a fixed probe sha.
   *
   * Example: dagger call tag-policy
   */
  @func()
  @check()
  async tagPolicy(): Promise<string> {
    return (await work()).checkTagPolicy(await this.configSource());
  }

  /**
   * Check that the compose template renders: parsed, the app service present, its image pinned to a digest, as ship does before it builds.
   *
   * A check: `dagger check` runs it (as hamalog:compose-renders); a config without a deploy section passes and says so.
   *
   * Example: dagger call compose-renders
   */
  @func()
  @check()
  async composeRenders(): Promise<string> {
    return (await work()).checkCompose(await this.configSource(), async (path) => {
      if (!(await this.source.exists(path)))
        throw new ConfigError(
          `deploy/composeFile: ${path} is not in the source directory — the compose template lives with the app, ` +
            `next to ${this.config}: run the check there, or pass --source=DIR (a directory that holds both)`,
        );
      return this.source.file(path).contents();
    });
  }

  /** The config file's text from --source, with --config's name and the constructor's --set. */
  private async configSource(): Promise<ConfigSource> {
    if (!(await this.source.exists(this.config))) {
      throw new ConfigError(
        `--config ${this.config}: no such file in the source directory. The pipeline config is read from the source ` +
          `it configures, never from Hamalog's own repository: add ${this.config} at the root of the directory passed ` +
          `as --source (dag.hamalog({ source }) from another module), or pass --config=PATH relative to it.`,
      );
    }
    return { text: await this.source.file(this.config).contents(), name: this.config, set: this.set };
  }

  /** What a remote function reads through the engine, each read only when the work needs it. */
  private reads(
    sshKey: Secret | undefined,
    registryToken: Secret | undefined,
    insecure: boolean,
    appEnv?: Secret,
    places = true,
  ) {
    const reads: RemoteReads = {
      readSource: (path) => this.source.file(path).contents(),
      insecureAcceptHostKey: insecure,
      places,
    };
    if (sshKey) reads.sshKey = () => sshKey.plaintext();
    if (registryToken) reads.registryToken = () => registryToken.plaintext();
    if (appEnv) reads.appEnv = () => appEnv.plaintext();
    return reads;
  }

  /** One labelled, lazy image build. */
  private container(spec: BuildSpec): Container {
    let c = this.context(spec).dockerBuild({
      dockerfile: spec.dockerfile,
      buildArgs: spec.buildArgs,
      ...(spec.platform ? { platform: spec.platform as Platform } : {}),
    });
    for (const l of spec.labels) c = c.withLabel(l.name, l.value);
    return c;
  }

  /**
   * The build context: build/context of --source; with build/prepare, its outputs removed (a stale local jar never
   * reaches the image), the step run on the rest in its pinned image with its cache volumes, and its outputs put back.
   */
  private context(spec: BuildSpec): Directory {
    let context = spec.context === "." ? this.source : this.source.directory(spec.context);
    const p = spec.prepare;
    if (!p) return context;
    for (const o of p.outputs) context = context.withoutDirectory(o.path);
    let builder = dag.container().from(p.image);
    for (const e of p.env) builder = builder.withEnvVariable(e.name, e.value);
    for (const c of p.caches) builder = builder.withMountedCache(c.path, dag.cacheVolume(c.volume));
    builder = builder.withDirectory(p.workdir, context).withWorkdir(p.workdir).withExec(p.command);
    for (const o of p.outputs) context = context.withDirectory(o.path, builder.directory(o.from));
    return context;
  }

  /** The builds to publish: one per configured platform (published as one index), or one for the engine's. */
  private containers(plan: PublishPlan): Images {
    return { containers: plan.builds.map((b) => this.container(b)), index: plan.index };
  }

  /** Publish to every tag-definition reference with the Secret as registry auth; check one digest came back. */
  private async publish(images: Images, plan: PublishPlan, token: Secret): Promise<PublishedData> {
    const base = (images.index ? dag.container() : images.containers[0]!).withRegistryAuth(
      plan.registry,
      plan.username,
      token,
    );
    const returned: string[] = [];
    for (const ref of plan.references) {
      try {
        returned.push(await base.publish(ref, images.index ? { platformVariants: images.containers } : {}));
      } catch (e) {
        throw explainPushFailure(e, { ...plan, reference: ref });
      }
    }
    return checkPublished(plan.references, returned);
  }
}
