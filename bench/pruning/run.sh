#!/usr/bin/env bash
# run.sh - expert pruning: time per token and fidelity for a sweep of each policy's knob.
#
#   bench/pruning/run.sh                              everything (about 30 minutes)
#   bench/pruning/run.sh --models olmoe_tiny --repeat 10
#   MOE_BUILD_DIR=/tmp/b bench/pruning/run.sh
#
# Models: the trained fixtures mixtral_tiny (8 experts, top-2) and olmoe_tiny (32, top-4),
# and two generated ones written with tools/demo/make_model.py (untrained: fidelity against
# the unpruned logits, not perplexity): mixtral_gen (hidden 512, 8 experts of width 1408,
# top-2) and olmoe_gen (hidden 512, 64 experts of width 256, top-8); and olmoe_trained,
# trained here with tools/demo/train_model.py (numpy, about 8 minutes, cached) on the
# Python standard library's sources: 2 layers, hidden 128, 64 experts of width 64, top-8,
# timed with its experts zero-padded to width 4096 (the same function; 805 MB of fp32
# experts, beyond the 480 MiB L3) and scored unpadded on olmoe_tiny's eval.bin. Policies (moe-exec
# overrides of the plan's moe.route, and moe-prune-experts for static pruning):
#   token level (MC-MoE): --skip-threshold 0.05 ... 0.3, batch 1 and 32;
#   batch level (Lynx): --max-experts and --batch-mass, batch 32 (decode batches);
#   static: keep the E-1 and 3E/4 most used experts (trained models; profile on held-out
#   windows).
# For each: time per token of a decode step (input [B, 1] of text bytes, 8 rotating sets,
# moe-exec --bench, 2 threads), expert bytes read per step against unpruned, and fidelity on
# eval.bin windows (perplexity, KL(unpruned || pruned), top-1 agreement, logits relative
# error; batch-level policies with --decode-batches: each position of 32 windows is one
# batch, and the profile gives the expert bytes of each such decode step: "bytes(ev)").
# Writes bench/results/pruning.json and prints a table.
set -euo pipefail
BENCH=pruning
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"
work="$WORK"
say "writing the generated models"
"$PY" "$MOE_ROOT/tools/demo/make_model.py" --out "$work/mixtral_gen" >/dev/null
"$PY" "$MOE_ROOT/tools/demo/make_model.py" --out "$work/olmoe_gen" --experts 64 --top-k 8 \
  --ffn 256 >/dev/null
"$PY" "$MOE_ROOT/tools/demo/train_model.py" --out "$work/olmoe_trained" --pad-ffn 4096 \
  --eval "$MOE_ROOT/../shared/fixtures/onnx/trained/olmoe_tiny/eval.bin" >/dev/null
exec "$PY" "$MOE_ROOT/bench/pruning/pruning.py" --bin "$BUILD/bin" --work "$work" \
  --fixtures "$MOE_ROOT/../shared/fixtures/onnx/trained" --command "$command_line" "$@"
