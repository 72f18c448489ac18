// deploy/host `local`: the same procedure on this machine, for a self-hosted CI runner on the server itself (as
// Hamalog deploys today). A Remote over child processes instead of SSH: argv runs without a shell in between, the
// health check is a plain HTTP request from here, and the heartbeat is a child whose stdin ends when this process
// dies — the host agent then recovers exactly as after a dropped SSH connection. Linux hosts only (the agent needs
// flock, setsid and a POSIX sh).
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { hostname, userInfo } from "node:os";
import { PipelineError } from "../errors.js";
import type { ExecResult, HttpResult, Remote, RemoteProcess, RunOptions } from "./remote.js";

export function connectLocal(): Remote {
  return new LocalRemote();
}

class LocalRemote implements Remote {
  readonly label = `local (${userInfo().username}@${hostname()})`;
  readonly hostKeyFingerprint = "";
  private readonly children = new Set<ChildProcess>();

  run(argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new PipelineError("interrupted"));
      // Its own process group: a timeout or Ctrl-C stops the command and what it started (like closing an SSH
      // channel does under TIED), while the agent's detached steps live in sessions of their own.
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], detached: true });
      this.children.add(child);
      let stdout = "";
      let stderr = "";
      let done = false;
      const stop = () => {
        try {
          if (child.pid) process.kill(-child.pid, "SIGTERM");
        } catch {
          // already gone
        }
      };
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        this.children.delete(child);
        fn();
      };
      const onAbort = () => {
        if (opts.stdin === undefined) stop();
        finish(() => reject(new PipelineError(`interrupted while running \`${argv.slice(0, 3).join(" ")}\``)));
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      const timer = opts.timeoutMs
        ? setTimeout(() => {
            if (opts.stdin === undefined) stop();
            finish(() => resolve({ code: 124, stdout, stderr: `${stderr}\n(timed out after ${opts.timeoutMs} ms)` }));
          }, opts.timeoutMs)
        : undefined;
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
      child.on("error", (e) => finish(() => reject(new PipelineError(`cannot run \`${argv[0]}\` here: ${e.message}`))));
      child.on("close", (code) => finish(() => resolve({ code: code ?? -1, stdout, stderr })));
      child.stdin!.on("error", () => undefined);
      child.stdin!.end(opts.stdin ?? "");
    });
  }

  httpGet(url: string, timeoutMs: number): Promise<HttpResult> {
    return new Promise((resolve, reject) => {
      const req = request(url, { agent: false, headers: { connection: "close" } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body.length < 65536 ? (body += d) : undefined));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end();
    });
  }

  spawn(argv: readonly string[]): RemoteProcess {
    // Not in this process's group: Ctrl-C in a terminal reaches the CLI, which then asks it to abort; the child
    // must not die of the same signal before it has run the recovery.
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "ignore", "ignore"], detached: true });
    child.unref();
    let ended = false;
    child.stdin!.on("error", () => undefined);
    const done = new Promise<ExecResult>((resolve) =>
      child.on("close", (code) => {
        ended = true;
        resolve({ code: code ?? -1, stdout: "", stderr: "" });
      }),
    );
    return {
      write: (data) => {
        if (!ended) child.stdin!.write(data);
      },
      end: () => {
        if (ended) return;
        ended = true;
        child.stdin!.end();
      },
      done,
    };
  }

  close(): void {
    for (const c of this.children) c.stdin?.end();
  }
}
