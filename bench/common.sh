# common.sh - sourced by the bench/*/run.sh drivers after `set -euo pipefail`:
#
#   BENCH=pruning
#   source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"
#
# Prints the calling script's header for -h/--help, installs the Debian packages, and
# configures (when needed) and builds moe-opt and moe-exec. Sets MOE_ROOT, BUILD
# (${MOE_BUILD_DIR:-build}), PY (Debian's python3, with numpy and onnx), WORK
# ($BUILD/$BENCH, created) and command_line; defines say (progress on a terminal).
MOE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$MOE_ROOT/tools/deps.sh"
BUILD="${MOE_BUILD_DIR:-$MOE_ROOT/build}"
PY=/usr/bin/python3
say() { if [ -t 2 ]; then echo "$BENCH: $*" >&2; fi; }

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -e/p' "${BASH_SOURCE[1]}" | sed '$d; s/^# \{0,1\}//'
  exit 0
fi
command_line="bench/${BENCH//-/_}/run.sh${*:+ $*}"
moe_install_deps "${MOE_BENCH_PACKAGES[@]}" >/dev/null || exit 1
if [ ! -f "$BUILD/build.ninja" ]; then
  say "configuring $BUILD"
  moe_configure "$BUILD" || exit 1
fi
say "building moe-opt and moe-exec"
ninja -C "$BUILD" -j "${MOE_JOBS:-$(nproc)}" moe-opt moe-exec >"$BUILD/$BENCH.build.log" 2>&1 ||
  { tail -20 "$BUILD/$BENCH.build.log" >&2; exit 1; }
WORK="$BUILD/${BENCH//-/_}"
mkdir -p "$WORK"
