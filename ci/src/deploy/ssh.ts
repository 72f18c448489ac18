// The SSH transport: ONE connection per deploy, reused by every phase (no per-command handshakes). The private
// key comes in as a string (Dagger Secret / --ssh-key-file / --ssh-key-env), the host key is pinned by its
// SHA256 fingerprint, and HTTP health checks are tunnelled through the same connection so they run "from the host".
import { createHash } from "node:crypto";
import { request, type ClientRequest } from "node:http";
import type { Duplex } from "node:stream";
import ssh2, { type Client, type ClientChannel } from "ssh2";
import { ConfigError, ConnectionLost, PipelineError } from "../errors.js";
import { shellCommand } from "./shell.js";
import type { ExecResult, HttpResult, Remote, RemoteProcess, RunOptions } from "./remote.js";

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** The private key text (OpenSSH or PEM). Never logged. */
  privateKey: string;
  /** Pinned host key fingerprint, `SHA256:…` as `ssh-keygen -lf` prints it. Without it nothing is sent. */
  hostKey?: string;
  /** Accept whatever key the host presents (--insecure-accept-host-key): never the default. */
  insecureAcceptHostKey?: boolean;
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
  // A public key parses too (an `id_ed25519.pub` given by mistake); ssh2 would fail later with its raw text.
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (first && !first.isPrivateKey()) {
    throw new ConfigError(
      `${source}: this is a public key (${first.type}); give the private key — the file without .pub (e.g. ~/.ssh/id_ed25519), whose public half is in the host's authorized_keys`,
    );
  }
}

/**
 * Connect and authenticate. With `hostKey` set, any other host key is refused naming both fingerprints, before
 * the client authenticates or sends anything else. Without a pin the connection is refused too, unless
 * `insecureAcceptHostKey` says otherwise: then `warn` gets the fingerprint seen and how to pin it.
 */
export async function connectSsh(t: SshTarget, warn: (line: string) => void): Promise<Remote> {
  const label = `${t.user}@${t.host}:${t.port}`;
  if (!t.hostKey && !t.insecureAcceptHostKey) throw unpinnedError(t.host, t.port);
  let seen = "";
  let ready = false;
  const faults = new Faults();
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once("ready", () => {
      ready = true;
      resolve();
    });
    // One permanent listener: an `error` event with no listener is an uncaught exception that would kill the
    // process with the lock held. Before `ready` it fails the connect; after it, the command in flight.
    // A connection cut from the other side (sshd's session killed, the host rebooted) often ends with `close`
    // and no `error`: it is a fault all the same for whatever is in flight.
    client.on("close", () => {
      if (ready && !faults.closing)
        faults.report(Object.assign(new Error("connection closed"), { code: "ECONNRESET" }));
    });
    client.on("error", (err: Error & { level?: string; code?: string }) => {
      if (ready) return faults.report(err);
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
        return t.hostKey ? seen === t.hostKey : t.insecureAcceptHostKey === true;
      },
    });
    // Nagle's algorithm (on by default in ssh2) holds each small channel request until the server's delayed ACK:
    // ~45 ms per remote command on an idle connection. Every message here is latency-bound, none bulk. (The socket
    // exists once connect() returns; Node applies the option when it connects.)
    client.setNoDelay(true);
  });
  if (!t.hostKey) {
    warn(
      `WARNING: --insecure-accept-host-key: ${label} host key ${seen} was accepted without a pin; anyone able to intercept this connection could pose as the host and receive the registry token. ` +
        `Pin it: set deploy/hostKey: ${seen} (or pass --host-key ${seen}) after checking it on the server with ` +
        "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`",
    );
  }
  return new SshRemote(client, label, seen, faults);
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

/** Errors the client reports after `ready` (a reset connection, a keepalive timeout): they fail what is in flight and everything after. */
class Faults {
  error: Error | undefined;
  /** We closed the connection ourselves: its `close` is no fault. */
  closing = false;
  private readonly watchers = new Set<(e: Error) => void>();

  report(e: Error): void {
    this.error ??= e;
    for (const w of [...this.watchers]) w(e);
  }

  /** Call `fn` on the next fault (callers check `error` first); returns the unwatch function. */
  watch(fn: (e: Error) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }
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
    private readonly faults: Faults,
  ) {}

  private lost(what: string, e: Error & { code?: string }): ConnectionLost {
    return new ConnectionLost(
      `the SSH connection to ${this.label} failed while ${what} (${e.code ?? e.message}) — what it did on the host is unknown; ` +
        "check the network to the host, then look with `hamalog status`",
    );
  }

  run(argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
    const command = shellCommand(opts.stdin === undefined ? tied(argv) : argv);
    // A phase script (`sh -c SCRIPT NAME …`) is named by its $0, not by its text.
    const what = `running \`${(argv[0] === "sh" && argv[1] === "-c" && argv[3] ? [argv[3]] : argv.slice(0, 3)).join(" ")}\``;
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new PipelineError("interrupted"));
      if (this.faults.error) return reject(this.lost(what, this.faults.error));
      let stream: ClientChannel | undefined;
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        unwatch();
        fn();
      };
      const onAbort = () => {
        closeQuietly(stream);
        finish(() => reject(new PipelineError(`interrupted while ${what} on ${this.label}`)));
      };
      const unwatch = this.faults.watch((e) => finish(() => reject(this.lost(what, e))));
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      let stdout = "";
      let stderr = "";
      let code = -1;
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          closeQuietly(stream);
          finish(() => resolve({ code: 124, stdout, stderr: `${stderr}\n(timed out after ${opts.timeoutMs} ms)` }));
        }, opts.timeoutMs);
      }
      try {
        this.client.exec(command, (err, s) => {
          if (done) return closeQuietly(s);
          if (err)
            return finish(() =>
              reject(new PipelineError(`cannot run \`${argv[0]}\` on ${this.label}: ${err.message}`)),
            );
          stream = s;
          s.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
          s.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
          s.on("exit", (c: number | null) => (code = c ?? -1));
          // A channel that closes without an exit status lost its connection; the fault may be reported a tick
          // later than the close.
          s.on("close", () =>
            code === -1 && !opts.signal?.aborted
              ? setImmediate(() =>
                  finish(() =>
                    this.faults.error ? reject(this.lost(what, this.faults.error)) : resolve({ code, stdout, stderr }),
                  ),
                )
              : finish(() => resolve({ code, stdout, stderr })),
          );
          // A command given no stdin runs under TIED (its stdin stays open until it ends): closing the channel is then
          // what stops it.
          if (opts.stdin !== undefined) s.end(opts.stdin);
        });
      } catch (e) {
        finish(() => reject(this.lost(what, e as Error)));
      }
    });
  }

  /**
   * GET through a channel forwarded from the host. The deadline is our own timer over the whole exchange (opening
   * the channel, headers, body): http.request's `timeout` relies on socket.setTimeout, which an ssh2 channel does
   * not have, so an app that accepts and never answers would hang the health phase with the lock held.
   */
  httpGet(url: string, timeoutMs: number): Promise<HttpResult> {
    const u = new URL(url);
    if (u.protocol !== "http:") {
      return Promise.reject(
        new ConfigError(`deploy/health/url: ${url}: only http:// is checked through the SSH tunnel`),
      );
    }
    const port = Number(u.port || 80);
    const host = u.hostname.replace(/^\[|\]$/g, "");
    return new Promise((resolve, reject) => {
      if (this.faults.error) return reject(this.lost(`requesting ${url}`, this.faults.error));
      let channel: ClientChannel | undefined;
      let req: ClientRequest | undefined;
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unwatch();
        fn();
      };
      const timer = setTimeout(() => {
        finish(() => reject(new Error(`no answer within ${timeoutMs} ms`)));
        req?.destroy();
        closeQuietly(channel);
      }, timeoutMs);
      const unwatch = this.faults.watch((e) => finish(() => reject(this.lost(`requesting ${url}`, e))));
      try {
        this.client.forwardOut("127.0.0.1", 0, host, port, (err, ch) => {
          if (done) return closeQuietly(ch);
          if (err)
            return finish(() => reject(new Error(`cannot reach ${host}:${port} from the host (${err.message})`)));
          channel = ch;
          req = request(
            {
              method: "GET",
              host,
              port,
              path: `${u.pathname}${u.search}`,
              headers: { Host: u.host, Connection: "close" },
              createConnection: () => ch as unknown as Duplex as never,
            },
            (res) => {
              let body = "";
              res.setEncoding("utf8");
              res.on("data", (d: string) => (body.length < 65536 ? (body += d) : undefined));
              res.on("end", () => finish(() => resolve({ status: res.statusCode ?? 0, body })));
              res.on("error", (e) => finish(() => reject(e)));
            },
          );
          req.on("error", (e) => {
            closeQuietly(ch);
            finish(() => reject(e));
          });
          req.end();
        });
      } catch (e) {
        finish(() => reject(this.lost(`requesting ${url}`, e as Error)));
      }
    });
  }

  probeTunnel(host: string, port: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.faults.error) return reject(this.lost(`opening a tunnel to ${host}:${port}`, this.faults.error));
      const timer = setTimeout(() => resolve(), timeoutMs); // no answer at all: not a refusal, the gate judges later
      try {
        this.client.forwardOut("127.0.0.1", 0, host, port, (err, ch) => {
          clearTimeout(timer);
          if (ch) closeQuietly(ch);
          // `reason` 1 is SSH_OPEN_ADMINISTRATIVELY_PROHIBITED: sshd forbids forwarding (AllowTcpForwarding no).
          if (err) reject(Object.assign(new Error(err.message), { reason: (err as { reason?: unknown }).reason }));
          else resolve();
        });
      } catch (e) {
        clearTimeout(timer);
        reject(this.lost(`opening a tunnel to ${host}:${port}`, e as Error));
      }
    });
  }

  /**
   * Run argv with its stdin open to us (not under TIED: its stdin is the channel, so it sees EOF when we end it,
   * and when the connection drops). Writes after it ended are dropped.
   */
  spawn(argv: readonly string[]): RemoteProcess {
    let stream: ClientChannel | undefined;
    let ended = false;
    const pending: string[] = [];
    let stdout = "";
    let stderr = "";
    let code = -1;
    const done = new Promise<ExecResult>((resolve) => {
      const finish = () => resolve({ code, stdout, stderr });
      if (this.faults.error) return finish();
      const unwatch = this.faults.watch(() => {
        unwatch();
        finish();
      });
      try {
        this.client.exec(shellCommand(argv), (err, s) => {
          if (err) return finish();
          stream = s;
          s.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
          s.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
          s.on("exit", (c: number | null) => (code = c ?? -1));
          s.on("close", () => {
            unwatch();
            stream = undefined;
            ended = true;
            finish();
          });
          if (ended) return void s.end();
          for (const p of pending.splice(0)) s.write(p);
        });
      } catch {
        finish();
      }
    });
    return {
      write: (data) => {
        if (ended) return;
        if (stream) stream.write(data);
        else pending.push(data);
      },
      end: () => {
        if (ended) return;
        ended = true;
        try {
          stream?.end();
        } catch {
          // the channel is already gone
        }
      },
      done,
    };
  }

  close(): void {
    this.faults.closing = true;
    this.client.end();
  }
}

/** Close a channel that may already be closed or belong to a dead connection. */
function closeQuietly(ch: ClientChannel | undefined): void {
  try {
    ch?.close();
  } catch {
    // already closed
  }
}
