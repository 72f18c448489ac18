// Rendering the production compose file: the app's compose template (YAML text) or the inline `services:` from
// pipeline.yaml, with the obsolete top-level `version` removed (loudly) and the app service's image pinned to
// `repo:tag@sha256:…`, so what runs is exactly the digest preflight verified. Pure: text in, text out.
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

interface RenderInput extends ComposeSource {
  /** The app's service name (deploy/service). */
  service: string;
  /** The pinned image reference, `registry/repo:tag@sha256:…`. */
  image: string;
  /** Header comment lines (what was deployed), without `#`. */
  header?: string[];
}

interface Rendered {
  yaml: string;
  warnings: string[];
}

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

/** Render the production compose file. Throws ConfigError when the app service is missing. */
export function renderCompose(input: RenderInput): Rendered {
  const name = input.templateName ?? (input.template !== undefined ? "compose template" : "deploy/services");
  const obj = templateObject(input);
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
  const app = svcs[input.service];
  if (typeof app !== "object" || app === null || Array.isArray(app)) {
    const known = Object.keys(svcs);
    throw new ConfigError(
      `deploy/service: \`${input.service}\` is not a service in ${name} (services there: ${known.join(", ") || "none"}) — set deploy/service or --service`,
    );
  }
  const appObj = app as Record<string, unknown>;
  if ("build" in appObj) {
    warnings.push(
      `${name}: removed \`build:\` from service ${input.service} — production runs the pinned image, it never builds`,
    );
    delete appObj.build;
  }
  if (typeof appObj.image === "string" && appObj.image !== "" && !appObj.image.includes("${")) {
    const before = appObj.image.split("@")[0]!;
    const after = input.image.split("@")[0]!;
    if (before.split(":")[0] !== after.split(/:(?=[^/]*$)/)[0]) {
      warnings.push(
        `${name}: service ${input.service} named image ${appObj.image}; replaced with the pinned ${input.image}`,
      );
    }
  }
  appObj.image = input.image;
  const header = (input.header ?? []).map((l) => `# ${l.replace(/[\r\n]+/g, " ")}`).join("\n");
  const body = stringify(obj, { lineWidth: 0 });
  return { yaml: header ? `${header}\n${body}` : body, warnings };
}
