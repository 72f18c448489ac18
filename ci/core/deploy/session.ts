// One deploy session on the host: connect (the `connect` phase), hand the procedure its context, always close.
// Also what every procedure shares: its input and environment, the named phases (`DeployPhase`), and `must`, the
// way a remote command that has to succeed fails its phase. Time, the holder name and the transport are arguments
// (env), never read here.
import type { ComposeSource } from "../compose.js";
import type { DeployConfig } from "../config.js";
import { ConfigError, PipelineError } from "../errors.js";
import type { ImageName } from "../reference.js";
import type { Credentials } from "../registry/auth.js";
import { cmd, lastStep, layout, projectName, type Layout } from "./commands.js";
import { parseHistory, type HistoryEntry, type Running } from "./history.js";
import type { VerifyFn } from "./preflight.js";
import type { Remote } from "./remote.js";
import { redactError, Reporter, type Clock, type Output } from "./report.js";

/** Every phase a deploy, rollback or status prints (`[phase] summary 1.2s`) and names when it fails. */
export type DeployPhase =
  | "connect"
  | "preflight"
  | "lock"
  | "login"
  | "render"
  | "pull"
  | "up"
  | "health"
  | "history"
  | "prune"
  | "diagnostics"
  | "rollback"
  | "rollback-up"
  | "rollback-health"
  // blue/green (bluegreen.ts)
  | "proxy"
  | "candidate"
  | "candidate-health"
  | "switch"
  | "live-health"
  | "drain"
  | "retire"
  | "discard"
  | "switch-back"
  | "reconcile"
  | "recover-up"
  | "recover-health";

export interface DeployInput {
  image: ImageName;
  deploy: DeployConfig;
  compose: ComposeSource;
  /** Registry login for the host (and preflight); omit for public images. */
  credentials?: Credentials;
  /** Who deploys, for the lock and history (e.g. `alice@laptop pid 4242`). */
  holder: string;
  lockWaitSeconds?: number;
  breakLock?: boolean;
  /** Print the plan and the rendered compose file; change nothing on the host. */
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface DeployEnv {
  /** Open the one SSH connection (deploy/ssh.ts connectSsh in the doors). */
  connect(): Promise<Remote>;
  verify: VerifyFn;
  output: Output;
  clock: Clock;
  /** Values that must never be printed (registry token, SSH key). */
  secrets: string[];
  /** A fresh unique id per attempt, for the lock (randomUUID in the doors). */
  attemptId(): string;
}

export interface Outcome {
  result: "success" | "dry-run";
  running: Running;
  fallback: boolean;
  durationMs: number;
  /** The rendered compose file (for dry runs and the Dagger door). */
  compose: string;
}

/** What a procedure runs with, once connected. */
export interface Session {
  input: DeployInput;
  env: DeployEnv;
  rep: Reporter;
  remote: Remote;
  l: Layout;
  project: string;
  started: number;
}

function check(input: DeployInput): void {
  if (input.deploy.health.url && !input.deploy.health.url.startsWith("http://")) {
    throw new ConfigError(
      `deploy/health/url: ${input.deploy.health.url}: only http:// URLs are checked (the check runs on the host, through the SSH connection)`,
    );
  }
}

/**
 * Connect (the `connect` phase), run `fn`, always close. Whatever is thrown leaves redacted, like every printed
 * line: the doors print or return error messages as they are.
 */
export async function withSession<T>(input: DeployInput, env: DeployEnv, fn: (s: Session) => Promise<T>): Promise<T> {
  check(input);
  const rep = new Reporter(env.output, env.clock, env.secrets);
  const started = env.clock.monotonic();
  try {
    const remote = await rep.phase("connect", async () => {
      const r = await env.connect();
      return { value: r, summary: `${r.label}, host key ${r.hostKeyFingerprint}` };
    });
    try {
      const l = layout(input.deploy.directory);
      return await fn({ input, env, rep, remote, l, project: projectName(l.dir, input.deploy.project), started });
    } finally {
      remote.close();
    }
  } catch (e) {
    throw redactError(e, env.secrets);
  }
}

export async function readHistory(s: Session): Promise<HistoryEntry[]> {
  const r = await s.remote.run(cmd.cat(s.l.history));
  return r.code === 0 ? parseHistory(r.stdout) : [];
}

/**
 * Run argv; a non-zero exit fails `phase` naming what failed: `what`, or for a phase script (commands.ts), what its
 * last announced step was — with that step's own exit code and stderr.
 */
export async function must(
  s: Session,
  argv: string[],
  what: string | ((step: string | undefined) => string),
  phase: DeployPhase,
  opts: { stdin?: string; timeoutMs?: number; uninterruptible?: boolean } = {},
): Promise<string> {
  // An uninterruptible command runs to its end (or its timeout) after Ctrl-C: a command fed on stdin goes on on the
  // host when the channel closes, so stopping our side would only lose track of what it did there.
  const { uninterruptible, ...run } = opts;
  const signal = uninterruptible ? undefined : s.input.signal;
  const r = await s.remote.run(argv, { ...run, ...(signal ? { signal } : {}) });
  if (r.code !== 0) {
    const { step, stderr } = lastStep(r.stderr);
    const detail = (stderr.trim() ? stderr : r.stdout).trim().split("\n").slice(-8).join("\n");
    throw new PipelineError(
      `${typeof what === "string" ? what : what(step)} failed on ${s.remote.label} (exit ${r.code}): ${s.rep.clean(detail)}`,
      phase,
    );
  }
  return r.stdout;
}
