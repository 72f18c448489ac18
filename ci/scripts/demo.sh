#!/usr/bin/env bash
# `npm run demo`: the main job against a local default. Installs and starts what it needs (npm ci, Docker engine,
# compose v2, registry, sshd via test-env.sh), then runs ci/scripts/demo.ts: tag → push → verify-manifest →
# deploy v1 → deploy v2 → deploy a broken v3 (blue/green: it never goes live) → status, on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[demo] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
bash ci/scripts/test-env.sh up
exec npx tsx ci/scripts/demo.ts "$@"
