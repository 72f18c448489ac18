// Options shared by the commands that read pipeline.yaml: --config plus one flag per config field, declared from
// overrides.ts's FIELDS with the schema's defaults. Secret indirection (--NAME-env / --NAME-file) lives in secret.ts.
// Only commands that load the config schema anyway import this file.
import { defaultAt } from "../core/config.js";
import { FIELDS, IMAGE, type Field, type Overrides } from "../core/overrides.js";
import type { OptionSpec } from "./command.js";

const flagged = FIELDS.filter((f) => f.flag !== undefined);

function help(f: Field): string {
  const d = defaultAt(f.path);
  return typeof d === "string" || typeof d === "number" ? `${f.help} (default ${d})` : f.help;
}

export const CONFIG_OPTIONS: Record<string, OptionSpec> = {
  config: { type: "string", help: "pipeline config file (default ./pipeline.yaml when present)", valueName: "FILE" },
  image: { type: "string", help: "REGISTRY/REPOSITORY, sets both image fields", valueName: "REF" },
  ...Object.fromEntries(
    flagged.map((f) => [f.flag!, { type: "string", multiple: f.kind === "map" || f.kind === "list", help: help(f) }]),
  ),
};

/** The parsed flags that override config fields, keyed by config path. */
export function overridesFrom(values: Record<string, unknown>): Overrides {
  const out: Overrides = {};
  if (values.image !== undefined) out[IMAGE] = values.image as string;
  for (const f of flagged) {
    const v = values[f.flag!];
    if (v !== undefined) out[f.path] = v as string | string[];
  }
  return out;
}
