// The one way both doors (CLI and Dagger) assemble the deploy core's environment: the real SSH transport, the
// real registry client, the process clock, and the secrets to redact. Reading files stays with each door.
import { performance } from "node:perf_hooks";
import type { ComposeSource } from "../compose.js";
import type { DeployConfig } from "../config.js";
import { verifyManifest } from "../registry/verify.js";
import { connectSsh } from "../ssh.js";
import type { Output } from "./report.js";
import type { DeployEnv } from "./run.js";

export function liveEnv(d: DeployConfig, secrets: { sshKey: string; registryToken?: string }, output: Output): DeployEnv {
  const key = secrets.sshKey.endsWith("\n") ? secrets.sshKey : `${secrets.sshKey}\n`;
  return {
    connect: () =>
      connectSsh({ host: d.host, port: d.port, user: d.user, privateKey: key, ...(d.hostKey ? { hostKey: d.hostKey } : {}) }, (l) => output.warn(l)),
    verify: (req) => verifyManifest(req),
    output,
    clock: { now: () => new Date(), monotonic: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
    secrets: [secrets.sshKey.trim(), ...(secrets.registryToken ? [secrets.registryToken] : [])],
  };
}

/** The compose source of a deploy config: the template read through `read` (a path relative to the config), or inline services. */
export async function composeSourceOf(d: DeployConfig, read: (path: string) => Promise<string>): Promise<ComposeSource> {
  if (d.composeFile) return { template: await read(d.composeFile), templateName: d.composeFile };
  return d.services ? { services: d.services } : {};
}
