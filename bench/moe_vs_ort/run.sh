#!/usr/bin/env bash
# run.sh - moe-exec against ONNX Runtime 1.30 (CPU) on the same ONNX files, in one run.
#
#   bench/moe_vs_ort/run.sh                      everything: A and B, MoE fp32 and QMoE int4,
#                                                T = 1, 16, 128
#   bench/moe_vs_ort/run.sh --workloads A --forms moe --tokens 1 --repeat 10    a subset
#   MOE_BUILD_DIR=/tmp/b MOE_JOBS=1 bench/moe_vs_ort/run.sh
#
# What it does, each step skipped when already done:
#   1. builds moe-opt, moe-exec and moe-bench-kernels (Release) in ${MOE_BUILD_DIR:-build};
#   2. installs onnxruntime-node@1.30.0 with `npm install --ignore-scripts` (the bundled CPU
#      library; the install script would fetch GPU binaries) into $BUILD/moe_vs_ort/npm;
#   3. writes the models and inputs (make_models.py) into $BUILD/moe_vs_ort: workload A
#      (Mixtral-like: hidden 1024, experts of width 3584, 8 experts, top-2) and B (OLMoE-like:
#      hidden 2048, width 1024, 64 experts, top-8), each as one com.microsoft.MoE (float32)
#      and one com.microsoft.QMoE (int4, per-row scales) node;
#   4. compiles each: moe-opt model.onnx --moe-compile --emit-plan model.moeplan;
#   5. measures the read bandwidth with 2 threads (moe-bench-kernels, and readbw.cpp with
#      vector loads), times moe-exec --bench and ort_bench.js (onnxruntime-node) on the same
#      inputs, 2 threads each, alternating in rounds, checks that the outputs agree, prints a
#      table and writes bench/results/moe-vs-ort-cpu.json.
# Options (passed to compare.py): --workloads A,B  --forms moe,qmoe[,qmoe-i8][,moe-bf16]  --tokens 1,16,128
#   (qmoe-i8: the QMoE model run with moe-exec --int8-activations; moe-bf16: the float32
#   MoE model compiled with bf16 experts, run with --bf16-activations, against ORT float32)
#   --sets N (8: input sets per T, taken in turn)  --warmup N (3)  --repeat N (30)
#   --rounds N (5)  --threads N (2)  --quiet-share X (0.05)  --quiet-wait S (60)
#   --json FILE (default: bench/results/moe-vs-ort-cpu.json).
# On a shared machine each round first waits (up to --quiet-wait s) until other processes
# leave the CPUs idle, and rounds during which they took --quiet-share of the CPUs or more
# are left out of the medians when a quiet round remains (the JSON keeps every round).
# Progress goes to stderr, only when it is a terminal. Takes minutes (B's float32 model is
# 1.6 GB); not part of tools/check.sh. Exit status 1 when a case fails or fp32 outputs differ.
set -euo pipefail
MOE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$MOE_ROOT/tools/deps.sh"
BUILD="${MOE_BUILD_DIR:-$MOE_ROOT/build}"
PY=/usr/bin/python3 # Debian's, with python3-numpy and python3-onnx (tools/deps.sh)
ORT_VERSION=1.30.0

say() { if [ -t 2 ]; then echo "moe-vs-ort: $*" >&2; fi; }
die() { echo "moe-vs-ort: error: $*" >&2; exit 1; }

command_line="bench/moe_vs_ort/run.sh${*:+ $*}"
[ -n "${MOE_BUILD_DIR:-}" ] && command_line="MOE_BUILD_DIR=$MOE_BUILD_DIR $command_line"
json="$MOE_ROOT/bench/results/moe-vs-ort-cpu.json"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --json) [ $# -ge 2 ] || die "--json wants a file"; json="$2"; shift 2 ;;
    --json=*) json="${1#--json=}"; shift ;;
    --workloads | --forms | --tokens | --sets | --warmup | --repeat | --rounds | --threads | \
      --quiet-share | --quiet-wait)
      [ $# -ge 2 ] || die "$1 wants a value"; args+=("$1" "$2"); shift 2 ;;
    --workloads=* | --forms=* | --tokens=* | --sets=* | --warmup=* | --repeat=* | --rounds=* | \
      --threads=* | --quiet-share=* | --quiet-wait=*)
      args+=("$1"); shift ;;
    -h | --help) sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
command -v node >/dev/null && command -v npm >/dev/null ||
  die "node and npm are needed for ONNX Runtime (Debian: apt-get install nodejs npm)"

# 1. The tools, built in Release.
mkdir -p "$BUILD"
BUILD="$(cd "$BUILD" && pwd)"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
if [ ! -f "$BUILD/build.ninja" ] || [ "$build_type" != Release ]; then
  moe_install_deps >&2 || die "installing the Debian packages failed"
  say "configuring $BUILD (Release)"
  moe_configure "$BUILD" || die "configuring the build failed (log: $BUILD/configure.log)"
fi
say "building moe-opt, moe-exec and moe-bench-kernels in $BUILD"
ninja -C "$BUILD" ${MOE_JOBS:+-j "$MOE_JOBS"} moe-opt moe-exec moe-bench-kernels \
  >"$BUILD/moe-vs-ort-build.log" 2>&1 ||
  { tail -30 "$BUILD/moe-vs-ort-build.log" >&2; die "build failed (log: $BUILD/moe-vs-ort-build.log)"; }

# The vector-load bandwidth probe (a cross-check of moe-bench-kernels' scalar one).
mkdir -p "$BUILD/moe_vs_ort"
READBW="$BUILD/moe_vs_ort/readbw"
if [ ! -x "$READBW" ] || [ "$MOE_ROOT/bench/moe_vs_ort/readbw.cpp" -nt "$READBW" ]; then
  g++ -O3 -march=native -pthread -o "$READBW" "$MOE_ROOT/bench/moe_vs_ort/readbw.cpp" ||
    die "building readbw failed"
fi

# 2. ONNX Runtime for node, from the npm registry (the only download).
NPM_DIR="$BUILD/moe_vs_ort/npm"
installed=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
  "$NPM_DIR/node_modules/onnxruntime-node/package.json" 2>/dev/null | head -1 || true)
if [ "$installed" != "$ORT_VERSION" ]; then
  say "npm install --ignore-scripts onnxruntime-node@$ORT_VERSION (into $NPM_DIR)"
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' >"$NPM_DIR/package.json"
  npm install --prefix "$NPM_DIR" --ignore-scripts --no-audit --no-fund --save-exact \
    "onnxruntime-node@$ORT_VERSION" >"$NPM_DIR/npm.log" 2>&1 ||
    { tail -20 "$NPM_DIR/npm.log" >&2; die "npm install failed (log: $NPM_DIR/npm.log)"; }
fi
(cd "$NPM_DIR" && NODE_PATH="$NPM_DIR/node_modules" node -e "require('onnxruntime-node')") ||
  die "onnxruntime-node does not load from $NPM_DIR/node_modules"

# 3-5. Models, plans, bandwidth, timings, parity, table, JSON.
exec "$PY" "$MOE_ROOT/bench/moe_vs_ort/compare.py" --root "$MOE_ROOT" --build "$BUILD" \
  --node-modules "$NPM_DIR/node_modules" --json "$json" --command "$command_line" ${args[@]+"${args[@]}"}
