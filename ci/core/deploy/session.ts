// One session with the host: connect (the `connect` phase), probe it (the agent runs from memory and writes nothing;
// the lock installs it), hand the procedure its context, always close. Also the core's input and environment, which
// both doors fill in (door.ts): time, the holder's name and the transport are arguments, never read here.
import type { ComposeSource } from "../compose.js";
import type { DeployConfig } from "../config.js";
import { ConfigError, PipelineError } from "../errors.js";
import type { ImageName } from "../reference.js";
import type { Credentials } from "../registry/auth.js";
import { Host, type Probe } from "./host/host.js";
import type { VerifyFn } from "./preflight.js";
import type { Release } from "./release.js";
import type { Remote } from "./remote.js";
import { redactError, Reporter, type Clock, type Output } from "./report.js";
import type { Setting } from "./strategy.js";
import { STRATEGY } from "./strategies.js";

export interface DeployInput {
  image: ImageName;
  deploy: DeployConfig;
  compose: ComposeSource;
  /** Registry login for the host (and preflight); omit for public images. */
  credentials?: Credentials;
  /**
   * The release's environment as an env file's text (deploy/env + the named secrets' values), read when first
   * asked for (it throws naming a missing secret); undefined when the config has none.
   */
  env?: () => string | undefined;
  /** deploy/files: what the template bind-mounts by relative path, read by the door. */
  files?: { path: string; content: string }[];
  /** Who deploys, for the lock and history (e.g. `alice@laptop pid 4242`). */
  holder: string;
  lockWaitSeconds?: number;
  breakLock?: boolean;
  /** Print the plan and the rendered compose file; change nothing on the host. */
  dryRun?: boolean;
  /** Replace the live release even when it is this one and healthy. */
  force?: boolean;
  /** Accessories whose changed definition is applied (recreated); others are reported and left running. */
  recreateAccessories?: string[];
  signal?: AbortSignal;
}

export interface DeployEnv {
  /** Open the one connection (deploy/ssh.ts connectSsh, or the local transport). */
  connect(): Promise<Remote>;
  verify: VerifyFn;
  output: Output;
  clock: Clock;
  /** Values that must never be printed (registry token, SSH key, the app's secrets). */
  secrets: string[];
  /** A fresh unique id per attempt, for the lock (randomUUID in the doors). */
  attemptId(): string;
}

export interface Outcome {
  result: "success" | "dry-run" | "already-live";
  running: Release & { colour?: "blue" | "green" };
  durationMs: number;
  /** The rendered compose file, secrets redacted (dry runs and the Dagger door). */
  compose: string;
  /** What changed on the host, one line each (what the summary prints). */
  changes: string[];
}

/** What a procedure runs with, once connected and probed. */
export interface Session {
  input: DeployInput;
  env: DeployEnv;
  rep: Reporter;
  host: Host;
  probe: Probe;
  setting: Setting;
  started: number;
}

function check(input: DeployInput): void {
  if (input.deploy.health.url && !input.deploy.health.url.startsWith("http://")) {
    throw new ConfigError(
      `deploy/health/url: ${input.deploy.health.url}: only http:// URLs are checked (the check runs on the host, through the SSH connection)`,
    );
  }
}

/** The compose project name: deploy/project, else the directory's name normalised as compose does. */
export function projectName(dir: string, project?: string): string {
  if (project) return project;
  const base = (dir.replace(/\/+$/, "").split("/").pop() ?? "").toLowerCase().replace(/[^a-z0-9_-]/g, "");
  return base || "hamalog";
}

/**
 * Connect (the `connect` phase), probe the host, run `fn`, always close. Whatever is thrown leaves redacted, like
 * every printed line: the doors print or return error messages as they are.
 */
export async function withSession<T>(
  input: DeployInput,
  env: DeployEnv,
  fn: (s: Session) => Promise<T>,
  o: { wantPlatform?: boolean } = {},
): Promise<T> {
  check(input);
  const rep = new Reporter(env.output, env.clock, env.secrets);
  const started = env.clock.monotonic();
  try {
    const remote = await rep.phase("connect", async () => {
      const r = await env.connect();
      return { value: r, summary: `${r.label}${r.hostKeyFingerprint ? `, host key ${r.hostKeyFingerprint}` : ""}` };
    });
    try {
      const d = input.deploy;
      const project = projectName(d.directory, d.project);
      const host = new Host(remote, d.directory.replace(/\/+$/, "") || "/", project, {
        imageName: `${input.image.registry}/${input.image.repository}`,
        leaseSeconds: d.leaseSeconds,
        clean: (t) => rep.clean(t),
        now: () => env.clock.now().toISOString(),
      });
      const probe = await rep.phase("probe", async () => {
        const p = await host.probe(o.wantPlatform === true, STRATEGY[d.strategy].composeHost, input.signal);
        if (p.missingTools.length > 0)
          throw new PipelineError(
            `${remote.label} lacks ${p.missingTools.join(", ")}, which the deploy's host agent needs (flock/setsid: util-linux, timeout: coreutils, tar) — install them there; nothing was changed`,
            "probe",
          );
        const live = p.view.journal.live;
        return {
          value: p,
          summary: `compose ${p.composeVersion}${p.platform ? `, ${p.platform}` : ""}; live: ${live ? `sha ${live.sha.slice(0, 12)}${live.colour ? ` (${live.colour})` : ""}` : "nothing yet"}`,
        };
      });
      const setting: Setting = {
        deploy: d,
        compose: input.compose,
        project,
        env: input.env ?? (() => undefined),
        ...(input.files?.length ? { files: input.files } : {}),
      };
      return await fn({ input, env, rep, host, probe, setting, started });
    } finally {
      remote.close();
    }
  } catch (e) {
    throw redactError(e, env.secrets);
  }
}
