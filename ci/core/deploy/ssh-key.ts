// The SSH key checks both doors need before connecting: a private key that parses (and is not the public half),
// the OpenSSH-style fingerprint a pin is compared with, and the error that stops an unpinned deploy.
import { createHash } from "node:crypto";
import ssh2 from "ssh2";
import { ConfigError } from "../errors.js";

/** `SHA256:` + unpadded base64 of the key blob's sha256, exactly like OpenSSH prints it. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** Reject an unparsable key up front with a message that never contains the key. */
export function checkPrivateKey(key: string, source: string): void {
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) {
    throw new ConfigError(
      `${source}: not a usable SSH private key (${parsed.message.replace(/\s+/g, " ").slice(0, 120)}) — give an unencrypted OpenSSH or PEM private key`,
    );
  }
  // A public key parses too (an `id_ed25519.pub` given by mistake); ssh2 would fail later with its raw text.
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (first && !first.isPrivateKey()) {
    throw new ConfigError(
      `${source}: this is a public key (${first.type}); give the private key — the file without .pub (e.g. ~/.ssh/id_ed25519), whose public half is in the host's authorized_keys`,
    );
  }
}

/** Why a deploy without a pinned host key stops before it connects, and how to get the pin. */
export function unpinnedError(host: string, port: number): ConfigError {
  return new ConfigError(
    `deploy/hostKey: required — no host key is pinned for ${host}, so nothing is sent to it (the host receives the registry token). ` +
      `Print its fingerprint with \`npx hamalog host-key --host ${host}${port === 22 ? "" : ` --port ${port}`}\` ` +
      "(or `dagger call host-key`), check it on the host's console with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`, " +
      "then set deploy/hostKey or pass --host-key. For a throwaway host only: --insecure-accept-host-key",
  );
}
