// Reading pipeline.yaml from disk (the CLI's side; the Dagger door reads it from a File and calls parseConfig).
import { parseConfig, type PipelineConfig } from "./config.js";
import { readConfigText } from "./config-text.js";
import type { Overrides } from "./overrides.js";

interface LoadedConfig {
  config: PipelineConfig;
  /** The file read, or undefined when none was given and ./pipeline.yaml does not exist. */
  path?: string;
}

/** Load `path` (or ./pipeline.yaml when it exists, see readConfigText) and apply overrides. */
export function loadConfig(path: string | undefined, overrides: Overrides): LoadedConfig {
  const { text, name, path: file } = readConfigText(path);
  return { config: parseConfig(text, name, overrides), ...(file !== undefined ? { path: file } : {}) };
}
