// The SSH transport: ONE connection per deploy, reused by every phase (no per-command handshakes). The private
// key comes in as a string (Dagger Secret / --ssh-key-file / --ssh-key-env), the host key is pinned by its
// SHA256 fingerprint, and HTTP health checks are tunnelled through the same connection so they run "from the host".
import { createHash } from "node:crypto";
import { request } from "node:http";
import type { Duplex } from "node:stream";
import ssh2, { type Client } from "ssh2";
import { ConfigError, PipelineError } from "./errors.js";
import { shellCommand } from "./shell.js";
import type { ExecResult, HttpResult, Remote, RunOptions } from "./deploy/remote.js";

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** The private key text (OpenSSH or PEM). Never logged. */
  privateKey: string;
  /** Pinned host key fingerprint, `SHA256:…` as `ssh-keygen -lf` prints it. */
  hostKey?: string;
  readyTimeoutMs?: number;
}

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
}

/**
 * Connect and authenticate. With `hostKey` set, any other host key is refused naming both fingerprints; without
 * it, `warn` gets the fingerprint seen and how to pin it.
 */
export async function connectSsh(t: SshTarget, warn: (line: string) => void): Promise<Remote> {
  const label = `${t.user}@${t.host}:${t.port}`;
  let seen = "";
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once("ready", () => resolve());
    client.once("error", (err: Error & { level?: string; code?: string }) => {
      if (t.hostKey && seen && seen !== t.hostKey) {
        reject(
          new PipelineError(
            `refused to connect to ${label}: its host key is ${seen}, but ${t.hostKey} is pinned (deploy/hostKey). ` +
              "Either the host was reinstalled or someone is in the middle; check the server's key with " +
              "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the console before changing the pin",
            "connect",
          ),
        );
        return;
      }
      const why = err.code ?? err.message;
      const next =
        err.level === "client-authentication"
          ? `the key was rejected: add its public key to ~${t.user}/.ssh/authorized_keys on ${t.host}`
          : "check deploy/host and deploy/port, and that sshd runs there";
      reject(new PipelineError(`cannot connect to ${label} over SSH (${why}) — ${next}`, "connect"));
    });
    client.connect({
      host: t.host,
      port: t.port,
      username: t.user,
      privateKey: t.privateKey,
      readyTimeout: t.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      hostVerifier: (key: Buffer) => {
        seen = fingerprintOf(key);
        return !t.hostKey || seen === t.hostKey;
      },
    });
  });
  if (!t.hostKey) {
    warn(
      `WARNING: ${label} host key ${seen} is NOT pinned; anyone able to intercept this connection could pose as the host. ` +
        `Pin it: set deploy/hostKey: ${seen} (or pass --host-key ${seen}) after checking it on the server with ` +
        "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`",
    );
  }
  return new SshRemote(client, label, seen);
}

/**
 * Closing an SSH channel does not stop its command: without a pty sshd sends no SIGHUP, so an interrupted or
 * timed-out `docker compose up --wait` would go on and race the rollback's own `up`. (The SSH `signal` request
 * is no way out: OpenSSH refuses it in some setups — "session signalling requires privilege separation".) So a
 * command that needs no stdin runs with stdin from /dev/null, beside a watcher reading the channel's stdin,
 * which the client never ends: that read ends only when the channel closes, and then the watcher TERMs the
 * session's process group (sshd makes one per session: the command and all it started, e.g. the compose
 * plugin). When the command ends first, the watcher is killed and the command's exit code is passed on. The
 * script is a constant; the command arrives as "$@", quoted like every argv.
 */
export const TIED =
  'exec 3<&0; "$@" </dev/null 3<&- & cmd=$!; (cat <&3 >/dev/null 2>&1; kill -TERM 0) >/dev/null 2>&1 & watcher=$!; ' +
  'exec 3<&-; wait "$cmd"; code=$?; kill "$watcher" 2>/dev/null; exit "$code"';

export function tied(argv: readonly string[]): string[] {
  return ["sh", "-c", TIED, "hamalog-run", ...argv];
}

class SshRemote implements Remote {
  constructor(
    private readonly client: Client,
    readonly label: string,
    readonly hostKeyFingerprint: string,
  ) {}

  run(argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
    const command = shellCommand(opts.stdin === undefined ? tied(argv) : argv);
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new PipelineError("interrupted"));
      this.client.exec(command, (err, stream) => {
        if (err) return reject(new PipelineError(`cannot run \`${argv[0]}\` on ${this.label}: ${err.message}`));
        let stdout = "";
        let stderr = "";
        let code = -1;
        let done = false;
        const finish = (fn: () => void) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          opts.signal?.removeEventListener("abort", onAbort);
          fn();
        };
        const onAbort = () => {
          stream.close();
          finish(() => reject(new PipelineError(`interrupted while running \`${argv.slice(0, 3).join(" ")}\` on ${this.label}`)));
        };
        const timer = opts.timeoutMs
          ? setTimeout(() => {
              stream.close();
              finish(() => resolve({ code: 124, stdout, stderr: `${stderr}\n(timed out after ${opts.timeoutMs} ms)` }));
            }, opts.timeoutMs)
          : undefined;
        opts.signal?.addEventListener("abort", onAbort, { once: true });
        stream.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
        stream.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
        stream.on("exit", (c: number | null) => (code = c ?? -1));
        stream.on("close", () => finish(() => resolve({ code, stdout, stderr })));
        // A command given no stdin runs under TIED (its stdin stays open until it ends): closing the channel is then
        // what stops it.
        if (opts.stdin !== undefined) stream.end(opts.stdin);
      });
    });
  }

  httpGet(url: string, timeoutMs: number): Promise<HttpResult> {
    const u = new URL(url);
    if (u.protocol !== "http:") {
      return Promise.reject(new ConfigError(`deploy/health/url: ${url}: only http:// is checked through the SSH tunnel`));
    }
    const port = Number(u.port || 80);
    const host = u.hostname.replace(/^\[|\]$/g, "");
    return new Promise((resolve, reject) => {
      this.client.forwardOut("127.0.0.1", 0, host, port, (err, channel) => {
        if (err) return reject(new Error(`cannot reach ${host}:${port} from the host (${err.message})`));
        const req = request(
          {
            method: "GET",
            host,
            port,
            path: `${u.pathname}${u.search}`,
            headers: { Host: u.host, Connection: "close" },
            createConnection: () => channel as unknown as Duplex as never,
            timeout: timeoutMs,
          },
          (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => (body.length < 65536 ? (body += d) : undefined));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
            res.on("error", reject);
          },
        );
        req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on("error", (e) => {
          channel.close();
          reject(e);
        });
        req.end();
      });
    });
  }

  close(): void {
    this.client.end();
  }
}
