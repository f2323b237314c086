#!/usr/bin/env bash
# Clones this repository's HEAD into an empty temporary folder (nothing beside it: no ../shared, no other
# checkout), installs it there and runs the unit tests, so a file that reads outside the clone fails here.
# The namespace tests stay with `npm test`; this checks that the repository stands alone.
# usage: scripts/standalone-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
outer=$(mktemp -d /tmp/sidecar-lab-standalone.XXXXXX)
chmod 755 "$outer" # mktemp's 0700 would hide the clone from the tests that run the CLI as nobody
trap 'rm -rf "$outer"' EXIT
git clone -q . "$outer/sidecar-lab"
cd "$outer/sidecar-lab"
echo "standalone-check: a clone of $(git rev-parse --short HEAD) alone in $outer: npm ci, then the unit tests" >&2
npm ci --no-audit --no-fund --prefer-offline >/dev/null 2>"$outer/npm.log" || { cat "$outer/npm.log" >&2; exit 1; }
[ "$(ls -A "$outer")" = "$(printf 'npm.log\nsidecar-lab')" ] || { echo "standalone-check: something was written beside the clone" >&2; ls -A "$outer" >&2; exit 1; }
# Unit tests: every test file outside test/integration and test/faults (those need root and namespaces).
mapfile -t units < <(find test -name '*.test.ts' -not -path 'test/integration/*' -not -path 'test/faults/*' | LC_ALL=C sort)
if node_modules/.bin/tap --reporter=tap "${units[@]}" >"$outer/tap.log" 2>&1; then
  echo "standalone-check: ${#units[@]} unit test files pass in a clone with nothing beside it ($(grep -E '^# \{ total' "$outer/tap.log" | tail -1))" >&2
else
  cat "$outer/tap.log" >&2
  echo "standalone-check: the unit tests fail in a clone with nothing beside it (above)" >&2
  exit 1
fi
