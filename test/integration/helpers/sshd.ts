// A real OpenSSH server on 127.0.0.1:<free port> with its own host key, authorized key and config in a temp dir
// (UsePAM no, PasswordAuthentication no), run in the foreground so the test stops it by its own pid. The SSH
// host and the Docker host are this machine; the user is the current one (root here).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freePort, stopServer, waitFor } from "./ports.js";

export interface Sshd {
  host: "127.0.0.1";
  port: number;
  user: string;
  dir: string;
  pid: number;
  /** The client private key (OpenSSH format) authorised for `user`. */
  keyFile: string;
  /** `SHA256:…` of the server's host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  stop(): Promise<void>;
}

function keygen(file: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "hamalog-test", "-f", file]);
}

export function fingerprintOfPub(pubFile: string): string {
  return execFileSync("ssh-keygen", ["-lf", pubFile], { encoding: "utf8" }).split(" ")[1]!;
}

export interface SshdOptions {
  /** Variables every session gets (sshd's SetEnv; e.g. HOME, to give the SSH user another home directory). */
  env?: Record<string, string>;
  /**
   * Directories that look empty to every session: sshd runs in its own mount namespace (`unshare --mount`,
   * private propagation) with an empty directory bind-mounted over each. The rest of the machine sees no change,
   * and the mounts vanish with the namespace when sshd and its sessions end.
   */
  hide?: string[];
  /** sshd's LogLevel (default ERROR); VERBOSE logs each connection and each accepted key to `<dir>/sshd.log`. */
  logLevel?: string;
  /** AllowTcpForwarding (default yes); `no` is the hardening that breaks a tunnelled health check. */
  allowTcpForwarding?: "yes" | "no";
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), "hamalog-sshd-"));
  const port = await freePort();
  keygen(join(dir, "host_key"));
  keygen(join(dir, "client_key"));
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "client_key.pub")));
  const config = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(dir, "host_key")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    "UsePAM no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    "PermitRootLogin prohibit-password",
    // The temp dir lives under /tmp (world-writable), which StrictModes would refuse.
    "StrictModes no",
    `AllowTcpForwarding ${opts.allowTcpForwarding ?? "yes"}`,
    "MaxSessions 20",
    `LogLevel ${opts.logLevel ?? "ERROR"}`,
    ...Object.entries(opts.env ?? {}).map(([k, v]) => `SetEnv ${k}=${v}`),
  ];
  writeFileSync(join(dir, "sshd_config"), config.join("\n") + "\n");
  mkdirSync("/run/sshd", { recursive: true });
  const sshdArgv = ["/usr/sbin/sshd", "-D", "-f", join(dir, "sshd_config"), "-E", join(dir, "sshd.log")];
  let argv = sshdArgv;
  if (opts.hide?.length) {
    mkdirSync(join(dir, "empty"));
    // unshare and sh exec into sshd: the child's pid stays sshd's, so stop() still stops it by its own pid.
    const script =
      'empty="$1"; shift; n="$1"; shift; i=0; while [ "$i" -lt "$n" ]; do mount --bind "$empty" "$1" || exit 1; shift; i=$((i+1)); done; exec "$@"';
    argv = [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "hide",
      join(dir, "empty"),
      String(opts.hide.length),
      ...opts.hide,
      ...sshdArgv,
    ];
  }
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  try {
    await waitFor(`sshd on 127.0.0.1:${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
      return new Promise<boolean>((resolve) => {
        const s = createConnection({ host: "127.0.0.1", port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      });
    });
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return {
    host: "127.0.0.1",
    port,
    user: userInfo().username,
    dir,
    pid: child.pid!,
    keyFile: join(dir, "client_key"),
    hostKeyFingerprint: fingerprintOfPub(join(dir, "host_key.pub")),
    stop: () => stopServer(child, dir),
  };
}
