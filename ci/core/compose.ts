// Rendering the production compose file: the app's compose template (YAML text) or the inline `services:` from
// pipeline.yaml, with the obsolete top-level `version` removed (loudly) and the app service's image pinned to
// `repo:tag@sha256:…`, so what runs is exactly the digest preflight verified. When the release has an environment
// (deploy/env, deploy/secrets), the app's `env_file:` becomes the release's env file (and so does any other
// service's reference to the same file): the values reach the app from there, and compose interpolates `${VAR}`
// in the whole file from it (`--env-file`), so no interpolated copy is ever written. Pure: text in, text out.
import { isMap, parseDocument, stringify } from "yaml";
import { ConfigError } from "./errors.js";

export interface ComposeSource {
  /** Template text (a compose file). */
  template?: string;
  /** Where the template came from, for messages. */
  templateName?: string;
  /** Or: the `services:` mapping (deploy/services in pipeline.yaml). */
  services?: Record<string, unknown>;
}

export interface RenderInput extends ComposeSource {
  /** The app's service name (deploy/service). */
  service: string;
  /** The pinned image reference, `registry/repo:tag@sha256:…`. */
  image: string;
  /** Header comment lines (what was deployed), without `#`. */
  header?: string[];
  /** The release's env file as the host sees it (absolute), when the release has an environment. */
  envFile?: string;
}

export interface Rendered {
  yaml: string;
  warnings: string[];
}

export type Services = Record<string, Record<string, unknown>>;

function templateObject(src: ComposeSource): Record<string, unknown> {
  if (src.template !== undefined) {
    const name = src.templateName ?? "compose template";
    const doc = parseDocument(src.template, { prettyErrors: false, uniqueKeys: true, merge: true });
    if (doc.errors.length > 0) {
      throw new ConfigError(
        `${name}: YAML syntax error: ${doc.errors[0]!.message.split("\n")[0]} — fix the compose template`,
      );
    }
    if (!isMap(doc.contents)) throw new ConfigError(`${name}: must be a compose file (a mapping with services:)`);
    return doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  }
  if (src.services !== undefined) return { services: structuredClone(src.services) };
  throw new ConfigError("deploy/composeFile: required (or deploy/services) — the compose file to deploy");
}

const nameOf = (src: ComposeSource) =>
  src.templateName ?? (src.template !== undefined ? "compose template" : "deploy/services");

/** The template as an object, with the app service checked; `version` and the app's `build:` dropped (warned). */
export function composeObject(
  src: ComposeSource,
  service: string,
): { obj: Record<string, unknown> & { services: Services }; warnings: string[] } {
  const name = nameOf(src);
  const obj = templateObject(src);
  const warnings: string[] = [];
  if ("version" in obj) {
    warnings.push(
      `${name}: removed the top-level \`version: ${String(obj.version)}\` — it is obsolete in Compose v2 (which prints "the attribute \`version\` is obsolete") and is ignored; delete it from the template`,
    );
    delete obj.version;
  }
  const services = obj.services;
  if (typeof services !== "object" || services === null || Array.isArray(services)) {
    throw new ConfigError(`${name}: has no \`services:\` mapping`);
  }
  const svcs = services as Record<string, unknown>;
  for (const [k, v] of Object.entries(svcs))
    if (typeof v !== "object" || v === null || Array.isArray(v))
      throw new ConfigError(`${name}: service ${k} must be a mapping`);
  const app = svcs[service];
  if (app === undefined) {
    const known = Object.keys(svcs);
    throw new ConfigError(
      `deploy/service: \`${service}\` is not a service in ${name} (services there: ${known.join(", ") || "none"}) — set deploy/service or --service`,
    );
  }
  const appObj = app as Record<string, unknown>;
  if ("build" in appObj) {
    warnings.push(
      `${name}: removed \`build:\` from service ${service} — production runs the pinned image, it never builds`,
    );
    delete appObj.build;
  }
  return { obj: obj as Record<string, unknown> & { services: Services }, warnings };
}

/** The app service's image becomes the pinned one (warned when the template named another repository). */
export function pinImage(
  app: Record<string, unknown>,
  image: string,
  service: string,
  name: string,
  warnings: string[],
) {
  if (typeof app.image === "string" && app.image !== "" && !app.image.includes("${")) {
    const before = app.image.split("@")[0]!;
    const after = image.split("@")[0]!;
    if (before.split(":")[0] !== after.split(/:(?=[^/]*$)/)[0]) {
      warnings.push(`${name}: service ${service} named image ${app.image}; replaced with the pinned ${image}`);
    }
  }
  app.image = image;
}

const envFiles = (v: unknown): string[] =>
  typeof v === "string"
    ? [v]
    : Array.isArray(v)
      ? v.map((x) => (typeof x === "string" ? x : String((x as { path?: unknown })?.path ?? "")))
      : [];

/**
 * The release's env file in place of the app's `env_file:` entries, and of any other service's entry naming one of
 * the same files (they meant the same secrets). A template without `env_file:` on the app gets one.
 */
export function wireEnvFile(services: Services, service: string, envFile: string, name: string, warnings: string[]) {
  const app = services[service]!;
  const before = envFiles(app.env_file);
  if (before.length > 0)
    warnings.push(
      `${name}: service ${service}'s env_file (${before.join(", ")}) is the release's environment now (deploy/env and deploy/secrets); the file is not read`,
    );
  app.env_file = [envFile];
  for (const [k, s] of Object.entries(services)) {
    if (k === service || s.env_file === undefined) continue;
    const theirs = envFiles(s.env_file);
    if (theirs.some((f) => before.includes(f))) s.env_file = [...theirs.filter((f) => !before.includes(f)), envFile];
  }
}

export function header(lines: readonly string[]): string {
  return lines.map((l) => `# ${l.replace(/[\r\n]+/g, " ")}`).join("\n");
}

/** The production compose file for recreate (and every strategy's check that the template renders). */
export function renderCompose(input: RenderInput): Rendered {
  const name = nameOf(input);
  const { obj, warnings } = composeObject(input, input.service);
  pinImage(obj.services[input.service]!, input.image, input.service, name, warnings);
  if (input.envFile) wireEnvFile(obj.services, input.service, input.envFile, name, warnings);
  const head = header(input.header ?? []);
  const body = stringify(obj, { lineWidth: 0 });
  return { yaml: head ? `${head}\n${body}` : body, warnings };
}

/** The template's services other than the app: its accessories (a database, a cache, an in-stack proxy, …). */
export function accessoriesOf(src: ComposeSource, service: string): string[] {
  return Object.keys(composeObject(src, service).obj.services).filter((s) => s !== service);
}

/** `deploy.resources.limits.memory` of a service, in bytes (compose's `512M`, `1.5G`, `1536m`, plain bytes). */
export function memoryLimit(src: ComposeSource, service: string): number | undefined {
  const app = composeObject(src, service).obj.services[service]!;
  const v = ((app.deploy as any)?.resources?.limits?.memory ?? app.mem_limit) as unknown;
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(String(v).trim());
  if (!m) return undefined;
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as "" | "k"]!;
  return Math.round(Number(m[1]) * unit);
}

/** The services that reach the app (transitively through depends_on): started only once it is live. */
export function dependentsOf(compose: ComposeSource, service: string): string[] {
  const obj = composeObject(compose, service).obj.services;
  const deps = (s: string) => {
    const d = obj[s]?.depends_on;
    return Array.isArray(d) ? d.map(String) : d && typeof d === "object" ? Object.keys(d) : [];
  };
  const out = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of Object.keys(obj))
      if (s !== service && !out.has(s) && deps(s).some((x) => x === service || out.has(x))) {
        out.add(s);
        grew = true;
      }
  }
  return [...out];
}
