// Error kinds shared by both doors. The CLI maps them to exit codes (2 = usage/config, 1 = operation failed,
// 70 = internal error); the Dagger door lets them propagate so `dagger call` shows the same message.

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

const ISSUES = "https://github.com/daemin-kim/hamalog-backend/issues";

/**
 * A state the code itself rules out was reached: a bug here, not the user's input nor the registry or host. The
 * message says so, because the user's next step is a bug report, not a retry. Exit code 70 (EX_SOFTWARE), so CI
 * can tell it from a failed operation (1) or bad input (2).
 */
export class InternalError extends Error {
  readonly exitCode = 70;
  constructor(what: string) {
    super(
      `internal error: ${what}. This is an internal unexpected error, not a problem with your input; ` +
        `please open an issue at ${ISSUES} with this output.`,
    );
    this.name = "InternalError";
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof ConfigError || err instanceof PipelineError || err instanceof InternalError) return err.exitCode;
  return 1;
}

/**
 * The SSH connection dropped while a command ran: what it did on the host is unknown. The deploy reconnects
 * (bounded) to finish a rollback; the journal on the host says what the next run must recover otherwise.
 */
export class ConnectionLost extends PipelineError {
  constructor(message: string, phase?: string) {
    super(message, phase);
    this.name = "ConnectionLost";
  }
}
