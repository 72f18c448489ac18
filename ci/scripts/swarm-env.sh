#!/usr/bin/env bash
# A real multi-node Docker Swarm on this one machine, for the integration tests of the swarm strategy, built as
# measured in ../shared/ENVIRONMENT.md ("A real multi-node Docker Swarm on one machine"). Each node is its own
# dockerd (docker.io 20.10) and sshd in a network namespace swK at 10.77.0.(10+K), joined by a veth to the bridge
# swbr0 (10.77.0.1/24, no NAT, no default route). A TLS + htpasswd registry (Debian's docker-registry) listens on
# 10.77.0.1:5000 and every node, and the host's engine, trust its throwaway CA.
#
#   swarm-env.sh up [N] [--managers M]   fresh cluster of N nodes (default 3), M of them managers (default 1);
#                                         prints the state file (JSON) the test helper reads
#   swarm-env.sh down                     remove everything, including what a crashed earlier run left behind
#   swarm-env.sh kill K                   SIGKILL every process of node K (a worker that lost power)
#   swarm-env.sh status                   nodes as the manager sees them, and the memory each node uses
#   swarm-env.sh check                    exit 0 when this machine can run it, else print what is missing
#
# One cluster per machine (fixed bridge and addresses). HAMALOG_SWARM_OWNER=PID marks the process that owns it:
# `up` waits (HAMALOG_SWARM_WAIT seconds, default 600) while another live owner holds the cluster, and
# `down --owner PID` leaves a cluster alone that someone else owns now.
set -euo pipefail

STATE=${HAMALOG_SWARM_STATE:-/var/tmp/hamalog-swarm}
# flock(2) on the state dir's parent directory itself: machine-wide, and no lock file stays behind.
LOCK_DIR=$(dirname "$STATE")
BRIDGE=swbr0
NET=10.77.0
HOST_ADDR=$NET.1
REGISTRY=$HOST_ADDR:5000
# Overlay networks (swarm) and local networks (docker_gwbridge) stay inside the namespaces; the host gets
# unreachable routes for both so nothing addressed to them can leave through the default route.
OVERLAY_POOL=10.78.0.0/16
LOCAL_POOL=10.79.0.0/16
CGROUP_PARENT=/swarm-test
HOST_CERTS_D=/etc/docker/certs.d/$REGISTRY

log() { printf '[swarm-env] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now_ms() { date +%s%3N; }

missing() {
  local out=() t
  [ "$(id -u)" = 0 ] || out+=("root (network namespaces, mounts and dockerd need it)")
  for t in ip iptables nsenter unshare setsid mount openssl jq flock dockerd containerd runc docker-registry htpasswd ssh ssh-keygen; do
    command -v "$t" >/dev/null || out+=("$t (bash ci/scripts/test-env.sh up installs it)")
  done
  [ -x /usr/sbin/sshd ] || out+=("/usr/sbin/sshd (apt-get install openssh-server)")
  local client
  client=$(docker version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
  [ "${client:-0}" -ge 26 ] 2>/dev/null || out+=("a docker CLI >= 26 first on PATH (stack deploy --detach=false; here: ${client:-none})")
  [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || out+=("a cgroup filesystem at /sys/fs/cgroup")
  docker info >/dev/null 2>&1 || out+=("the host's Docker engine (bash ci/scripts/test-env.sh up starts it)")
  printf '%s\n' "${out[@]+"${out[@]}"}"
}

node_dir() { echo "$STATE/node$1"; }
node_addr() { echo "$NET.$((10 + $1))"; }
# The docker CLI against node K's engine from the root namespace.
ndocker() { local k=$1; shift; docker -H "unix://$(node_dir "$k")/docker.sock" "$@"; }

# ---------------------------------------------------------------------------------------------------------------
# Ownership: one cluster per machine.

owner_alive() {
  local o
  o=$(cat "$STATE/owner" 2>/dev/null || echo 0)
  [ "$o" != 0 ] && [ "$o" != "${HAMALOG_SWARM_OWNER:-0}" ] && kill -0 "$o" 2>/dev/null
}

# Holds fd 9 (the lock) on return; waits while another live process owns the cluster.
claim() {
  local waited=0 limit=${HAMALOG_SWARM_WAIT:-600}
  exec 9<"$LOCK_DIR"
  while :; do
    flock 9
    owner_alive || return 0
    flock -u 9
    [ "$waited" -ge "$limit" ] && die "a swarm test cluster owned by pid $(cat "$STATE/owner") is still running after ${limit}s; one cluster per machine — wait for it, or run: bash ci/scripts/swarm-env.sh down"
    [ "$waited" = 0 ] && log "waiting for the swarm test cluster of pid $(cat "$STATE/owner") to finish (one per machine)"
    sleep 2; waited=$((waited + 2))
  done
}

# ---------------------------------------------------------------------------------------------------------------
# Teardown, also of a crashed earlier run: everything is found from fixed names, the state dir and pid files.

# Every process of node K: those in its network namespace (dockerd, containerd, shims, sshd, docker-proxy) and
# those in its containers' cgroups (container processes live in namespaces of their own).
node_pids() {
  local k=$1 f
  ip netns pids "sw$k" 2>/dev/null || true
  for f in /sys/fs/cgroup/*/"${CGROUP_PARENT#/}/sw$k" /sys/fs/cgroup/"${CGROUP_PARENT#/}/sw$k"; do
    [ -d "$f" ] && find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  true
}

kill_node() {
  local k=$1 pids
  # dockerd first, so it cannot restart its containerd or report the shims' deaths to the managers.
  if [ -f "$(node_dir "$k")/dockerd.pid" ]; then kill -KILL "$(cat "$(node_dir "$k")/dockerd.pid")" 2>/dev/null || true; fi
  for _ in $(seq 1 50); do
    pids=$(node_pids "$k" | sort -u | tr '\n' ' ')
    [ -z "${pids// /}" ] && return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  log "node $k: processes still alive after SIGKILL: $pids"
}

known_nodes() {
  local d
  {
    ip netns list 2>/dev/null | sed -n 's/^sw\([0-9]\+\)\b.*/\1/p'
    for d in "$STATE"/node*; do [ -d "$d" ] && basename "$d" | sed 's/^node//'; done
    for d in /sys/fs/cgroup/*/"${CGROUP_PARENT#/}"/sw* /sys/fs/cgroup/"${CGROUP_PARENT#/}"/sw*; do
      [ -d "$d" ] && basename "$d" | sed 's/^sw//'
    done
  } 2>/dev/null | grep -E '^[0-9]+$' | sort -un
}

# The registry: by its pid file, and (a run that crashed half-way through `down`) by its exact command line, which
# names this state dir — never by a broad name. SIGKILL: its storage is thrown away anyway, and SIGTERM drains ~2 s.
kill_registry() {
  local f p pids=()
  [ -f "$STATE/registry/registry.pid" ] && pids+=("$(cat "$STATE/registry/registry.pid")")
  while read -r f; do
    p=${f#/proc/}; pids+=("${p%/cmdline}")
  done < <(grep -lsxFz "$STATE/registry/config.yml" /proc/[0-9]*/cmdline || true)
  for p in "${pids[@]+"${pids[@]}"}"; do
    tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline" | grep -qxF "docker-registry serve $STATE/registry/config.yml " &&
      kill -KILL "$p" 2>/dev/null
  done
  rm -f "$STATE/registry/registry.pid"
}

remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/"${CGROUP_PARENT#/}" /sys/fs/cgroup/"${CGROUP_PARENT#/}"; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

down() {
  local k
  for k in $(known_nodes); do kill_node "$k"; done
  kill_registry
  for k in $(known_nodes); do
    ip netns del "sw$k" 2>/dev/null || true
    ip link del "vsw$k" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  while iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do
    iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  done
  ip route del unreachable "$OVERLAY_POOL" 2>/dev/null || true
  ip route del unreachable "$LOCAL_POOL" 2>/dev/null || true
  remove_cgroups
  rm -rf "$HOST_CERTS_D"
  rmdir /etc/docker/certs.d 2>/dev/null || true
  if [ -d "$STATE" ]; then
    # The nodes' mounts lived in their own mount namespaces and died with them; never recurse into a live one.
    if grep -qF " $STATE/" /proc/self/mountinfo; then
      die "mounts remain under $STATE (see /proc/self/mountinfo); not removing it"
    fi
    rm -rf "$STATE"
  fi
}

# ---------------------------------------------------------------------------------------------------------------
# Bring-up.

make_ca_and_registry() {
  local d=$STATE/registry
  mkdir -p "$d/data" "$STATE/ca"
  # A throwaway CA and a server certificate for the bridge address (Go and Node need the IP in subjectAltName).
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
    -subj "/CN=hamalog swarm test CA" -keyout "$STATE/ca/ca.key" -out "$STATE/ca/ca.crt" 2>/dev/null
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -subj "/CN=$HOST_ADDR" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' \
    "$HOST_ADDR" > "$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$STATE/ca/ca.crt" -CAkey "$STATE/ca/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
  REGISTRY_USER=hamalog
  REGISTRY_PASSWORD=$(openssl rand -hex 16)
  printf '%s' "$REGISTRY_PASSWORD" | htpasswd -iBc "$d/htpasswd" "$REGISTRY_USER" 2>/dev/null
  cat > "$d/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $d/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
  secret: $(openssl rand -hex 16)
  tls:
    certificate: $d/server.crt
    key: $d/server.key
auth:
  htpasswd:
    realm: hamalog-swarm
    path: $d/htpasswd
EOF
  setsid docker-registry serve "$d/config.yml" >"$d/registry.log" 2>&1 </dev/null 9>&- &
  echo $! > "$d/registry.pid"
  # docker reads certs.d on every pull/push: no restart of the host engine.
  mkdir -p "$HOST_CERTS_D"
  cp "$STATE/ca/ca.crt" "$HOST_CERTS_D/ca.crt"
}

wait_registry() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$HOST_ADDR/5000") 2>/dev/null && return 0
    sleep 0.1
  done
  die "registry did not answer on https://$REGISTRY/v2/; log: $(tail -5 "$STATE/registry/registry.log")"
}

make_network() {
  ip link add "$BRIDGE" type bridge
  ip addr add "$HOST_ADDR/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The host's FORWARD policy is DROP (the host dockerd) and br_netfilter filters bridged frames.
  iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  ip route add unreachable "$OVERLAY_POOL"
  ip route add unreachable "$LOCAL_POOL"
}

# Runs inside node K's network namespace and fresh mount and UTS namespaces; ends by exec'ing dockerd.
write_launcher() {
  cat > "$STATE/launch-node.sh" <<'EOF'
#!/bin/sh
# Node K's "machine": its own sysfs (its interfaces), /run (its docker.sock, sshd), /tmp, /etc/docker (its engine
# ID, its registry CA) and root home (its docker login, authorized_keys); then its sshd and its dockerd.
set -eu
k=$1; state=$2; dir=$state/node$k
hostname "node$k"
# A sysfs mounted in this netns shows its interfaces; runc needs the cgroup mounts that a plain new sysfs hides.
mount --rbind /sys/fs/cgroup "$dir/mnt/cgroup"
mount -t sysfs sysfs /sys
mount --move "$dir/mnt/cgroup" /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/lock
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount --bind "$dir/etc-docker" /etc/docker
mount --bind "$dir/home" /root
/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
exec dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
  -H unix:///run/docker.sock -H "unix://$dir/docker.sock" --bridge=none \
  --cgroup-parent "/swarm-test/sw$k" --default-address-pool base=10.79.0.0/16,size=24 \
  >"$dir/dockerd.log" 2>&1
EOF
  chmod 0755 "$STATE/launch-node.sh"
}

start_node() {
  local k=$1 addr dir
  addr=$(node_addr "$k")
  dir=$(node_dir "$k")
  mkdir -p "$dir/mnt/cgroup" "$dir/etc-docker/certs.d/$REGISTRY" "$dir/home/.ssh" "$dir/data" "$dir/exec"
  chmod 0700 "$dir/home" "$dir/home/.ssh"
  cp "$STATE/ca/ca.crt" "$dir/etc-docker/certs.d/$REGISTRY/ca.crt"
  cp "$STATE/ssh/client_key.pub" "$dir/home/.ssh/authorized_keys"
  chmod 0600 "$dir/home/.ssh/authorized_keys"
  ssh-keygen -q -t ed25519 -N '' -C "node$k" -f "$dir/ssh_host_ed25519_key"
  echo "$addr $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" >> "$STATE/ssh/known_hosts"
  cat > "$dir/sshd_config" <<EOF
Port 22
ListenAddress $addr
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowTcpForwarding yes
MaxSessions 30
MaxStartups 30:50:100
LogLevel INFO
EOF
  ip netns add "sw$k"
  ip link add "vsw$k" type veth peer name eth0 netns "sw$k"
  ip link set "vsw$k" master "$BRIDGE" up
  ip -n "sw$k" link set lo up
  ip -n "sw$k" addr add "$addr/24" dev eth0
  ip -n "sw$k" link set eth0 up
  setsid nsenter --net="/run/netns/sw$k" unshare --mount --uts --propagation slave \
    "$STATE/launch-node.sh" "$k" "$STATE" </dev/null >"$dir/launcher.log" 2>&1 9>&- &
}

wait_node() {
  local k=$1 dir
  dir=$(node_dir "$k")
  for _ in $(seq 1 300); do
    ndocker "$k" version >/dev/null 2>&1 && [ -f "$dir/sshd.pid" ] && return 0
    sleep 0.1
  done
  die "node $k did not start; launcher: $(cat "$dir/launcher.log" 2>/dev/null); dockerd: $(tail -5 "$dir/dockerd.log" 2>/dev/null)"
}

wait_ready() {
  local n=$1 ready
  for _ in $(seq 1 300); do
    ready=$(ndocker 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$' || true)
    [ "$ready" = "$n" ] && return 0
    sleep 0.1
  done
  die "only $ready of $n nodes Ready: $(ndocker 1 node ls 2>&1)"
}

join() {
  local k=$1 token=$2
  ndocker "$k" swarm join --token "$token" --advertise-addr "$(node_addr "$k")" \
    --data-path-addr "$(node_addr "$k")" "$(node_addr 1):2377" >/dev/null
}

write_state() {
  local n=$1 managers=$2 k nodes='[]' role fp
  for k in $(seq 1 "$n"); do
    role=worker; [ "$k" -le "$managers" ] && role=manager
    fp=$(ssh-keygen -lf "$(node_dir "$k")/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
    nodes=$(jq -c --arg name "node$k" --arg addr "$(node_addr "$k")" --arg role "$role" \
      --arg socket "$(node_dir "$k")/docker.sock" --arg fp "$fp" --arg netns "sw$k" \
      '. + [{name: $name, addr: $addr, role: $role, socket: $socket, netns: $netns, hostKeyFingerprint: $fp}]' <<<"$nodes")
  done
  (umask 077; jq -n --arg state "$STATE" --argjson nodes "$nodes" --arg registry "$REGISTRY" \
    --arg user "$REGISTRY_USER" --arg password "$REGISTRY_PASSWORD" --arg ca "$STATE/ca/ca.crt" \
    --arg key "$STATE/ssh/client_key" --arg knownHosts "$STATE/ssh/known_hosts" --arg config "$STATE/ssh/config" \
    --arg bin "$STATE/bin" \
    '{stateDir: $state, nodes: $nodes,
      registry: {host: $registry, user: $user, password: $password, caFile: $ca},
      ssh: {user: "root", port: 22, keyFile: $key, knownHostsFile: $knownHosts, configFile: $config, binDir: $bin}}' \
    > "$STATE/swarm.json")
}

up() {
  local n=$1 managers=$2 k started token_w token_m
  if ! { [ "$n" -ge 1 ] && [ "$n" -le 20 ]; } 2>/dev/null; then die "up: N must be 1..20 (got $n)"; fi
  if ! { [ "$managers" -ge 1 ] && [ "$managers" -le "$n" ]; } 2>/dev/null; then
    die "up: --managers must be 1..$n (got $managers)"
  fi
  started=$(now_ms)
  down
  mkdir -p "$STATE/ssh" "$STATE/bin"
  chmod 0700 "$STATE"
  echo "${HAMALOG_SWARM_OWNER:-0}" > "$STATE/owner"
  ssh-keygen -q -t ed25519 -N '' -C hamalog-swarm-test -f "$STATE/ssh/client_key"
  : > "$STATE/ssh/known_hosts"
  # What `docker -H ssh://root@10.77.0.11` and plain `ssh root@10.77.0.11` need: the docker CLI runs `ssh` from
  # PATH and takes no ssh flags, so $STATE/bin/ssh adds this config (key, known hosts, batch mode).
  cat > "$STATE/ssh/config" <<EOF
Host $NET.*
  User root
  IdentityFile $STATE/ssh/client_key
  IdentitiesOnly yes
  UserKnownHostsFile $STATE/ssh/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
  LogLevel ERROR
EOF
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$STATE/ssh/config" > "$STATE/bin/ssh"
  chmod 0755 "$STATE/bin/ssh"
  make_network
  make_ca_and_registry
  write_launcher
  for k in $(seq 1 "$n"); do start_node "$k"; done
  wait_registry
  for k in $(seq 1 "$n"); do wait_node "$k"; done
  ndocker 1 swarm init --advertise-addr "$(node_addr 1)" --data-path-addr "$(node_addr 1)" \
    --default-addr-pool "$OVERLAY_POOL" --dispatcher-heartbeat 1s >/dev/null
  token_w=$(ndocker 1 swarm join-token -q worker)
  token_m=$(ndocker 1 swarm join-token -q manager)
  # Managers one at a time (each one changes the raft membership the next one joins), then workers together.
  for k in $(seq 2 "$managers"); do join "$k" "$token_m"; done
  local pids=()
  for k in $(seq $((managers + 1)) "$n"); do
    join "$k" "$token_w" &
    pids+=($!)
  done
  for p in "${pids[@]+"${pids[@]}"}"; do wait "$p" || die "a worker failed to join the swarm"; done
  wait_ready "$n"
  write_state "$n" "$managers"
  log "$n nodes ($managers manager(s)) Ready in $(($(now_ms) - started)) ms; state: $STATE/swarm.json"
  cat "$STATE/swarm.json"
}

status() {
  [ -f "$STATE/swarm.json" ] || die "no cluster (no $STATE/swarm.json)"
  ndocker 1 node ls 2>&1 || true
  local k rss pids cg
  for k in $(known_nodes); do
    pids=$(node_pids "$k" | sort -u | paste -sd, -)
    rss=0
    [ -n "$pids" ] && rss=$(ps -o rss= -p "$pids" | awk '{s+=$1} END {print s+0}')
    cg=$(cat "/sys/fs/cgroup/memory/swarm-test/sw$k/memory.usage_in_bytes" 2>/dev/null || echo 0)
    printf 'node%s: %d processes, RSS %d MB (containers cgroup usage %d MB)\n' "$k" "$(tr ',' '\n' <<<"$pids" | grep -c .)" \
      "$((rss / 1024))" "$((cg / 1024 / 1024))"
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
  up)
    n=3 managers=1
    while [ $# -gt 0 ]; do
      case "$1" in
        --managers) managers=$2; shift 2 ;;
        [0-9]*) n=$1; shift ;;
        *) die "up: unknown argument $1" ;;
      esac
    done
    m=$(missing)
    [ -z "$m" ] || die "cannot build a swarm here; missing:"$'\n'"$(sed 's/^/  - /' <<<"$m")"
    claim
    # A bring-up that fails half-way leaves nothing behind (HAMALOG_SWARM_KEEP=1 keeps it to read the logs).
    [ "${HAMALOG_SWARM_KEEP:-}" = 1 ] || trap 'log "bring-up failed; removing what it made"; down' EXIT
    up "$n" "$managers"
    trap - EXIT
    ;;
  down)
    if [ "${1:-}" = --owner ]; then export HAMALOG_SWARM_OWNER=$2; fi
    exec 9<"$LOCK_DIR"; flock 9
    if owner_alive && [ -n "${HAMALOG_SWARM_OWNER:-}" ]; then
      log "the cluster now belongs to pid $(cat "$STATE/owner"); leaving it"
      exit 0
    fi
    started=$(now_ms)
    down
    log "down in $(($(now_ms) - started)) ms"
    ;;
  kill)
    [ -n "${1:-}" ] || die "usage: swarm-env.sh kill K"
    kill_node "$1"
    ;;
  status) status ;;
  check)
    m=$(missing)
    if [ -n "$m" ]; then echo "$m"; exit 1; fi
    ;;
  *) echo "usage: swarm-env.sh up [N] [--managers M] | down | kill K | status | check" >&2; exit 2 ;;
esac
