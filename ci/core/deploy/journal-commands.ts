// The remote commands of the journal, the lock's lease and recovery, as argv arrays (pure builders, quoted by
// shell.ts like every other command; the scripts are constants and every value arrives as "$1" …). Kept apart
// from commands.ts, which holds the deploy's own steps.
import { posix } from "node:path";
import type { Layout } from "./commands.js";

/** Files of the journal and the lease, relative to the deploy directory's layout. */
export interface JournalLayout {
  journal: string;
  journalTmp: string;
  releases: string;
  /** Touched by the heartbeat: its mtime is the lease's last renewal (a touch needs no free blocks). */
  lease: string;
  /** The host-side pid of the heartbeat process: gone means its SSH session is gone. */
  heartbeatPid: string;
}

export function journalLayout(l: Layout): JournalLayout {
  const j = (f: string) => posix.join(l.dir, f);
  return {
    journal: j("journal.json"),
    journalTmp: j(".journal.json.tmp"),
    releases: j("releases"),
    lease: posix.join(l.lock, "lease"),
    heartbeatPid: posix.join(l.lock, "heartbeat.pid"),
  };
}

/** Section marks in cmd.observe's output, each alone on a line. */
export const OBSERVE = {
  journal: "hamalog-journal",
  noJournal: "hamalog-journal-absent",
  history: "hamalog-history",
  containers: "hamalog-containers",
  login: "hamalog-login",
} as const;
const PS_FORMAT = '{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.State}}\t{{.Label "com.docker.compose.service"}}\t{{.Status}}';

/**
 * The liveness line the lock scripts print about a held lock: `hamalog-lease NOW RENEWED PRESENCE` — the host's
 * clock, the lease's last renewal (mtime of `lease`; of the lock directory for a lock from before leases) and whether the holder's heartbeat
 * process still exists (`alive`, `gone`, or `unknown` without a pid file or /proc). Shell text shared by scripts.
 */
export const LEASE_MARK = "hamalog-lease";
const LEASE_FACTS =
  'r=$(stat -c %Y -- "$L/lease" 2>/dev/null || stat -c %Y -- "$L" 2>/dev/null || echo -); p=unknown; ' +
  'if test -s "$L/heartbeat.pid" && test -d /proc/self; then h=$(cat -- "$L/heartbeat.pid"); p=gone; ' +
  'case "$h" in *[!0-9]*|"") ;; *) grep -qF hamalog-heartbeat "/proc/$h/cmdline" 2>/dev/null && p=alive;; esac; fi; ' +
  `echo "${LEASE_MARK} $(date +%s) $r $p"`;

export const journalCmd = {
  /**
   * Replace journal.json atomically: stdin to a temp file, then rename over it. Fails without touching the old one.
   * Only a file of exactly `bytes` bytes is renamed: a client killed mid-write closes the channel, which `cat` sees
   * as a normal end of its input, and a truncated journal must never replace a whole one.
   */
  write: (l: Layout, bytes: number) => {
    const j = journalLayout(l);
    return [
      "sh",
      "-c",
      'umask 077; cat > "$1" && n=$(wc -c < "$1") && [ $n -eq "$3" ] && mv -f -- "$1" "$2" && exit 0; c=$?; rm -f -- "$1"; exit "$c"',
      "hamalog-journal",
      j.journalTmp,
      j.journal,
      String(bytes),
    ];
  },
  /**
   * Write a release's compose file (stdin) under releases/ atomically, after `docker compose config` accepted it.
   * Steps `config`, `rename`. The project directory stays the deploy directory, so relative paths in the
   * template mean what they meant in compose.yaml.
   */
  writeRelease: (l: Layout, project: string, file: string) => {
    const dest = posix.join(l.dir, file);
    return [
      "sh",
      "-c",
      'umask 077; mkdir -p -m 0700 -- "$(dirname -- "$4")" && cat > "$3" || { c=$?; rm -f -- "$3"; exit "$c"; }; ' +
        'echo hamalog-step:config >&2; docker compose --project-name "$1" --project-directory "$2" --file "$3" config --quiet || { c=$?; rm -f -- "$3"; exit "$c"; }; ' +
        'echo hamalog-step:rename >&2; mv -f -- "$3" "$4"',
      "hamalog-release",
      project,
      l.dir,
      `${dest}.tmp`,
      dest,
    ];
  },
  /**
   * What reconciliation needs, in one session: the journal (or, when there is none, the history and whether
   * compose.yaml exists, to adopt a host deployed before the journal), the compose project's containers, and
   * whether the deploy's Docker config still holds a credential.
   */
  observe: (l: Layout, project: string) => {
    const j = journalLayout(l);
    return [
      "sh",
      "-c",
      `if test -e "$1"; then echo ${OBSERVE.journal}; cat -- "$1" || exit; else echo ${OBSERVE.noJournal}; ` +
        'test -e "$3" && echo compose-present; ' +
        `echo ${OBSERVE.history}; cat -- "$2" 2>/dev/null; fi; echo; echo ${OBSERVE.containers}; ` +
        'docker ps --all --no-trunc --filter "label=com.docker.compose.project=$4" --format "$5" || exit; ' +
        `echo ${OBSERVE.login}; if grep -qs '"auth"' "$6/config.json"; then echo yes; else echo no; fi`,
      "hamalog-observe",
      j.journal,
      l.history,
      l.compose,
      project,
      PS_FORMAT,
      l.dockerConfig,
    ];
  },
  /**
   * The lease's heartbeat: one process per deploy on the host, fed a line on stdin by the client every few
   * seconds; each line renews the lease (touch). It ends when stdin ends — the client closed it, died, or the
   * connection dropped — or when the lock is no longer this attempt's. Its pid file lets the next run see a
   * holder that is provably gone.
   */
  heartbeat: (l: Layout, idField: string) => [
    "sh",
    "-c",
    'grep -qF -- "$2" "$1/holder.json" 2>/dev/null || exit 3; echo $$ > "$1/heartbeat.pid.tmp" && mv -f -- "$1/heartbeat.pid.tmp" "$1/heartbeat.pid"; ' +
      'while IFS= read -r _; do grep -qF -- "$2" "$1/holder.json" 2>/dev/null || exit 0; touch -c -- "$1/lease"; done',
    "hamalog-heartbeat",
    l.lock,
    idField,
  ],
  /** Print the lease facts of the lock (exit 4 when there is no lock): what status shows. */
  leaseFacts: (l: Layout) => [
    "sh",
    "-c",
    `L="$1"; test -d "$L" || exit 4; cat -- "$L/holder.json" 2>/dev/null; echo; ${LEASE_FACTS}`,
    "hamalog-lease",
    l.lock,
  ],
  /**
   * Take over a stale lock in place: `takeover` (mkdir, atomic) makes sure one run does it; holder.json must
   * still name the stale attempt (`staleIdField`; empty: it had none), else someone else got there first (exit 3).
   * The new holder.json comes on stdin. Then, like cmd.lockAcquire: compose-present/absent and the history.
   */
  lockTakeover: (l: Layout, staleIdField: string) => [
    "sh",
    "-c",
    'L="$1"; mkdir -- "$L/takeover" 2>/dev/null || exit 3; ' +
      'if [ -n "$2" ]; then grep -qF -- "$2" "$L/holder.json" 2>/dev/null; else ! test -s "$L/holder.json"; fi || { rmdir -- "$L/takeover"; exit 3; }; ' +
      'if ! (umask 077 && cat > "$L/holder.json.tmp" && mv -f -- "$L/holder.json.tmp" "$L/holder.json"); then rmdir -- "$L/takeover"; exit 5; fi; ' +
      'rm -f -- "$L/heartbeat.pid"; touch -- "$L/lease"; rmdir -- "$L/takeover"; ' +
      'if test -e "$3"; then echo compose-present; else echo compose-absent; fi; cat -- "$4" 2>/dev/null; exit 0',
    "hamalog-takeover",
    l.lock,
    staleIdField,
    l.compose,
    l.history,
  ],
  /**
   * The lock is still this attempt's (after a reconnect): renew its lease. Exit 3 with the holder printed when
   * another run took it over meanwhile.
   */
  reclaim: (l: Layout, idField: string) => [
    "sh",
    "-c",
    'grep -qF -- "$2" "$1/holder.json" 2>/dev/null || { cat -- "$1/holder.json" 2>/dev/null; exit 3; }; touch -c -- "$1/lease"',
    "hamalog-reclaim",
    l.lock,
    idField,
  ],
  /** Keep a pre-journal host's compose.yaml as the adopted live release's file. */
  adopt: (l: Layout, file: string) => [
    "sh",
    "-c",
    'mkdir -p -m 0700 -- "$(dirname -- "$2")" && cp -p -- "$1" "$2"',
    "hamalog-adopt",
    l.compose,
    posix.join(l.dir, file),
  ],
  /** compose.yaml as a copy of the live release's file (replaced atomically), for people in the directory. */
  mirror: (l: Layout, file: string) => [
    "sh",
    "-c",
    'umask 077; cp -- "$1" "$2.tmp" && mv -f -- "$2.tmp" "$2" || { c=$?; rm -f -- "$2.tmp"; exit "$c"; }',
    "hamalog-mirror",
    posix.join(l.dir, file),
    l.compose,
  ],
  /** Read the journal (exit 4: there is none yet). */
  readJournal: (l: Layout) => [
    "sh",
    "-c",
    'test -e "$1" || exit 4; cat -- "$1"',
    "hamalog-read-journal",
    journalLayout(l).journal,
  ],
  removeContainers: (ids: readonly string[]) => ["docker", "rm", "--force", ...ids],
  /**
   * Remove the project's containers compose left under a temporary name (`<12 hex>_<name>`) when it was stopped
   * mid-replacement; prints their names. Without this, the next `up` removes the good container and then fails
   * on the name conflict.
   */
  removeTempContainers: (project: string) => [
    "sh",
    "-c",
    'docker ps --all --no-trunc --filter "label=com.docker.compose.project=$1" --format "{{.ID}} {{.Names}}" | ' +
      "grep -E '^[0-9a-f]+ /?[0-9a-f]{12}_' | " +
      'while read -r id name; do docker rm --force "$id" >/dev/null && echo "$name"; done; exit 0',
    "hamalog-remove-temp",
    project,
  ],
  logout: (l: Layout, registry: string) => ["env", `DOCKER_CONFIG=${l.dockerConfig}`, "docker", "logout", registry],
  /** Remove release files nobody references any more (prune). */
  removeFiles: (l: Layout, files: readonly string[]) => [
    "sh",
    "-c",
    'cd -- "$1" || exit; shift; rm -f -- "$@"',
    "hamalog-prune-files",
    l.dir,
    ...files,
  ],
  listReleases: (l: Layout) => [
    "sh",
    "-c",
    'cd -- "$1" 2>/dev/null && ls -1 -- releases 2>/dev/null; exit 0',
    "hamalog-releases",
    l.dir,
  ],
  /** compose with the deploy directory as the project directory, whichever release file runs. */
  compose: (l: Layout, project: string, file: string, args: readonly string[]) => [
    "docker",
    "compose",
    "--project-name",
    project,
    "--project-directory",
    l.dir,
    "--file",
    posix.join(l.dir, file),
    ...args,
  ],
};

/** LEASE_FACTS with the lock's path, for the lock-acquire script's "held" branch. */
export const leaseFactsScript = (lockVar: string) => `L=${lockVar}; ${LEASE_FACTS}`;
