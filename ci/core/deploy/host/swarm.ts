// The swarm strategy's host functions (ci/core/deploy/swarm.ts), appended to the agent by parts.ts: its observer
// (the stack's services, tasks and nodes as the manager sees them: status, check and place read them), its steps
// under the lock and fenced like every step (the stack deploy with a throwaway registry login, the restore the
// recovery runs, removing the app), and a read-only watch of a rolling update the client follows. Everything asks
// the manager the agent runs on; nothing reaches a worker. Swarm's API fails for ~15 s while managers elect a new
// leader: a read or a deploy that fails that way is retried for GRACE seconds before it counts.
export const SWARM_PART = String.raw`
# ---- swarm (ci/core/deploy/swarm.ts; host/swarm.ts) ----
OBSERVERS="${"$"}{OBSERVERS:-} observe_swarm"
SWARM_NODE_FMT='{{.ID}}	{{.Hostname}}	{{.Status}}	{{.Availability}}	{{.ManagerStatus}}	{{.Self}}'
SWARM_SVC_FMT='{{.Spec.Name}}	{{.ID}}	{{.Spec.TaskTemplate.ContainerSpec.Image}}	{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}global{{end}}	{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}	{{index .Spec.Labels "hamalog.definition"}}	{{index .Spec.TaskTemplate.ContainerSpec.Labels "hamalog.release"}}	{{if .Spec.TaskTemplate.ContainerSpec.Healthcheck}}yes{{end}}	{{if .UpdateStatus}}{{.UpdateStatus.Message}}{{end}}'
SWARM_TASK_FMT='{{.ID}}	{{.ServiceID}}	{{.Slot}}	{{.NodeID}}	{{.Spec.ContainerSpec.Image}}	{{.DesiredState}}	{{.Status.State}}	{{index .Spec.ContainerSpec.Labels "hamalog.release"}}	{{.Status.Timestamp}}	{{.Status.Err}}'

# Only for a deploy directory whose journal names swarm: a compose host pays nothing for it.
observe_swarm() { # STACK
  grep -qs '"swarm"' "$D/journal.json" || return 0
  swarm_snapshot "$1"
}

# One command's output as SECTION, or its error (the last lines) as swarm-error and status 1.
swarm_q() { # SECTION CMD...
  section "$1"; shift
  q=$("$@" 2>&1) && { [ -z "$q" ] || printf '%s\n' "$q"; return 0; }
  section swarm-error; printf '%s\n' "$q" | tail -n 3; return 1
}

# The stack as the manager sees it: this node, the nodes, the stack's services and every task it keeps (history
# included). An API that does not answer is said in swarm-error, never fatal.
swarm_snapshot() { # STACK
  swarm_q swarm-node docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}'
  swarm_q swarm-nodes docker node ls --format "$SWARM_NODE_FMT" || return 0
  ids=$(docker service ls --quiet --filter "label=com.docker.stack.namespace=$1" 2>&1) || { section swarm-error; printf '%s\n' "$ids" | tail -n 3; return 0; }
  if [ -n "$ids" ]; then swarm_q swarm-services docker service inspect --format "$SWARM_SVC_FMT" $ids || return 0; else section swarm-services; fi
  section swarm-tasks
  t=$(docker stack ps --quiet --no-trunc "$1" 2>/dev/null) || t=""
  [ -z "$t" ] || docker inspect --type task --format "$SWARM_TASK_FMT" $t 2>/dev/null
  section swarm-end
}

# Follow the app service's update until every task runs RELEASE (running: Swarm reports a task that has a
# healthcheck running only once it passed) and the update is completed — or Swarm rolled it back or paused it, or
# FAILMAX tasks of RELEASE failed with no update to roll back (a first deploy retries forever), or WAIT seconds
# passed, or the API failed for GRACE seconds. Swarm's updater waits without a timeout for a new task to come up:
# one placed on a node that then died never does (the orchestrator replaces it, the updater keeps waiting for it),
# and the update hangs; nor is a task that was starting there rescheduled (only orphaned after 24 h). Seen for 5 s
# (a task of RELEASE on a Down node, still on its way up), the update is issued again with --force — every task is
# replaced start-first, and the updater waits for new ones only — at most twice; when UNSTICK allows it: "locked"
# (the caller holds the flock), or the caller's fencing token (flock taken, token checked). Sets OUT, WAITED and
# UNSTUCK (how many times it was issued again).
swarm_converge() { # STACK SERVICE RELEASE WAIT GRACE FAILMAX [UNSTICK]
  s=$1_$2; t0=$(date +%s); ok=$t0; OUT=timeout; ERR=""; UNSTUCK=0; stuck=0
  while :; do
    now=$(date +%s)
    if v=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}} {{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}0{{end}}' "$s" 2>&1) &&
      t=$(docker service ps --quiet --no-trunc "$s" 2>&1) &&
      x=$(if [ -n "$t" ]; then docker inspect --type task --format '{{.DesiredState}} {{.Status.State}} {{index .Spec.ContainerSpec.Labels "hamalog.release"}} {{.NodeID}}' $t 2>&1; fi); then
      ok=$now; st=${"$"}{v% *}; want=${"$"}{v##* }
      good=$(printf '%s\n' "$x" | grep -c "^running running $3 ")
      live=$(printf '%s\n' "$x" | grep -c '^running ')
      bad=$(printf '%s\n' "$x" | grep -Ec "^[a-z]+ (failed|rejected) $3 ")
      case $st in
        rollback_*|paused) OUT=$st; break ;;
        ''|completed)
          if [ "$good" -eq "$want" ] && [ "$live" -eq "$want" ]; then OUT=converged; break; fi
          if [ -z "$st" ] && [ "$bad" -ge "$6" ]; then OUT=failing; break; fi ;;
      esac
      if [ -n "${"$"}{7:-}" ] && [ "$UNSTUCK" -lt 2 ] && swarm_stuck "$x" "$3"; then
        [ "$stuck" -gt 0 ] || stuck=$now
        if [ $((now - stuck)) -ge $((5 + 15 * UNSTUCK)) ]; then
          UNSTUCK=$((UNSTUCK + 1)); stuck=0
          swarm_unstick "$s" "$7"
        fi
      else stuck=0; fi
    else
      ERR=$(printf '%s\n%s\n%s\n' "$v" "${"$"}{t:-}" "${"$"}{x:-}" | grep . | tail -n 2)
      case $ERR in *"o such service"*) OUT=missing; break ;; esac
      if [ $((now - ok)) -ge "$5" ]; then OUT=unreachable; break; fi
    fi
    [ $((now - t0)) -lt "$4" ] || break
    sleep 0.25 2>/dev/null || sleep 1
  done
  WAITED=$(( $(date +%s) - t0 ))
}

# Whether a task of RELEASE that should run sits, not running, on a node that is Down (TASKS: the watch's lines).
swarm_stuck() { # TASKS RELEASE
  down=$(docker node ls --format '{{.ID}} {{.Status}}' 2>/dev/null | awk '$2 == "Down" { print $1 }')
  [ -n "$down" ] || return 1
  printf '%s\n' "$1" | awk -v r="$2" -v d=" $(echo $down) " '$2 ~ /^(new|pending|assigned|accepted|preparing|ready|starting)$/ && $3 == r && index(d, " " $4 " ") { f = 1 } END { exit !f }'
}

# Issue the service's update again with --force (Swarm's updater starts over, every task replaced start-first).
swarm_unstick() { # SERVICE UNSTICK
  if [ "$2" != locked ]; then
    mutex 10 || return 1
    if ! fenced "$2"; then exec 9>&-; return 1; fi
  fi
  docker service update --detach --quiet --force "$1" >/dev/null 2>&1; r=$?
  [ "$2" = locked ] || exec 9>&-
  return "$r"
}

# The client's watch of a rolling update (read-only, outside the lock): the outcome, the stack, and what the tasks
# of RELEASE that did not make it say (node, error, last health output where the container is on this node, last
# log lines through Swarm's log broker).
op_swarm_wait() { # STACK SERVICE RELEASE WAIT GRACE FAILMAX TOKEN
  swarm_converge "$@"
  section swarm-outcome; printf '%s %s %s\n' "$OUT" "$WAITED" "$UNSTUCK"
  [ -z "$ERR" ] || { section swarm-api-error; printf '%s\n' "$ERR"; }
  swarm_snapshot "$1"
  swarm_failures "$1_$2" "$3"
}

swarm_failures() { # SERVICE RELEASE
  section swarm-failures
  t=$(docker service ps --quiet --no-trunc "$1" 2>/dev/null) && [ -n "$t" ] || return 0
  docker inspect --type task --format '{{.Status.State}}	{{index .Spec.ContainerSpec.Labels "hamalog.release"}}	{{.ID}}	{{.NodeID}}	{{if .Status.ContainerStatus}}{{.Status.ContainerStatus.ContainerID}}{{end}}	{{.Status.Err}}' $t 2>/dev/null </dev/null |
    awk -F '\t' -v r="$2" '$2 == r && $1 != "running" && $1 != "shutdown"' | head -n 6 |
    while IFS='	' read -r st rel id node cid err; do
      printf 'task	%s	%s	%s	%s\n' "$id" "$node" "$st" "$err"
      if [ -z "$cid" ]; then printf 'health\t%s\t%s\n' "$id" "(none: no container was started)"
      elif docker inspect --type container "$cid" >/dev/null 2>&1 </dev/null; then
        h=$(docker inspect --type container --format '{{if .State.Health}}{{range .State.Health.Log}}{{printf "%q" .Output}}{{"\n"}}{{end}}{{end}}' "$cid" </dev/null 2>/dev/null | grep . | tail -n 1)
        [ -z "$h" ] || printf 'health	%s	%s\n' "$id" "$h"
      fi
      timeout 5 docker service logs --raw --no-trunc --tail 3 "$id" </dev/null 2>&1 | tail -n 3 |
        while IFS= read -r l; do printf 'log	%s	%s\n' "$id" "$l"; done
    done
  return 0
}

# The release's environment in this shell, for the stack's ${"$"}{VAR} interpolation: docker stack deploy reads
# it from its own environment (it has no --env-file). Each NAME=value line of the env file (docker's format: the
# value as written) is exported as it is: export "$l" assigns the text literally. Names that steer the docker
# CLI or the shell are left out (the app still gets them through env_file).
swarm_env() { # FILE
  while IFS= read -r l || [ -n "$l" ]; do
    case $l in ''|'#'*) continue ;; *=*) ;; *) continue ;; esac
    n=${"$"}{l%%=*}
    case $n in ''|[0-9]*|*[!A-Za-z0-9_]*|PATH|HOME|IFS|ENV|SHELL|PS[0-9]|LD_*|DOCKER_*) continue ;; esac
    export "$l" || return
  done < "$1"
}

# docker stack deploy of FILE (relative to D) as STACK, with ENVFILE's values in its environment; FLAG is
# --with-registry-auth or empty. Errors of a leader election are retried for GRACE seconds (a deploy is
# idempotent). Unused edge configs of the stack are removed after it (a config is immutable: each Caddyfile is one).
swarm_stack_deploy() { # STACK FILE ENVFILE GRACE [FLAG]
  announce stack-deploy
  det=""; docker stack deploy --help 2>/dev/null | grep -q -- '--detach' && det=--detach=true
  end=$(( $(date +%s) + $4 ))
  while :; do
    o=$( if [ -n "$3" ]; then swarm_env "$D/$3" || exit 70; fi
      [ -z "$cfg" ] || export DOCKER_CONFIG="$cfg"
      docker stack deploy ${"$"}{5:-} --resolve-image never $det --compose-file "$D/$2" "$1" 2>&1 ); r=$?
    if [ "$r" -eq 0 ]; then
      printf '%s\n' "$o" >&2
      for c in $(docker config ls --quiet --filter "name=$1_hamalog-edge-" 2>/dev/null); do docker config rm "$c" >/dev/null 2>&1; done
      return 0
    fi
    case $o in *eadline*|*leader*|*navailable*|*"connection refused"*|*"timed out"*) ;; *) printf '%s\n' "$o" >&2; return "$r" ;; esac
    if [ "$(date +%s)" -ge "$end" ]; then printf '%s\n' "$o" >&2; echo "the manager's API still failed after $4 s" >&2; return "$r"; fi
    sleep 1
  done
}

# The deploy of a release's stack. With a registry password in the stage (stage/registry-password: it came in the
# bundle on stdin), a throwaway Docker config logs in first and --with-registry-auth hands the login to Swarm,
# which keeps it with the services for the nodes' pulls; the config is gone when the step ends. Without one the
# services keep the login Swarm stored with them before.
step_swarm_deploy() { # STACK FILE ENVFILE REGISTRY USERNAME GRACE
  cfg=""; flag=""; pw=$STAGE/stage/registry-password
  if [ -n "$5" ] && [ -s "$pw" ]; then
    cfg=$(mktemp -d "$H/docker-XXXXXX") || return
    trap 'rm -rf -- "$cfg"' EXIT
    announce login
    if ! DOCKER_CONFIG=$cfg docker login --username "$5" --password-stdin "$4" < "$pw" >/dev/null; then rm -rf -- "$cfg" "$pw"; return 1; fi
    flag=--with-registry-auth
  fi
  rm -f -- "$pw"
  swarm_stack_deploy "$1" "$2" "$3" "$6" "$flag"; r=$?
  [ -z "$cfg" ] || rm -rf -- "$cfg"
  return "$r"
}

# The recovery's restore: the live release's stack deployed again (no login: Swarm keeps the one it has), then
# wait until the app runs it on every task — WAIT seconds at most.
step_swarm_restore() { # STACK FILE ENVFILE SERVICE RELEASE WAIT GRACE
  cfg=""
  swarm_stack_deploy "$1" "$2" "$3" "$7" "" || return
  announce converge
  swarm_converge "$1" "$4" "$5" "$6" "$7" 3 locked
  [ "$OUT" = converged ] && return 0
  echo "Swarm did not converge on the live release within $6 s ($OUT${"$"}{ERR:+: $ERR})" >&2; return 1
}

# A first release that never went live: its service goes (the edge and the accessories stay).
step_swarm_remove() { # SERVICE...
  for s in "$@"; do
    docker service rm "$s" >/dev/null 2>&1 || ! docker service inspect "$s" >/dev/null 2>&1 || return 1
  done
}
`;
