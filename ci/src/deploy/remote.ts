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
  stdin?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface HttpResult {
  status: number;
  body: string;
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
  close(): void;
}
