// The pipeline config: one YAML file (pipeline.yaml) validated with zod; each default is written once, on its
// field. Overrides (overrides.ts) are applied before validation. Precedence: flag/argument > pipeline.yaml >
// default. Nothing is read from the environment implicitly: the seed's CI forgot GITHUB_REPOSITORY and got
// `ghcr.io/hamalog`.
import { z } from "zod";
import { readConfigYaml } from "./config-yaml.js";
import { ConfigError } from "./errors.js";
import { DEFAULT_REGISTRY, normalizeRepository, validateRegistry, type ImageName } from "./reference.js";
import { PLATFORM, PLATFORM_HINT } from "./platform.js";
import { applyOverrides, flagFor, type Overrides } from "./overrides.js";
import { closest } from "./similar.js";
import { PrepareSchema } from "./build-plan.js";
import { normalizeBranch } from "./tags.js";

const HOSTNAME =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$|^\d{1,3}(?:\.\d{1,3}){3}$|^\[?[0-9a-fA-F:]+\]?$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
// Each repetition ends in `/`, so a string can match only one way: linear time. `(?:[...]+\/?)*` backtracked
// exponentially (a typo'd directory with a space took 87 s to reject, and SIGTERM could not interrupt it).
const SAFE_PATH = /^\/(?:[A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]*$/;
const SERVICE = /^[a-z0-9][a-z0-9_.-]*$/;
// `ssh-keygen -lf` prints 43 characters; base64 tools add `=` padding. Both are accepted, the pin is kept bare.
// The placeholder passes here (so `tag` and `verify-manifest` still read the file) and stops every deploy.
const HOST_KEY = /^(?:SHA256:[A-Za-z0-9+/]{43}=?|CHANGE-ME)$/;
export const HOST_KEY_PLACEHOLDER = "CHANGE-ME";
const SAFE_URL = /^http:\/\/[A-Za-z0-9.:[\]_-]+(?:\/[A-Za-z0-9._~\/%+=&?-]*)?$/;

const str = (re: RegExp, what: string) => z.string().trim().regex(re, { message: what });
const seconds = z.number().int().positive().max(3600);

const HealthSchema = z.strictObject({
  url: str(
    SAFE_URL,
    "must be an http:// URL as seen from the host (it is fetched through the SSH connection), without spaces or quotes, e.g. http://127.0.0.1:8080/actuator/health",
  ).optional(),
  timeout: seconds.default(120),
  interval: z.number().positive().max(60).default(2),
  expectStatus: z.number().int().min(100).max(599).default(200),
});

/** `[IP:]HOST_PORT:CONTAINER_PORT`, as compose's short `ports:` syntax. */
const PUBLISH = /^(?:\d{1,3}(?:\.\d{1,3}){3}:)?\d{1,5}:\d{1,5}$/;

/** The blue/green edge proxy (Caddy 2), a container of the deploy's compose project. */
const ProxySchema = z.strictObject({
  image: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._\/:@-]*$/, {
      message: "must be an image reference, e.g. caddy:2 or caddy:2@sha256:…",
    })
    .default("caddy:2"),
  publish: str(PUBLISH, "must be [IP:]HOST_PORT:CONTAINER_PORT, e.g. 127.0.0.1:8080:80").optional(),
  drainSeconds: z.number().int().min(0).max(3600).default(10),
  domain: str(HOSTNAME, "must be a host name, e.g. hamalog.example.com").optional(),
  tls: z.enum(["acme", "internal"]).default("acme"),
  warmSeconds: z.number().int().min(0).max(86400).default(300),
});

/**
 * deploy/strategy swarm: the stack's app service and its rolling update. The defaults give zero downtime: two
 * replicas (one can die or be replaced while the other serves), one task at a time, start-first, a monitor window
 * after each task, rollback on failure.
 */
const SwarmSchema = z.strictObject({
  replicas: z.number().int().min(1).max(100).default(2),
  parallelism: z.number().int().min(1).max(100).default(1),
  monitorSeconds: z.number().int().min(0).max(3600).default(10),
  publish: z.number().int().min(1).max(65535).default(80),
  placement: z
    .record(
      str(SERVICE, "must be a compose service name (lowercase letters, digits, _ . -)"),
      z.array(z.string().trim().min(1)).max(16),
    )
    .default({}),
});

/** An environment variable's name, as compose's env files and `${VAR}` take it. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envName = str(ENV_NAME, "must be an environment variable name (letters, digits, _; not starting with a digit)");

const ConfigSchema = z.strictObject({
  image: z
    .strictObject({
      registry: z.string().trim().default(DEFAULT_REGISTRY),
      repository: z.string().trim().optional(),
      /** Username for registry auth (GHCR accepts any username with a token). The password never lives here. */
      username: z
        .string()
        .trim()
        .regex(/^[^\s:]+$/, { message: "must not contain spaces or ':'" })
        .optional(),
      /** Repository URL for the org.opencontainers.image.source label. */
      source: z.string().trim().url().optional(),
    })
    .prefault({}),
  defaultBranch: z.string().trim().default("main"),
  build: z
    .strictObject({
      context: z.string().trim().default("."),
      dockerfile: z.string().trim().default("Dockerfile"),
      buildArgs: z.record(z.string(), z.string()).default({}),
      platforms: z.array(str(PLATFORM, PLATFORM_HINT)).default([]),
      /** A step run before the Dockerfile (Hamalog: JDK 21 `./gradlew bootJar`) whose outputs join the context. */
      prepare: PrepareSchema.optional(),
    })
    .prefault({}),
  deploy: z
    .strictObject({
      host: str(HOSTNAME, "must be a host name or IP address").optional(),
      port: z.number().int().min(1).max(65535).default(22),
      user: str(USER, "must be a plain user name (lowercase letters, digits, _ and -)").optional(),
      hostKey: str(
        HOST_KEY,
        "must be a SHA256 fingerprint as printed by `ssh-keygen -lf` or `hamalog host-key`, e.g. SHA256:…",
      )
        .transform((k) => k.replace(/=$/, ""))
        .optional(),
      directory: str(SAFE_PATH, "must be an absolute path of letters, digits, . _ - and /")
        .refine((p) => !p.split("/").includes(".."), { message: "must not contain `..`" })
        .optional(),
      /** The app's compose template, relative to the config file. */
      composeFile: z
        .string()
        .trim()
        .refine((p) => !p.split("/").includes(".."), { message: "must not contain `..`" })
        .refine((p) => !p.startsWith("/") && !p.startsWith("~"), {
          message: "must be relative to the config file (the CLI) or --source's root (Dagger), not absolute",
        })
        .optional(),
      /** Or: the compose `services:` mapping inline. */
      services: z.record(z.string(), z.unknown()).optional(),
      /**
       * Files the template bind-mounts by relative path (e.g. nginx-docker.conf), relative to the config file: each
       * release installs them at the same path in the deploy directory.
       */
      files: z
        .array(
          str(
            /^(?!\.hamalog(\/|$)|releases\/|proxy\/|journal\.json$|history\.jsonl$|compose\.yaml$)[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/,
            "must be a relative path of letters, digits, . _ - (no `..`, not hamalog's own files: .hamalog/, releases/, proxy/, journal.json, history.jsonl, compose.yaml)",
          ),
        )
        .max(32)
        .default([]),
      project: str(SERVICE, "must be lowercase letters, digits, _ . -").optional(),
      service: str(SERVICE, "must be a compose service name (lowercase letters, digits, _ . -)").optional(),
      platform: str(PLATFORM, PLATFORM_HINT).optional(),
      health: HealthSchema.prefault({}),
      waitTimeout: seconds.default(180),
      pullStallTimeout: z.number().int().min(0).max(3600).default(120),
      fallback: z.enum(["none", "latest"]).default("none"),
      keepImages: z.number().int().min(1).max(100).default(5),
      strategy: z.enum(["recreate", "blue-green", "swarm"]).default("recreate"),
      proxy: ProxySchema.prefault({}),
      swarm: SwarmSchema.prefault({}),
      leaseSeconds: z.number().int().min(5).max(3600).default(30),
      /** The app's plain environment values (in the release's env file with the secrets). */
      env: z.record(envName, z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
      /** The NAMES of the app's secrets: their values come only through the doors, never from this file. */
      secrets: z.array(envName).default([]),
    })
    .prefault({}),
});

export type PipelineConfig = z.infer<typeof ConfigSchema>;

/** `deploy/host: required (set it in pipeline.yaml or pass --host)`. */
function requiredError(path: string, configName = "pipeline.yaml"): ConfigError {
  const flag = flagFor(path);
  return new ConfigError(`${path}: required (set it in ${configName}${flag ? ` or pass ${flag}` : ""})`);
}

/** The value the config (after overrides) holds at an issue's path. */
function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let cur = raw;
  for (const p of path)
    cur = cur !== null && typeof cur === "object" ? (cur as Record<PropertyKey, unknown>)[p] : undefined;
  return cur;
}

/** `a string ("22")`: what a wrongly typed value is, short enough for one line. */
function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  const shown = JSON.stringify(v) ?? String(v);
  return `a ${typeof v} (${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown})`;
}

function formatIssue(issue: z.core.$ZodIssue, configName: string, raw: unknown): string {
  const path = issue.path.map(String).join("/");
  if (issue.code === "unrecognized_keys") {
    const parent = issue.path.map(String);
    const known = knownKeys(parent);
    return issue.keys
      .map((k) => {
        const hint = closest(k, known);
        const where = [...parent, k].join("/");
        return `${where}: unknown key${hint ? ` (did you mean \`${hint}\`?)` : ""} — known keys here: ${known.join(", ")}`;
      })
      .join("\n");
  }
  const flag = flagFor(path);
  if (issue.code === "invalid_type") {
    const value = valueAt(raw, issue.path);
    if (value === undefined) return requiredError(path, configName).message;
    const fix = typeof value === "string" && issue.expected === "number" ? ` — write it without quotes` : "";
    const expected = { object: "mapping", array: "list" }[issue.expected as string] ?? issue.expected;
    return `${path || "(top level)"}: must be a ${expected}, got ${describeValue(value)}${fix} (in ${configName}${flag ? ` or ${flag}` : ""})`;
  }
  return `${path || "(top level)"}: ${issue.message}${flag ? ` (in ${configName} or ${flag})` : ""}`;
}

/** The object schema under `path`, past any default/optional wrapper. */
function shapeAt(path: string[]): Record<string, z.ZodType> | undefined {
  const unwrap = (s: any) => {
    while (s?.def?.innerType) s = s.def.innerType;
    return s;
  };
  let s: any = ConfigSchema;
  for (const p of path) s = unwrap(s)?.shape?.[p];
  return unwrap(s)?.shape;
}

function knownKeys(path: string[]): string[] {
  return Object.keys(shapeAt(path) ?? {});
}

/** The schema's default for a field path (undefined when it has none): CLI help and docs show it. */
export function defaultAt(path: string): unknown {
  let v: unknown = ConfigSchema.parse({});
  for (const p of path.split("/")) v = (v as Record<string, unknown> | undefined)?.[p];
  return v;
}

/** Every field path the schema knows (its leaves): overrides.ts's FIELDS must list exactly these. */
export function schemaPaths(prefix: string[] = []): string[] {
  return Object.keys(shapeAt(prefix) ?? {}).flatMap((k) =>
    shapeAt([...prefix, k]) ? schemaPaths([...prefix, k]) : [[...prefix, k].join("/")],
  );
}

/**
 * Parse config text (YAML) and apply overrides. `configName` is used in messages (a path or "pipeline.yaml").
 * Throws ConfigError naming the path and the fix; YAML syntax errors carry line and column.
 */
export function parseConfig(text: string, configName = "pipeline.yaml", overrides: Overrides = {}): PipelineConfig {
  const raw = readConfigYaml(text, configName);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${configName}: the top level must be a mapping (image:, deploy:, ...)`);
  }
  const obj = raw as Record<string, unknown>;
  applyOverrides(obj, overrides, configName);
  const parsed = ConfigSchema.safeParse(obj);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => formatIssue(i, configName, obj)).join("\n"));
  }
  const cfg = parsed.data;
  cfg.image.registry = validateRegistry(cfg.image.registry, "image/registry");
  if (cfg.image.repository !== undefined) cfg.image.repository = normalizeRepository(cfg.image.repository);
  cfg.defaultBranch = normalizeBranch(cfg.defaultBranch, "defaultBranch");
  return cfg;
}

/** The image name from config; a missing repository is an error, never a fallback. */
export function requireImage(cfg: PipelineConfig, configName = "pipeline.yaml"): ImageName {
  if (!cfg.image.repository) {
    throw new ConfigError(
      `image/repository: required (set it in ${configName} or pass --repository / --image REGISTRY/REPO) — e.g. daemin-kim/hamalog-backend; there is no default`,
    );
  }
  return { registry: cfg.image.registry, repository: cfg.image.repository };
}

/** deploy/host for a deploy on this machine itself (a self-hosted runner on the server): no SSH. */
export const LOCAL_HOST = "local";

export type DeployConfig = PipelineConfig["deploy"] & {
  host: string;
  user: string;
  directory: string;
  service: string;
};

/** The deploy section with everything a deploy needs present; lists every missing field at once. */
export function requireDeploy(cfg: PipelineConfig, configName = "pipeline.yaml"): DeployConfig {
  const d = cfg.deploy;
  const missing: string[] = [];
  for (const k of ["host", "user", "directory", "service"] as const) {
    // deploy/host `local`: the deploy runs on this machine, as this user, with no SSH.
    if (k === "user" && d.host === LOCAL_HOST) continue;
    if (!d[k]) missing.push(requiredError(`deploy/${k}`, configName).message);
  }
  const both = d.secrets.filter((n) => n in d.env);
  if (both.length)
    missing.push(`deploy/secrets: ${both.join(", ")} also in deploy/env — a name is either a plain value or a secret`);
  if (!d.composeFile && !d.services) {
    missing.push(`deploy/composeFile: required (set it or deploy/services in ${configName}, or pass --compose-file)`);
  }
  if (d.strategy === "blue-green") {
    const why = "with deploy/strategy blue-green";
    if (!d.health.url)
      missing.push(
        `deploy/health/url: required ${why} — the candidate is health-gated over HTTP before it gets traffic; its path is probed through the proxy (set it in ${configName} or pass --health-url)`,
      );
  }
  if (d.strategy === "swarm" && d.proxy.domain)
    missing.push(
      "deploy/proxy/domain: not with deploy/strategy swarm — every node's edge would ask for its own certificate; terminate TLS in front of the nodes (a load balancer) and let the edge serve plain HTTP (docs/swarm.md)",
    );
  if (missing.length > 0) throw new ConfigError(missing.join("\n"));
  return d as DeployConfig;
}
