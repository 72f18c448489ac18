// Tiny test images built from busybox-static (no Docker Hub here): `docker import` of a rootfs with busybox,
// an httpd serving /health and /version, so a deploy can be checked over HTTP.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export function docker(args: string[], input?: string): string {
  return execFileSync("docker", args, {
    encoding: "utf8",
    input,
    stdio: ["pipe", "pipe", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
  });
}

export interface AppImageOptions {
  /** Text served at /version. */
  version: string;
  /** When false the image serves no /health, so its healthcheck fails. */
  healthy?: boolean;
  port?: number;
  /** Where the health document is served (default `health`; the demo uses Spring's `actuator/health`). */
  healthPath?: string;
}

/**
 * Build a local image `name` whose CMD runs busybox httpd on `port` (default 8080) serving /version and
 * (when healthy) /health. Returns the local image id.
 */
export function buildAppImage(name: string, opts: AppImageOptions): string {
  const dir = mkdtempSync(join(tmpdir(), "hamalog-image-"));
  try {
    const root = join(dir, "rootfs");
    for (const d of ["bin", "www", "tmp", "etc"]) mkdirSync(join(root, d), { recursive: true });
    copyFileSync("/bin/busybox", join(root, "bin/busybox"));
    chmodSync(join(root, "bin/busybox"), 0o755);
    for (const tool of ["sh", "wget", "httpd", "cat", "sleep", "echo", "ls"])
      symlinkSync("busybox", join(root, "bin", tool));
    writeFileSync(join(root, "www/version"), `${opts.version}\n`);
    if (opts.healthy !== false) {
      const health = join(root, "www", opts.healthPath ?? "health");
      mkdirSync(dirname(health), { recursive: true });
      writeFileSync(health, '{"status":"UP"}\n');
    }
    writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/:/bin/sh\n");
    const tar = join(dir, "rootfs.tar");
    execFileSync("tar", ["-C", root, "-cf", tar, "."]);
    const port = opts.port ?? 8080;
    const id = docker([
      "import",
      "--change",
      `CMD ["/bin/httpd","-f","-p","${port}","-h","/www"]`,
      "--change",
      `EXPOSE ${port}`,
      "--change",
      `LABEL org.opencontainers.image.version=${JSON.stringify(opts.version)}`,
      tar,
      name,
    ]).trim();
    return id;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface SlowAppOptions {
  /** Text served at /version. */
  version: string;
  /** Seconds the port stays closed after start (a JVM loading classes). */
  closedSeconds: number;
  /** Then seconds /cgi-bin/health answers 503 (Spring's DOWN while the context starts); -1: forever (a broken build). */
  unhealthySeconds: number;
}

/** The slow app's health path: busybox httpd runs CGI only under /cgi-bin/. */
export const SLOW_HEALTH_PATH = "/cgi-bin/health";

// PID 1 of the slow app. Sleeps run in the background and are waited for, so a TERM is handled at once. On TERM
// the listener stops accepting, requests already being served (httpd's forked children) finish — for up to 10 s —
// then it exits: Spring Boot's graceful shutdown in a few lines of sh. busybox 1.35 has no pgrep: the httpd
// processes are counted from `ps` (zombies, state Z, are not serving anything).
const SLOW_START = `#!/bin/sh
serving() { ps -o stat,comm | grep -v '^Z' | grep -c ' httpd$'; }
term() {
  [ -n "$listener" ] && kill "$listener" 2>/dev/null
  i=0; while [ "$(serving)" -gt 0 ] && [ $i -lt 100 ]; do usleep 100000; i=$((i+1)); done
  exit 0
}
trap term TERM INT
sleep "$CLOSED" & wait $!
httpd -f -p 8080 -h /www & listener=$!
if [ "$UNHEALTHY" -ge 0 ]; then sleep "$UNHEALTHY" & wait $!; : > /tmp/ready; fi
while :; do sleep 3600 & wait $!; done
`;

const SLOW_HEALTH = `#!/bin/sh
if [ -e /tmp/ready ]; then
  printf 'Status: 200 OK\r\nContent-Type: application/json\r\n\r\n{"status":"UP"}\n'
else
  printf 'Status: 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{"status":"DOWN"}\n'
fi
`;

/**
 * An app that starts like Spring Boot: port closed for `closedSeconds`, then /cgi-bin/health 503 for
 * `unhealthySeconds`, then 200; /version serves `version`; SIGTERM finishes in-flight requests. Returns the image id.
 */
export function buildSlowAppImage(name: string, opts: SlowAppOptions): string {
  const dir = mkdtempSync(join(tmpdir(), "hamalog-slow-image-"));
  try {
    const root = join(dir, "rootfs");
    for (const d of ["bin", "www/cgi-bin", "tmp", "etc"]) mkdirSync(join(root, d), { recursive: true });
    copyFileSync("/bin/busybox", join(root, "bin/busybox"));
    chmodSync(join(root, "bin/busybox"), 0o755);
    for (const tool of ["sh", "wget", "httpd", "cat", "sleep", "usleep", "echo", "ls", "kill", "ps", "grep"])
      symlinkSync("busybox", join(root, "bin", tool));
    writeFileSync(join(root, "www/version"), `${opts.version}\n`);
    writeFileSync(join(root, "www/cgi-bin/health"), SLOW_HEALTH, { mode: 0o755 });
    writeFileSync(join(root, "start.sh"), SLOW_START, { mode: 0o755 });
    writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/:/bin/sh\n");
    const tar = join(dir, "rootfs.tar");
    execFileSync("tar", ["-C", root, "-cf", tar, "."]);
    return docker([
      "import",
      "--change",
      `ENV CLOSED=${opts.closedSeconds} UNHEALTHY=${opts.unhealthySeconds}`,
      "--change",
      'CMD ["/bin/sh","/start.sh"]',
      "--change",
      "EXPOSE 8080",
      "--change",
      `LABEL org.opencontainers.image.version=${JSON.stringify(opts.version)}`,
      tar,
      name,
    ]).trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Tag a local image as `ref` and push it; returns the digest the push reported. */
export function pushImage(localName: string, ref: string): string {
  docker(["tag", localName, ref]);
  const out = docker(["push", ref]);
  const m = /digest: (sha256:[0-9a-f]{64})/.exec(out);
  if (!m) throw new Error(`docker push ${ref} printed no digest:\n${out}`);
  return m[1]!;
}

/** The full ids of a compose project's containers on this engine, one per line ("" when none). */
export function projectContainers(project: string): string {
  return docker(["ps", "-aq", "--no-trunc", "--filter", `label=com.docker.compose.project=${project}`]).trim();
}

/** Remove what a compose project left on this engine: its containers (by compose label) and its default network. */
export function removeComposeProject(project: string): void {
  const ids = projectContainers(project).split("\n").filter(Boolean);
  if (ids.length) docker(["rm", "-f", ...ids]);
  try {
    docker(["network", "rm", `${project}_default`]);
  } catch {
    // never created
  }
}

/** Remove the local images a test made: the given refs, and every image of `repository` pulled by digest. */
export function removeImages(repository: string, refs: readonly string[] = []): void {
  const byDigest = docker(["image", "ls", "--digests", "--format", "{{.Repository}}@{{.Digest}}"])
    .split("\n")
    .filter((line) => line.includes(repository) && line.includes("@sha256:"));
  for (const ref of [...refs, ...byDigest]) {
    try {
      docker(["rmi", "-f", ref]);
    } catch {
      // already gone (pruned by a deploy, or untagged with another ref)
    }
  }
}
