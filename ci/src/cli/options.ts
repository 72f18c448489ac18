// Options shared by the commands that read pipeline.yaml: --config plus one flag per config field (config.ts
// OVERRIDES). Secret indirection (--NAME-env / --NAME-file) lives in secret.ts.
import { OVERRIDES, type OverrideValues } from "../config.js";
import type { OptionSpec } from "./command.js";

export const CONFIG_OPTIONS: Record<string, OptionSpec> = {
  config: { type: "string", help: "pipeline config file (default ./pipeline.yaml when present)", valueName: "FILE" },
  image: { type: "string", help: "REGISTRY/REPOSITORY, sets both image fields", valueName: "REF" },
  ...Object.fromEntries(
    Object.entries(OVERRIDES).map(([flag, o]) => [
      flag,
      { type: "string", multiple: o.kind === "map" || o.kind === "list", help: o.help } as OptionSpec,
    ]),
  ),
};

/** The override values among parsed flags. */
export function overridesFrom(values: Record<string, unknown>): OverrideValues {
  const out: OverrideValues = {};
  for (const flag of ["image", ...Object.keys(OVERRIDES)]) {
    const v = values[flag];
    if (v !== undefined) out[flag] = v as string | string[];
  }
  return out;
}
