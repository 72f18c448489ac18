// The pipeline config: one YAML file (pipeline.yaml), validated with zod, every field overridable by a flag
// (CLI) or argument (Dagger). Precedence: flag/argument > pipeline.yaml > built-in default. Nothing is read
// from the environment implicitly: the seed's CI forgot GITHUB_REPOSITORY and got `ghcr.io/hamalog`.
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError } from "./errors.js";
import { DEFAULT_REGISTRY, normalizeRepository, validateRegistry, parseReference } from "./reference.js";
import { PLATFORM, PLATFORM_HINT } from "./platform.js";
import { closest } from "./similar.js";
import { normalizeBranch } from "./tags.js";

const HOSTNAME =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$|^\d{1,3}(?:\.\d{1,3}){3}$|^\[?[0-9a-fA-F:]+\]?$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const SAFE_PATH = /^\/(?:[A-Za-z0-9._-]+\/?)*$/;
const SERVICE = /^[a-z0-9][a-z0-9_.-]*$/;
const HOST_KEY = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
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
    .default({ registry: DEFAULT_REGISTRY }),
  defaultBranch: z.string().trim().default("main"),
  build: z
    .strictObject({
      context: z.string().trim().default("."),
      dockerfile: z.string().trim().default("Dockerfile"),
      buildArgs: z.record(z.string(), z.string()).default({}),
      platforms: z.array(str(PLATFORM, PLATFORM_HINT)).default([]),
    })
    .default({ context: ".", dockerfile: "Dockerfile", buildArgs: {}, platforms: [] }),
  deploy: z
    .strictObject({
      host: str(HOSTNAME, "must be a host name or IP address").optional(),
      port: z.number().int().min(1).max(65535).default(22),
      user: str(USER, "must be a plain user name (lowercase letters, digits, _ and -)").optional(),
      hostKey: str(HOST_KEY, "must be a SHA256 fingerprint as printed by `ssh-keygen -lf`, e.g. SHA256:…").optional(),
      directory: str(SAFE_PATH, "must be an absolute path of letters, digits, . _ - and /")
        .refine((p) => !p.split("/").includes(".."), { message: "must not contain `..`" })
        .optional(),
      /** The app's compose template, relative to the config file. */
      composeFile: z
        .string()
        .trim()
        .refine((p) => !p.split("/").includes(".."), { message: "must not contain `..`" })
        .optional(),
      /** Or: the compose `services:` mapping inline. */
      services: z.record(z.string(), z.unknown()).optional(),
      project: str(SERVICE, "must be lowercase letters, digits, _ . -").optional(),
      service: str(SERVICE, "must be a compose service name (lowercase letters, digits, _ . -)").optional(),
      platform: str(PLATFORM, PLATFORM_HINT).optional(),
      health: HealthSchema.default({ timeout: 120, interval: 2, expectStatus: 200 }),
      waitTimeout: seconds.default(180),
      fallback: z.enum(["none", "latest"]).default("none"),
      keepImages: z.number().int().min(1).max(100).default(5),
    })
    .default({
      port: 22,
      health: { timeout: 120, interval: 2, expectStatus: 200 },
      waitTimeout: 180,
      fallback: "none",
      keepImages: 5,
    }),
});

export type PipelineConfig = z.infer<typeof ConfigSchema>;

type Kind = "string" | "int" | "number" | "list" | "map";
interface Override {
  /** Config path, `/`-separated. */
  path: string;
  kind: Kind;
  help: string;
}

/**
 * Every config field and the flag (CLI, kebab-case) / argument (Dagger, camelCase) that overrides it.
 * `--image REGISTRY/REPO` is a convenience that sets both image fields.
 */
export const OVERRIDES: Record<string, Override> = {
  registry: { path: "image/registry", kind: "string", help: "registry host, e.g. ghcr.io" },
  repository: { path: "image/repository", kind: "string", help: "repository path, e.g. daemin-kim/hamalog-backend" },
  username: { path: "image/username", kind: "string", help: "registry username" },
  source: { path: "image/source", kind: "string", help: "repository URL for the image source label" },
  "default-branch": { path: "defaultBranch", kind: "string", help: "branch that also gets `latest` (default main)" },
  context: { path: "build/context", kind: "string", help: "build context directory" },
  dockerfile: { path: "build/dockerfile", kind: "string", help: "Dockerfile path in the context" },
  "build-arg": { path: "build/buildArgs", kind: "map", help: "KEY=VALUE build argument (repeatable)" },
  platforms: { path: "build/platforms", kind: "list", help: "comma-separated build platforms" },
  host: { path: "deploy/host", kind: "string", help: "deploy host" },
  port: { path: "deploy/port", kind: "int", help: "SSH port (default 22)" },
  user: { path: "deploy/user", kind: "string", help: "SSH user" },
  "host-key": { path: "deploy/hostKey", kind: "string", help: "pinned SHA256 host key fingerprint" },
  directory: { path: "deploy/directory", kind: "string", help: "deploy directory on the host" },
  "compose-file": { path: "deploy/composeFile", kind: "string", help: "compose template, relative to the config" },
  project: { path: "deploy/project", kind: "string", help: "compose project name" },
  service: { path: "deploy/service", kind: "string", help: "the app's compose service" },
  platform: { path: "deploy/platform", kind: "string", help: "the host's platform, e.g. linux/amd64" },
  "health-url": { path: "deploy/health/url", kind: "string", help: "HTTP health URL, checked on the host" },
  "health-timeout": { path: "deploy/health/timeout", kind: "int", help: "seconds the health URL may take to pass" },
  "health-interval": { path: "deploy/health/interval", kind: "number", help: "seconds between health probes" },
  "health-status": {
    path: "deploy/health/expectStatus",
    kind: "int",
    help: "HTTP status that counts as healthy (default 200)",
  },
  "wait-timeout": { path: "deploy/waitTimeout", kind: "int", help: "seconds for `compose up --wait`" },
  fallback: {
    path: "deploy/fallback",
    kind: "string",
    help: "none|latest: deploy `latest` when the sha tag is missing",
  },
  "keep-images": { path: "deploy/keepImages", kind: "int", help: "deployed digests to keep on the host" },
};

/** Flag name for a config path, for error messages. */
function flagFor(path: string): string | undefined {
  for (const [flag, o] of Object.entries(OVERRIDES)) if (o.path === path) return `--${flag}`;
  return undefined;
}

/** `deploy/host: required (set it in pipeline.yaml or pass --host)`. */
export function requiredError(path: string, configName = "pipeline.yaml"): ConfigError {
  const flag = flagFor(path);
  return new ConfigError(`${path}: required (set it in ${configName}${flag ? ` or pass ${flag}` : ""})`);
}

export type OverrideValues = Record<string, string | number | string[] | undefined>;

/**
 * `FLAG=VALUE` pairs (the CLI's flag names without `--`) as overrides: the Dagger door's `--set` argument, so
 * every config field can be overridden there too without one argument per field.
 */
export function parseSetPairs(pairs: readonly string[], argument = "--set"): OverrideValues {
  const out: Record<string, string | string[]> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    const flag = eq > 0 ? pair.slice(0, eq).trim().replace(/^--/, "") : "";
    if (flag === "" || (flag !== "image" && !OVERRIDES[flag])) {
      const hint = flag ? closest(flag, Object.keys(OVERRIDES)) : undefined;
      throw new ConfigError(
        `${argument}: \`${pair.slice(0, 60)}\` must be FLAG=VALUE with a config flag name${hint ? ` (did you mean \`${hint}\`?)` : ""}; known: image, ${Object.keys(OVERRIDES).join(", ")}`,
      );
    }
    const value = pair.slice(eq + 1);
    const kind = OVERRIDES[flag]?.kind;
    if (kind === "map" || kind === "list") out[flag] = [...((out[flag] as string[] | undefined) ?? []), value];
    else out[flag] = value;
  }
  return out;
}

/** `later` wins over `earlier` where it has a value (undefined, "" and [] mean "not given"). */
export function mergeOverrides(earlier: OverrideValues, later: OverrideValues): OverrideValues {
  const out: OverrideValues = { ...earlier };
  for (const [k, v] of Object.entries(later)) {
    if (v === undefined || v === "" || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return out;
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

function overrideValue(flag: string, kind: Kind, raw: string | number | string[]): unknown {
  const values = Array.isArray(raw) ? raw : [raw];
  switch (kind) {
    case "string":
      return String(values[values.length - 1]);
    case "int":
    case "number": {
      const v = values[values.length - 1];
      const grammar = kind === "int" ? /^\d+$/ : /^\d+(?:\.\d+)?$/;
      const n = typeof v === "number" ? v : grammar.test(String(v).trim()) ? Number(v) : NaN;
      if (!Number.isFinite(n) || (kind === "int" && !Number.isInteger(n))) {
        throw new ConfigError(`--${flag}: \`${v}\` is not a ${kind === "int" ? "whole number" : "number"}`);
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
        if (eq <= 0) throw new ConfigError(`--${flag}: \`${s}\` must be KEY=VALUE`);
        out[s.slice(0, eq)] = s.slice(eq + 1);
      }
      return out;
    }
  }
}

function applyOverrides(raw: Record<string, unknown>, overrides: OverrideValues): void {
  for (const [flag, value] of Object.entries(overrides)) {
    if (value === undefined || value === "" || (Array.isArray(value) && value.length === 0)) continue;
    if (flag === "image") {
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
    const o = OVERRIDES[flag];
    if (!o) throw new Error(`internal: no config field for override --${flag}`);
    setPath(raw, o.path, overrideValue(flag, o.kind, value));
  }
}

function formatIssue(issue: z.core.$ZodIssue, configName: string): string {
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
  if (issue.code === "invalid_type" && issue.input === undefined) return requiredError(path, configName).message;
  const flag = flagFor(path);
  return `${path || "(top level)"}: ${issue.message}${flag ? ` (in ${configName} or ${flag})` : ""}`;
}

function knownKeys(path: string[]): string[] {
  let schema: z.ZodType = ConfigSchema;
  for (const p of path) {
    let s: any = schema;
    while (s?.def?.innerType) s = s.def.innerType; // unwrap default/optional
    schema = s?.shape?.[p];
  }
  let s: any = schema;
  while (s?.def?.innerType) s = s.def.innerType;
  return Object.keys(s?.shape ?? {});
}

/**
 * Parse config text (YAML) and apply overrides. `configName` is used in messages (a path or "pipeline.yaml").
 * Throws ConfigError naming the path and the fix; YAML syntax errors carry line and column.
 */
export function parseConfig(
  text: string,
  configName = "pipeline.yaml",
  overrides: OverrideValues = {},
): PipelineConfig {
  let raw: unknown = {};
  if (text.trim() !== "") {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const pos = lineCounter.linePos(e.pos[0]);
      const where = `${configName}:${pos.line}:${pos.col}`;
      throw new ConfigError(`${where}: YAML syntax error: ${e.message.split("\n")[0]} — fix the file and run again`);
    }
    raw = doc.toJS() ?? {};
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${configName}: the top level must be a mapping (image:, deploy:, ...)`);
  }
  const obj = raw as Record<string, unknown>;
  applyOverrides(obj, overrides);
  const parsed = ConfigSchema.safeParse(obj);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => formatIssue(i, configName)).join("\n"));
  }
  const cfg = parsed.data;
  cfg.image.registry = validateRegistry(cfg.image.registry, "image/registry");
  if (cfg.image.repository !== undefined) cfg.image.repository = normalizeRepository(cfg.image.repository);
  cfg.defaultBranch = normalizeBranch(cfg.defaultBranch, "defaultBranch");
  return cfg;
}

/** The image name from config; a missing repository is an error, never a fallback. */
export function requireImage(
  cfg: PipelineConfig,
  configName = "pipeline.yaml",
): { registry: string; repository: string } {
  if (!cfg.image.repository) {
    throw new ConfigError(
      `image/repository: required (set it in ${configName} or pass --repository / --image REGISTRY/REPO) — e.g. daemin-kim/hamalog-backend; there is no default`,
    );
  }
  return { registry: cfg.image.registry, repository: cfg.image.repository };
}

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
    if (!d[k]) missing.push(requiredError(`deploy/${k}`, configName).message);
  }
  if (!d.composeFile && !d.services) {
    missing.push(`deploy/composeFile: required (set it or deploy/services in ${configName}, or pass --compose-file)`);
  }
  if (missing.length > 0) throw new ConfigError(missing.join("\n"));
  return d as DeployConfig;
}
