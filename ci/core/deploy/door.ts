// The one way both doors (CLI and Dagger) turn what they read into the deploy core's input and environment: the
// validated image and deploy settings, the compose source, the registry login, the real SSH transport, the real
// registry client, the process clock and the secrets to redact. Reading files and secrets stays with each door.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { ComposeSource } from "../compose.js";
import {
  HOST_KEY_PLACEHOLDER,
  LOCAL_HOST,
  requireDeploy,
  requireImage,
  type DeployConfig,
  type PipelineConfig,
} from "../config.js";
import { ConfigError } from "../errors.js";
import type { ImageName } from "../reference.js";
import { verifyManifest } from "../registry/verify.js";
import { envFileText, secretValues } from "./env.js";
import { connectLocal } from "./local.js";
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
  /**
   * A file the config names, by its path relative to the config (the door knows what that is): deploy/composeFile
   * and each of deploy/files.
   */
  readTemplate(path: string): string;
  /** The SSH private key (not needed with deploy/host `local`). */
  sshKey: string | undefined;
  /** Where the key came from, e.g. `--ssh-key-file`. */
  sshKeyFrom: string;
  registryToken?: string;
  tokenFlag: string;
  usernameFlag: string;
  /** --insecure-accept-host-key: connect without a pinned host key (loudly). Never the default. */
  insecureAcceptHostKey?: boolean;
  /**
   * The values of deploy/secrets' names, looked up by the door (the CLI: its environment or --env-file; Dagger: a
   * dotenv Secret). Called only when the config names secrets; it throws naming the missing ones. Absent for what
   * places no release (status): then no environment is read at all.
   */
  secrets?(names: readonly string[]): Record<string, string>;
}

/** The core's input (without the holder, which each door names) and live environment for `target`. */
export function openDoor(
  t: RemoteTarget,
  r: DoorReads,
  output: Output,
): { input: Omit<DeployInput, "holder">; env: DeployEnv } {
  const local = t.deploy.host === LOCAL_HOST;
  if (!local) {
    if (!r.sshKey)
      throw new ConfigError(
        `${r.sshKeyFrom}: required — the private key whose public key is in the host's authorized_keys (or deploy/host: local on the server itself)`,
      );
    checkPrivateKey(`${r.sshKey}\n`, r.sshKeyFrom);
  }
  if (r.registryToken && !t.username) {
    throw new ConfigError(
      `image/username: required with ${r.tokenFlag} (set it in ${t.configName} or pass ${r.usernameFlag})`,
    );
  }
  if (!local) checkHostKeyPin(t, r.insecureAcceptHostKey === true);
  const d = t.deploy;
  const hidden: string[] = [];
  // The app's environment is read when a release is rendered (a deploy, a rollback to a release from history), not
  // for a kept release that runs from its own env file, nor for status; its secret values join the redaction list
  // (the same array every printed line is checked against) the moment they are read.
  let text: string | undefined | null = null;
  const env = (): string | undefined => {
    if (text !== null) return text;
    if (!r.secrets || (d.secrets.length === 0 && Object.keys(d.env).length === 0)) return (text = undefined);
    const app = { plain: d.env, secrets: d.secrets.length ? r.secrets(d.secrets) : {} };
    hidden.push(...secretValues(app));
    return (text = envFileText(app));
  };
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
      env,
      ...(d.files.length ? { files: d.files.map((path) => ({ path, content: r.readTemplate(path) })) } : {}),
      ...(r.registryToken && t.username ? { credentials: { username: t.username, password: r.registryToken } } : {}),
    },
    env: liveEnv(
      d,
      {
        ...(r.sshKey ? { sshKey: r.sshKey } : {}),
        ...(r.registryToken ? { registryToken: r.registryToken } : {}),
        app: hidden,
      },
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

/**
 * What must never be printed. `app` is kept by reference: the app's secrets join it when they are read (later than
 * the door opens), and every line is checked against the list as it is then.
 */
function secretList(sshKey: string, registryToken: string | undefined, app: string[] | undefined): string[] {
  const list = app ?? [];
  list.push(...(sshKey ? keySecrets(sshKey) : []), ...(registryToken ? [registryToken] : []));
  return list;
}

export function liveEnv(
  d: DeployConfig,
  secrets: { sshKey?: string; registryToken?: string; app?: string[] },
  output: Output,
  insecureAcceptHostKey = false,
): DeployEnv {
  const pinned = d.hostKey && d.hostKey !== HOST_KEY_PLACEHOLDER ? { hostKey: d.hostKey } : {};
  const sshKey = secrets.sshKey ?? "";
  const key = sshKey.endsWith("\n") ? sshKey : `${sshKey}\n`;
  return {
    connect: async () =>
      d.host === LOCAL_HOST
        ? connectLocal()
        : connectSsh(
            { host: d.host, port: d.port, user: d.user, privateKey: key, ...pinned, insecureAcceptHostKey },
            (l) => output.warn(l),
          ),
    verify: (req, signal) => verifyManifest(req, signal ? { signal } : {}),
    output,
    clock: {
      now: () => new Date(),
      monotonic: () => performance.now(),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    },
    secrets: secretList(sshKey, secrets.registryToken, secrets.app),
    attemptId: () => randomUUID(),
  };
}
