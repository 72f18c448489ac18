// Which pipeline config file the CLI reads, and its text, bounded — no parsing, so a command that only needs to
// know what the file says (`tag`'s memo, cli/config-memo.ts) does not load yaml and zod to find out.
import { existsSync, readFileSync, statSync } from "node:fs";
import { ConfigError } from "./errors.js";

const DEFAULT_CONFIG = "pipeline.yaml";

/** Larger than any real pipeline.yaml (Hamalog's is ~2 KiB), small enough to parse in milliseconds. */
const MAX_CONFIG_BYTES = 64 * 1024;

/** Refuse config text over the cap before anything parses it. */
export function checkConfigSize(bytes: number, configName: string): void {
  if (bytes > MAX_CONFIG_BYTES) {
    throw new ConfigError(
      `${configName}: ${bytes} bytes is larger than the ${MAX_CONFIG_BYTES / 1024} KiB a pipeline config may be — is this the right file?`,
    );
  }
}

interface ConfigText {
  text: string;
  /** The name messages use: the file read, or pipeline.yaml when there is none. */
  name: string;
  /** The file read, or undefined when none was given and ./pipeline.yaml does not exist. */
  path?: string;
}

/**
 * `path`, or ./pipeline.yaml when it exists, or no file at all (flags alone may carry the whole config). An
 * explicitly named file that cannot be read, is not a regular file or is over the size cap is an error.
 */
export function readConfigText(path: string | undefined): ConfigText {
  const file = path ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  if (file === undefined) return { text: "", name: DEFAULT_CONFIG };
  try {
    const stat = statSync(file);
    if (!stat.isFile())
      throw new ConfigError(`--config: ${file} is not a regular file — give the path of pipeline.yaml`);
    // Checked before reading: a 54 MB file once kept the parser busy for 12 minutes.
    checkConfigSize(stat.size, file);
    return { text: readFileSync(file, "utf8"), name: file, path: file };
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`--config: cannot read ${file} (${code ?? String(e)}) — check the path`);
  }
}
