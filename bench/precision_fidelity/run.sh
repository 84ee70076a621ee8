#!/usr/bin/env bash
# run.sh - fidelity of per-expert mixed precision (moe-assign-precision) against uniform
# quantisation at the same size, on the trained fixtures and a larger generated model.
#
#   bench/precision_fidelity/run.sh                   everything (a few minutes)
#   bench/precision_fidelity/run.sh --models mixtral_tiny --windows 16     a subset
#   MOE_BUILD_DIR=/tmp/b bench/precision_fidelity/run.sh
#
# What it does:
#   1. builds moe-opt and moe-exec (Release) in ${MOE_BUILD_DIR:-build};
#   2. writes the generated model with tools/demo/make_model.py (Mixtral-style decoder,
#      hidden 512, 8 experts of width 1408, top-2, 2 layers, vocab 512; untrained, so its
#      perplexity means nothing but its fidelity to fp32 does) into $BUILD/precision_fidelity;
#   3. per model: compiles the fp32 plan; records a routing profile on calibration windows
#      that do not overlap the scored ones (eval.bin from byte 131072 on, 32 windows);
#      compiles uniform plans (int8/g128, int4/g128, int3/g128, int2/g32 = 2.5 bits,
#      int2/g128, and the zero-point variants int4/g128/zp, int3/g128/zp, int2/g128/zp) and,
#      for each, an LP-assigned plan (moe-assign-precision) with exactly its bytes, plus
#      LP plans at 2.5 and 2.25 average bits; scores every plan with
#      moe-exec --perplexity eval.bin --reference fp32.moeplan: perplexity (the first
#      --windows windows of 256 bytes), KL(fp32 || plan), top-1 agreement, relative
#      error of the logits, and the plan's size and expert bits;
#   4. prints a table and writes bench/results/precision-fidelity.json (machine, command).
# Options (passed to fidelity.py): --models mixtral_tiny,olmoe_tiny,mixtral_gen
#   --windows N (64; the generated model uses min(N, 16))  --json FILE.
# Exit status 1 when a step fails or an LP plan is worse (higher KL) than the uniform plan
# of its size.
set -euo pipefail
BENCH=precision-fidelity
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"
work="$WORK"
say "writing the generated model"
"$PY" "$MOE_ROOT/tools/demo/make_model.py" --out "$work/mixtral_gen" >/dev/null
exec "$PY" "$MOE_ROOT/bench/precision_fidelity/fidelity.py" --bin "$BUILD/bin" --work "$work" \
  --fixtures "$MOE_ROOT/../shared/fixtures/onnx/trained" --command "$command_line" "$@"
