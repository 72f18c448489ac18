// What both benchmarks share: timing a child process without blocking this one (each bench keeps a server or a
// request loop running in-process while the child runs), and medians.
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { ROOT } from "../../test/helpers/cli.js";

export interface TimedRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Spawn `cmd args` in the repository root and time it to its exit. */
export function timedSpawn(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr, ms: performance.now() - t0 }));
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
