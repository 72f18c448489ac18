// A real multi-node Docker Swarm on this machine for the swarm strategy's integration tests: a TypeScript door onto
// ci/scripts/swarm-env.sh, which builds it (network namespaces on the bridge swbr0, one dockerd 20.10 + sshd per
// node at 10.77.0.11, .12, …, a TLS + htpasswd registry on 10.77.0.1:5000). One cluster per machine: start one per
// test file (beforeAll) and stop it in afterAll. Node indexes here are 0-based: nodes[0] is node1, the leader.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../../../ci/scripts/swarm-env.sh", import.meta.url));
/** The bridge's address on the host: the registry listens here, and the nodes reach the host here. */
export const SWARM_HOST_ADDR = "10.77.0.1";
export const SWARM_REGISTRY = `${SWARM_HOST_ADDR}:5000`;

export interface SwarmNode {
  /** `node1`, `node2`, … (also the engine's hostname, as `docker node ls` shows it). */
  name: string;
  /** `10.77.0.11`, … : sshd listens on port 22, host-mode published ports answer here. */
  addr: string;
  role: "manager" | "worker";
  /** The engine's unix socket, reachable from the host: `docker -H unix://SOCKET`. */
  socket: string;
  /** The network namespace (`ip netns exec swK …`). */
  netns: string;
  /** `SHA256:…` of this node's sshd host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
}

export interface SwarmRegistry {
  /** `10.77.0.1:5000` (TLS with a throwaway CA, htpasswd auth). */
  host: string;
  user: string;
  password: string;
  /** The CA certificate: pass it as `ca` to Node's https, or NODE_EXTRA_CA_CERTS to a child Node process. */
  caFile: string;
}

export interface SwarmSsh {
  user: "root";
  port: 22;
  /** The client private key (OpenSSH ed25519, no passphrase) every node authorises for root. */
  keyFile: string;
  /** The manager's host key fingerprint (`SHA256:…`); each node's is on `nodes[i].hostKeyFingerprint`. */
  hostKeyFingerprint: string;
  /** known_hosts with every node's host key. */
  knownHostsFile: string;
  /** An ssh_config for 10.77.0.* (user, key, known hosts, batch mode). */
  configFile: string;
  /**
   * The environment for `docker -H ssh://root@10.77.0.11 …`: the docker CLI runs `ssh` from PATH and takes no
   * ssh flags, so PATH starts with a wrapper that adds `configFile`.
   */
  env: NodeJS.ProcessEnv;
}

export interface Swarm {
  nodes: SwarmNode[];
  manager: SwarmNode;
  registry: SwarmRegistry;
  ssh: SwarmSsh;
  stateDir: string;
  /** How long `swarm-env.sh up` took (network, registry, engines, swarm init/join, all Ready). */
  upMs: number;
  /** Run the host's docker CLI (28.x) against node `i`'s engine; resolves with stdout. */
  docker(i: number, args: string[], opts?: RunOptions): Promise<string>;
  /** Run `argv` on node `i` over real SSH as root (each word quoted); resolves with stdout. */
  sshExec(i: number, argv: string[], opts?: RunOptions): Promise<string>;
  /**
   * Log in (a throwaway DOCKER_CONFIG), tag `localImage` as `10.77.0.1:5000/<repoAndTag>`, push it from the host's
   * engine, drop the tag again; resolves with the pushed digest.
   */
  pushToRegistry(localImage: string, repoAndTag: string): Promise<string>;
  /** SIGKILL every process of node `i` (dockerd first, then containerd, shims, containers, sshd): a dead machine. */
  killNode(i: number): Promise<void>;
  /** Remove everything `up` made; safe to call twice. Resolves with how long the teardown took (0 the second time). */
  stop(): Promise<number>;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
}

interface StateFile {
  stateDir: string;
  nodes: SwarmNode[];
  registry: SwarmRegistry;
  ssh: Omit<SwarmSsh, "hostKeyFingerprint" | "env"> & { binDir: string };
}

/** Whether this machine can build the swarm; `reason` lists what is missing. Tests must fail on it, not skip. */
export function swarmAvailable(): { ok: true } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: "the swarm harness needs root (netns, mounts, dockerd)" };
  try {
    execFileSync("bash", [SCRIPT, "check"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { ok: true };
  } catch (e) {
    const out = String((e as { stdout?: string }).stdout ?? (e as Error).message).trim();
    return { ok: false, reason: `cannot build a swarm here; missing:\n${out}` };
  }
}

/** Spawn `cmd args`, feed `input`, resolve with stdout; reject with the argv, exit code and stderr. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code, signal) =>
      code === 0
        ? resolve(out)
        : reject(
            Object.assign(new Error(`${cmd} ${args.join(" ")} failed (${code ?? signal}): ${err.trim()}`), {
              stdout: out,
              stderr: err,
            }),
          ),
    );
    // A command that exits before reading its input (a killed node's docker) breaks the pipe: its exit says why.
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(opts.input ?? "");
  });
}

/** One word for a POSIX shell: single-quoted, `'` as `'\''` (sshd hands the command to root's shell). */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Build a fresh cluster of `nodes` engines (default 3), `managers` of them managers (default 1). */
export async function startSwarm(opts: { nodes?: number; managers?: number } = {}): Promise<Swarm> {
  const owner = { ...process.env, HAMALOG_SWARM_OWNER: String(process.pid) };
  const down = () =>
    execFileSync("bash", [SCRIPT, "down", "--owner", String(process.pid)], { stdio: ["ignore", "ignore", "pipe"] });
  // A test process that dies without afterAll (an uncaught error, a worker exit) still leaves no cluster behind.
  const onExit = () => {
    try {
      down();
    } catch {
      // nothing more can be done while exiting; the next `up` cleans what is left
    }
  };
  process.once("exit", onExit);
  const started = Date.now();
  let state: StateFile;
  try {
    const argv = [SCRIPT, "up", String(opts.nodes ?? 3), "--managers", String(opts.managers ?? 1)];
    const out = await run("bash", argv, { env: owner });
    state = JSON.parse(out) as StateFile;
  } catch (e) {
    process.off("exit", onExit);
    try {
      down();
    } catch {
      // report the bring-up failure, not the cleanup's
    }
    throw e;
  }
  const upMs = Date.now() - started;
  const manager = state.nodes[0]!;
  const node = (i: number): SwarmNode => {
    const n = state.nodes[i];
    if (!n) throw new Error(`no node ${i}: the swarm has nodes 0..${state.nodes.length - 1}`);
    return n;
  };
  const sshEnv = { ...process.env, PATH: `${state.ssh.binDir}:${process.env.PATH ?? ""}` };
  let stopping: Promise<number> | undefined;
  return {
    nodes: state.nodes,
    manager,
    registry: state.registry,
    ssh: {
      user: "root",
      port: 22,
      keyFile: state.ssh.keyFile,
      hostKeyFingerprint: manager.hostKeyFingerprint,
      knownHostsFile: state.ssh.knownHostsFile,
      configFile: state.ssh.configFile,
      env: sshEnv,
    },
    stateDir: state.stateDir,
    upMs,
    docker: (i, args, o) => run("docker", ["-H", `unix://${node(i).socket}`, ...args], o),
    sshExec: (i, argv, o) =>
      run("ssh", ["-F", state.ssh.configFile, `root@${node(i).addr}`, "--", argv.map(shellQuote).join(" ")], o),
    pushToRegistry: async (localImage, repoAndTag) => {
      const ref = `${state.registry.host}/${repoAndTag}`;
      const configDir = mkdtempSync(join(tmpdir(), "hamalog-swarm-push-"));
      const env = { ...process.env, DOCKER_CONFIG: configDir };
      try {
        await run("docker", ["login", state.registry.host, "-u", state.registry.user, "--password-stdin"], {
          env,
          input: state.registry.password,
        });
        await run("docker", ["tag", localImage, ref], { env });
        const out = await run("docker", ["push", ref], { env });
        await run("docker", ["rmi", ref], { env });
        const m = /digest: (sha256:[0-9a-f]{64})/.exec(out);
        if (!m) throw new Error(`docker push ${ref} printed no digest:\n${out}`);
        return m[1]!;
      } finally {
        rmSync(configDir, { recursive: true, force: true });
      }
    },
    killNode: async (i) => {
      node(i);
      await run("bash", [SCRIPT, "kill", String(i + 1)]);
    },
    stop: async () => {
      if (stopping) return stopping.then(() => 0);
      stopping = (async () => {
        const t = Date.now();
        process.off("exit", onExit);
        await run("bash", [SCRIPT, "down", "--owner", String(process.pid)]);
        return Date.now() - t;
      })();
      return stopping;
    },
  };
}
