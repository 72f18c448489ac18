#!/usr/bin/env bash
# Regenerate ci/package-lock.json the way `dagger develop` does (sdk/typescript/runtime/runtime_node.go): the
# runtime's pinned npm, in a directory holding only ci/'s package.json and lockfile, so the root workspace takes no
# part. Run after changing ci/package.json; test/unit/module-layout.test.ts checks it matches the root lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp package.json "$tmp/"
if [ -f package-lock.json ]; then cp package-lock.json "$tmp/"; fi
(cd "$tmp" && npx -y npm@11.8.0 install --package-lock-only --no-audit --no-fund --loglevel=error)
cp "$tmp/package-lock.json" package-lock.json
