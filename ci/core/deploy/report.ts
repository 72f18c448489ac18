// Printing a procedure: each named phase prints one line with its duration as it completes
// (`[preflight] … 0.4s`); every line passes through redaction of the secrets in play, as a last line of defence.
import { ConnectionLost, PipelineError } from "../errors.js";

export interface Output {
  /** A progress line (stdout on the CLI). */
  out(line: string): void;
  /** A warning (stderr on the CLI). */
  warn(line: string): void;
}

export interface Clock {
  /** Wall time, for history. */
  now(): Date;
  /** Milliseconds from an arbitrary origin, for durations and deadlines. */
  monotonic(): number;
  sleep(ms: number): Promise<void>;
}

export function redact(text: string, secrets: readonly string[]): string {
  let t = text;
  for (const s of secrets) if (s && s.length >= 4) t = t.split(s).join("[redacted]");
  return t;
}

/**
 * Redact an error on its way out (its message is printed by the CLI and returned by Dagger). Rewritten in place,
 * so its class, phase and exit code stay as they were.
 */
export function redactError<E>(e: E, secrets: readonly string[]): E {
  if (e instanceof Error) {
    e.message = redact(e.message, secrets);
    if (e.stack) e.stack = redact(e.stack, secrets);
  }
  return e;
}

/** What to redact for an SSH private key: the whole text and each of its base64 lines (a fragment must not leak either). */
export function keySecrets(key: string): string[] {
  const lines = key
    .split("\n")
    .map((x) => x.trim())
    .filter((x) => x.length >= 16 && !x.startsWith("-----"));
  return [key.trim(), ...lines];
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export class Reporter {
  constructor(
    private readonly output: Output,
    readonly clock: Clock,
    private readonly secrets: readonly string[] = [],
  ) {}

  out(line: string): void {
    this.output.out(redact(line, this.secrets));
  }

  warn(line: string): void {
    this.output.warn(redact(line, this.secrets));
  }

  clean(text: string): string {
    return redact(text, this.secrets);
  }

  /**
   * Run a named phase; print `[name] summary 1.2s` when it ends. A failure inside is re-thrown as a
   * PipelineError carrying the phase name, printed as `[name] FAILED after 1.2s`.
   */
  async phase<T>(name: string, fn: () => Promise<{ value: T; summary: string }>): Promise<T> {
    const start = this.clock.monotonic();
    try {
      const { value, summary } = await fn();
      this.out(`[${name}] ${summary} ${seconds(this.clock.monotonic() - start)}`);
      return value;
    } catch (e) {
      this.out(`[${name}] FAILED after ${seconds(this.clock.monotonic() - start)}`);
      if (e instanceof PipelineError && e.phase) throw e;
      if (e instanceof ConnectionLost) throw new ConnectionLost(e.message, name);
      if (e instanceof PipelineError) throw new PipelineError(e.message, name);
      throw e;
    }
  }
}
