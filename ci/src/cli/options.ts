// Option sets shared by several commands: --config plus one flag per config field (config.ts OVERRIDES),
// and secret indirection (--password-env / --password-file: never the secret itself in argv).
import { readFileSync } from "node:fs";
import { OVERRIDES, type OverrideValues } from "../config.js";
import { ConfigError } from "../errors.js";
import type { OptionSpec, Io } from "./command.js";

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

/** Options for one secret read through indirection, e.g. secretOptions("password"). */
export function secretOptions(name: string, what: string): Record<string, OptionSpec> {
  return {
    [`${name}-env`]: { type: "string", help: `name of the environment variable holding the ${what}`, valueName: "VAR" },
    [`${name}-file`]: { type: "string", help: `file holding the ${what}`, valueName: "FILE" },
  };
}

/** Read a secret named by --NAME-env or --NAME-file; undefined when neither was given. */
export function readSecret(values: Record<string, unknown>, name: string, io: Io): string | undefined {
  const envName = values[`${name}-env`] as string | undefined;
  const file = values[`${name}-file`] as string | undefined;
  if (envName !== undefined && file !== undefined) {
    throw new ConfigError(`--${name}-env and --${name}-file: give only one`);
  }
  if (envName !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(envName)) {
      throw new ConfigError(`--${name}-env: \`${envName}\` is not an environment variable name (give the NAME, not the value)`);
    }
    const v = io.env[envName];
    if (v === undefined || v === "") throw new ConfigError(`--${name}-env: environment variable ${envName} is not set or empty`);
    return v.trim();
  }
  if (file !== undefined) {
    try {
      return readFileSync(file, "utf8").trim();
    } catch (e) {
      throw new ConfigError(`--${name}-file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
  }
  return undefined;
}
