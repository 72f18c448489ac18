// The SSH transport: ONE connection per deploy, reused by every phase (no per-command handshakes). The private
// key comes in as a string (Dagger Secret / --ssh-key-file / --ssh-key-env), the host key is pinned by its
// SHA256 fingerprint, and HTTP health checks are tunnelled through the same connection so they run "from the host".
import { request, type ClientRequest } from "node:http";
import type { Duplex } from "node:stream";
import ssh2, { type Client, type ClientChannel } from "ssh2";
import { ConfigError, ConnectionLost, PipelineError } from "../errors.js";
import { Faults } from "./ssh-faults.js";
import { fingerprintOf, unpinnedError } from "./ssh-key.js";
import { tied } from "./tied.js";
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
