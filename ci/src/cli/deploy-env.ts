// What `deploy`, `rollback` and `status` share on the CLI: their flags (config overrides, the SSH key and the
// registry token by indirection, lock handling), and turning those flags into the core's input and environment
// (real clock, real SSH, real registry client). The only place the CLI reads the compose template from disk.
import { readFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { dirname, resolve } from "node:path";
import { loadConfig } from "../config-file.js";
import { requireDeploy, requireImage } from "../config.js";
import type { ComposeSource } from "../compose.js";
import { ConfigError } from "../errors.js";
import { checkPrivateKey } from "../ssh.js";
import { liveEnv } from "../deploy/door.js";
import type { DeployEnv, DeployInput } from "../deploy/run.js";
import type { Io, OptionSpec } from "./command.js";
import { CONFIG_OPTIONS, overridesFrom } from "./options.js";
import { readSecretFlag, secretFlags } from "./secret.js";

export const REMOTE_OPTIONS: Record<string, OptionSpec> = {
  ...CONFIG_OPTIONS,
  ...secretFlags("ssh-key", "SSH private key (never the key itself in argv)"),
  ...secretFlags("password", "registry password/token the host logs in with (username: image/username)"),
};

export const LOCK_OPTIONS: Record<string, OptionSpec> = {
  "lock-wait": { type: "string", help: "seconds to wait for another deploy's lock (default 0: fail fast)", valueName: "SECONDS" },
  "break-lock": { type: "boolean", help: "remove a stale lock first (says whose it was)" },
};

function intFlag(values: Record<string, unknown>, flag: string): number | undefined {
  const v = values[flag] as string | undefined;
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim())) throw new ConfigError(`--${flag}: \`${v}\` is not a whole number of seconds`);
  return Number(v);
}

function composeSource(configPath: string | undefined, composeFile: string | undefined, services: Record<string, unknown> | undefined): ComposeSource {
  if (composeFile) {
    const path = resolve(configPath ? dirname(configPath) : ".", composeFile);
    try {
      return { template: readFileSync(path, "utf8"), templateName: composeFile };
    } catch (e) {
      throw new ConfigError(`deploy/composeFile: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e}) — it is relative to the config file`);
    }
  }
  return services ? { services } : {};
}

export function remoteDoor(values: Record<string, unknown>, io: Io, signal?: AbortSignal): { input: DeployInput; env: DeployEnv } {
  const { config, path } = loadConfig(values.config as string | undefined, overridesFrom(values));
  const configName = path ?? "pipeline.yaml";
  const image = requireImage(config, configName);
  const deploy = requireDeploy(config, configName);
  const privateKey = readSecretFlag(values, "ssh-key", io);
  if (!privateKey) throw new ConfigError("--ssh-key-file or --ssh-key-env: required — the private key whose public key is in the host's authorized_keys");
  checkPrivateKey(`${privateKey}\n`, values["ssh-key-file"] ? "--ssh-key-file" : "--ssh-key-env");
  const password = readSecretFlag(values, "password", io);
  if (password && !config.image.username) {
    throw new ConfigError(`image/username: required with --password-env/--password-file (set it in ${configName} or pass --username)`);
  }
  const input: DeployInput = {
    image,
    deploy,
    compose: composeSource(path, deploy.composeFile, deploy.services),
    holder: `${userInfo().username}@${hostname()} (hamalog CLI, pid ${process.pid})`,
    ...(password && config.image.username ? { credentials: { username: config.image.username, password } } : {}),
    ...(values["break-lock"] ? { breakLock: true } : {}),
    ...(signal ? { signal } : {}),
  };
  const wait = intFlag(values, "lock-wait");
  if (wait !== undefined) input.lockWaitSeconds = wait;
  const env: DeployEnv = liveEnv(deploy, { sshKey: privateKey, ...(password ? { registryToken: password } : {}) }, { out: (l) => io.out(l), warn: (l) => io.err(l) });
  return { input, env };
}

/** Abort on SIGINT/SIGTERM so the core releases the lock before the process ends. */
export async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await fn(ac.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
