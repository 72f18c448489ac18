// What `deploy`, `rollback` and `status` share on the CLI: their flags (config overrides, the SSH key and the
// registry token by indirection, lock handling), reading what they point at (config, template, secrets), and
// handing that to deploy/door.ts. The only place the CLI reads the compose template from disk.
import { readFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { dirname, resolve } from "node:path";
import { loadConfig } from "../config-file.js";
import { ConfigError } from "../errors.js";
import { openDoor, remoteTarget } from "../deploy/door.js";
import type { DeployEnv, DeployInput } from "../deploy/session.js";
import type { Io, OptionSpec } from "./command.js";
import { CONFIG_OPTIONS, overridesFrom } from "./options.js";
import { readSecretFlag, secretFlags } from "./secret.js";

export const REMOTE_OPTIONS: Record<string, OptionSpec> = {
  ...CONFIG_OPTIONS,
  ...secretFlags("ssh-key", "SSH private key (never the key itself in argv)"),
  ...secretFlags("password", "registry password/token the host logs in with (username: image/username)"),
};

export const LOCK_OPTIONS: Record<string, OptionSpec> = {
  "lock-wait": {
    type: "string",
    help: "seconds to wait for another deploy's lock (default 0: fail fast)",
    valueName: "SECONDS",
  },
  "break-lock": { type: "boolean", help: "remove a stale lock first (says whose it was)" },
};

function intFlag(values: Record<string, unknown>, flag: string): number | undefined {
  const v = values[flag] as string | undefined;
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim())) throw new ConfigError(`--${flag}: \`${v}\` is not a whole number of seconds`);
  return Number(v);
}

/** deploy/composeFile's text, relative to the config file (or the working directory without one). */
function readTemplate(configPath: string | undefined, composeFile: string): string {
  const path = resolve(configPath ? dirname(configPath) : ".", composeFile);
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(
      `deploy/composeFile: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e}) — it is relative to the config file`,
    );
  }
}

export function remoteDoor(
  values: Record<string, unknown>,
  io: Io,
  signal?: AbortSignal,
): { input: DeployInput; env: DeployEnv } {
  const { config, path } = loadConfig(values.config as string | undefined, overridesFrom(values));
  const target = remoteTarget(config, path ?? "pipeline.yaml");
  const sshKey = readSecretFlag(values, "ssh-key", io);
  if (!sshKey)
    throw new ConfigError(
      "--ssh-key-file or --ssh-key-env: required — the private key whose public key is in the host's authorized_keys",
    );
  const registryToken = readSecretFlag(values, "password", io);
  const door = openDoor(
    target,
    {
      readTemplate: (file) => readTemplate(path, file),
      sshKey,
      sshKeyFrom: values["ssh-key-file"] ? "--ssh-key-file" : "--ssh-key-env",
      ...(registryToken ? { registryToken } : {}),
      tokenFlag: "--password-env/--password-file",
      usernameFlag: "--username",
    },
    { out: (l) => io.out(l), warn: (l) => io.err(l) },
  );
  const wait = intFlag(values, "lock-wait");
  const input: DeployInput = {
    ...door.input,
    holder: `${userInfo().username}@${hostname()} (hamalog CLI, pid ${process.pid})`,
    ...(values["break-lock"] ? { breakLock: true } : {}),
    ...(wait !== undefined ? { lockWaitSeconds: wait } : {}),
    ...(signal ? { signal } : {}),
  };
  return { input, env: door.env };
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
