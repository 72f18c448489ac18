// The one table of config fields, and overriding them. Each field is named by its config path (`deploy/health/url`,
// the name errors use); the CLI declares one flag per field from this table, the Dagger door takes `--set PATH=VALUE`,
// and docs/config.md is generated from it (npm run docs). Validation and defaults live in config.ts's schema.
import { ConfigError, InternalError } from "./errors.js";
import { parseReference } from "./reference.js";
import { closest } from "./similar.js";

/** How an override's text becomes a value; `file` fields are only read from pipeline.yaml. */
export type Kind = "string" | "int" | "number" | "list" | "map" | "file";

export interface Field {
  /** Config path, `/`-separated. */
  path: string;
  /** CLI flag without `--`; absent for fields only pipeline.yaml can hold. */
  flag?: string;
  kind: Kind;
  /** One line: the CLI's --help text and the start of the docs' meaning. */
  help: string;
  /** More for docs/config.md only. */
  doc?: string;
  /** What holds when the field is unset and the schema has no default. */
  unset?: string;
}

const REQUIRED_TO_DEPLOY = "required to deploy";

export const FIELDS: readonly Field[] = [
  {
    path: "image/registry",
    flag: "registry",
    kind: "string",
    help: "registry host",
    doc: "loopback registries (`127.0.0.1:5001`) use plain HTTP, like Docker",
  },
  {
    path: "image/repository",
    flag: "repository",
    kind: "string",
    help: "repository path, e.g. daemin-kim/hamalog-backend",
    doc: "lowercased (GHCR rejects uppercase, `GITHUB_REPOSITORY` may have it)",
    unset: "**required**, no default",
  },
  {
    path: "image/username",
    flag: "username",
    kind: "string",
    help: "registry username",
    doc: "GHCR accepts any name with a token; the password/token never lives in the config",
  },
  {
    path: "image/source",
    flag: "source",
    kind: "string",
    help: "repository URL for the image source label",
    doc: "the label is `org.opencontainers.image.source`",
  },
  { path: "defaultBranch", flag: "default-branch", kind: "string", help: "branch that also gets `latest`" },
  { path: "build/context", flag: "context", kind: "string", help: "build context directory" },
  { path: "build/dockerfile", flag: "dockerfile", kind: "string", help: "Dockerfile path in the context" },
  { path: "build/buildArgs", flag: "build-arg", kind: "map", help: "KEY=VALUE build argument" },
  {
    path: "build/platforms",
    flag: "platforms",
    kind: "list",
    help: "comma-separated build platforms",
    doc: "built and published as one index; empty: the engine's platform",
  },
  {
    path: "build/prepare/image",
    kind: "file",
    help: "build/prepare: the builder image, pinned by digest (e.g. eclipse-temurin:21-jdk@sha256:…)",
    unset: "no step before the Dockerfile",
  },
  {
    path: "build/prepare/command",
    kind: "file",
    help: "the step's argv, run in the build context (e.g. [./gradlew, bootJar, -x, test, --no-daemon])",
  },
  { path: "build/prepare/workdir", kind: "file", help: "where the context is mounted in the builder" },
  {
    path: "build/prepare/caches",
    kind: "file",
    help: "engine cache volumes, name: path (e.g. gradle-caches: /root/.gradle/caches)",
  },
  {
    path: "build/prepare/outputs",
    kind: "file",
    help: "what the step writes into the context (e.g. [build/libs]): removed before it runs, its own put back",
  },
  { path: "build/prepare/env", kind: "file", help: "plain environment for the step (no secrets)" },
  {
    path: "deploy/host",
    flag: "host",
    kind: "string",
    help: "deploy host (`local`: this machine, no SSH)",
    doc: "`local` runs the same procedure through a local shell (a self-hosted runner on the server; Linux hosts)",
    unset: REQUIRED_TO_DEPLOY,
  },
  { path: "deploy/port", flag: "port", kind: "int", help: "SSH port" },
  { path: "deploy/user", flag: "user", kind: "string", help: "SSH user", unset: "required to deploy over SSH" },
  {
    path: "deploy/hostKey",
    flag: "host-key",
    kind: "string",
    help: "pinned SHA256 host key fingerprint",
    doc: "`SHA256:…` as `hamalog host-key` or `ssh-keygen -lf` prints it; unset (or `CHANGE-ME`), deploy, rollback and status refuse to connect",
    unset: "required to deploy over SSH",
  },
  {
    path: "deploy/directory",
    flag: "directory",
    kind: "string",
    help: "deploy directory on the host",
    doc: "absolute; holds the journal, history.jsonl, releases/ and .hamalog/ (the host agent, the lock)",
    unset: REQUIRED_TO_DEPLOY,
  },
  {
    path: "deploy/composeFile",
    flag: "compose-file",
    kind: "string",
    help: "compose template, relative to the config",
    doc: "the Dagger door reads it relative to `--source`'s root",
    unset: "this or `deploy/services` to deploy",
  },
  { path: "deploy/services", kind: "file", help: "or: the compose `services:` mapping inline" },
  {
    path: "deploy/files",
    kind: "file",
    help: "files the template bind-mounts by relative path (e.g. nginx-docker.conf), installed with each release",
    doc: "relative to the config (Dagger: to `--source`); installed at the same path in the deploy directory, mode 0644",
  },
  { path: "deploy/project", flag: "project", kind: "string", help: "compose project name", unset: "directory name" },
  {
    path: "deploy/service",
    flag: "service",
    kind: "string",
    help: "the app's compose service",
    doc: "its `image:` is pinned to the verified digest",
    unset: REQUIRED_TO_DEPLOY,
  },
  {
    path: "deploy/platform",
    flag: "platform",
    kind: "string",
    help: "the host's platform, e.g. linux/amd64",
    doc: "the image must provide it",
    unset: "the host's (`docker info`)",
  },
  {
    path: "deploy/health/url",
    flag: "health-url",
    kind: "string",
    help: "HTTP health URL, checked on the host",
    doc: "`http://` as seen from the host, fetched through the SSH connection (so `https://` is refused)",
    unset: "compose's healthcheck alone gates `up --wait`",
  },
  {
    path: "deploy/health/timeout",
    flag: "health-timeout",
    kind: "int",
    help: "seconds the health URL may take to pass",
    doc: "a minute of JVM start-up is normal",
  },
  { path: "deploy/health/interval", flag: "health-interval", kind: "number", help: "seconds between health probes" },
  {
    path: "deploy/health/expectStatus",
    flag: "health-status",
    kind: "int",
    help: "HTTP status that counts as healthy",
  },
  { path: "deploy/waitTimeout", flag: "wait-timeout", kind: "int", help: "seconds for `compose up --wait`" },
  {
    path: "deploy/pullStallTimeout",
    flag: "pull-stall-timeout",
    kind: "int",
    help: "seconds a pull may show no progress before it is ended",
    doc: "progress comes at least every 512 KB; 0: only the pull's 30-minute cap; needs util-linux `script` on the host",
  },
  {
    path: "deploy/fallback",
    flag: "fallback",
    kind: "string",
    help: "none|latest: deploy `latest` when the sha tag is missing",
    doc: "resolved to a digest, loudly, and recorded as a fallback; `ship` never falls back",
  },
  {
    path: "deploy/keepImages",
    flag: "keep-images",
    kind: "int",
    help: "deployed digests to keep on the host",
    doc: "older images of this repository are pruned; the running one never",
  },
  {
    path: "deploy/strategy",
    flag: "strategy",
    kind: "string",
    help: "blue-green (zero downtime behind a Caddy proxy), recreate, or swarm (a stack on a Swarm manager)",
    doc: "blue-green needs deploy/health/url (its path is probed through the proxy); see docs/deploy.md and docs/swarm.md",
  },
  { path: "deploy/proxy/image", flag: "proxy-image", kind: "string", help: "blue-green and swarm: the Caddy 2 image" },
  {
    path: "deploy/proxy/publish",
    flag: "proxy-publish",
    kind: "string",
    help: "blue-green: the proxy's public port, [IP:]HOST_PORT:CONTAINER_PORT, e.g. 127.0.0.1:8080:80",
    unset: "none: the stack's entry is another service (e.g. nginx reaching the app by name)",
  },
  {
    path: "deploy/proxy/drainSeconds",
    flag: "drain-seconds",
    kind: "int",
    help: "blue-green: seconds the old colour keeps serving in-flight requests after the switch",
  },
  {
    path: "deploy/proxy/domain",
    flag: "proxy-domain",
    kind: "string",
    help: "blue-green: serve this domain over HTTPS",
  },
  {
    path: "deploy/proxy/warmSeconds",
    flag: "warm-seconds",
    kind: "int",
    help: "blue-green: seconds the old colour stays up after a switch (a rollback then is a switch)",
    doc: "costs one more app instance's memory for that long (e.g. up to the app's 1536M limit); 0: stop it after the drain",
  },
  {
    path: "deploy/swarm/replicas",
    flag: "replicas",
    kind: "int",
    help: "swarm: how many tasks of the app run",
    doc: "2 or more: one task can be replaced, or its node lost, while another serves",
  },
  {
    path: "deploy/swarm/parallelism",
    flag: "update-parallelism",
    kind: "int",
    help: "swarm: tasks replaced at a time in a rolling update (start-first: the new one is healthy before the old stops)",
  },
  {
    path: "deploy/swarm/monitorSeconds",
    flag: "monitor-seconds",
    kind: "int",
    help: "swarm: seconds Swarm watches each new task before the next batch (a failure in it rolls the update back)",
  },
  {
    path: "deploy/swarm/publish",
    flag: "swarm-publish",
    kind: "int",
    help: "swarm: the port the edge proxy publishes on every node (host mode)",
  },
  {
    path: "deploy/swarm/placement",
    kind: "file",
    help: "swarm: placement constraints per service, e.g. `mysql: [node.hostname == db1]`",
    doc: "pin a stateful service to the node that holds its volume; the app may have some too",
  },
  {
    path: "deploy/leaseSeconds",
    flag: "lease-seconds",
    kind: "int",
    help: "seconds without a heartbeat after which the host recovers by itself and frees the lock",
    doc: "the client renews every 5 s; a frozen or cut-off client loses the lock after this long",
  },
  {
    path: "deploy/env",
    flag: "env",
    kind: "map",
    help: "KEY=VALUE plain environment value of the app (repeatable)",
    doc: "written with the secrets to the release's env file (mode 0600): the app's env_file and compose's ${VAR}",
  },
  {
    path: "deploy/secrets",
    flag: "secret-name",
    kind: "list",
    help: "NAME of an app secret (repeatable); its value comes from the environment or --env-file, never the config",
    doc: "the CLI reads each from its process environment or `--env-file`; Dagger from `--app-env` (a dotenv Secret)",
  },
  {
    path: "deploy/proxy/tls",
    flag: "proxy-tls",
    kind: "string",
    help: "blue-green with a domain: acme (a public CA) or internal (Caddy's own CA)",
  },
];

/** `image` = REGISTRY/REPOSITORY: a shorthand override that sets image/registry and image/repository. */
export const IMAGE = "image";

/** Raw override values by config path, as a door received them (text, a number, or repeated text). */
export type Overrides = Record<string, string | number | string[] | undefined>;

const byPath = new Map(FIELDS.map((f) => [f.path, f]));
const overridable = FIELDS.filter((f) => f.kind !== "file");

/** `--host` for `deploy/host`: where errors say a field can be set. */
export function flagFor(path: string): string | undefined {
  const flag = byPath.get(path)?.flag;
  return flag ? `--${flag}` : undefined;
}

const given = (v: Overrides[string]): boolean => !(v === undefined || v === "" || (Array.isArray(v) && v.length === 0));

/**
 * `PATH=VALUE` pairs (the Dagger door's `--set`): every overridable field without one argument per field. Repeats
 * of a list or map field add up. The old CLI-flag keys (`health-url=…`) are refused with the path to use instead.
 */
export function parseSetPairs(pairs: readonly string[], argument = "--set"): Overrides {
  const out: Record<string, string | string[]> = {};
  const known = [IMAGE, ...overridable.map((f) => f.path)];
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    const key = eq > 0 ? pair.slice(0, eq).trim() : "";
    const field = byPath.get(key);
    if (key !== IMAGE && (!field || field.kind === "file")) {
      const renamed = FIELDS.find((f) => f.flag !== undefined && f.flag === key.replace(/^--/, ""))?.path;
      const hint = renamed ?? (key ? closest(key, known) : undefined);
      throw new ConfigError(
        `${argument}: \`${pair.slice(0, 60)}\` must be PATH=VALUE with a config path` +
          (renamed
            ? ` — keys are config paths now: use \`${renamed}=…\``
            : hint
              ? ` (did you mean \`${hint}\`?)`
              : "") +
          `; known: ${known.join(", ")}`,
      );
    }
    const value = pair.slice(eq + 1);
    if (field?.kind === "map" || field?.kind === "list")
      out[key] = [...((out[key] as string[] | undefined) ?? []), value];
    else out[key] = value;
  }
  return out;
}

/** `later` wins over `earlier` where it has a value (undefined, "" and [] mean "not given"). */
export function mergeOverrides(earlier: Overrides, later: Overrides): Overrides {
  const out: Overrides = { ...earlier };
  for (const [k, v] of Object.entries(later)) if (given(v)) out[k] = v;
  return out;
}

/** Write the given overrides into the parsed YAML (before validation, so they are validated like the file). */
export function applyOverrides(raw: Record<string, unknown>, overrides: Overrides, configName: string): void {
  for (const [path, value] of Object.entries(overrides)) {
    if (!given(value)) continue;
    if (path === IMAGE) {
      const ref = parseReference(String(value), "--image");
      if (ref.tag || ref.digest) {
        throw new ConfigError(
          `--image: give REGISTRY/REPOSITORY without a tag or digest (tags come from --sha), got \`${value}\``,
        );
      }
      setPath(raw, "image/registry", ref.registry);
      setPath(raw, "image/repository", ref.repository);
      continue;
    }
    const field = byPath.get(path);
    if (!field || field.kind === "file") throw new InternalError(`no overridable config field ${path}`);
    setPath(raw, path, valueOf(field, value!, configName));
  }
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split("/");
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== "object" || cur[p] === null || Array.isArray(cur[p])) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

/** An override's text as the field's value; errors read like the schema's (config.ts formatIssue). */
function valueOf(field: Field, raw: string | number | string[], configName: string): unknown {
  const values = Array.isArray(raw) ? raw : [raw];
  const where = ` (in ${configName}${field.flag ? ` or --${field.flag}` : ""})`;
  switch (field.kind) {
    case "int":
    case "number": {
      const v = values[values.length - 1];
      const grammar = field.kind === "int" ? /^\d+$/ : /^\d+(?:\.\d+)?$/;
      const n = typeof v === "number" ? v : grammar.test(String(v).trim()) ? Number(v) : NaN;
      if (!Number.isFinite(n) || (field.kind === "int" && !Number.isInteger(n))) {
        const what = field.kind === "int" ? "whole number" : "number";
        throw new ConfigError(`${field.path}: \`${v}\` is not a ${what}${where}`);
      }
      return n;
    }
    case "list":
      return values
        .flatMap((v) => String(v).split(","))
        .map((s) => s.trim())
        .filter(Boolean);
    case "map": {
      const out: Record<string, string> = {};
      for (const v of values) {
        const s = String(v);
        const eq = s.indexOf("=");
        if (eq <= 0) throw new ConfigError(`${field.path}: \`${s}\` must be KEY=VALUE${where}`);
        out[s.slice(0, eq)] = s.slice(eq + 1);
      }
      return out;
    }
    default:
      return String(values[values.length - 1]);
  }
}
