// The host agent: one POSIX sh script that every deploy installs in DIR/.hamalog/ (named by its content hash) and
// runs for everything that touches the host. Why a script on the host, not commands from the client: what changes
// what serves (a replacement, the switch, a restore) must run to its end even when the client is killed or its
// connection drops, and the lock must fence a client that lost it. So:
// - every mutation runs under one flock (`DIR/.hamalog/mutex`) and first checks the caller's fencing token
//   against the lock's (`lock.token`); a holder that lost its lock changes nothing (exit 75);
// - a critical step runs detached (setsid, its own session) and writes its exit code to a file: the client waits
//   for that file, but the step does not need the client;
// - the lock's heartbeat is a process on the host fed a line every few seconds by the client: when its input ends
//   (client killed, connection dropped), it reads `abort`, or no line comes for the lease, it runs the
//   recovery the client wrote with the journal (`recover.sh`) — detached, under the flock, fenced — and frees the
//   lock. The recovery is computed by the client (recovery.ts, pure) for each journal it writes.
// Every value arrives as an argument or on stdin (a tar bundle of files); nothing is spliced into script text.
// The script is dash/busybox-ash compatible and needs flock, timeout and setsid (util-linux/coreutils/busybox).
import { createHash } from "node:crypto";
import { HOST_PARTS } from "./parts.js";

/** Exit codes the client reads by name. */
export const AGENT_EXIT = {
  ok: 0,
  /** The lock is held by someone else (holder and lease printed). */
  held: 3,
  /** The bundle on stdin did not arrive whole (nothing was installed). */
  torn: 74,
  /** The caller's token is not the lock's any more: another run took the lock over; nothing was changed. */
  fenced: 75,
  /** The flock could not be had in time (a critical step of another run still holds it). */
  busy: 73,
  /** Unknown op (a client/agent version mismatch: a bug). */
  usage: 64,
  /** A recovery whose steps ran but whose journal could not be written (a read-only deploy directory). */
  unrecorded: 76,
} as const;

/** Lines the agent prints to split its output into sections. */
export const SECTION = "hamalog-section ";
/** A step announced on stderr before it runs (a failure names the step that was in flight). */
export const STEP_MARK = "hamalog-step:";

const SCRIPT = String.raw`# hamalog host agent: installed and run by hamalog (ci/core/deploy/host/agent.ts); do not edit.
set -u
D=$1; OP=$2; shift 2
H=$D/.hamalog
STAGE=""
# Where ops stage their bundles and detached steps leave their output and exit code: .hamalog/ops, or (see use_ops)
# a directory of this user's under $TMPDIR; a detached step inherits its caller's choice.
OPS=${"$"}{HAMALOG_OPS:-$H/ops}
A=$H/$(basename -- "$0")
umask 077

section() { printf 'hamalog-section %s\n' "$1"; }
announce() { printf 'hamalog-step:%s\n' "$1" >&2; }
nap() { sleep 0.05 2>/dev/null || sleep 1; }
mtime() { stat -c %Y -- "$1" 2>/dev/null || echo 0; }
# A process that runs: kill -0 also answers for a zombie, which a PID 1 that does not reap (a container's shell, a
# sandbox) keeps for ever — an exited heartbeat would hold its lock until its lease ran out.
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
fenced() { [ "$(cat -- "$H/lock.token" 2>/dev/null)" = "$1" ]; }
# The flock; on a read-only deploy directory through a read-only descriptor (flock needs none other): a failing run's
# recovery must still get it.
mutex() { if [ -w "$H/mutex" ] || [ ! -e "$H/mutex" ]; then exec 9>>"$H/mutex"; else exec 9<"$H/mutex"; fi && flock -w "$1" 9; }
# .hamalog/ops, or when the deploy directory cannot be written (remounted read-only under a run) a directory of this
# user's under $TMPDIR named after it, so that a recovery can still be staged, run detached and waited for.
use_ops() {
  mkdir -p -m 0700 -- "$H/ops" 2>/dev/null
  if [ -w "$H/ops" ]; then OPS=$H/ops; else
    OPS=${"$"}{TMPDIR:-/tmp}/hamalog-ops-$(printf '%s' "$D" | cksum | cut -d' ' -f1)
    if ! { mkdir -p -m 0700 -- "$OPS" && [ -O "$OPS" ] && [ ! -L "$OPS" ]; }; then
      echo "no place to stage this op: $H/ops and $OPS cannot be used" >&2; return 70
    fi
    echo "WARNING: $H/ops cannot be written (a read-only file system?): staging in $OPS" >&2
  fi
  HAMALOG_OPS=$OPS; export HAMALOG_OPS
}
# Each release file names only its own services: the others of the project are not orphans to warn about.
compose() { COMPOSE_IGNORE_ORPHANS=1 docker compose --project-name "$P" --project-directory "$D" "$@"; }
# compose with a release's files: FILE (relative to D) and its env file ("" when none)
composef() { f=$1; e=$2; shift 2; if [ -n "$e" ]; then compose --file "$D/$f" --env-file "$D/$e" "$@"; else compose --file "$D/$f" "$@"; fi; }
ids_of() { docker ps --all --quiet --no-trunc --filter "label=com.docker.compose.project=$P" --filter "label=com.docker.compose.service=$1"; }

# The lease rule, the one place it lives: a lock is stale when its heartbeat process is gone, or when the lease was
# not renewed for LEASE seconds. Sets STALE and WHY, prints the facts line status shows.
judge() {
  n=$(date +%s); r=$(mtime "$H/lease"); p=unknown
  if [ -s "$H/heartbeat.pid" ]; then
    if alive "$(cat -- "$H/heartbeat.pid")"; then p=alive; else p=gone; fi
  fi
  idle=$((n - r)); STALE=no; WHY="its lease was renewed $idle s ago"
  if [ "$p" = gone ]; then STALE=yes; WHY="its heartbeat on the host is gone"
  elif [ "$idle" -gt "$1" ]; then STALE=yes; WHY="its lease expired (not renewed for $idle s > $1 s)"; fi
  printf 'hamalog-lease %s %s %s %s %s\n' "$n" "$r" "$p" "$STALE" "$WHY"
}

release_lock() { rm -f -- "$H/lock.token" "$H/lock.json" "$H/lease" "$H/heartbeat.pid" "$H/recover.sh"; rm -rf -- "$H/recover"; }

observe() { # PROJECT IMAGE_NAME LEASE
  section journal-hash; journal_hash
  section journal; cat -- "$D/journal.json" 2>/dev/null
  section lock
  if [ -e "$H/lock.token" ]; then cat -- "$H/lock.json" 2>/dev/null; echo; judge "$3"; fi
  section containers
  docker ps --all --no-trunc --filter "label=com.docker.compose.project=$1" --format \
    '{{.ID}}	{{.Names}}	{{.Image}}	{{.State}}	{{.Label "com.docker.compose.service"}}	{{.Status}}	{{.Label "com.docker.compose.config-hash"}}	{{.Label "hamalog.proxy-config"}}' || return
  section compose-file; [ ! -e "$D/compose.yaml" ] || echo present
  section caddy; head -n 1 -- "$D/proxy/Caddyfile" 2>/dev/null
  section proxy-ports
  px=$(docker ps --quiet --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=hamalog-proxy" | head -n 1)
  [ -z "$px" ] || docker port "$px" 2>/dev/null
  # Image ids as well as names: a container whose image lost its name (re-tagged, pushed from this engine) shows
  # the id in ps, and is still matched to its release through them.
  section container-images
  x=$(docker ps --all --quiet --no-trunc --filter "label=com.docker.compose.project=$1")
  [ -z "$x" ] || docker inspect --format '{{.Id}} {{.Image}}' $x 2>/dev/null
  section images; [ -z "$2" ] || docker image ls --digests --no-trunc --format '{{.Repository}} {{.Digest}} {{.ID}}' "$2" 2>/dev/null
  section accessories; cat -- "$H/accessories" 2>/dev/null
  section releases; ls -1 -- "$D/releases" 2>/dev/null
  section logins; for x in "$H"/docker-* "$D/.docker"; do [ -e "$x" ] && printf '%s\n' "$x"; done
  section history; tail -n 500 -- "$D/history.jsonl" 2>/dev/null
  # A strategy's own observers (host/parts.ts) add their sections, e.g. swarm's services and tasks.
  for o in ${"$"}{OBSERVERS:-}; do "$o" "$1"; done
  section end
}

op_probe() { # WANT_PLATFORM PROJECT IMAGE_NAME LEASE  (run from memory by the bootstrap: nothing in the deploy directory)
  # docker info and docker compose version (~0.1 s each) run while observe does, into a private temp directory;
  # their sections are printed last (probe_tail, the last observer). compose is the app's runner for recreate and
  # blue/green (the client refuses a host without it); swarm needs none.
  PT=$(mktemp -d "${"$"}{TMPDIR:-/tmp}/hamalog-probe.XXXXXX") || exit
  trap 'rm -rf -- "$PT"' EXIT; trap 'rm -rf -- "$PT"; exit 143' HUP INT TERM
  { docker compose version > "$PT/compose" 2>&1 || echo "hamalog-no-compose" >> "$PT/compose"; } &
  if [ "$1" = 1 ]; then { docker info --format '{{.OSType}}/{{.Architecture}}' > "$PT/info" 2> "$PT/info.err"; echo "$?" > "$PT/info.rc"; } & fi
  section tools; for t in flock timeout setsid tar sha256sum; do command -v "$t" >/dev/null 2>&1 || printf '%s\n' "$t"; done
  section memory; sed -n 's/^MemAvailable: *\([0-9]*\) kB$/\1/p' /proc/meminfo 2>/dev/null
  OBSERVERS="${"$"}{OBSERVERS:-} probe_tail"
  observe "$2" "$3" "$4"
}

probe_tail() {
  wait
  section compose; cat -- "$PT/compose"
  section platform
  if [ -e "$PT/info.rc" ]; then
    if [ "$(cat -- "$PT/info.rc")" != 0 ]; then announce info; cat -- "$PT/info.err" >&2; exit 1; fi
    cat -- "$PT/info"
  fi
}

op_observe() { P=$1; observe "$1" "$2" "$3"; }

# Take the lock (a stale one is taken over with a new token). The bundle holds the holder (holder.json)
# and, when the client could plan its attempt from what the probe showed, the attempt's files and journal: they are
# installed under the lock only if the journal is still the one the client planned from (EXPECT, its sha256), so
# a deploy costs one command less; otherwise the client reconciles and prepares separately.
op_lock() { # STAGE LEASE WAIT FORCE PROJECT IMAGE_NAME EXPECT ; the bundle unpacked by LOCK_BOOTSTRAP in STAGE
  STAGE=$1; shift
  holder=$(cat -- "$STAGE/holder.json")
  if ! mutex "$2"; then rm -rf -- "$STAGE"; section busy; cat -- "$H/lock.json" 2>/dev/null; echo; exit 73; fi
  note=""
  if [ -e "$H/lock.token" ]; then
    facts=$(judge "$1")
    judge "$1" >/dev/null
    if [ "$STALE" = no ] && [ "$3" != 1 ]; then
      rm -rf -- "$STAGE"; section held; cat -- "$H/lock.json" 2>/dev/null; echo; printf '%s\n' "$facts"; exit 3
    fi
    # Three lines: whose it was, why it could be taken, and whether it was stale or broken (--break-lock).
    how=stale; [ "$STALE" = yes ] || how=broken
    note=$(printf '%s\n%s\n%s' "$(head -n 1 -- "$H/lock.json" 2>/dev/null)" "$WHY" "$how")
  fi
  t=$(( $(cat -- "$H/fence" 2>/dev/null || echo 0) + 1 ))
  printf '%s\n' "$t" > "$H/fence.tmp" && mv -f -- "$H/fence.tmp" "$H/fence" || exit 5
  printf '%s\n' "$holder" | sed "1s/^{/{\"token\":$t,/" > "$H/lock.json.tmp" && mv -f -- "$H/lock.json.tmp" "$H/lock.json" || exit 5
  : > "$H/lease"; rm -f -- "$H/heartbeat.pid"
  printf '%s\n' "$t" > "$H/lock.token.tmp" && mv -f -- "$H/lock.token.tmp" "$H/lock.token" || exit 5
  prepared=no
  if [ -n "$6" ] && [ -d "$STAGE/files" ] && [ -z "$note" ] && [ "$(journal_hash)" = "$6" ]; then
    if install_stage; then prepared=yes; fi
  fi
  rm -rf -- "$STAGE"
  section token; printf '%s\n' "$t"
  section prepared; printf '%s\n' "$prepared"
  if [ -n "$note" ]; then section took-over; printf '%s\n' "$note"; fi
  # Prepared: the journal was the one probed a moment ago, so the client keeps the probe's view of the rest and
  # needs only the journal and the lease again (not a second round of docker calls).
  if [ "$prepared" = yes ]; then observe_journal "$1"; else observe "$4" "$5" "$1"; fi
}

observe_journal() { # LEASE
  section journal-hash; journal_hash
  section journal; cat -- "$D/journal.json" 2>/dev/null
  section lock; cat -- "$H/lock.json" 2>/dev/null; echo; judge "$1"
  section end
}

journal_hash() { if [ -e "$D/journal.json" ]; then sha256sum < "$D/journal.json" | cut -c1-64; else echo none; fi; }

op_unlock() { # TOKEN
  mutex 60 || exit 73
  fenced "$1" || exit 75
  release_lock
}

# The heartbeat: renews the lease for each line; ends on "abort", on end of input, or when no line came for LEASE
# seconds — then, if the lock is still this token's, the recovery runs on the host (detached) and frees the lock.
op_heartbeat() { # TOKEN LEASE
  fenced "$1" || exit 3
  printf '%s\n' "$$" > "$H/heartbeat.pid.tmp" && mv -f -- "$H/heartbeat.pid.tmp" "$H/heartbeat.pid"
  why=gone
  while :; do
    l=$(timeout "$2" sh -c 'IFS= read -r l && printf "%s" "$l"'); rc=$?
    fenced "$1" || exit 0
    if [ "$rc" -eq 0 ]; then
      if [ "$l" = abort ]; then why=abort; break; fi
      touch -c -- "$H/lease"; continue
    fi
    if [ "$rc" -eq 124 ]; then why=silent; fi
    break
  done
  detach "$1" "heartbeat-$1-$why" recover "$why"
}

detach() { # TOKEN NAME OP ARGS... : run OP under the flock in its own session; exit code in $OPS/NAME.rc
  t=$1; n=$2; shift 2
  use_ops || return
  rm -f -- "$OPS/$n.rc"
  ( setsid sh "$A" "$D" _exec "$t" "$n" "$STAGE" "$@" </dev/null >"$OPS/$n.out" 2>"$OPS/$n.err" 9>&- & )
}

# From the client: unpack the bundle on stdin, then run OP (detached when DETACH=1, waiting for its exit code).
op_run() { # TOKEN PROJECT NAME DETACH OP ARGS... ; stdin: a tar bundle
  t=$1; P=$2; n=$3; det=$4; shift 4
  use_ops || exit
  STAGE=$(mktemp -d "$OPS/stage.XXXXXX") || exit
  if ! tar -x -o -f - -C "$STAGE" 2>"$STAGE.err"; then
    echo "the files for $n did not arrive whole ($(cat -- "$STAGE.err")): nothing was installed" >&2
    rm -rf -- "$STAGE" "$STAGE.err"; exit 74
  fi
  rm -f -- "$STAGE.err"
  export P
  if [ "$det" != 1 ]; then exec sh "$A" "$D" _exec "$t" "" "$STAGE" "$@"; fi
  detach "$t" "$n" "$@" || exit
  # Until its exit code is there; a step that vanished without one (killed with its host's processes) ends the wait.
  while [ ! -e "$OPS/$n.rc" ]; do
    nap
    [ -e "$OPS/$n.rc" ] && break
    if [ -s "$OPS/$n.pid" ] && ! alive "$(cat -- "$OPS/$n.pid")"; then
      [ -e "$OPS/$n.rc" ] || { echo "the step $n ended without an exit code" >&2; exit 70; }
    fi
    [ -d "$OPS" ] || { echo "the deploy directory went away while $n ran" >&2; exit 70; }
  done
  cat -- "$OPS/$n.out"; cat -- "$OPS/$n.err" >&2
  rc=$(cat -- "$OPS/$n.rc"); rm -f -- "$OPS/$n.out" "$OPS/$n.err" "$OPS/$n.rc"
  exit "$rc"
}

op__exec() { # TOKEN NAME STAGE OP ARGS...
  t=$1; n=$2; STAGE=$3; shift 3
  [ -z "$n" ] || echo "$$" > "$OPS/$n.pid"
  rc=0
  if ! mutex 3600; then rc=73
  elif ! fenced "$t"; then
    if [ -e "$H/lock.token" ]; then echo "the lock is no longer this run's (token $t; now $(cat -- "$H/lock.token")): another run took it over — nothing was changed" >&2
    else echo "the lock is no longer this run's (token $t; it is free now): the host recovered after this run went silent, or another run came and went — nothing was changed" >&2; fi
    rc=75
  else
    install_stage || rc=$?
    # A recovery whose files could not be installed (a read-only deploy directory) runs the one the host already
    # has, written with the journal before the step it undoes; its journal and history writes fail and say so.
    if [ "$rc" -ne 0 ] && [ "$1" = recover ]; then
      echo "WARNING: the recovery's files could not be installed: running the recovery the host already has" >&2; rc=0
    fi
    if [ "$rc" -eq 0 ]; then
      command -v "step_$1" >/dev/null 2>&1 || { echo "unknown agent step $1" >&2; rc=64; }
    fi
    if [ "$rc" -eq 0 ]; then o=$1; shift; "step_$o" "$@"; rc=$?; fi
  fi
  [ -z "$STAGE" ] || rm -rf -- "$STAGE"
  if [ -n "$n" ]; then printf '%s\n' "$rc" > "$OPS/$n.rc.tmp" && mv -f -- "$OPS/$n.rc.tmp" "$OPS/$n.rc"; rm -f -- "$OPS/$n.pid"; fi
  exit "$rc"
}

# Install what the bundle carries: files/ into the deploy directory (each renamed into place: whole or not at all),
# journal.json last (it names the rest), then history.add appended to history.jsonl.
install_stage() {
  [ -n "$STAGE" ] && [ -d "$STAGE/files" ] || return 0
  (cd -- "$STAGE/files" && find . -type f ! -path ./journal.json) | while IFS= read -r f; do
    f=${"$"}{f#./}; mkdir -p -m 0700 -- "$(dirname -- "$D/$f")" && mv -f -- "$STAGE/files/$f" "$D/$f" || exit 1
    case $f in proxy/*) chmod 0644 -- "$D/$f";; esac
  done || { echo "installing the files failed" >&2; return 70; }
  # Modes the client asked for (files a container reads, e.g. a bind-mounted nginx.conf): "MODE PATH" lines.
  if [ -e "$STAGE/modes" ]; then while read -r m f; do chmod "$m" -- "$D/$f" || return 70; done < "$STAGE/modes"; fi
  if [ -e "$STAGE/files/journal.json" ]; then mv -f -- "$STAGE/files/journal.json" "$D/journal.json" || return 70; fi
  if [ -e "$STAGE/history.add" ]; then cat -- "$STAGE/history.add" >> "$D/history.jsonl" || echo "WARNING: could not append to $D/history.jsonl" >&2; fi
  return 0
}

step_noop() { :; }

# A host deployed before the journal ran compose.yaml: keep it as the adopted live release's file.
step_adopt() { # FILE
  mkdir -p -m 0700 -- "$D/releases" && cp -p -- "$D/compose.yaml" "$D/$1"
}

# Bring SERVICE up from a release file, health-gated by compose (--wait); never recreates what it does not name.
step_up() { # FILE ENVFILE WAIT SERVICE...
  f=$1; e=$2; w=$3; shift 3
  remove_temp
  announce up; composef "$f" "$e" up --detach --no-deps --wait --wait-timeout "$w" "$@"
}

# Start the services that are not running (accessories); running ones are never recreated.
step_start_missing() { # FILE ENVFILE WAIT SERVICE...
  f=$1; e=$2; w=$3; shift 3
  announce start-missing; composef "$f" "$e" up --detach --no-recreate --wait --wait-timeout "$w" "$@"
}

# The accessories (the template's other services): with START=1 those not running are started; a running one whose
# definition changed (compose's config hash differs from its container's label) is recreated only when named in
# RECREATE (comma-separated), else reported ("changed SVC") and left running. Services after a "--" are checked the
# same way but never started or recreated (the ones that reach the app: they start once it is live) — one compose
# config for the whole stack. A container compose started with --no-deps (as these steps do) is labelled with the
# hash of its definition without depends_on: NODEPS (in the stage) is the release file without them, and a label
# equal to either hash is unchanged. OLD: the live release's file, printed when something changed (not
# interpolated: it holds ${"$"}{VAR}, never values) so the client can show the diff.
step_accessories() { # FILE ENVFILE WAIT RECREATE START OLDFILE KEY NODEPS SERVICE... [-- SERVICE...]
  f=$1; e=$2; w=$3; want_re=",$4,"; st=$5; old=$6; key=$7; nd=$8; shift 8
  list=""; for s in "$@"; do [ "$s" = -- ] || list="$list$s,"; done
  [ -n "$list" ] || return 0
  hashes=$(composef "$f" "$e" config --hash "${"$"}{list%,}") || return
  bare=""
  if [ -n "$nd" ]; then
    if [ -n "$e" ]; then bare=$(compose --file "$STAGE/$nd" --env-file "$D/$e" config --hash "${"$"}{list%,}") || return
    else bare=$(compose --file "$STAGE/$nd" config --hash "${"$"}{list%,}") || return; fi
  fi
  # What compose computed for the definitions KEY names (the client's hash of them and their environment): a later
  # deploy with the same KEY whose accessories run with these hashes needs no compose config at all (observe shows it).
  if [ -n "$key" ]; then
    { printf '%s\n' "$key"
      printf '%s\n' "$hashes" | while read -r s h; do printf '%s %s %s\n' "$s" "$h" "$(printf '%s\n' "$bare" | awk -v s="$s" '$1 == s { print $2 }')"; done
    } > "$H/accessories.tmp" && mv -f -- "$H/accessories.tmp" "$H/accessories"
  fi
  # One ps for every running container's service and config hash (not one ps and inspect per accessory).
  running=$(docker ps --filter "label=com.docker.compose.project=$P" --format '{{.Label "com.docker.compose.service"}} {{.Label "com.docker.compose.config-hash"}}') || return
  start=""; again=""; changed=""; only=0
  for s in "$@"; do
    if [ "$s" = -- ]; then only=1; continue; fi
    want=$(printf '%s\n' "$hashes" | awk -v s="$s" '$1 == s { print $2 }')
    wantb=$(printf '%s\n' "$bare" | awk -v s="$s" '$1 == s { print $2 }')
    have=$(printf '%s\n' "$running" | awk -v s="$s" '$1 == s { print $2; exit }')
    if ! printf '%s\n' "$running" | awk -v s="$s" '$1 == s { f = 1 } END { exit !f }'; then
      if [ "$st" = 1 ] && [ "$only" = 0 ]; then start="$start $s"; else printf 'missing %s\n' "$s"; fi
      continue
    fi
    [ "$have" = "$want" ] && continue
    [ -n "$wantb" ] && [ "$have" = "$wantb" ] && continue
    case $only$want_re in 0*",$s,"*) again="$again $s" ;; *) changed="$changed $s" ;; esac
  done
  for s in $changed; do printf 'changed %s\n' "$s"; done
  if [ -n "$start" ]; then
    announce start; composef "$f" "$e" up --detach --no-deps --no-recreate --wait --wait-timeout "$w" $start >&2 || return
    for s in $start; do printf 'started %s\n' "$s"; done
  fi
  if [ "$st" = 1 ] && [ -n "$again" ]; then
    announce recreate; composef "$f" "$e" up --detach --no-deps --force-recreate --wait --wait-timeout "$w" $again >&2 || return
    for s in $again; do printf 'recreated %s\n' "$s"; done
  fi
  if [ -n "$changed" ] && [ -n "$old" ] && [ -e "$D/$old" ]; then section old-file; cat -- "$D/$old"; fi
  return 0
}

# Remove (stop first) every container of these services.
step_remove() { # SERVICE...
  for s in "$@"; do x=$(ids_of "$s") || return; [ -z "$x" ] || docker rm --force $x >/dev/null || return; done
}

step_stop() { # SERVICE...
  for s in "$@"; do x=$(ids_of "$s") || return; [ -z "$x" ] || docker stop $x >/dev/null || return; done
}

step_start() { # SERVICE...
  for s in "$@"; do x=$(ids_of "$s") || return; [ -z "$x" ] || docker start $x >/dev/null || return; done
}

# Containers compose left under a temporary name (<12 hex>_<name>) when it was stopped mid-replacement.
remove_temp() {
  docker ps --all --no-trunc --filter "label=com.docker.compose.project=$P" --format '{{.ID}} {{.Names}}' |
    grep -E '^[0-9a-f]+ /?[0-9a-f]{12}_' | while read -r id name; do docker rm --force "$id" >/dev/null && echo "removed $name (left mid-replacement)" >&2; done
  return 0
}

# The edge proxy: bring it up from FILE when it is not running or its definition changed, then print its ports.
step_proxy_up() { # FILE ENVFILE RECREATE(0|1)
  x=$(docker ps --quiet --filter "label=com.docker.compose.project=$P" --filter "label=com.docker.compose.service=hamalog-proxy" | head -n 1)
  if [ -z "$x" ] || [ "$3" = 1 ]; then announce proxy; composef "$1" "$2" up --detach --no-deps hamalog-proxy >&2 || return; fi
  x=$(docker ps --quiet --filter "label=com.docker.compose.project=$P" --filter "label=com.docker.compose.service=hamalog-proxy" | head -n 1)
  [ -n "$x" ] || { echo "the proxy is not running after up" >&2; return 1; }
  section proxy; printf '%s\n' "$x"; docker port "$x"
}

# Route: the staged Caddyfile replaces proxy/Caddyfile (rename), and a running proxy reloads it; a reload that fails
# puts the old file back (Caddy keeps serving its old routes then).
step_switch() { # STAGED_CADDYFILE (relative to the stage)
  src=$STAGE/$1; dst=$D/proxy/Caddyfile
  mkdir -p -m 0755 -- "$D/proxy" || return; chmod 0644 -- "$src" || return
  if cmp -s -- "$src" "$dst"; then echo unchanged; return 0; fi
  rm -f -- "$D/proxy/.Caddyfile.prev"; [ ! -e "$dst" ] || cp -p -- "$dst" "$D/proxy/.Caddyfile.prev" || return
  announce write; mv -f -- "$src" "$dst" || return
  x=$(docker ps --quiet --filter "label=com.docker.compose.project=$P" --filter "label=com.docker.compose.service=hamalog-proxy" | head -n 1)
  [ -n "$x" ] || return 0
  announce reload
  if docker exec "$x" caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile; then return 0; fi
  r=$?; [ ! -e "$D/proxy/.Caddyfile.prev" ] || mv -f -- "$D/proxy/.Caddyfile.prev" "$dst"; return "$r"
}

# Recovery's route: like switch, from a file under .hamalog/recover/, and the proxy started when it does not run.
step_route() { # CADDYFILE(relative to D) FILE ENVFILE
  mkdir -p -m 0755 -- "$D/proxy" && cp -- "$D/$1" "$D/proxy/.Caddyfile.next" && chmod 0644 -- "$D/proxy/.Caddyfile.next" &&
    mv -f -- "$D/proxy/.Caddyfile.next" "$D/proxy/Caddyfile" || return
  x=$(docker ps --quiet --filter "label=com.docker.compose.project=$P" --filter "label=com.docker.compose.service=hamalog-proxy" | head -n 1)
  if [ -z "$x" ]; then composef "$2" "$3" up --detach --no-deps hamalog-proxy; return; fi
  docker exec "$x" caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile
}

# The migration from recreate when the proxy must take the public port the recreate-layout app holds: that app's
# one stop, then the proxy recreated with the port. Prints when the port closed and reopened (ms), then the ports.
step_migrate() { # FILE ENVFILE LEGACY_SERVICE
  a=$(date +%s%3N)
  announce stop-legacy; step_stop "$3" || return
  announce proxy
  if ! composef "$1" "$2" up --detach --no-deps --force-recreate hamalog-proxy >&2; then step_start "$3"; return 1; fi
  b=$(date +%s%3N)
  section outage; printf '%s %s\n' "$a" "$b"
  step_proxy_up "$1" "$2" 0
}

# Services that resolved the app's name when they started (nginx does, once): restarted so the name leads to the
# proxy now. Used once, when the proxy takes the name over (the migration) or is recreated.
step_restart() { # SERVICE...
  for s in "$@"; do x=$(ids_of "$s") || return; [ -z "$x" ] || docker restart $x >/dev/null || return; done
}

# After a switch the old colour stays up (warm) until UNTIL (epoch s); then, if nothing changed, it is stopped and
# the journal the client prepared for that moment replaces the current one — only while no run holds the lock and
# the journal is still the one this timer was made for.
step_warm_timer() { # UNTIL SERVICE
  cp -- "$D/journal.json" "$H/warm.expected" 2>/dev/null || return 0
  # fd 9 is this step's flock: the timer must not hold it for the whole window.
  ( setsid sh "$A" "$D" _warm "$1" "$2" "$P" </dev/null >/dev/null 2>&1 9>&- & )
}
op__warm() { # UNTIL SERVICE PROJECT
  P=$3
  while [ "$(date +%s)" -lt "$1" ]; do sleep 1; done
  mutex 600 || exit 0
  [ ! -e "$H/lock.token" ] || exit 0
  cmp -s -- "$D/journal.json" "$H/warm.expected" || exit 0
  [ -e "$H/warm.journal" ] || exit 0
  step_stop "$2" && mv -f -- "$H/warm.journal" "$D/journal.json"
  rm -f -- "$H/warm.expected"
}

# The recovery the client wrote with the journal: its steps, then the journal and history line for the outcome;
# a step that fails leaves the journal naming the attempt (the next run recovers again) and says so in history.
# With KEEP=keep (the next run's reconcile) the lock stays held: that run goes on with its own attempt.
step_recover() { # WHY [KEEP]
  k=${"$"}{2:-}
  if [ -s "$H/recover.sh" ]; then
    if ! . "$H/recover.sh"; then
      [ ! -e "$H/recover/history.failed" ] || cat -- "$H/recover/history.failed" 2>/dev/null >> "$D/history.jsonl"
      [ "$k" = keep ] || release_lock 2>/dev/null
      [ "${"$"}{UNRECORDED:-}" != 1 ] || return 76
      echo "recovery failed; the journal still names the attempt" >&2; return 1
    fi
  fi
  if [ "$k" = keep ]; then rm -f -- "$H/recover.sh"; rm -rf -- "$H/recover"; else release_lock; fi
}
# recover.sh's vocabulary: a step (its name and arguments), the journal and the history line of the outcome.
rstep() { announce "recover-$1"; o=$1; shift; "step_$o" "$@"; }
rjournal() {
  cp -- "$H/recover/journal.json" "$D/journal.json.tmp" 2>/dev/null && mv -f -- "$D/journal.json.tmp" "$D/journal.json" && return
  echo "the journal cannot be written in $D (read-only or full?): what the recovery restored runs, but journal.json still names the attempt and the lock stays until it can be written — then the next deploy or rollback recovers it again" >&2
  UNRECORDED=1; return 1
}
rhistory() { [ ! -e "$H/recover/history.add" ] || cat -- "$H/recover/history.add" >> "$D/history.jsonl"; return 0; }

# The end of a successful attempt: compose.yaml mirrors the live release's file (for people in the directory),
# images and release files no longer needed go, older agents go, then the lock.
step_finish() { # MIRROR WARM_UNTIL WARM_SERVICE REF... -- FILE...
  if [ -n "$1" ]; then cp -- "$D/$1" "$D/.compose.yaml.tmp" && mv -f -- "$D/.compose.yaml.tmp" "$D/compose.yaml" || echo "WARNING: could not refresh $D/compose.yaml" >&2; fi
  wu=$2; ws=$3; shift 3
  announce prune
  while [ $# -gt 0 ] && [ "$1" != -- ]; do docker image rm "$1" >/dev/null 2>&1 && printf 'removed %s\n' "$1"; shift; done
  [ $# -eq 0 ] || shift
  for f in "$@"; do rm -f -- "$D/releases/$f" && printf 'removed releases/%s\n' "$f"; done
  for x in "$H"/agent-*.sh; do [ "$x" = "$A" ] || rm -f -- "$x"; done
  release_lock
  [ -z "$wu" ] || step_warm_timer "$wu" "$ws"
}

# What a killed run leaves behind that nothing else removes: compose's temp-named containers, throwaway registry
# logins (and the login directory of versions before the agent), unpacked bundles.
step_clean() {
  remove_temp
  for x in "$H"/docker-* "$D/.docker"; do [ ! -e "$x" ] || { rm -rf -- "$x" && echo "removed the login left in $x" >&2; }; done
  rm -rf -- "$H"/ops/stage.*
  return 0
}

step_unlock_op() { release_lock; }

# Log in with a throwaway Docker config (the token on stdin), pull REF unless present, log out: the token never
# outlives this command (a leftover directory from a killed one is removed by the next run's reconcile).
op_pull() { # REF STALL REGISTRY USERNAME ; stdin: the registry token (empty: anonymous)
  if docker image inspect "$1" >/dev/null 2>&1; then cat >/dev/null; echo hamalog-image-present; exit 0; fi
  cfg=$(mktemp -d "$H/docker-XXXXXX") || exit
  trap 'rm -rf -- "$cfg"' EXIT HUP INT TERM
  if [ -n "$4" ]; then
    announce login; DOCKER_CONFIG=$cfg docker login --username "$4" --password-stdin "$3" >/dev/null || exit
  else cat >/dev/null; fi
  announce pull
  if [ "$2" -gt 0 ] && command -v script >/dev/null 2>&1; then
    out=$cfg/pull.log
    HAMALOG_REF="$1" DOCKER_CONFIG="$cfg" script -qfec 'docker pull "$HAMALOG_REF"' "$out" </dev/null >/dev/null 2>&1 & p=$!
    # Watched in fifths of a second (a fast pull is not held to a whole one); "idle" counts them.
    last=-1; idle=0; step=0.2; per=5; sleep 0.2 2>/dev/null || { step=1; per=1; }
    while kill -0 "$p" 2>/dev/null; do
      sleep "$step"; size=$(wc -c < "$out")
      if [ "$size" = "$last" ]; then idle=$((idle+1)); else idle=0; last=$size; fi
      if [ "$idle" -ge $(($2 * per)) ]; then kill "$p"; wait "$p" 2>/dev/null; tr '\r' '\n' < "$out" | grep -v '^Script ' | tail -n 3 >&2; echo "no progress for $2 s" >&2; exit 7; fi
    done
    wait "$p"; c=$?
    if [ "$c" -ne 0 ]; then tr '\r' '\n' < "$out" | grep -v '^Script ' | tail -n 5 >&2; fi
    [ -z "$4" ] || DOCKER_CONFIG=$cfg docker logout "$3" >/dev/null 2>&1
    exit "$c"
  fi
  DOCKER_CONFIG=$cfg docker pull --quiet "$1"; c=$?
  [ -z "$4" ] || DOCKER_CONFIG=$cfg docker logout "$3" >/dev/null 2>&1
  exit "$c"
}

# What a failed step looked like, read-only and bounded: each service's container state and health log, its last
# log lines, compose ps — with the project directory and the release's env file, as the deploy ran it.
op_diagnose() { # PROJECT FILE ENVFILE SERVICE...
  P=$1; f=$2; e=$3; shift 3
  for s in "$@"; do
    section "service $s"
    for x in $(ids_of "$s"); do
      docker inspect --format '{{.Name}} state={{.State.Status}} exit={{.State.ExitCode}} oom={{.State.OOMKilled}} error={{.State.Error}}{{if .State.Health}} health={{.State.Health.Status}} streak={{.State.Health.FailingStreak}}{{range .State.Health.Log}}
  check exit {{.ExitCode}}: {{.Output}}{{end}}{{end}}' "$x" 2>&1 | tail -n 12
      docker logs --tail 30 "$x" 2>&1
    done
  done
  section ps; composef "$f" "$e" ps --all 2>&1 | head -n 40
}

`;

/**
 * The agent's dispatch: an op is any `op_NAME` function the script defines (steps run through `run` are `step_NAME`);
 * a strategy's own host functions (swarm.ts's) are appended before it.
 */
const DISPATCH = String.raw`
command -v "op_$OP" >/dev/null 2>&1 || { echo "hamalog agent: unknown op $OP" >&2; exit 64; }
P=${"$"}{P:-}
"op_$OP" "$@"
`;

/** The agent's text as installed on the host: the base, each strategy's own host functions, the dispatch. */
export const AGENT_SCRIPT = [SCRIPT, ...HOST_PARTS, DISPATCH].join("");

/** Its file name on the host: a new version installs beside the old one, so a running agent is never rewritten. */
export const AGENT_FILE = `agent-${createHash("sha256").update(AGENT_SCRIPT).digest("hex").slice(0, 12)}.sh`;

/**
 * The first command of a session, which writes nothing: refuse an unsafe deploy directory (group/other-writable, or
 * holding symlinks: whoever can write there could point the files a deploy writes anywhere), then run the agent's
 * probe from memory (the script arrives on stdin). Exit 6 with `writable MODE`/`symlink NAME` on stderr.
 */
export const BOOTSTRAP =
  'D=$1; A=$D/.hamalog/$2; shift 2; echo hamalog-step:dir >&2; if [ -d "$D" ]; then p=$(ls -ld -- "$D/" | cut -c1-10); ' +
  'case "$p" in ?????w????|????????w?) echo "writable $p" >&2; exit 6;; esac; ' +
  'for f in "$D"/* "$D"/.[!.]* "$D"/..?*; do if [ -L "$f" ]; then echo "symlink ${f##*/}" >&2; exit 6; fi; done; fi; ' +
  's=$(cat) || exit; exec sh -c "$s" "$A" "$D" probe "$@"';

/**
 * The lock, the first command that writes: create the directory and .hamalog/, unpack the bundle on stdin (the
 * agent itself, the holder, maybe the attempt's files), install the agent unless that version is there, then the
 * agent's lock with the unpacked bundle.
 */
export const LOCK_BOOTSTRAP =
  'D=$1; A=$D/.hamalog/$2; shift 2; [ -d "$D" ] || mkdir -p -m 0700 -- "$D" || exit; ' +
  'for x in "$D/.hamalog" "$D/.hamalog/ops"; do [ -d "$x" ] || mkdir -m 0700 -- "$x" || exit; done; ' +
  'S=$(mktemp -d "$D/.hamalog/ops/stage.XXXXXX") || exit; ' +
  'if ! tar -x -o -f - -C "$S" 2>/dev/null || [ ! -s "$S/holder.json" ]; then rm -rf -- "$S"; echo "the lock request did not arrive whole" >&2; exit 74; fi; ' +
  'if [ -s "$A" ]; then rm -f -- "$S/agent.sh"; else chmod 0600 "$S/agent.sh" && mv -f -- "$S/agent.sh" "$A" || exit; fi; ' +
  'exec sh "$A" "$D" lock "$S" "$@"';

export const DIR_UNSAFE_EXIT = 6;
