// Secret indirection for commands that must start lean: --NAME-env VAR / --NAME-file FILE, never the secret
// itself in argv. Kept apart from options.ts so lean commands need not import the config schema (zod + yaml cost
// ~0.1 s of start-up, and verify-manifest is benchmarked against skopeo).
import { readFileSync } from "node:fs";
import { ConfigError } from "../core/errors.js";
import type { Io, OptionSpec } from "./command.js";

/** Options for one secret read through indirection, e.g. secretFlags("password", "registry password or token"). */
export function secretFlags(name: string, what: string): Record<string, OptionSpec> {
  return {
    [`${name}-env`]: { type: "string", help: `name of the environment variable holding the ${what}`, valueName: "VAR" },
    [`${name}-file`]: { type: "string", help: `file holding the ${what}`, valueName: "FILE" },
  };
}

/** Read a secret named by --NAME-env or --NAME-file; undefined when neither was given. */
export function readSecretFlag(values: Record<string, unknown>, name: string, io: Io): string | undefined {
  const envName = values[`${name}-env`] as string | undefined;
  const file = values[`${name}-file`] as string | undefined;
  if (envName !== undefined && file !== undefined)
    throw new ConfigError(`--${name}-env and --${name}-file: give only one`);
  if (envName !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(envName)) {
      throw new ConfigError(
        `--${name}-env: that is not an environment variable name (give the NAME of the variable, not its value)`,
      );
    }
    const v = io.env[envName];
    if (v === undefined || v === "") {
      // Echo the name only when it looks like one: a token pasted here by mistake (ghp_… fits the grammar) must not be printed.
      const shown = /^[A-Z_][A-Z0-9_]{0,63}$/.test(envName)
        ? `environment variable ${envName}`
        : "that environment variable (name not shown: is it the secret itself? give the NAME)";
      throw new ConfigError(`--${name}-env: ${shown} is not set or empty`);
    }
    return v.trim();
  }
  if (file !== undefined) {
    let v: string;
    try {
      v = readFileSync(file, "utf8").trim();
    } catch (e) {
      throw new ConfigError(`--${name}-file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
    }
    if (v === "") throw new ConfigError(`--${name}-file: ${file} is empty`);
    return v;
  }
  return undefined;
}
