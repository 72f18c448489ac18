// Where things live in the deploy directory on the host, and every remote command as an argv array (pure
// builders; ssh.ts quotes them through shell.ts). Tests assert these exact commands.
import { posix } from "node:path";
import { leaseFactsScript } from "./journal-commands.js";

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
  /** Blue/green: the proxy's directory (bind-mounted into the proxy container) and its Caddyfile. */
  proxyDir: string;
  caddyfile: string;
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
    proxyDir: j("proxy"),
    caddyfile: j("proxy/Caddyfile"),
  };
}

/** The compose project name: deploy/project, else the directory's name normalised as compose does. */
export function projectName(dir: string, project?: string): string {
  if (project) return project;
  const base = posix
    .basename(dir.replace(/\/+$/, ""))
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "");
  return base || "hamalog";
}

/** The lock scripts' exit codes (cmd.lockAcquire, lockBreak, lockRelease); lock.ts reads them by these names. */
export const LOCK_EXIT = {
  ok: 0,
  /** The lock is held by someone else (their holder.json printed). */
  held: 3,
  /** The lock is not there: it could not be made, or was already gone. */
  absent: 4,
  /** holder.json could not be written (the half-made lock was removed). */
  holderUnwritable: 5,
} as const;

/** How an attempt's id appears in holder.json (JSON.stringify of LockHolder, no spaces). */
export const lockIdField = (id: string) => `"id":${JSON.stringify(id)}`;

/** Only for built-in docker commands that need the deploy's registry login; never for plugins (see Layout). */
const withConfig = (l: Layout, argv: string[]) => ["env", `DOCKER_CONFIG=${l.dockerConfig}`, ...argv];

/**
 * Phase scripts announce each step on stderr (`hamalog-step:NAME`) before running it and exit with that step's own
 * exit code: a failure names the step that failed, or was in flight when the command timed out or was stopped.
 */
export const STEP_MARK = "hamalog-step:";

/** The last step a phase script announced, and what it wrote to stderr since (all of stderr when none was announced). */
export function lastStep(stderr: string): { step: string | undefined; stderr: string } {
  let step: string | undefined;
  let rest: string[] = [];
  for (const line of stderr.split("\n")) {
    if (line.startsWith(STEP_MARK)) {
      step = line.slice(STEP_MARK.length).trim();
      rest = [];
    } else rest.push(line);
  }
  return { step, stderr: rest.join("\n") };
}

/** Printed by the pull script, alone, when the digest is already on the host (`docker pull --quiet` prints the reference). */
export const IMAGE_PRESENT = "hamalog-image-present";
/** Lines in the history script's output: the history file follows the first, the image list the second. */
export const HISTORY_MARK = "hamalog-history";
export const IMAGES_MARK = "hamalog-images";
const IMAGE_LS_FORMAT = "{{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}}";

/**
 * Step `dir` of the probe: the deploy directory ($2), when it exists, must not be writable by group or others
 * (`ls -ld`'s mode, POSIX), and no entry in it may be a symlink: whoever can write there could otherwise point
 * compose.yaml, the history or the login's config.json anywhere the deploy user can write. Prints what is wrong
 * (`writable MODE` / `symlink NAME`) and exits 6.
 */
export const DIR_EXIT = 6;
const DIR_CHECK =
  `echo ${STEP_MARK}dir >&2; if [ -d "$2" ]; then m=$(ls -ld -- "$2/" | cut -c1-10); ` +
  `case "$m" in ?????w????|????????w?) echo "writable $m" >&2; exit ${DIR_EXIT};; esac; ` +
  `for f in "$2"/* "$2"/.[!.]* "$2"/..?*; do if [ -L "$f" ]; then echo "symlink \${f##*/}" >&2; exit ${DIR_EXIT}; fi; done; fi`;

/**
 * A pull that stops moving is ended: `docker pull` prints byte progress only to a terminal, so it runs under
 * util-linux `script` (a pty; the output goes to a temp file) and the file is checked every second. The daemon
 * reports progress at least every 512 KB, so "no output for $3 s" is a stall (or a link slower than 512 KB per
 * $3 s). Exit PULL_STALLED then; the pull's own exit code otherwise. The ref reaches the pty's shell through the
 * environment, never spliced into the command text. Hosts without `script` pull as before, bounded by the timeout.
 */
export const PULL_STALLED = 7;
const PULL_WATCHED =
  'out=$(mktemp) || exit; HAMALOG_REF="$2" DOCKER_CONFIG="$1" script -qfec \'docker pull "$HAMALOG_REF"\' "$out" </dev/null >/dev/null 2>&1 & p=$!; ' +
  'last=-1; idle=0; while kill -0 "$p" 2>/dev/null; do sleep 1; size=$(wc -c < "$out"); ' +
  'if [ "$size" = "$last" ]; then idle=$((idle+1)); else idle=0; last=$size; fi; ' +
  `if [ "$idle" -ge "$3" ]; then kill "$p"; wait "$p" 2>/dev/null; tr '\\r' '\\n' < "$out" | grep -v '^Script ' | tail -n 3 >&2; rm -f "$out"; echo "no progress for $3 s" >&2; exit ${PULL_STALLED}; fi; done; ` +
  'wait "$p"; code=$?; if [ "$code" -ne 0 ]; then tr \'\\r\' \'\\n\' < "$out" | grep -v \'^Script \' | tail -n 5 >&2; fi; rm -f "$out"; exit "$code"';

// Each phase sends as few remote commands as it can: every exec is a new SSH session, and sshd runs each through the
// user's login shell (whose rc files may cost 100 ms+). The scripts below are constants; every value arrives as a
// positional argument ("$1" …) and is quoted by shell.ts like any other word, never spliced into script text.
export const cmd = {
  /**
   * Preflight in one session: the host's platform as `os/arch` from `docker info` (only when deploy/platform is not
   * set: its line comes first; arch in Docker's uname form, normalised by hostPlatform), then `docker compose
   * version` — the compose v2 plugin found the way every compose call below finds it. Steps `info`, `compose`.
   */
  probe: (withPlatform: boolean, dir?: string) => [
    "sh",
    "-c",
    `if [ -n "$1" ]; then echo ${STEP_MARK}info >&2; docker info --format "$1" || exit; fi; echo ${STEP_MARK}compose >&2; docker compose version` +
      (dir === undefined ? "" : ` || exit; ${DIR_CHECK}`),
    "hamalog-probe",
    withPlatform ? "{{.OSType}}/{{.Architecture}}" : "",
    ...(dir === undefined ? [] : [dir]),
  ],
  /**
   * Take the lock and read, under it, what the deploy needs: create the deploy directory, mkdir the lock (atomic),
   * write holder.json from stdin, then print `compose-present`/`compose-absent` and the history file. Exit 3: the
   * lock is held (its holder.json printed); 4: it could not be made and is not there (a holder released it just now, or no permission); 5:
   * holder.json could not be written (the half-made lock is removed); any other code: the directory could not be made.
   */
  lockAcquire: (l: Layout) => [
    "sh",
    "-c",
    'mkdir -p -m 0700 -- "$1" || exit; if ! mkdir -m 0700 -- "$2"; then if test -e "$2"; then cat -- "$2/holder.json" 2>/dev/null; echo; ' +
      `${leaseFactsScript('"$2"')}; exit ${LOCK_EXIT.held}; fi; exit ${LOCK_EXIT.absent}; fi; ` +
      `if ! (umask 077 && cat > "$2/holder.json"); then rm -rf -- "$2"; exit ${LOCK_EXIT.holderUnwritable}; fi; touch -- "$2/lease"; ` +
      'if test -e "$3"; then echo compose-present; else echo compose-absent; fi; cat -- "$4" 2>/dev/null; exit 0',
    "hamalog-lock",
    l.dir,
    l.lock,
    l.compose,
    l.history,
  ],
  /** --break-lock: print holder.json (if any) and remove the lock whoever holds it. Exit 4: there was no lock. */
  lockBreak: (l: Layout) => [
    "sh",
    "-c",
    `test -e "$1" || exit ${LOCK_EXIT.absent}; cat -- "$1/holder.json" 2>/dev/null; rm -rf -- "$1"`,
    "hamalog-break-lock",
    l.lock,
  ],
  /**
   * Log out of the deploy's Docker config (when `registry` is given; best-effort), then remove the lock only if
   * holder.json still carries this attempt's id: a deploy whose lock was broken (and maybe taken by another deploy)
   * must not delete the new holder's lock. Exit 0 released, 3 held by someone else (holder.json printed), 4 already gone.
   */
  lockRelease: (l: Layout, id: string, logoutRegistry?: string) => [
    "sh",
    "-c",
    'if [ -n "$4" ]; then env DOCKER_CONFIG="$3" docker logout "$4" >/dev/null 2>&1; fi; ' +
      `test -d "$1" || exit ${LOCK_EXIT.absent}; grep -qF -- "$2" "$1/holder.json" 2>/dev/null || { cat -- "$1/holder.json" 2>/dev/null; exit ${LOCK_EXIT.held}; }; rm -rf -- "$1"`,
    "hamalog-unlock",
    l.lock,
    lockIdField(id),
    l.dockerConfig,
    logoutRegistry ?? "",
  ],
  cat: (path: string) => ["cat", "--", path],
  /** Write stdin to `path` (mode 0600). The script is a constant; the path arrives as $1, never parsed. */
  write: (path: string) => ["sh", "-c", 'umask 077 && cat > "$1"', "hamalog-write", path],
  append: (path: string) => ["sh", "-c", 'umask 077 && cat >> "$1"', "hamalog-append", path],
  /**
   * Append stdin to the history, then print it and this repository's images (what prune needs), each after its
   * mark line. The listing comes even when the append failed; the exit code is the append's.
   */
  appendAndList: (l: Layout, name: string) => [
    "sh",
    "-c",
    'a=0; (umask 077 && cat >> "$1") || a=$?; echo ' +
      HISTORY_MARK +
      '; cat -- "$1" 2>/dev/null; echo ' +
      IMAGES_MARK +
      "; " +
      'docker image ls --digests --format "$3" "$2"; exit "$a"',
    "hamalog-history",
    l.history,
    name,
    IMAGE_LS_FORMAT,
  ],
  move: (from: string, to: string) => ["mv", "-f", "--", from, to],
  copy: (from: string, to: string) => ["cp", "-p", "--", from, to],
  /** The password/token arrives on stdin; never in argv. Steps `config-dir` (mkdir), then `login`. */
  login: (l: Layout, registry: string, username: string) => [
    "sh",
    "-c",
    `echo ${STEP_MARK}config-dir >&2; mkdir -p -m 0700 -- "$1" || exit; echo ${STEP_MARK}login >&2; ` +
      'exec env DOCKER_CONFIG="$1" docker login --username "$2" --password-stdin "$3"',
    "hamalog-login",
    l.dockerConfig,
    username,
    registry,
  ],
  /**
   * Check the rendered file with `docker compose config`, keep the running file as `previous` (when given), then
   * rename the rendered file into place. Steps `config`, `keep`, `rename`.
   */
  switchCompose: (project: string, l: Layout, keepPrevious: boolean) => [
    "sh",
    "-c",
    `echo ${STEP_MARK}config >&2; docker compose --project-name "$1" --file "$2" config --quiet || exit; ` +
      `if [ -n "$4" ]; then echo ${STEP_MARK}keep >&2; cp -p -- "$3" "$4" || exit; fi; ` +
      `echo ${STEP_MARK}rename >&2; mv -f -- "$2" "$3"`,
    "hamalog-switch",
    project,
    l.next,
    l.compose,
    keepPrevious ? l.previous : "",
  ],
  /**
   * Pull `name@digest` with the deploy's login unless it is on the host already (then print IMAGE_PRESENT); compose
   * then finds it locally (its pull policy is `missing`).
   */
  pullMissing: (l: Layout, ref: string, stallSeconds = 0) => [
    "sh",
    "-c",
    `if docker image inspect "$2" >/dev/null 2>&1; then echo ${IMAGE_PRESENT}; exit 0; fi; ` +
      `if [ "$3" -gt 0 ] && command -v script >/dev/null 2>&1; then ${PULL_WATCHED}; fi; ` +
      'exec env DOCKER_CONFIG="$1" docker pull --quiet "$2"',
    "hamalog-pull",
    l.dockerConfig,
    ref,
    String(stallSeconds),
  ],
  imagePresent: (ref: string) => ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
  imageDigests: (name: string) => ["docker", "image", "ls", "--digests", "--format", IMAGE_LS_FORMAT, name],
  /** Remove each image; prints the references that were removed. */
  imagesRemove: (refs: readonly string[]) => [
    "sh",
    "-c",
    'for ref in "$@"; do docker image rm "$ref" >/dev/null 2>&1 && echo "$ref"; done; exit 0',
    "hamalog-prune",
    ...refs,
  ],
  inspectState: (id: string) => ["docker", "inspect", "--format", "{{json .State}}", id],
  manifestInspect: (l: Layout, ref: string, insecure: boolean) =>
    withConfig(l, ["docker", "manifest", "inspect", ...(insecure ? ["--insecure"] : []), ref]),
  compose: (project: string, file: string, args: string[]) => [
    "docker",
    "compose",
    "--project-name",
    project,
    "--file",
    file,
    ...args,
  ],
};

/** The compose subcommands the procedure uses. */
export const composeArgs = {
  /** `removeOrphans`: leaving blue/green, the proxy and the colours go (they hold the public port). */
  up: (service: string, waitTimeout: number, removeOrphans = false) => [
    "up",
    "--detach",
    "--wait",
    "--wait-timeout",
    String(waitTimeout),
    ...(removeOrphans ? ["--remove-orphans"] : []),
    service,
  ],
  stop: (service: string) => ["stop", service],
  ps: () => ["ps", "--all"],
  psJson: (service: string) => ["ps", "--all", "--format", "json", service],
  id: (service: string) => ["ps", "--all", "--quiet", service],
  logs: (service: string, lines: number) => ["logs", "--no-color", "--tail", String(lines), service],
};

/** Docker reports `x86_64`/`aarch64`; images say `amd64`/`arm64`. */
export function hostPlatform(dockerInfo: string): string {
  const [os = "linux", arch = ""] = dockerInfo.trim().split("/");
  const map: Record<string, string> = {
    x86_64: "amd64",
    aarch64: "arm64",
    armv7l: "arm/v7",
    armv6l: "arm/v6",
    i686: "386",
    i386: "386",
  };
  return `${os}/${map[arch] ?? arch}`;
}
