#!/usr/bin/env bash
# run.sh - builds the libFuzzer targets with ASan + UBSan (clang, Debian's
# `clang` package) and fuzzes the plan loader and the TensorProto parser,
# seeded with real plans and tensors.
#
#   test/fuzz/run.sh [SECONDS per target, default 120] [BUILD_DIR, default build]
#
# The runtime's sources are compiled into each fuzzer so that they are
# instrumented too. Crashes are written to $OUT/crash-*; the script exits
# non-zero if a target failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SECONDS_PER_TARGET="${1:-120}"
BUILD="${2:-$ROOT/build}"
OUT="$BUILD/fuzz"
mkdir -p "$OUT/corpus/plan" "$OUT/corpus/tensorproto" "$OUT/corpus/onnx"
CXX="${CXX_FUZZ:-clang++}"
FLAGS=(-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"$ROOT" -I"$BUILD"
       -I/usr/include -DNDEBUG)
SOURCES=$(ls "$ROOT"/runtime/*.cpp "$ROOT"/runtime/cpu/*.cpp "$ROOT"/runtime/io/*.cpp \
             "$ROOT"/kernels/cpu/*.cpp)

# Seeds: plans written by moe-opt, tensors written by numpy/onnx if present.
"$BUILD/bin/moe-opt" "$ROOT/test/Emit/emit-plan.mlir" --emit-plan "$OUT/corpus/plan/emit.moeplan"
find "$BUILD/test" -name "*.pb" -size -64k 2>/dev/null | head -20 | while read -r pb; do
  cp "$pb" "$OUT/corpus/tensorproto/$(echo "$pb" | md5sum | cut -c1-12).pb"
done

# ONNX seeds: the small synthetic fixtures, if present.
for m in "$ROOT"/../shared/fixtures/onnx/synthetic/*/model.onnx; do
  [ -f "$m" ] && cp "$m" "$OUT/corpus/onnx/$(basename "$(dirname "$m")").onnx"
done

status=0
for target in plan_loader tensorproto onnx_wirescan; do
  echo "fuzz: building fuzz_$target"
  if [ "$target" = onnx_wirescan ]; then
    "$CXX" "${FLAGS[@]}" "$ROOT/test/fuzz/fuzz_$target.cpp" \
      "$ROOT/frontends/onnx/WireScan.cpp" -o "$OUT/fuzz_$target"
    corpus="$OUT/corpus/onnx"
  else
    # shellcheck disable=SC2086
    "$CXX" "${FLAGS[@]}" "$ROOT/test/fuzz/fuzz_$target.cpp" $SOURCES -ltbb \
      -o "$OUT/fuzz_$target"
    corpus="$OUT/corpus/${target/plan_loader/plan}"
  fi
  echo "fuzz: running fuzz_$target for ${SECONDS_PER_TARGET}s"
  if ! (cd "$OUT" && ./"fuzz_$target" -max_total_time="$SECONDS_PER_TARGET" \
          -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 "$corpus" \
          >"$OUT/fuzz_$target.log" 2>&1); then
    echo "fuzz: fuzz_$target FAILED (log: $OUT/fuzz_$target.log)"
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov: " "$OUT/fuzz_$target.log" | tail -3
done
exit $status
