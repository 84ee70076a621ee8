#!/usr/bin/env bash
# demo.sh - the main job end to end on the built-in model:
#   install what is missing -> build -> compile tools/demo/mixtral_block.mlir
#   (a Mixtral-style MoE block: hidden 1024, 8 experts of width 3584, top-2)
#   to a plan -> describe it -> run it on the CPU -> time decode and prefill.
#
#   tools/demo.sh [MODEL.mlir]      (default: tools/demo/mixtral_block.mlir)
#   MOE_BUILD_DIR=/tmp/b tools/demo.sh
set -euo pipefail
MOE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$MOE_ROOT/tools/deps.sh"
BUILD="${MOE_BUILD_DIR:-$MOE_ROOT/build}"
MODEL="${1:-$MOE_ROOT/tools/demo/mixtral_block.mlir}"

moe_install_deps
mkdir -p "$BUILD"
BUILD="$(cd "$BUILD" && pwd)"
moe_configure "$BUILD"
echo "demo: building moe-opt and moe-exec in $BUILD"
ninja -C "$BUILD" moe-opt moe-exec >"$BUILD/demo-build.log" 2>&1 ||
  { tail -30 "$BUILD/demo-build.log" >&2; echo "demo: build failed" >&2; exit 1; }

OUT="$BUILD/demo"
mkdir -p "$OUT"
PLAN="$OUT/$(basename "${MODEL%.mlir}").moeplan"
OPT="$BUILD/bin/moe-opt"
EXEC="$BUILD/bin/moe-exec"

echo
echo "== 1. compile: $OPT $(basename "$MODEL") --moe-compile --emit-plan $PLAN"
start=$(date +%s.%N)
"$OPT" "$MODEL" --moe-compile --emit-plan "$PLAN"
end=$(date +%s.%N)
python3 -c "import os,sys; print('   plan written in %.2f s: %.1f MiB' % ($end - $start, os.path.getsize(sys.argv[1]) / 2**20))" "$PLAN"

echo
echo "== 2. the plan (moe-exec --describe)"
"$EXEC" "$PLAN" --describe | sed 's/^/   /'

HIDDEN=$("$EXEC" "$PLAN" --describe --json | python3 -c "import json,sys; print(json.load(sys.stdin)['inputs'][0]['shape'][-1])")

echo
echo "== 3. run 16 tokens on the CPU: moe-exec --random-inputs 1 --input-shape 0=16,$HIDDEN --outputs $OUT/outputs"
"$EXEC" "$PLAN" --random-inputs 1 --input-shape "0=16,$HIDDEN" --outputs "$OUT/outputs"
ls -l "$OUT/outputs" | sed 's/^/   /'

echo
echo "== 4. time it (median of repeated runs, $(nproc) threads)"
for tokens in 1 16 128; do
  json=$("$EXEC" "$PLAN" --random-inputs 2 --input-shape "0=$tokens,$HIDDEN" --bench --json)
  python3 - "$tokens" "$json" <<'PY'
import json, sys
t = int(sys.argv[1]); r = json.loads(sys.argv[2])
print("   T=%-4d median %8.3f ms  min %8.3f ms  -> %.3f ms per token" % (t, r["median_ms"], r["min_ms"], r["median_ms"] / t))
PY
done

echo
echo "demo: done. The plan is $PLAN; outputs are in $OUT/outputs (ONNX TensorProto)."
