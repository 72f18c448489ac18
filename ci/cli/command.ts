// What a CLI command is. Each command lives in its own file and is loaded only when asked for, so the
// CLI's start-up stays lean (it is benchmarked against skopeo).
import type { ParseArgsConfig } from "node:util";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>[string] & { help?: string; valueName?: string };

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** A directory of this CLI build's (the launcher's), for derived data such as config-memo.ts's; absent in tests. */
  cacheDir?: string;
}

export interface Command {
  /** kebab-case, the same as the Dagger function name. */
  name: string;
  summary: string;
  /** Lines after `usage: hamalog NAME`. */
  usage: string;
  options: Record<string, OptionSpec>;
  /** Lines `--help` prints after the flags (deploy's and rollback's phases). */
  more?(): string[];
  /** Returns the exit code. Throw ConfigError (2) / PipelineError (1) for failures. */
  run(values: Record<string, unknown>, io: Io): Promise<number>;
}
