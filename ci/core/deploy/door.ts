// The one way both doors (CLI and Dagger) turn what they read into the deploy core's input and environment: the
// validated image and deploy settings, the compose source, the registry login, the real SSH transport, the real
// registry client, the process clock and the secrets to redact. Reading files and secrets stays with each door.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { ComposeSource } from "../compose.js";
import {
  HOST_KEY_PLACEHOLDER,
  requireDeploy,
  requireImage,
  type DeployConfig,
  type PipelineConfig,
} from "../config.js";
import { ConfigError } from "../errors.js";
import type { ImageName } from "../reference.js";
import { verifyManifest } from "../registry/verify.js";
import { connectSsh } from "./ssh.js";
import { checkPrivateKey, unpinnedError } from "./ssh-key.js";
import { keySecrets, type Output } from "./report.js";
import type { DeployEnv, DeployInput } from "./session.js";

/** What deploy, rollback and status need from the config, validated (every missing field named at once). */
export interface RemoteTarget {
  configName: string;
  image: ImageName;
  deploy: DeployConfig;
  username?: string;
}

export function remoteTarget(cfg: PipelineConfig, configName = "pipeline.yaml"): RemoteTarget {
  const image = requireImage(cfg, configName);
  const deploy = requireDeploy(cfg, configName);
  const username = cfg.image.username?.trim();
  return { configName, image, deploy, ...(username ? { username } : {}) };
}

/** What a door read for a remote function, and how its flags are called (for messages that say what to pass). */
export interface DoorReads {
  /** deploy/composeFile's text (the door knows what the path is relative to); called only when it is set. */
  readTemplate(path: string): string;
  sshKey: string;
  /** Where the key came from, e.g. `--ssh-key-file`. */
  sshKeyFrom: string;
  registryToken?: string;
  tokenFlag: string;
  usernameFlag: string;
  /** --insecure-accept-host-key: connect without a pinned host key (loudly). Never the default. */
  insecureAcceptHostKey?: boolean;
}

/** The core's input (without the holder, which each door names) and live environment for `target`. */
export function openDoor(
  t: RemoteTarget,
  r: DoorReads,
  output: Output,
): { input: Omit<DeployInput, "holder">; env: DeployEnv } {
  checkPrivateKey(`${r.sshKey}\n`, r.sshKeyFrom);
  if (r.registryToken && !t.username) {
    throw new ConfigError(
      `image/username: required with ${r.tokenFlag} (set it in ${t.configName} or pass ${r.usernameFlag})`,
    );
  }
  checkHostKeyPin(t, r.insecureAcceptHostKey === true);
  const d = t.deploy;
  const compose: ComposeSource = d.composeFile
    ? { template: r.readTemplate(d.composeFile), templateName: d.composeFile }
    : d.services
      ? { services: d.services }
      : {};
  return {
    input: {
      image: t.image,
      deploy: d,
      compose,
      ...(r.registryToken && t.username ? { credentials: { username: t.username, password: r.registryToken } } : {}),
    },
    env: liveEnv(
      d,
      { sshKey: r.sshKey, ...(r.registryToken ? { registryToken: r.registryToken } : {}) },
      output,
      r.insecureAcceptHostKey === true,
    ),
  };
}

/** Trust by default: no pin (or the example's placeholder) stops here, before any connection, unless the escape hatch is given. */
function checkHostKeyPin(t: RemoteTarget, insecure: boolean): void {
  const d = t.deploy;
  if (d.hostKey === HOST_KEY_PLACEHOLDER) {
    if (insecure) return;
    throw new ConfigError(
      `deploy/hostKey: still the placeholder ${HOST_KEY_PLACEHOLDER} in ${t.configName} — ` +
        unpinnedError(d.host, d.port).message.replace(/^deploy\/hostKey: required — /, ""),
    );
  }
  if (!d.hostKey && !insecure) throw unpinnedError(d.host, d.port);
}

export function liveEnv(
  d: DeployConfig,
  secrets: { sshKey: string; registryToken?: string },
  output: Output,
  insecureAcceptHostKey = false,
): DeployEnv {
  const pinned = d.hostKey && d.hostKey !== HOST_KEY_PLACEHOLDER ? { hostKey: d.hostKey } : {};
  const key = secrets.sshKey.endsWith("\n") ? secrets.sshKey : `${secrets.sshKey}\n`;
  return {
    connect: () =>
      connectSsh({ host: d.host, port: d.port, user: d.user, privateKey: key, ...pinned, insecureAcceptHostKey }, (l) =>
        output.warn(l),
      ),
    verify: (req, signal) => verifyManifest(req, signal ? { signal } : {}),
    output,
    clock: {
      now: () => new Date(),
      monotonic: () => performance.now(),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    },
    secrets: [...keySecrets(secrets.sshKey), ...(secrets.registryToken ? [secrets.registryToken] : [])],
    attemptId: () => randomUUID(),
  };
}
