#!/usr/bin/env bash
# The project's test command (`npm test`): installs what is missing, starts the Docker engine, type-checks
# against the real Dagger SDK types, runs unit + integration tests, and prints one closing summary line.
# Integration tests are never silently skipped: when the environment cannot be set up, this fails unless
# HAMALOG_UNIT_ONLY=1 is set, and then it says loudly that integration did not run.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[test] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error || exit 1
fi

projects=(--project unit --project integration)
files=()
# `npm run test:quick` (--quick): unit + one representative integration file per area, for the inner loop.
# Registry, build, the deploy frame with a killed CLI and the host's own recovery, blue/green on Hamalog's stack.
QUICK=(
  test/integration/verify-manifest.test.ts
  test/integration/build-prepare.test.ts
  test/integration/deploy-local.test.ts
  test/integration/hamalog-adopt.test.ts
)
if [ "${1:-}" = --quick ]; then
  files=("${QUICK[@]}" test/unit)
  echo "[test] quick tier: unit + ${#QUICK[@]} integration files (npm test runs them all)" >&2
fi
if [ "${HAMALOG_UNIT_ONLY:-}" = 1 ]; then
  projects=(--project unit)
  echo "[test] HAMALOG_UNIT_ONLY=1: the integration suite will NOT run" >&2
elif ! bash ci/scripts/test-env.sh up; then
  echo "[test] the integration environment could not be set up (see above); integration tests NOT run." >&2
  echo "[test] Fix the environment, or run unit tests alone with HAMALOG_UNIT_ONLY=1 npm test." >&2
  echo "Tests: 0 passed, 1 failed (integration environment unavailable)"
  exit 1
fi

echo "[test] format check (prettier --check; fix with npm run format)" >&2
if ! npx prettier --check --log-level warn .; then
  echo "Tests: 0 passed, 1 failed (format check: run npm run format)"
  exit 1
fi

echo "[test] type-check (tsc, strict, against @dagger.io/dagger's types)" >&2
if ! npx tsc -p tsconfig.json; then
  echo "Tests: 0 passed, 1 failed (type-check)"
  exit 1
fi

report=$(mktemp)
npx vitest run --config test/vitest.config.ts "${projects[@]}" "${files[@]}" --reporter=default --reporter=json --outputFile.json="$report"
rc=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  const retried = r.testResults.flatMap((f) =>
    f.assertionResults.filter((t) => t.status === "passed" && t.failureMessages.length).map((t) => `${f.name.replace(process.cwd() + "/", "")} > ${t.fullName}`),
  );
  for (const t of retried) console.log(`[test] passed only on its retry (flaky: look at it): ${t}`);
  const flaky = retried.length ? ` (${retried.length} passed only on a retry)` : "";
  console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped${flaky}`);
' "$report" 2>/dev/null || echo "Tests: 0 passed, 1 failed (no test report)"
rm -f "$report"
if [ "${HAMALOG_UNIT_ONLY:-}" = 1 ]; then echo "[test] reminder: integration tests were NOT run" >&2; fi
exit $rc
