// The one way both doors (CLI and Dagger) turn what they read into the deploy core's input and environment: the
// validated image and deploy settings, the compose source, the registry login, the real SSH transport, the real
// registry client, the process clock and the secrets to redact. Reading files and secrets stays with each door.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { ComposeSource } from "../compose.js";
import { requireDeploy, requireImage, type DeployConfig, type PipelineConfig } from "../config.js";
import { ConfigError } from "../errors.js";
import type { ImageName } from "../reference.js";
import { verifyManifest } from "../registry/verify.js";
import { checkPrivateKey, connectSsh } from "./ssh.js";
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
    env: liveEnv(d, { sshKey: r.sshKey, ...(r.registryToken ? { registryToken: r.registryToken } : {}) }, output),
  };
}

export function liveEnv(
  d: DeployConfig,
  secrets: { sshKey: string; registryToken?: string },
  output: Output,
): DeployEnv {
  const key = secrets.sshKey.endsWith("\n") ? secrets.sshKey : `${secrets.sshKey}\n`;
  return {
    connect: () =>
      connectSsh(
        { host: d.host, port: d.port, user: d.user, privateKey: key, ...(d.hostKey ? { hostKey: d.hostKey } : {}) },
        (l) => output.warn(l),
      ),
    verify: (req) => verifyManifest(req),
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
