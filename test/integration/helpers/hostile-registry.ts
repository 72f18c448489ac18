// Start the misbehaving registry (hostile-registry-server.mjs) as its own process on 127.0.0.1:<free port>,
// and stop it by its own pid.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";

export type HostileMode =
  | "endless-manifest"
  | "endless-tags"
  | "index"
  | "huge-index"
  | "forged-errors"
  | "forged-tags"
  | "md5"
  | "sha1"
  | "upper"
  | "hang";

export interface HostileRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  pid: number;
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL("./hostile-registry-server.mjs", import.meta.url));

export async function startHostileRegistry(mode: HostileMode): Promise<HostileRegistry> {
  const port = await freePort();
  const child = spawn(process.execPath, [SCRIPT, String(port), mode], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`hostile registry exited early (${code})`)));
    child.stdout!.once("data", () => resolve());
  });
  const pid = child.pid!;
  return {
    host: `127.0.0.1:${port}`,
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(pid, "SIGTERM");
      await exited;
    },
  };
}
