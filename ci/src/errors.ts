// Error kinds shared by both doors. The CLI maps them to exit codes (2 = usage/config, 1 = operation failed);
// the Dagger door lets them propagate so `dagger call` shows the same message.

/** Bad input: a flag, an argument or a config field. Nothing has been touched yet. Exit code 2. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** An operation was attempted and failed (registry, host, health gate). Exit code 1. */
export class PipelineError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    /** The named phase that failed, e.g. "preflight", "lock", "health". */
    readonly phase?: string,
  ) {
    super(message);
    this.name = "PipelineError";
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof ConfigError || err instanceof PipelineError) return err.exitCode;
  return 1;
}
