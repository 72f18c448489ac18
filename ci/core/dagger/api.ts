// The seam between the Dagger door's class (ci/src/index.ts) and its engine-free work (work.ts), as plain types.
//
// Why a seam at all: on every function call the engine's TypeScript runtime starts the module afresh, imports
// ci/src and hands every file there to the SDK's introspector, whose TypeScript program follows each import the
// files make — a static import of the deploy core drags the core, zod, yaml and ssh2 (their .js and .d.ts) into
// every call, twice per `dagger call X` (the constructor, then X). So the class imports only this file (types) and
// a few small pure modules; work.ts, which imports everything else, is loaded on first use through a specifier the
// introspector does not follow. Nothing here imports anything: it must stay free to load and to type-check.

/** Where the pipeline config comes from: its text (read from --source by the class), its name, the --set pairs. */
export interface ConfigSource {
  text: string;
  /** The --config path inside --source: how errors name the file. */
  name: string;
  /** The constructor's --set, PATH=VALUE each. */
  set: readonly string[];
}

/** One image build: what `Directory.dockerBuild` and `withLabel` are given. */
/** build/prepare as the door runs it, in order: from → env → caches → context at workdir → exec → outputs. */
export interface PrepareSpec {
  /** Pinned by digest. */
  image: string;
  command: string[];
  workdir: string;
  env: { name: string; value: string }[];
  caches: { volume: string; path: string }[];
  /** `path` of the context (removed before the step) is replaced by the builder's `from` after it. */
  outputs: { path: string; from: string }[];
}

export interface BuildSpec {
  /** The build context: a directory of --source ("." = its root). */
  context: string;
  /** build/prepare: run before the Dockerfile, its outputs replacing those paths of the context. */
  prepare?: PrepareSpec;
  dockerfile: string;
  buildArgs: { name: string; value: string }[];
  /** Absent: the engine's platform. */
  platform?: string;
  labels: { name: string; value: string }[];
}

/** What push and ship publish: the builds (one, or the platform variants of one index) and where. */
export interface PublishPlan {
  builds: BuildSpec[];
  /** Publish one index with the builds as its platform variants (build/platforms set). */
  index: boolean;
  registry: string;
  repository: string;
  username: string;
  /** The tag definition's references, in order. */
  references: string[];
}

/** What `publish` gave back, checked: one digest for every reference. */
export interface PublishedData {
  digest: string;
  /** ref@digest, one per reference. */
  published: string[];
}

/** A Secret's plaintext, read only when the work needs it (the order of reads is part of the contract). */
export type Plaintext = () => Promise<string>;

/** What a remote function (deploy, rollback, status, ship) reads through the engine, on demand. */
export interface RemoteReads {
  /** A file of --source by its path there (deploy/composeFile). */
  readSource(path: string): Promise<string>;
  sshKey?: Plaintext;
  registryToken?: Plaintext;
  /** A dotenv Secret holding the values of deploy/secrets' names. */
  appEnv?: Plaintext;
  insecureAcceptHostKey: boolean;
  /** The function places a release (deploy, rollback, ship): only then is the app's environment read. */
  places: boolean;
}

/** Where a remote function's progress lines go as they happen (the engine's log); they are also collected. */
export type Print = (line: string) => void;

/** An image the registry proved to serve. */
export interface VerifiedData {
  reference: string;
  digest: string;
  mediaType: string;
  platforms: string[];
  summary: string;
}

/** How a deploy or rollback ended, and what runs. */
export interface DeploymentData {
  action: "deploy" | "rollback";
  reference: string;
  digest: string;
  sha: string;
  host: string;
  result: "success" | "dry-run" | "already-live";
  rolledBackTo: string;
  fallbackUsed: boolean;
  /** deploy/strategy's value (recreate, blue-green, …). */
  strategy: string;
  /** Blue/green: the colour it runs as; "" otherwise. */
  colour: string;
  durationMs: number;
  changes: string[];
  /** The rendered compose file, secrets redacted. */
  compose: string;
  log: string[];
  summary: string;
}

/** What runs on the host now. */
export interface StatusData {
  reference: string;
  digest: string;
  sha: string;
  host: string;
  /** Blue/green: the live colour; "" otherwise. */
  colour: string;
  containerState: string;
  containerHealth: string;
  health: string;
  mismatches: string[];
  history: string[];
  log: string[];
  summary: string;
}

export interface ShipmentData {
  published: string[];
  verified: VerifiedData;
  deployment: DeploymentData;
  summary: string;
}

/** The engine calls ship's first two phases make (the class owns Containers; the work owns the order). */
export interface ShipEngine<B> {
  build(plan: PublishPlan): Promise<B>;
  push(built: B, plan: PublishPlan): Promise<PublishedData>;
}

export interface DeployArgs {
  sha: string;
  registryUsername?: string;
  fallback?: string;
  strategy?: string;
  dryRun: boolean;
  lockWait: number;
  breakLock: boolean;
  force: boolean;
  recreateAccessory: readonly string[];
}

export interface RollbackArgs {
  to?: string;
  dryRun: boolean;
  force: boolean;
  recreateAccessory: readonly string[];
}

export interface ShipArgs {
  sha: string;
  branch: string;
  registryUsername?: string;
  created?: string;
  deployUsername?: string;
  /** The push token, read again to ask the registry what the sha tag resolves to (verify-manifest). */
  pushToken: Plaintext;
  /** The host logs in with a token of its own (--deploy-token) rather than the push token. */
  ownDeployToken: boolean;
  force: boolean;
  recreateAccessory: readonly string[];
}

export interface VerifyArgs {
  sha?: string;
  tag?: string;
  registryUsername?: string;
  platform?: string;
}

/** The door's engine-free work, implemented by work.ts. Each takes what the class read and returns plain data. */
export interface Work {
  /** build: one image for `platform` (default: the engine's). */
  buildSpec(src: ConfigSource, sha: string, opts: { platform?: string; created?: string }): BuildSpec;
  /** push: the builds and references of the tag definition for this commit and branch. */
  publishPlan(
    src: ConfigSource,
    sha: string,
    branch: string,
    opts: { username?: string; created?: string },
  ): PublishPlan;
  ship<B>(
    src: ConfigSource,
    args: ShipArgs,
    reads: RemoteReads,
    engine: ShipEngine<B>,
    print: Print,
  ): Promise<ShipmentData>;
  deploy(src: ConfigSource, args: DeployArgs, reads: RemoteReads, print: Print): Promise<DeploymentData>;
  rollback(src: ConfigSource, args: RollbackArgs, reads: RemoteReads, print: Print): Promise<DeploymentData>;
  status(src: ConfigSource, lines: number, reads: RemoteReads, print: Print): Promise<StatusData>;
  verify(src: ConfigSource, args: VerifyArgs, registryToken?: Plaintext): Promise<VerifiedData>;
  hostKey(host: string, port: number): Promise<string>;
  /** The checks `dagger check` runs; each returns what it checked, one line, or throws what is wrong. */
  checkConfig(src: ConfigSource): string;
  checkTagPolicy(src: ConfigSource): string;
  checkCompose(src: ConfigSource, readSource: (path: string) => Promise<string>): Promise<string>;
}
