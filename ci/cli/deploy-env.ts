// What `deploy`, `rollback` and `status` share on the CLI: their flags (config overrides, the SSH key and the
// registry token by indirection, lock handling), reading what they point at (config, template, secrets), and
// handing that to deploy/door.ts. The only place the CLI reads the compose template from disk.
import { readFileSync, realpathSync, statSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { dirname, resolve, sep } from "node:path";
import { loadConfig } from "../core/config-file.js";
import { ConfigError } from "../core/errors.js";
import { openDoor, remoteTarget } from "../core/deploy/door.js";
import { parseDotenv, pickSecrets } from "../core/deploy/env.js";
import type { DeployEnv, DeployInput } from "../core/deploy/session.js";
import type { Io, OptionSpec } from "./command.js";
import { CONFIG_OPTIONS, overridesFrom } from "./options.js";
import { readSecretFlag, secretFlags } from "./secret.js";

export const REMOTE_OPTIONS: Record<string, OptionSpec> = {
  ...CONFIG_OPTIONS,
  ...secretFlags("ssh-key", "SSH private key (never the key itself in argv)"),
  ...secretFlags("password", "registry token the host pulls with (read-only is enough; username: image/username)"),
  "insecure-accept-host-key": {
    type: "boolean",
    help: "connect without a pinned deploy/hostKey, accepting whatever key the host shows (never for production)",
  },
  "env-file": {
    type: "string",
    help: "dotenv file with the values of deploy/secrets (default: this process's environment)",
    valueName: "FILE",
  },
};

export const CHANGE_OPTIONS: Record<string, OptionSpec> = {
  force: { type: "boolean", help: "replace the live release even when it is this one and healthy" },
  "recreate-accessory": {
    type: "string",
    multiple: true,
    help: "apply a changed definition of this accessory (recreates it; repeatable); others are reported and left running",
    valueName: "SERVICE",
  },
};

export const LOCK_OPTIONS: Record<string, OptionSpec> = {
  "lock-wait": {
    type: "string",
    help: "seconds to wait for another deploy's lock (default 0: fail fast)",
    valueName: "SECONDS",
  },
  "break-lock": {
    type: "boolean",
    help: "take the lock even from a live holder (says whose it was; that run is fenced and changes nothing more) — a dead or silent holder's lock is taken over without it",
  },
};

const MAX_TEMPLATE_BYTES = 1024 * 1024;

function intFlag(values: Record<string, unknown>, flag: string): number | undefined {
  const v = values[flag] as string | undefined;
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim())) throw new ConfigError(`--${flag}: \`${v}\` is not a whole number of seconds`);
  return Number(v);
}

/**
 * deploy/composeFile's text, relative to the config file (or the working directory without one), and confined
 * there: the schema refuses absolute paths and `..`; a symlink that leads out of that directory is refused here.
 */
function readTemplate(configPath: string | undefined, composeFile: string, field = "deploy/composeFile"): string {
  const base = resolve(configPath ? dirname(configPath) : ".");
  const path = resolve(base, composeFile);
  try {
    const real = realpathSync(path);
    const root = realpathSync(base);
    if (real !== root && !real.startsWith(`${root}${sep}`)) {
      throw new ConfigError(`${field}: ${composeFile} leads out of ${root} (to ${real}) — keep it beside the config`);
    }
    if (statSync(real).size > MAX_TEMPLATE_BYTES) {
      throw new ConfigError(`${field}: ${path} is larger than 1 MiB — is this the right file?`);
    }
    return readFileSync(real, "utf8");
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(
      `${field}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e}) — it is relative to the config file`,
    );
  }
}

export function remoteDoor(
  values: Record<string, unknown>,
  io: Io,
  signal?: AbortSignal,
  /** Whether the command places a release (deploy, rollback): only then is the app's environment read. */
  places = true,
): { input: DeployInput; env: DeployEnv } {
  const { config, path } = loadConfig(values.config as string | undefined, overridesFrom(values));
  const target = remoteTarget(config, path ?? "pipeline.yaml");
  const sshKey = readSecretFlag(values, "ssh-key", io);
  const registryToken = readSecretFlag(values, "password", io);
  const envFile = values["env-file"] as string | undefined;
  const door = openDoor(
    target,
    {
      readTemplate: (file) =>
        readTemplate(path, file, file === target.deploy.composeFile ? "deploy/composeFile" : "deploy/files"),
      sshKey,
      sshKeyFrom: values["ssh-key-env"]
        ? "--ssh-key-env"
        : values["ssh-key-file"]
          ? "--ssh-key-file"
          : "--ssh-key-file or --ssh-key-env",
      secrets: !places
        ? undefined
        : (names: readonly string[]) =>
            envFile !== undefined
              ? pickSecrets(names, readDotenv(envFile), `--env-file ${envFile}`, `add NAME=value lines to ${envFile}`)
              : pickSecrets(
                  names,
                  io.env,
                  "this process's environment",
                  "export them (in CI: from the environment's secrets) or pass --env-file FILE",
                ),
      ...(registryToken ? { registryToken } : {}),
      tokenFlag: "--password-env/--password-file",
      usernameFlag: "--username",
      ...(values["insecure-accept-host-key"] ? { insecureAcceptHostKey: true } : {}),
    },
    { out: (l) => io.out(l), warn: (l) => io.err(l) },
  );
  const wait = intFlag(values, "lock-wait");
  const input: DeployInput = {
    ...door.input,
    holder: `${userInfo().username}@${hostname()} (hamalog CLI, pid ${process.pid})`,
    ...(values["break-lock"] ? { breakLock: true } : {}),
    ...(values.force ? { force: true } : {}),
    ...(values["recreate-accessory"] ? { recreateAccessories: values["recreate-accessory"] as string[] } : {}),
    ...(wait !== undefined ? { lockWaitSeconds: wait } : {}),
    ...(signal ? { signal } : {}),
  };
  return { input, env: door.env };
}

/** A dotenv file of secret values: never larger than a config, errors name the file, never a value. */
function readDotenv(file: string): Record<string, string> {
  let text: string;
  try {
    if (statSync(file).size > 1024 * 1024) throw new ConfigError(`--env-file: ${file} is larger than 1 MiB`);
    text = readFileSync(file, "utf8");
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`--env-file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
  return parseDotenv(text, `--env-file ${file}`);
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
