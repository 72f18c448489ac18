// The client's side of the host agent: each method is one remote command (`sh DIR/.hamalog/agent-….sh DIR OP …`)
// and the reading of its answer. The procedures (attempt.ts, the strategies) only call these; they never build a
// remote command themselves. Failures come back as PipelineErrors naming the step that was in flight.
import { posix } from "node:path";
import { ConnectionLost, PipelineError } from "../../errors.js";
import type { Remote, RemoteProcess } from "../remote.js";
import {
  AGENT_EXIT,
  AGENT_FILE,
  AGENT_SCRIPT,
  BOOTSTRAP,
  DIR_UNSAFE_EXIT,
  LOCK_BOOTSTRAP,
  STEP_MARK,
} from "./agent.js";
import { bundle, type BundleEntry } from "./bundle.js";
import type { HostStep } from "./steps.js";
import { parseView, sections, type HostView } from "./view.js";

/** The holder of a lock, as lock.json keeps it (the agent adds the fencing token). */
export interface LockHolder {
  holder: string;
  sha: string;
  since: string;
  action: string;
  /** Unique per attempt (the doors pass a random UUID). */
  id: string;
}

/** A recovery ran its steps but the host could not record it (its journal cannot be written). */
export class Unrecorded extends PipelineError {
  constructor(message: string, phase?: string) {
    super(message, phase);
    this.name = "Unrecorded";
  }
}

/** A host step failed because another run took the lock over: this run changed nothing. */
export class Fenced extends PipelineError {
  constructor(message: string, phase?: string) {
    super(message, phase);
    this.name = "Fenced";
  }
}

export interface Probe {
  /** `os/arch` from `docker info` (when asked for). */
  platform: string | undefined;
  composeVersion: string;
  /** Tools the agent needs that the host lacks. */
  missingTools: string[];
  /** MemAvailable in bytes, when /proc/meminfo says. */
  memAvailable: number | undefined;
  view: HostView;
}

export type LockAnswer =
  | { got: true; token: number; tookOver?: string; prepared: boolean; view: HostView }
  | { got: false; busy: boolean; holderText: string; view?: undefined; facts: string };

export interface RunOptions {
  /** Run in its own session on the host and wait for its exit code: it finishes even if this client does not. */
  detach?: boolean;
  /** Files installed before the step (journal.json last), staged files, history lines. */
  files?: readonly BundleEntry[];
  timeoutMs?: number;
  /** Stops the waiting for a detached step (Ctrl-C); the step itself goes on on the host. */
  signal?: AbortSignal;
  /** The phase named when it fails. */
  phase: string;
}

/** The last step a command announced on stderr, and what it wrote since. */
export function lastStep(stderr: string): { step: string | undefined; stderr: string } {
  let step: string | undefined;
  let rest: string[] = [];
  for (const line of stderr.split("\n")) {
    if (line.startsWith(STEP_MARK)) {
      step = line.slice(STEP_MARK.length).trim();
      rest = [];
    } else rest.push(line);
  }
  return { step, stderr: rest.join("\n").trim() };
}

export class Host {
  private seq = 0;
  readonly agent: string;

  constructor(
    readonly remote: Remote,
    readonly dir: string,
    readonly project: string,
    private readonly o: { imageName: string; leaseSeconds: number; clean: (t: string) => string; now: () => string },
  ) {
    this.agent = posix.join(dir, ".hamalog", AGENT_FILE);
  }

  /** The same host over another connection (after a reconnect). */
  withRemote(remote: Remote): Host {
    return new Host(remote, this.dir, this.project, this.o);
  }

  get label(): string {
    return this.remote.label;
  }

  private argv(op: string, ...args: string[]): string[] {
    return ["sh", this.agent, this.dir, op, ...args];
  }

  private where(): string {
    return `${this.remote.label} ${posix.join(this.dir, "journal.json")}`;
  }

  /**
   * The first command of a session, which writes nothing (the agent runs from memory): check the directory, probe
   * the host, observe it. Until the lock, a deploy has changed nothing on the host.
   */
  async probe(wantPlatform: boolean, needsCompose: boolean, signal?: AbortSignal): Promise<Probe> {
    const r = await this.remote.run(
      [
        "sh",
        "-c",
        BOOTSTRAP,
        "hamalog-bootstrap",
        this.dir,
        AGENT_FILE,
        wantPlatform ? "1" : "0",
        this.project,
        this.o.imageName,
        String(this.o.leaseSeconds),
      ],
      { stdin: AGENT_SCRIPT, timeoutMs: 60_000, ...(signal ? { signal } : {}) },
    );
    const { step, stderr } = lastStep(r.stderr);
    const user = this.remote.label.split("@")[0];
    if (r.code === DIR_UNSAFE_EXIT && step === "dir") {
      const what = stderr.split("\n").pop() ?? "";
      const fix = what.startsWith("symlink")
        ? `\`${what.slice("symlink ".length)}\` in it is a symlink: replace it with the file itself (or move it away)`
        : `it is writable by group or others (${what.slice("writable ".length)}): \`chmod go-w ${this.dir}\``;
      throw new PipelineError(
        `the deploy directory ${this.dir} on ${this.label} is not safe to deploy into: ${fix}. Whoever can write there could ` +
          `redirect the files a deploy writes (release files, the history, the journal). Nothing was changed`,
        "preflight",
      );
    }
    if (r.code !== 0 && step === "info")
      throw new PipelineError(
        `\`docker info\` failed on ${this.label} (${this.o.clean(stderr).slice(0, 300)}) — is Docker running there and may ${user} use it?`,
        "preflight",
      );
    if (r.code !== 0)
      throw new PipelineError(
        `probing ${this.label} failed (exit ${r.code}${step ? `, in ${step}` : ""}): ${this.o.clean(stderr || r.stdout).slice(-400)}`,
        "preflight",
      );
    const s = sections(r.stdout);
    const mem = Number((s.get("memory") ?? "").trim());
    const compose = (s.get("compose") ?? "").trim();
    if (needsCompose && (compose.includes("hamalog-no-compose") || !/Compose version/i.test(compose)))
      throw new PipelineError(
        `\`docker compose version\` failed on ${this.label} (${this.o.clean(compose.replace("hamalog-no-compose", "").trim()).split("\n").slice(0, 2).join(" ").slice(0, 300)}): ` +
          `the Docker Compose v2 plugin is missing for ${user} there. Install it on the host (Docker's \`docker-compose-plugin\` package, ` +
          `or the \`docker-compose\` binary in /usr/libexec/docker/cli-plugins/ or ~${user}/.docker/cli-plugins/); nothing on ${this.label} was changed`,
        "preflight",
      );
    return {
      platform: wantPlatform ? (s.get("platform") ?? "").trim() || undefined : undefined,
      composeVersion:
        /v?(\d+\.\d+[^\s]*)\s*$/.exec((s.get("compose") ?? "").trim())?.[1] ?? (s.get("compose") ?? "").trim(),
      missingTools: (s.get("tools") ?? "")
        .split("\n")
        .map((x) => x.trim())
        .filter(Boolean),
      memAvailable: mem > 0 ? mem * 1024 : undefined,
      view: parseView(r.stdout, this.where(), this.o.now()),
    };
  }

  async observe(): Promise<HostView> {
    const r = await this.remote.run(this.argv("observe", this.project, this.o.imageName, String(this.o.leaseSeconds)), {
      timeoutMs: 60_000,
    });
    if (r.code !== 0)
      throw new PipelineError(
        `reading ${this.dir} on ${this.label} failed (exit ${r.code}): ${this.o.clean(r.stderr).slice(0, 300)}`,
      );
    return parseView(r.stdout, this.where(), this.o.now());
  }

  /**
   * Take the lock (a stale one is taken over) and observe under it; `wait`: seconds for a busy host-side step.
   * `prepare`: the attempt's files, installed in the same command if the journal is still `expect` (its hash).
   */
  async lock(
    h: LockHolder,
    waitSeconds: number,
    force: boolean,
    prepare?: { files: readonly BundleEntry[]; expect: string },
  ): Promise<LockAnswer> {
    // The lock is the first command that writes: it also installs the agent (the bundle carries it).
    const r = await this.remote.run(
      [
        "sh",
        "-c",
        LOCK_BOOTSTRAP,
        "hamalog-lock",
        this.dir,
        AGENT_FILE,
        String(this.o.leaseSeconds),
        String(waitSeconds),
        force ? "1" : "0",
        this.project,
        this.o.imageName,
        prepare?.expect ?? "",
      ],
      {
        stdin: bundle([
          { path: "agent.sh", content: AGENT_SCRIPT },
          { path: "holder.json", content: `${JSON.stringify(h)}\n` },
          ...(prepare?.files ?? []),
        ]),
        timeoutMs: (waitSeconds + 60) * 1000,
      },
    );
    const s = sections(r.stdout);
    if (r.code === 0) {
      const token = Number((s.get("token") ?? "").trim());
      const tookOver = s.get("took-over")?.trim();
      return {
        got: true,
        token,
        prepared: s.get("prepared")?.trim() === "yes",
        ...(tookOver ? { tookOver } : {}),
        view: parseView(r.stdout, this.where(), this.o.now()),
      };
    }
    if (r.code === AGENT_EXIT.held || r.code === AGENT_EXIT.busy) {
      const text = (s.get("held") ?? s.get("busy") ?? "").trim();
      const i = text.indexOf("hamalog-lease ");
      return {
        got: false,
        busy: r.code === AGENT_EXIT.busy,
        holderText: i < 0 ? text : text.slice(0, i).trim(),
        facts: i < 0 ? "" : text.slice(i),
      };
    }
    throw new PipelineError(
      `taking the lock in ${this.dir} on ${this.label} failed (exit ${r.code}): ${this.o.clean(r.stderr || r.stdout).slice(-300)} — check that ${this.dir} is writable`,
      "lock",
    );
  }

  /** Free the lock (only while it is still `token`'s). Resolves with a warning when it was not, else undefined. */
  async unlock(token: number): Promise<string | undefined> {
    const r = await this.remote.run(this.argv("unlock", String(token)), { timeoutMs: 60_000 });
    if (r.code === 0) return undefined;
    if (r.code === AGENT_EXIT.fenced)
      return `left the lock in ${this.dir} on ${this.label} alone: another run holds it now`;
    return `could not free the lock in ${this.dir} on ${this.label} (exit ${r.code}): ${this.o.clean(r.stderr).slice(0, 200)}`;
  }

  /** The lock's heartbeat on the host (agent.ts op_heartbeat); undefined on a transport without stdin streams. */
  heartbeat(token: number): RemoteProcess | undefined {
    return this.remote.spawn?.(this.argv("heartbeat", String(token), String(this.o.leaseSeconds)));
  }

  /**
   * One host step under the lock (fenced by `token`): the files first, then the agent's step. With `detach` it
   * runs in its own session on the host and finishes there whatever happens to this client.
   */
  async run(token: number, s: HostStep | { op: string; args: string[] }, o: RunOptions): Promise<string> {
    const name = `${token}-${++this.seq}-${s.op}`;
    const r = await this.remote.run(
      this.argv("run", String(token), this.project, name, o.detach ? "1" : "0", s.op, ...s.args),
      {
        stdin: bundle(o.files ?? []),
        ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
        // Only a detached step may be left: it goes on on the host; stopping the wait loses nothing.
        ...(o.detach && o.signal ? { signal: o.signal } : {}),
      },
    );
    if (r.code === 0) return r.stdout;
    const { step, stderr } = lastStep(r.stderr);
    const detail = this.o
      .clean(stderr || r.stdout)
      .split("\n")
      .slice(-8)
      .join("\n");
    if (r.code === AGENT_EXIT.fenced)
      throw new Fenced(
        `this run lost its lock on ${this.label} (${detail}). It changed nothing from here on; the run that holds the lock now (or the host itself) put things right — see \`hamalog status\``,
        o.phase,
      );
    // The agent's last line says why (compose's lines of the steps that did run come before it).
    if (r.code === AGENT_EXIT.unrecorded) throw new Unrecorded(detail.split("\n").at(-1)!, o.phase);
    if (r.code === AGENT_EXIT.torn)
      throw new ConnectionLost(`the files for ${s.op} did not reach ${this.label} whole: ${detail}`, o.phase);
    if (r.code === 124 && o.detach)
      throw new PipelineError(
        `gave up waiting for ${step ?? s.op} on ${this.label} after ${Math.round((o.timeoutMs ?? 0) / 1000)}s; it goes on on the host, where the recovery waits for it`,
        o.phase,
      );
    throw new PipelineError(
      `${step ?? s.op} failed on ${this.label} (exit ${r.code})${detail ? `: ${detail}` : ""}`,
      o.phase,
    );
  }

  /** Log in (token on stdin, a throwaway Docker config), pull `ref` unless present, log out; one command. */
  async pull(
    ref: string,
    stallSeconds: number,
    registry: string,
    creds: { username: string; password: string } | undefined,
    signal?: AbortSignal,
  ): Promise<"present" | "pulled"> {
    const r = await this.remote.run(this.argv("pull", ref, String(stallSeconds), registry, creds?.username ?? ""), {
      stdin: creds ? `${creds.password}\n` : "",
      timeoutMs: 30 * 60_000,
      ...(signal ? { signal } : {}),
    });
    if (r.code === 0) return r.stdout.includes("hamalog-image-present") ? "present" : "pulled";
    const { step, stderr } = lastStep(r.stderr);
    const what = step === "login" ? `\`docker login ${registry}\`` : `\`docker pull ${ref}\``;
    throw new PipelineError(
      `${what} failed on ${this.label} (exit ${r.code})${r.code === 7 ? " — the download stopped moving (deploy/pullStallTimeout)" : ""}: ${this.o.clean(stderr).split("\n").slice(-6).join("\n")}`,
      "pull",
    );
  }

  /**
   * A read-only op of a strategy's own (host/parts.ts, e.g. swarm's convergence watch), outside the lock: its stdout
   * on exit 0, else a PipelineError naming `phase`. `signal` (Ctrl-C) stops it on the host too.
   */
  async query(
    op: string,
    args: string[],
    o: { phase: string; timeoutMs: number; signal?: AbortSignal },
  ): Promise<string> {
    const r = await this.remote.run(this.argv(op, ...args), {
      timeoutMs: o.timeoutMs,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    if (r.code === 0) return r.stdout;
    const { step, stderr } = lastStep(r.stderr);
    const detail = this.o
      .clean(stderr || r.stdout)
      .split("\n")
      .slice(-6)
      .join("\n");
    throw new PipelineError(`${step ?? op} failed on ${this.label} (exit ${r.code}): ${detail}`, o.phase);
  }

  /** What the failed services looked like (bounded, best effort: never hides the failure). */
  async diagnose(file: string, envFile: string | undefined, services: string[]): Promise<string[]> {
    const r = await this.remote
      .run(this.argv("diagnose", this.project, file, envFile ?? "", ...services), { timeoutMs: 30_000 })
      .catch((e: Error) => ({ code: -1, stdout: "", stderr: e.message }));
    const lines: string[] = [];
    for (const [name, text] of sections(r.stdout)) {
      if (name === "end") continue;
      lines.push(`  ${name}:`, ...(text.trim() || "(nothing)").split("\n").map((l) => `    ${this.o.clean(l)}`));
    }
    if (r.code !== 0 && lines.length === 0) lines.push(`  diagnostics failed: ${this.o.clean(r.stderr).slice(0, 200)}`);
    return lines;
  }
}
