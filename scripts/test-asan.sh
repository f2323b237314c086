#!/usr/bin/env bash
# npm run test:asan: the addon built with AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/ (never
# build/Release), and the test suite run against it through scripts/test.mjs (both relay engines where the
# native one exists), every process started with libasan preloaded (node itself is not instrumented, so the
# runtime must be in place before the addon loads; the env reaches the sidecars the tests spawn). Fails when a
# test fails or when any sanitizer report appears, in the tests' output or in the report files.
# usage: scripts/test-asan.sh [FILE...]   (default: the files that exercise the addon's C, see below)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$(date +%s)

bash scripts/setup.sh
node node_modules/typescript/bin/tsc -p tsconfig.json

# A separate gyp project whose sources are the real ones (the symlink), so binding.gyp stays the one truth and
# build/Release keeps the normal build. CFLAGS come after binding.gyp's own flags, so -O1 wins over its -O2.
# -DSIDECAR_LAB_FAULTS: native/faults.h's fault switch, in this build only (test/native/relay-faults.test.ts and
# test/native/netns-faults.test.ts, both in the default list below, which takes every file in test/native).
out=$root/build-asan
rm -rf "$out"
mkdir -p "$out"
cp binding.gyp "$out/"
ln -s ../native "$out/native"
sanitize='-fsanitize=address,undefined'
flags="$sanitize -DSIDECAR_LAB_FAULTS -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1 -g -Wall -Wextra -Werror"
# npm sets npm_config_node_gyp and npm_config_nodedir for its scripts; run by hand, ask npm for the same ones.
node_gyp=${npm_config_node_gyp:-$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js}
nodedir=${npm_config_nodedir:-$(npm config get nodedir)}
[ "$nodedir" = undefined ] && nodedir=''
(cd "$out" && CFLAGS="$flags" CXXFLAGS="$flags" LDFLAGS="$sanitize" node "$node_gyp" rebuild ${nodedir:+--nodedir="$nodedir"} >build.log 2>&1) ||
  { cat "$out/build.log" >&2; echo "test:asan: the sanitizer build failed (above)" >&2; exit 1; }
addon=$out/build/Release/sockopt.node
libasan=$(gcc -print-file-name=libasan.so)
[ -f "$libasan" ] || { echo "test:asan: gcc has no libasan.so (gcc -print-file-name=libasan.so gave '$libasan')" >&2; exit 1; }

# Some programs the tests run deadlock at start with libasan preloaded (glibc's locale lock, in curl, dnsmasq
# and procps on Debian 12). None of them loads the addon: each one found hanging here gets a shim first in PATH
# that runs it without the preload. Node and everything else keep it, so every sidecar and test process has it.
shims=$out/bin
mkdir -p "$shims"
for program in curl dnsmasq dig haproxy wrk ps pgrep pkill ip iptables ip6tables iptables-save iptables-restore \
               ip6tables-restore nft conntrack ss sysctl setpriv prlimit nsenter unshare mount umount mkfifo git bash; do
  real=$(command -v "$program" || PATH="$PATH:/usr/sbin:/sbin" command -v "$program" || true)
  [ -n "$real" ] || continue
  LD_PRELOAD=$libasan ASAN_OPTIONS=detect_leaks=0 timeout 5 "$real" --version </dev/null >/dev/null 2>&1 && continue
  [ $? = 124 ] || continue
  printf '#!/bin/sh\n# test:asan: %s hangs with libasan preloaded and never loads the addon\nunset LD_PRELOAD\nexec %s "$@"\n' \
    "$program" "$real" >"$shims/$program"
  chmod 755 "$shims/$program"
done
echo "test:asan: run without the preload (they hang with it): $(ls "$shims" | tr '\n' ' ')" >&2

# What the sanitizers are for: the addon's C. By default the files that load it in the process under test or
# drive its relay: its own tests (test/native), the in-process proxy units (test/proxy), ZDS (its fd passing), the files both relay
# engines must pass (scripts/relay-engines.mjs) and the relay differential. Name files to run others.
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <({
    find test/native test/proxy -name '*.test.ts'
    echo test/integration/relay-differential.test.ts
    echo test/ambient/zds.test.ts
    node --input-type=module -e "import('./scripts/relay-engines.mjs').then((m) => console.log(m.engineFiles.join('\\n')))"
  } | LC_ALL=C sort -u)
fi

logs=$out/logs
mkdir -p "$logs"
chmod 1777 "$logs" # sidecars drop to uid 1337 and apps run as 1000: they write their reports here too
echo "test:asan: $addon, LD_PRELOAD=$libasan, ${#files[@]} test files; reports in $logs" >&2
status=0
# Two files at once (26 min one at a time on 2 cores): most of these wait on namespaces, peers and timers.
# detect_leaks=0: node's own allocations at exit are not ours. log_path: a report from a process whose stderr a
# test swallows (a sidecar's) still lands where this script looks. SIDECAR_LAB_EXPECT_FAULTS: the fault tests
# fail here, rather than skip, when the addon has no fault switch.
env PATH="$shims:$PATH" SIDECAR_LAB_ADDON="$addon" LD_PRELOAD="$libasan" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$logs/asan" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan" \
  SIDECAR_LAB_EXPECT_FAULTS=1 SIDECAR_LAB_TEST_LABEL=asan node scripts/test.mjs --no-setup --jobs 2 "${files[@]}" 2>&1 | tee "$logs/tests.log" || status=$?

reports=$(grep -lE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: UndefinedBehaviorSanitizer' "$logs"/* 2>/dev/null || true)
minutes=$(( ($(date +%s) - start + 59) / 60 ))
if [ -n "$reports" ]; then
  for f in $reports; do
    echo "=== $f" >&2
    grep -E -A30 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$f" | head -60 >&2
  done
  echo "test:asan: sanitizer reports (above) after ${minutes} min" >&2
  exit 1
fi
[ "$status" = 0 ] || { echo "test:asan: tests failed under the sanitizers (no sanitizer report) after ${minutes} min" >&2; exit "$status"; }
echo "test:asan: no sanitizer report, every test passed (${minutes} min)" >&2
