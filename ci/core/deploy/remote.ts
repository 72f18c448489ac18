// What the deploy core needs from a host: run an argv (quoted by shell.ts), feed it stdin, and make an HTTP
// request from the host's side. ssh.ts implements it over one SSH connection; the core never sees ssh2.

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /**
   * Bytes written to the command's stdin (secrets go here, never in argv). Without it the command's stdin is
   * /dev/null, and the command is stopped (TERM) when the connection drops, the run times out or is aborted.
   */
  stdin?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface HttpResult {
  status: number;
  body: string;
}

/** A command whose stdin stays open: the caller feeds it lines and ends it (the lock's heartbeat). */
export interface RemoteProcess {
  write(data: string): void;
  /** End its stdin (it then ends). */
  end(): void;
  /** Settles when it has ended (never rejects). */
  readonly done: Promise<ExecResult>;
}

export interface Remote {
  /** `user@host:port`, for messages. */
  readonly label: string;
  /** The host key fingerprint seen on connect (`SHA256:…`). */
  readonly hostKeyFingerprint: string;
  /** Run argv on the host; resolves with its exit code (non-zero is not an error here). */
  run(argv: readonly string[], opts?: RunOptions): Promise<ExecResult>;
  /** GET `url` as seen from the host (tunnelled through the connection). Rejects on connection errors. */
  httpGet(url: string, timeoutMs: number): Promise<HttpResult>;
  /**
   * Open a forwarded channel to host:port and close it at once, sending nothing (the app sees a bare connect):
   * rejects with `reason` 1 when sshd forbids forwarding. Optional: stand-ins without tunnels leave it out.
   */
  probeTunnel?(host: string, port: number, timeoutMs: number): Promise<void>;

  /**
   * Start argv with its stdin kept open for `write`; when the connection drops its stdin ends on the host. Hosts
   * without it get no heartbeat: their lock is then judged by the lease alone.
   */
  spawn?(argv: readonly string[]): RemoteProcess;
  close(): void;
}
