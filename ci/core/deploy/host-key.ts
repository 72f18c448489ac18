// The host key to pin, read the way `ssh-keyscan -p PORT HOST | ssh-keygen -lf -` shows it: `BITS SHA256:… HOST
// (TYPE)`. The connection stops right after the key exchange (the key is refused on purpose): no user name is
// authenticated and nothing else is sent. The key is the one the deploy's own SSH client negotiates, so it is
// exactly the one deploy/hostKey is compared with. It still has to be checked on the host's console: a scan
// over the network trusts the network.
import ssh2 from "ssh2";
import { PipelineError } from "../errors.js";
import { fingerprintOf } from "./ssh-key.js";

export interface HostKey {
  /** `SHA256:…`, unpadded, as deploy/hostKey takes it. */
  fingerprint: string;
  /** `ED25519`, `ECDSA`, `RSA`, … as ssh-keygen names them. */
  type: string;
  bits: number;
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, … */
  algorithm: string;
}

/** Read an SSH wire-format string (uint32 length + bytes) at `at`. */
function wireString(blob: Buffer, at: number): { value: Buffer; next: number } {
  const len = blob.readUInt32BE(at);
  return { value: blob.subarray(at + 4, at + 4 + len), next: at + 4 + len };
}

/** Type and size of a public key blob, as ssh-keygen -l prints them. */
export function describeHostKey(blob: Buffer): HostKey {
  const fingerprint = fingerprintOf(blob);
  const { value, next } = wireString(blob, 0);
  const algorithm = value.toString("latin1");
  if (algorithm === "ssh-ed25519") return { fingerprint, algorithm, type: "ED25519", bits: 256 };
  if (algorithm.startsWith("ecdsa-sha2-nistp")) {
    return { fingerprint, algorithm, type: "ECDSA", bits: Number(algorithm.slice("ecdsa-sha2-nistp".length)) };
  }
  if (algorithm === "ssh-rsa") {
    const n = wireString(blob, wireString(blob, next).next).value;
    let i = 0;
    while (i < n.length && n[i] === 0) i++;
    const bits = i < n.length ? (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]!)) : 0;
    return { fingerprint, algorithm, type: "RSA", bits };
  }
  return { fingerprint, algorithm, type: algorithm.toUpperCase(), bits: 0 };
}

/** `[host]:port` for a non-default port, as ssh-keyscan writes it. */
export function keyscanHost(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The line `ssh-keygen -lf -` prints for this key. */
export function keygenLine(k: HostKey, host: string, port: number): string {
  return `${k.bits} ${k.fingerprint} ${keyscanHost(host, port)} (${k.type})`;
}

/** Connect far enough to see the host key, then hang up. */
export function scanHostKey(host: string, port: number, timeoutMs = 15_000): Promise<HostKey> {
  return new Promise((resolve, reject) => {
    let key: HostKey | undefined;
    const client = new ssh2.Client();
    client.on("error", (err: Error & { code?: string }) => {
      client.end();
      if (key) return resolve(key);
      reject(
        new PipelineError(
          `cannot read the host key of ${keyscanHost(host, port)} (${err.code ?? err.message}) — check the host name and port, and that sshd runs there`,
          "connect",
        ),
      );
    });
    client.on("ready", () => {
      // Unreachable: the verifier refuses every key. Hang up all the same.
      client.end();
      if (key) resolve(key);
    });
    client.connect({
      host,
      port,
      username: "hamalog-host-key",
      readyTimeout: timeoutMs,
      hostVerifier: (blob: Buffer) => {
        key = describeHostKey(blob);
        return false;
      },
    });
  });
}
