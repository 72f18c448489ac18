// Where things live in the deploy directory on the host, and every remote command as an argv array (pure
// builders; ssh.ts quotes them through shell.ts). Tests assert these exact commands.
import { posix } from "node:path";

export interface Layout {
  dir: string;
  /** The compose file that runs now. */
  compose: string;
  /** The compose file that ran before the last change: what an automatic rollback restores. */
  previous: string;
  /** The next compose file, written here first, validated, then renamed into place (atomic). */
  next: string;
  /** A first deploy that failed is moved here (nothing to roll back to). */
  failed: string;
  /** One JSON line per attempt. */
  history: string;
  /** mkdir-based lock (atomic on every filesystem); holds holder.json. */
  lock: string;
  lockHolder: string;
  /**
   * Deploy-specific Docker config dir: the registry login lives here, the user's own ~/.docker is untouched. Only
   * the commands that talk to the registry use it (login, logout, pull, manifest inspect): the docker CLI looks for
   * plugins in $DOCKER_CONFIG/cli-plugins, so compose (a plugin, maybe only in ~/.docker/cli-plugins) never runs
   * under it — it finds the image already pulled by digest.
   */
  dockerConfig: string;
}

export function layout(dir: string): Layout {
  const d = dir.replace(/\/+$/, "") || "/";
  const j = (f: string) => posix.join(d, f);
  return {
    dir: d,
    compose: j("compose.yaml"),
    previous: j("compose.previous.yaml"),
    next: j(".compose.next.yaml"),
    failed: j("compose.failed.yaml"),
    history: j("history.jsonl"),
    lock: j(".deploy.lock"),
    lockHolder: j(".deploy.lock/holder.json"),
    dockerConfig: j(".docker"),
  };
}

/** The compose project name: deploy/project, else the directory's name normalised as compose does. */
export function projectName(dir: string, project?: string): string {
  if (project) return project;
  const base = posix.basename(dir.replace(/\/+$/, "")).toLowerCase().replace(/[^a-z0-9_-]/g, "");
  return base || "hamalog";
}

/** How an attempt's id appears in holder.json (JSON.stringify of LockHolder, no spaces). */
export const lockIdField = (id: string) => `"id":${JSON.stringify(id)}`;

/** Only for built-in docker commands that need the deploy's registry login; never for plugins (see Layout). */
const withConfig = (l: Layout, argv: string[]) => ["env", `DOCKER_CONFIG=${l.dockerConfig}`, ...argv];

export const cmd = {
  /** The host's platform as `os/arch` (arch in Docker's uname form, normalised by hostPlatform). */
  dockerInfo: () => ["docker", "info", "--format", "{{.OSType}}/{{.Architecture}}"],
  /** Preflight: the compose v2 plugin is found the way every compose call below finds it. */
  composeVersion: () => ["docker", "compose", "version"],
  mkdirs: (path: string) => ["mkdir", "-p", "-m", "0700", "--", path],
  /** Atomic: exits non-zero when the lock directory already exists. */
  lockAcquire: (l: Layout) => ["mkdir", "-m", "0700", "--", l.lock],
  /** Remove the lock whoever holds it: --break-lock, or our own half-made lock. */
  lockBreak: (l: Layout) => ["rm", "-rf", "--", l.lock],
  /**
   * Remove the lock only if holder.json still carries this attempt's id: a deploy whose lock was broken (and maybe
   * taken by another deploy) must not delete the new holder's lock. One shell step; the script is a constant, the
   * lock dir and the id arrive as $1 and $2. Exit 0 released, 3 held by someone else, 4 already gone.
   */
  lockRelease: (l: Layout, id: string) => [
    "sh",
    "-c",
    'test -d "$1" || exit 4; grep -qF -- "$2" "$1/holder.json" 2>/dev/null || exit 3; rm -rf -- "$1"',
    "hamalog-unlock",
    l.lock,
    lockIdField(id),
  ],
  cat: (path: string) => ["cat", "--", path],
  exists: (path: string) => ["test", "-e", path],
  /** Write stdin to `path` (mode 0600). The script is a constant; the path arrives as $1, never parsed. */
  write: (path: string) => ["sh", "-c", 'umask 077 && cat > "$1"', "hamalog-write", path],
  append: (path: string) => ["sh", "-c", 'umask 077 && cat >> "$1"', "hamalog-append", path],
  move: (from: string, to: string) => ["mv", "-f", "--", from, to],
  copy: (from: string, to: string) => ["cp", "-p", "--", from, to],
  remove: (path: string) => ["rm", "-f", "--", path],
  tail: (path: string, lines: number) => ["tail", "-n", String(lines), "--", path],
  /** The password/token arrives on stdin; never in argv. */
  login: (l: Layout, registry: string, username: string) =>
    withConfig(l, ["docker", "login", "--username", username, "--password-stdin", registry]),
  logout: (l: Layout, registry: string) => withConfig(l, ["docker", "logout", registry]),
  /** Pull `name@digest` with the deploy's login; compose then finds it locally (its pull policy is `missing`). */
  pull: (l: Layout, ref: string) => withConfig(l, ["docker", "pull", "--quiet", ref]),
  imagePresent: (ref: string) => ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
  imageDigests: (name: string) => ["docker", "image", "ls", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}}", name],
  imageRemove: (ref: string) => ["docker", "image", "rm", ref],
  inspectState: (id: string) => ["docker", "inspect", "--format", "{{json .State}}", id],
  manifestInspect: (l: Layout, ref: string, insecure: boolean) =>
    withConfig(l, ["docker", "manifest", "inspect", ...(insecure ? ["--insecure"] : []), ref]),
  compose: (project: string, file: string, args: string[]) => ["docker", "compose", "--project-name", project, "--file", file, ...args],
};

/** The compose subcommands the procedure uses. */
export const composeArgs = {
  validate: () => ["config", "--quiet"],
  up: (service: string, waitTimeout: number) => ["up", "--detach", "--wait", "--wait-timeout", String(waitTimeout), service],
  stop: (service: string) => ["stop", service],
  ps: () => ["ps", "--all"],
  psJson: (service: string) => ["ps", "--all", "--format", "json", service],
  id: (service: string) => ["ps", "--all", "--quiet", service],
  logs: (service: string, lines: number) => ["logs", "--no-color", "--tail", String(lines), service],
};

/** Docker reports `x86_64`/`aarch64`; images say `amd64`/`arm64`. */
export function hostPlatform(dockerInfo: string): string {
  const [os = "linux", arch = ""] = dockerInfo.trim().split("/");
  const map: Record<string, string> = { x86_64: "amd64", aarch64: "arm64", armv7l: "arm/v7", armv6l: "arm/v6", i686: "386", i386: "386" };
  return `${os}/${map[arch] ?? arch}`;
}
