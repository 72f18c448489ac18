// Reading pipeline.yaml from disk (the CLI's side; the Dagger door reads it from a File and calls parseConfig).
import { readFileSync, existsSync, statSync } from "node:fs";
import { ConfigError } from "./errors.js";
import { checkConfigSize } from "./config-yaml.js";
import { parseConfig, type PipelineConfig } from "./config.js";
import type { Overrides } from "./overrides.js";

const DEFAULT_CONFIG = "pipeline.yaml";

interface LoadedConfig {
  config: PipelineConfig;
  /** The file read, or undefined when none was given and ./pipeline.yaml does not exist. */
  path?: string;
}

/**
 * Load `path` (or ./pipeline.yaml when it exists) and apply overrides. An explicitly named file that cannot be
 * read is an error; without one, flags alone may carry the whole config.
 */
export function loadConfig(path: string | undefined, overrides: Overrides): LoadedConfig {
  const file = path ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  if (file === undefined) return { config: parseConfig("", DEFAULT_CONFIG, overrides) };
  let text: string;
  try {
    const stat = statSync(file);
    if (!stat.isFile())
      throw new ConfigError(`--config: ${file} is not a regular file — give the path of pipeline.yaml`);
    // Checked before reading: a 54 MB file once kept the parser busy for 12 minutes.
    checkConfigSize(stat.size, file);
    text = readFileSync(file, "utf8");
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`--config: cannot read ${file} (${code ?? String(e)}) — check the path`);
  }
  return { config: parseConfig(text, file, overrides), path: file };
}
