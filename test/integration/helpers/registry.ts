// A real distribution registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1:<free port>,
// with its own config and storage in a temp dir, stopped by its own process id.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./ports.js";

export interface RegistryAuth {
  htpasswd?: Record<string, string>;
  /** Raw `auth.token` config (realm, service, issuer, rootcertbundle). */
  token?: { realm: string; service: string; issuer: string; rootcertbundle: string };
}

export interface Registry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  url: string;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startRegistry(opts: { auth?: RegistryAuth; port?: number } = {}): Promise<Registry> {
  const dir = mkdtempSync(join(tmpdir(), "hamalog-registry-"));
  const port = opts.port ?? (await freePort());
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "data")}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
  ];
  if (opts.auth?.htpasswd) {
    const file = join(dir, "htpasswd");
    writeFileSync(file, "");
    for (const [user, pass] of Object.entries(opts.auth.htpasswd)) {
      // -i reads the password from stdin: no secret in this test's argv either.
      execFileSync("htpasswd", ["-iB", file, user], { input: pass });
    }
    lines.push("auth:", "  htpasswd:", "    realm: hamalog-test", `    path: ${file}`);
  } else if (opts.auth?.token) {
    const t = opts.auth.token;
    lines.push("auth:", "  token:", `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.rootcertbundle}`);
  }
  writeFileSync(join(dir, "config.yml"), lines.join("\n") + "\n");
  const child: ChildProcess = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`registry on ${url}`, async () => {
      if (child.exitCode !== null) throw new Error(`registry exited: ${stderr}`);
      const r = await fetch(`${url}/v2/`);
      return r.status === 200 || r.status === 401;
    });
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    url,
    dir,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
