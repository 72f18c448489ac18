// A real distribution registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1:<free port>,
// with its own config and storage in a temp dir, stopped by its own process id.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, stopServer, waitFor } from "./ports.js";

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

/** The argv of `hamalog verify-manifest --image HOST/REPOSITORY` followed by `flags`. */
export function verifyManifestArgv(host: string, repository: string, ...flags: string[]): string[] {
  return ["verify-manifest", "--image", `${host}/${repository}`, ...flags];
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
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${t.realm}`,
      `    service: ${t.service}`,
      `    issuer: ${t.issuer}`,
      `    rootcertbundle: ${t.rootcertbundle}`,
    );
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
    stop: () => stopServer(child, dir),
  };
}

/** PUT a manifest (or index) under `reference`, optionally with an Authorization header; returns its digest. */
export async function putManifest(
  registryUrl: string,
  repository: string,
  reference: string,
  body: string | Buffer,
  mediaType: string,
  authorization?: string,
): Promise<string> {
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${reference}`, {
    method: "PUT",
    headers: { "content-type": mediaType, ...(authorization ? { authorization } : {}) },
    body: typeof body === "string" ? body : new Uint8Array(body),
  });
  if (res.status !== 201)
    throw new Error(`PUT manifest ${repository}:${reference}: HTTP ${res.status} ${await res.text()}`);
  return res.headers.get("docker-content-digest")!;
}

/** GET a manifest's exact bytes and digest header (no auth), as `docker`-style Accept. */
export async function getManifestRaw(
  registryUrl: string,
  repository: string,
  reference: string,
): Promise<{ body: Buffer; digest: string; mediaType: string }> {
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${reference}`, {
    headers: {
      accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
    },
  });
  if (res.status !== 200) throw new Error(`GET manifest ${repository}:${reference}: HTTP ${res.status}`);
  return {
    body: Buffer.from(await res.arrayBuffer()),
    digest: res.headers.get("docker-content-digest")!,
    mediaType: res.headers.get("content-type")!,
  };
}

/**
 * `docker login` + `docker push` with a private DOCKER_CONFIG directory (no change to the machine's docker
 * config; the password goes through stdin, never argv). Returns the pushed digest. Blocks the event loop:
 * use loginAndPushAsync when the auth server runs in this process.
 */
export function loginAndPush(
  localImage: string,
  host: string,
  ref: string,
  username: string,
  password: string,
): string {
  const configDir = mkdtempSync(join(tmpdir(), "hamalog-docker-config-"));
  const env = { ...process.env, DOCKER_CONFIG: configDir };
  try {
    execFileSync("docker", ["login", host, "-u", username, "--password-stdin"], {
      input: password,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    execFileSync("docker", ["tag", localImage, ref], { env });
    const out = execFileSync("docker", ["push", ref], { env, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
    execFileSync("docker", ["rmi", ref], { env, stdio: "ignore" });
    const m = /digest: (sha256:[0-9a-f]{64})/.exec(out);
    if (!m) throw new Error(`docker push ${ref} printed no digest:\n${out}`);
    return m[1]!;
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }
}

/**
 * `docker login` + `docker push` with a private DOCKER_CONFIG directory (no change to the machine's docker
 * config; the password goes through stdin, never argv). Returns the pushed digest. Asynchronous, so an
 * in-process token service (helpers/token-server.ts) keeps answering while dockerd logs in.
 */
export async function loginAndPushAsync(
  localImage: string,
  host: string,
  ref: string,
  username: string,
  password: string,
): Promise<string> {
  const configDir = mkdtempSync(join(tmpdir(), "hamalog-docker-config-"));
  const env = { ...process.env, DOCKER_CONFIG: configDir };
  const run = (args: string[], input?: string) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn("docker", args, { env, stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout!.on("data", (d) => (out += d));
      child.stderr!.on("data", (d) => (err += d));
      child.on("error", reject);
      child.on("close", (code) =>
        code === 0 ? resolve(out) : reject(new Error(`docker ${args[0]} failed (${code}): ${err}`)),
      );
      child.stdin!.end(input ?? "");
    });
  try {
    await run(["login", host, "-u", username, "--password-stdin"], password);
    await run(["tag", localImage, ref]);
    const out = await run(["push", ref]);
    await run(["rmi", ref]);
    const m = /digest: (sha256:[0-9a-f]{64})/.exec(out);
    if (!m) throw new Error(`docker push ${ref} printed no digest:\n${out}`);
    return m[1]!;
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }
}
