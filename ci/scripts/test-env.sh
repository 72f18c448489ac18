#!/usr/bin/env bash
# Installs and starts the real components the integration tests and the demo use, exactly as measured in
# ../shared/ENVIRONMENT.md: Docker engine (docker.io), compose v2 (from Debian trixie), distribution registry,
# OpenSSH server/client, busybox-static (test images), skopeo/umoci/jq/htpasswd, and a Caddy 2 edge-proxy image
# built from Debian's caddy package (the blue/green tests and the demo; no Docker Hub here).
# Registries and sshd are NOT started here: each test (and the demo) starts its own on 127.0.0.1 and stops it.
#
#   test-env.sh up      install what is missing (idempotent) and start dockerd
#   test-env.sh check   exit 0 when everything is usable, else print what is missing and exit 1
#   test-env.sh down    stop the dockerd this script started
set -euo pipefail

STATE_DIR=${HAMALOG_TEST_STATE:-/var/tmp/hamalog-test-env}
DOCKERD_PID_FILE=$STATE_DIR/dockerd.pid
COMPOSE_PLUGIN=/usr/libexec/docker/cli-plugins/docker-compose
# The local stand-in for the official caddy:2 image (deploy/proxy/image in the tests and the demo).
CADDY_IMAGE=${HAMALOG_CADDY_IMAGE:-hamalog-test/caddy:2.6.2}
PACKAGES=(docker-registry openssh-server openssh-client busybox-static skopeo umoci jq apache2-utils)
# The multi-node swarm harness (swarm-env.sh): namespaces and the bridge (ip), the FORWARD rule, the registry's CA.
PACKAGES+=(iproute2 iptables openssl)
# The host agent's lint (test/unit/deploy-agent-lint.test.ts).
PACKAGES+=(shellcheck)
# Only install Debian's engine where there is none: a host with Docker CE (e.g. GitHub's runners) keeps its own.
command -v dockerd >/dev/null || PACKAGES+=(docker.io)

log() { printf '[test-env] %s\n' "$*" >&2; }

missing() {
  local out=()
  [ "$(id -u)" = 0 ] || out+=("root (apt-get and dockerd need it; run as root or start the components yourself)")
  [ -r /etc/debian_version ] || out+=("a Debian system (this script installs with apt-get)")
  command -v dockerd >/dev/null || docker info >/dev/null 2>&1 || out+=("dockerd (apt-get install docker.io)")
  command -v docker-registry >/dev/null || out+=("docker-registry (apt-get install docker-registry)")
  [ -x /usr/sbin/sshd ] || out+=("sshd (apt-get install openssh-server)")
  command -v ssh-keygen >/dev/null || out+=("ssh-keygen (apt-get install openssh-client)")
  [ -x /bin/busybox ] || out+=("busybox (apt-get install busybox-static)")
  command -v skopeo >/dev/null || out+=("skopeo (apt-get install skopeo)")
  command -v htpasswd >/dev/null || out+=("htpasswd (apt-get install apache2-utils)")
  command -v shellcheck >/dev/null || out+=("shellcheck (apt-get install shellcheck)")
  docker compose version >/dev/null 2>&1 || out+=("docker compose v2 plugin at $COMPOSE_PLUGIN")
  docker info >/dev/null 2>&1 || out+=("a running Docker engine (test-env.sh up starts one)")
  docker image inspect "$CADDY_IMAGE" >/dev/null 2>&1 || out+=("the Caddy test image $CADDY_IMAGE (test-env.sh up builds it)")
  printf '%s\n' "${out[@]+"${out[@]}"}"
}

install_packages() {
  local need=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    # Installing openssh-server may start a system sshd on 0.0.0.0:22; tests start their own on loopback.
    if printf '%s\n' "${need[@]}" | grep -qx openssh-server; then
      systemctl disable --now ssh >/dev/null 2>&1 || true
      [ -x /etc/init.d/ssh ] && /etc/init.d/ssh stop >/dev/null 2>&1 || true
    fi
  fi
  # The packaged registry service listens on :5000 with htpasswd auth; we never use it.
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
  pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' 2>/dev/null || true
}

install_compose() {
  if docker compose version 2>/dev/null | grep -qE ' v?2\.'; then return; fi
  log "installing compose v2 from Debian trixie (bookworm only has v1)"
  # Reuse the mirror this machine already uses for bookworm, with the trixie suite pinned low.
  local mirror
  mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  [ -n "$mirror" ] || mirror=$(sed -n 's/^deb \+\(\[[^]]*\] \+\)\?\([^ ]*\/debian\) \+bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
  if [ -z "$mirror" ]; then log "cannot find this machine's Debian mirror in /etc/apt to add the trixie suite"; exit 1; fi
  echo "deb $mirror trixie main" > /etc/apt/sources.list.d/trixie.list
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 50\n' > /etc/apt/preferences.d/trixie
  apt-get update -qq
  local tmp; tmp=$(mktemp -d)
  # apt warns that the download runs unsandboxed (root's temp dir is not readable by _apt); let _apt in instead.
  chown _apt "$tmp" 2>/dev/null || true
  (cd "$tmp" && apt-get download -qq docker-compose/trixie && dpkg -x docker-compose_*.deb x)
  mkdir -p "$(dirname "$COMPOSE_PLUGIN")"
  install -m 0755 "$tmp/x/usr/libexec/docker/cli-plugins/docker-compose" "$COMPOSE_PLUGIN"
  rm -rf "$tmp"
}

# A tiny image from Debian's caddy binary: it needs only libc, libzstd and the loader (checked with ldd), so a
# rootfs of those plus /etc/caddy, /config and /data is enough for `docker import`.
build_caddy_image() {
  if docker image inspect "$CADDY_IMAGE" >/dev/null 2>&1; then return; fi
  log "building $CADDY_IMAGE from Debian's caddy package"
  local tmp; tmp=$(mktemp -d)
  chown _apt "$tmp" 2>/dev/null || true
  (cd "$tmp" && apt-get download -qq caddy && dpkg -x caddy_*.deb x)
  local root=$tmp/rootfs
  mkdir -p "$root/bin" "$root/etc/caddy" "$root/config" "$root/data" "$root/tmp"
  install -m 0755 "$tmp/x/usr/bin/caddy" "$root/bin/caddy"
  local lib
  for lib in $(ldd "$root/bin/caddy" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
  done
  printf ':80 {\n\trespond "hamalog edge proxy: no upstream yet" 503\n}\n' > "$root/etc/caddy/Caddyfile"
  tar -C "$root" -cf "$tmp/rootfs.tar" .
  docker import \
    --change 'ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data' \
    --change 'CMD ["/bin/caddy","run","--config","/etc/caddy/Caddyfile","--adapter","caddyfile"]' \
    "$tmp/rootfs.tar" "$CADDY_IMAGE" >/dev/null
  rm -rf "$tmp"
}

start_dockerd() {
  if docker info >/dev/null 2>&1; then return; fi
  mkdir -p "$STATE_DIR"
  log "starting dockerd (log: /var/log/dockerd.log)"
  setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
  echo $! > "$DOCKERD_PID_FILE"
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
  log "dockerd did not come up in 60 s; last log lines:"; tail -20 /var/log/dockerd.log >&2; exit 1
}

case "${1:-up}" in
  up)
    if [ "$(id -u)" != 0 ] || [ ! -r /etc/debian_version ]; then
      log "cannot install here; missing:"; missing | sed 's/^/  - /' >&2; exit 1
    fi
    install_packages
    install_compose
    start_dockerd
    build_caddy_image
    m=$(missing)
    if [ -n "$m" ]; then log "still missing:"; echo "$m" | sed 's/^/  - /' >&2; exit 1; fi
    log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /')"
    ;;
  check)
    m=$(missing)
    if [ -n "$m" ]; then echo "$m"; exit 1; fi
    ;;
  down)
    if [ -f "$DOCKERD_PID_FILE" ]; then kill "$(cat "$DOCKERD_PID_FILE")" 2>/dev/null || true; rm -f "$DOCKERD_PID_FILE"; fi
    ;;
  *) echo "usage: test-env.sh up|check|down" >&2; exit 2 ;;
esac
