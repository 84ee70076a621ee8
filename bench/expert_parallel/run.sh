#!/usr/bin/env bash
# run.sh - the expert- and tensor-parallel runtime on loopback MPI: plain and pipelined
# exchanges of an OLMoE-like layer, and its tensor-parallel form (the weights cut into a
# slice of F per rank), measured next to the traffic model's predictions.
#
#   bench/expert_parallel/run.sh                          2 and 4 ranks (about 5 minutes)
#   bench/expert_parallel/run.sh --ranks 2 --tokens 64 --repeat 5
#   bench/expert_parallel/run.sh --ranks 4 --layouts hybrid --out bench/results/expert-parallel-hybrid.json
#   MOE_BUILD_DIR=/tmp/b bench/expert_parallel/run.sh
#
# The layer is bench/moe_vs_ort's workload B (hidden 2048, 64 SwiGLU experts of width 1024,
# top-8, f32 weights: 24 MiB per expert, 1.5 GiB in all), with 4 input sets of T tokens
# (uniform routing). Steps:
#   1. calibrate the unpartitioned plan at the smallest and the largest T, with one thread
#      and with every core: the expert weight read rate M and FLOP rate F that fit
#      t = bytes of the experts touched / M + FLOPs / F at both (the CPU kernels do not
#      overlap reads and FLOPs; --compute-model roofline takes the larger instead); a rank
#      of an R-rank run gets min(one thread's rate, the node's rate / R);
#   2. per rank count R: measure the links (mpirun -np R moe-exec --measure-network),
#      partition the layer expert-parallel (moe-partition with that topology and those
#      rates) and, for each T and each chunk count c in 1, 2, 4, 8, run mpirun -np R moe-exec
#      --bench --exchange-chunks c with rank r reading input set r ({rank}); then the same
#      unchunked with the layer partitioned tensor-parallel (--layouts ep,tp);
#   3. predict each case with moe-partition-sim --topology ... --layer ... (the same traffic
#      model moe-partition uses) and print the measured and predicted ms, the model's choice
#      of c, and the exchange's share.
# Writes bench/results/expert-parallel.json (with the machine and this command) and prints a
# table.
set -euo pipefail
BENCH=expert-parallel
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"
ninja -C "$BUILD" -j "${MOE_JOBS:-$(nproc)}" moe-partition-sim >>"$BUILD/$BENCH.build.log" 2>&1 ||
  { tail -20 "$BUILD/$BENCH.build.log" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "$BENCH: error: mpirun not found (tools/deps.sh installs OpenMPI)" >&2; exit 1; }
say "writing the OLMoE-like layer"
"$PY" "$MOE_ROOT/bench/moe_vs_ort/make_models.py" --out "$WORK/models" --workloads B \
  --tokens 16,64,256 --sets 4 >/dev/null
exec "$PY" "$MOE_ROOT/bench/expert_parallel/expert_parallel.py" --bin "$BUILD/bin" \
  --work "$WORK" --command "$command_line" "$@"
