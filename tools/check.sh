#!/usr/bin/env bash
# check.sh - installs what is missing, builds, and runs every test suite:
# lit (dialects, passes, emission, tools, end to end) and GoogleTest (ctest),
# then the runtime alone built without MPI.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
#
#   tools/check.sh                 build into ${MOE_BUILD_DIR:-build}
#   MOE_BUILD_DIR=/tmp/b tools/check.sh
set -uo pipefail
MOE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$MOE_ROOT/tools/deps.sh"
BUILD="${MOE_BUILD_DIR:-$MOE_ROOT/build}"
JOBS="${MOE_JOBS:-$(nproc)}"

moe_install_deps || exit 1
mkdir -p "$BUILD"
BUILD="$(cd "$BUILD" && pwd)"
moe_configure "$BUILD" || exit 1
echo "check: building in $BUILD"
if grep -q '^MOE_ENABLE_CUDA:BOOL=ON' "$BUILD/CMakeCache.txt"; then
  echo "check: with the CUDA code (nvcc found; GPU tests skip without a GPU)"
else
  echo "check: without the CUDA code (no nvcc)"
fi
if ! ninja -C "$BUILD" -j "$JOBS" >"$BUILD/build.log" 2>&1; then
  grep -E "error|FAILED" "$BUILD/build.log" | head -40 >&2
  echo "check: build failed (log: $BUILD/build.log)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0
failed=0

echo "check: lit suites"
lit_log="$BUILD/lit.log"
python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv "$BUILD/test" >"$lit_log" 2>&1
lit_rc=$?
grep -E "^(FAIL|XPASS|UNRESOLVED|TIMEOUT):" "$lit_log" || true
read -r lp lf < <(python3 - "$lit_log" <<'PY'
import re, sys
good = ("Passed", "Expectedly Failed")
bad = ("Failed", "Unexpectedly Passed", "Unresolved", "Timed Out")
p = f = 0
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"\s+([A-Za-z ]+?)\s*:\s*(\d+)", line)
    if m and m.group(1) in good:
        p += int(m.group(2))
    elif m and m.group(1) in bad:
        f += int(m.group(2))
print(p, f)
PY
)
if [ "$lit_rc" -ne 0 ] && [ "$lf" -eq 0 ]; then lf=1; fi
tail -n 8 "$lit_log" | sed 's/^/  /'
passed=$((passed + lp))
failed=$((failed + lf))

echo "check: gtest suites (ctest)"
ctest_log="$BUILD/ctest.log"
ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure >"$ctest_log" 2>&1
ctest_rc=$?
grep -E "\*\*\*Failed|Failed  |tests failed out of" "$ctest_log" | sed 's/^/  /'
read -r cp cf < <(python3 - "$ctest_log" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
m = re.search(r"(\d+)% tests passed, (\d+) tests? failed out of (\d+)", text)
if m:
    total, bad = int(m.group(3)), int(m.group(2))
    print(total - bad, bad)
else:
    print(0, 0 if "No tests were found" in text else 1)
PY
)
if [ "$ctest_rc" -ne 0 ] && [ "$cf" -eq 0 ]; then cf=1; fi
passed=$((passed + cp))
failed=$((failed + cf))

# The runtime alone, built without MPI (-DMOE_ENABLE_MPI=OFF, as for a
# machine without OpenMPI): it must still build warning-free and pass its
# tests (one check; about 1.5 minutes on 2 cores).
echo "check: the runtime without MPI"
nompi="$BUILD/nompi"
mkdir -p "$nompi"
if moe_configure "$nompi" -DMOE_ENABLE_MPI=OFF -DMOE_ENABLE_COMPILER=OFF \
     -DMOE_ENABLE_CUDA=OFF &&
   ninja -C "$nompi" -j "$JOBS" moe-runtime-tests >"$nompi/build.log" 2>&1 &&
   "$nompi/bin/moe-runtime-tests" >"$nompi/tests.log" 2>&1; then
  echo "  the runtime without MPI builds and passes its tests"
  passed=$((passed + 1))
else
  grep -E "error|FAILED" "$nompi/build.log" "$nompi/tests.log" 2>/dev/null | head -20 >&2
  echo "  the runtime without MPI fails (logs: $nompi)" >&2
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
