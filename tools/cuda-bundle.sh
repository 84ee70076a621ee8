#!/bin/bash
# Prepares everything a lent GPU machine runs for the CUDA backend (issue 6),
# in one git-ignored folder that `run` carries there, then the one command to
# run on it. The GPU machine has CUDA, g++, Python with PyTorch, but no MLIR,
# TBB or FlatBuffers: moe-exec and the tests are built here (CUDA on, MPI and
# the compiler off), with the libraries they lack copied beside them, and the
# plans are compiled here.
#
#   tools/cuda-bundle.sh [DIR]        # default: carry/cuda (git-ignored)
#   # then, through the device tool (one call, 2-5 minutes; it returns only a
#   # few files, so pack the logs into one):
#   #   run(command="OUT=/tmp/o DEADLINE=300 carry/cuda/run.sh all; tar czf $OUT/all.tgz -C /tmp/o .",
#   #       carry=["carry/cuda"])
#
# run.sh writes under $OUT (the device tool's result folder): the GPU unit
# tests, the fixtures on --device cuda and hybrid checked against ONNX
# Runtime's outputs and the CPU's, the measured device profile, the
# Mixtral-shaped layer benchmark against PyTorch eager, and the offload
# benchmark (LRU streaming, Fiddler, moe-place-experts on --device hybrid).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${1:-$ROOT/carry/cuda}"
FIX="${MOE_FIXTURES:-$ROOT/../shared/fixtures}/onnx"
BUILD="${MOE_BUILD_DIR:-$ROOT/build}"
DEVBUILD="${MOE_DEVICE_BUILD_DIR:-$ROOT/build-device}"
JOBS="${MOE_JOBS:-2}"

say() { if [ -t 1 ]; then echo "cuda-bundle: $*"; fi; }

[ -x "$BUILD/bin/moe-opt" ] || { echo "cuda-bundle: error: $BUILD/bin/moe-opt is missing (build the project first)" >&2; exit 1; }
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "cuda-bundle: error: nvcc not found" >&2; exit 1; }

say "building moe-exec, moe-cuda-tests and moe-cuda-bench in $DEVBUILD"
cmake -S "$ROOT" -B "$DEVBUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DMOE_ENABLE_COMPILER=OFF -DMOE_ENABLE_MPI=OFF -DMOE_ENABLE_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" >/dev/null
ninja -C "$DEVBUILD" -j "$JOBS" moe-exec moe-cuda-tests moe-cuda-bench >/dev/null

rm -rf "$DIR"
mkdir -p "$DIR/bin" "$DIR/lib" "$DIR/plans" "$DIR/data" "$DIR/bench"
cp "$DEVBUILD/bin/moe-exec" "$DEVBUILD/bin/moe-cuda-tests" "$DEVBUILD/bin/moe-cuda-bench" "$DIR/bin/"
# Symbols are not needed there, and a device call carries 64 MiB at most.
strip "$DIR"/bin/*
# The libraries the GPU machine may lack (not CUDA's own: it has CUDA 13).
for b in "$DIR"/bin/*; do
  ldd "$b" | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libtbb*|libstdc++*|libgtest*|libgcc_s*) cp -L "$lib" "$DIR/lib/" ;;
  esac
done
cp "$ROOT/bench/cuda/torch_moe.py" "$ROOT/bench/cuda/compare.py" "$DIR/bench/"

# Plans: the fixtures in f32 (the QMoE block int4), bf16 and int4 experts
# for the Mixtral block, and mixtral_tiny placed for the hybrid device. cases.txt: plan, data, tolerance against ONNX Runtime's
# outputs, tolerance against the CPU run of the same plan.
# (Within the 64 MiB a device call carries: one export form per
# architecture where the others add no op, and mixtral_tiny once, as placed
# below.)
cases=(
  hf/mixtral_block.torchscript hf/mixtral.eager.torchscript
  hf/mixtral.batched_mm.torchscript hf/mixtral.batched_mm.dynamo
  hf/olmoe.batched_mm.torchscript hf/qwen2_moe.eager.torchscript
  hf/qwen2_moe.batched_mm.torchscript
  synthetic/mixtral_block_dec_dense synthetic/mixtral_block_dec_gather
  synthetic/mixtral_block_dec_loop synthetic/mixtral_block_fused_moe_fc3
  synthetic/mixtral_block_fused_moe_swiglu synthetic/mixtral_block_fused_qmoe_int4)
: > "$DIR/cases.txt"
for c in "${cases[@]}"; do
  name="${c//\//.}"
  say "compiling $c"
  "$BUILD/bin/moe-opt" "$FIX/$c/model.onnx" --moe-compile --emit-plan "$DIR/plans/$name.moeplan" -o /dev/null
  mkdir -p "$DIR/data/$name"
  cp -r "$FIX/$c"/test_data_set_* "$DIR/data/$name/"
  tol=1e-4
  # int4: an expert with more than 8 rows goes through bf16 dequantisation.
  case "$c" in *qmoe*) tol=1e-2 ;; esac
  echo "$name $name $tol $tol" >> "$DIR/cases.txt"
done
# bf16 experts: the GPU also rounds the activations entering a bf16 GEMM to
# bf16 (the CPU kernel keeps them f32), hence the looser bound against the
# CPU run of the same plan.
for c in hf/mixtral_block.torchscript; do
  name="${c//\//.}"
  "$BUILD/bin/moe-opt" "$FIX/$c/model.onnx" --moe-compile="expert-bits=16 expert-group-size=0" \
    --emit-plan "$DIR/plans/$name.bf16.moeplan" -o /dev/null
  echo "$name.bf16 $name 1e-2 2e-2" >> "$DIR/cases.txt"
  # int4 experts: far from the fp32 model's outputs (none: "-"), but the
  # GPU must match the CPU running the same int4 plan.
  "$BUILD/bin/moe-opt" "$FIX/$c/model.onnx" --moe-compile="expert-bits=4 expert-group-size=32" \
    --emit-plan "$DIR/plans/$name.int4.moeplan" -o /dev/null
  echo "$name.int4 $name - 2e-2" >> "$DIR/cases.txt"
done
# mixtral_tiny placed by moe-place-experts (the H100 profile, routing
# profiled on 8 windows of eval.bin here) under a budget of 25% of its
# 9.4 MB of experts: GPU-resident, CPU and on-demand experts in every layer.
# The plan runs on cuda (which ignores the placement) and on hybrid.
c=trained/mixtral_tiny
name="${c//\//.}"
mkdir -p "$DIR/data/$name"
cp -r "$FIX/$c"/test_data_set_* "$DIR/data/$name/"
"$BUILD/bin/moe-opt" "$FIX/$c/model.onnx" --moe-compile --emit-plan "$DIR/profiled.moeplan" -o /dev/null
"$BUILD/bin/moe-exec" "$DIR/profiled.moeplan" --perplexity "$FIX/$c/eval.bin" \
  --windows 8 --profile "$DIR/routing-profile.json" >/dev/null
rm -f "$DIR/profiled.moeplan"
"$BUILD/bin/moe-opt" "$FIX/$c/model.onnx" --pass-pipeline="builtin.module(canonicalize,cse,moe-raise-experts,canonicalize,cse,moe-place-experts{device-profile=$ROOT/bench/devices/h100-host.json profile=$DIR/routing-profile.json gpu-budget-bytes=2400000 batch=1},moe-lower-to-plan)" \
  --emit-plan "$DIR/plans/$name.placed.moeplan" -o /dev/null
echo "$name.placed $name 1e-4 1e-4 cuda" >> "$DIR/cases.txt"
echo "$name.placed $name 1e-4 1e-4 hybrid" >> "$DIR/cases.txt"
# Pruning (issue 8) on cuda and hybrid: the dynamic policies as moe-exec
# overrides, and a plan statically pruned to 7 experts per layer (its
# removed experts absent from the plan) then placed. Against the CPU running
# the same plan with the same options; "-" for ONNX Runtime, whose model is
# unpruned.
for dev in cuda hybrid; do
  echo "$name.placed $name - 1e-4 $dev --skip-threshold 0.2" >> "$DIR/cases.txt"
  echo "$name.placed $name - 1e-4 $dev --max-experts 6" >> "$DIR/cases.txt"
  echo "$name.keep7 $name - 1e-4 $dev" >> "$DIR/cases.txt"
  echo "$name.keep7 $name - 1e-4 $dev --skip-threshold 0.1 --protect-confidence 0.9" >> "$DIR/cases.txt"
done
"$BUILD/bin/moe-opt" "$FIX/$c/model.onnx" --pass-pipeline="builtin.module(canonicalize,cse,moe-raise-experts,canonicalize,cse,moe-prune-experts{profile=$DIR/routing-profile.json keep=7},moe-place-experts{device-profile=$ROOT/bench/devices/h100-host.json profile=$DIR/routing-profile.json gpu-budget-bytes=2400000 batch=1},moe-lower-to-plan)" \
  --emit-plan "$DIR/plans/$name.keep7.moeplan" -o /dev/null
cp "$FIX/$c/eval.bin" "$DIR/data/$name/"
rm -f "$DIR/routing-profile.json"

cat > "$DIR/run.sh" <<'RUN'
#!/bin/bash
# On the GPU machine: the CUDA backend's checks and benchmarks; logs under
# $OUT. `run.sh checks` (tests, fixtures, device profile: a few minutes),
# `run.sh bench` (the layer and offload benchmarks: several minutes),
# `run.sh profile` (nsys and ncu on a T=1 layer, where installed), or all
# of them (no argument) when one call may take that long.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:-$HERE/out}"
PHASE="${1:-all}"
# The whole run ends by DEADLINE seconds (a device call's limit is 600 s):
# each step's timeout is cut to what is left, and later steps are skipped.
DEADLINE="${DEADLINE:-540}"
START=$(date +%s)
left() { local l=$(( DEADLINE - ($(date +%s) - START) )); [ "$l" -gt "$1" ] && echo "$1" || echo $(( l > 5 ? l : 5 )); }
late() { [ $(( $(date +%s) - START )) -ge "$DEADLINE" ]; }
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$HERE/lib:${LD_LIBRARY_PATH:-}"
cd "$HERE"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
status=0
if [ "$PHASE" = all ] || [ "$PHASE" = checks ]; then
echo "== gtest (one process per test: a crash or a sticky CUDA error stays in its test)" | tee "$OUT/summary.txt"
bin/moe-cuda-tests --gtest_list_tests | awk '/^[^ ]/{suite=$1} /^  /{print suite $1}' > "$OUT/gtest-list.txt"
while read -r t; do
  late && { echo "skipped (deadline) $t" | tee -a "$OUT/summary.txt"; continue; }
  if timeout "$(left 120)" bin/moe-cuda-tests --gtest_filter="$t" > "$OUT/gtest.$t.txt" 2>&1; then
    echo "ok   $t $(grep -c SKIPPED "$OUT/gtest.$t.txt" | sed 's/^0$//;s/^[1-9].*/(skipped)/')" | tee -a "$OUT/summary.txt"
  else
    status=1
    echo "FAIL $t: $(grep -E 'Failure|error|Expected|Which is|Value of' "$OUT/gtest.$t.txt" | head -6 | tr '\n' ' ')" | tee -a "$OUT/summary.txt"
    # The failing test again under compute-sanitizer, for the next session.
    CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    [ -x "$CS" ] && timeout "$(left 60)" "$CS" --print-limit 20 bin/moe-cuda-tests --gtest_filter="$t" \
      > "$OUT/sanitizer.$t.txt" 2>&1
  fi
done < "$OUT/gtest-list.txt"
echo "== fixtures on --device cuda" | tee -a "$OUT/summary.txt"
while read -r plan data tol cputol dev args; do
  dev="${dev:-cuda}"
  # shellcheck disable=SC2086
  set -- $args
  key="$plan$(echo "$args" | tr -c 'a-zA-Z0-9.\n' '_')"
  for set in data/"$data"/test_data_set_*; do
    late && { echo "skipped (deadline) $plan $dev $args" | tee -a "$OUT/summary.txt"; break; }
    s="$(basename "$set")"
    log="$OUT/fixture.$key.$dev.$s.txt"
    # The CPU run of the same plan, then the GPU against ONNX Runtime's
    # outputs and against the CPU's.
    : > "$log"
    [ -d "$OUT/cpu.$key.$s" ] ||
      timeout "$(left 120)" bin/moe-exec "plans/$plan.moeplan" "$@" --inputs "$set" --outputs "$OUT/cpu.$key.$s" >> "$log" 2>&1 || status=1
    if [ "$tol" != "-" ]; then
      timeout "$(left 120)" bin/moe-exec "plans/$plan.moeplan" "$@" --device "$dev" --inputs "$set" \
        --check-outputs "$set" --tolerance "$tol" >> "$log" 2>&1 || status=1
    fi
    timeout "$(left 120)" bin/moe-exec "plans/$plan.moeplan" "$@" --device "$dev" --inputs "$set" \
      --check-outputs "$OUT/cpu.$key.$s" --tolerance "$cputol" >> "$log" 2>&1 || status=1
    echo "$plan ($dev $args) $s: $(tr '\n' ' ' < "$log")" | tee -a "$OUT/summary.txt"
  done
done < cases.txt
echo "== perplexity of mixtral_tiny (8 windows of eval.bin) on cpu, cuda, hybrid; decode batches with --max-experts 6" | tee -a "$OUT/summary.txt"
for dev in cpu cuda hybrid; do
  late && break
  timeout "$(left 120)" bin/moe-exec plans/trained.mixtral_tiny.placed.moeplan --device "$dev" \
    --perplexity data/trained.mixtral_tiny/eval.bin --windows 8 --json 2>&1 | sed "s/^/$dev: /" | tee -a "$OUT/summary.txt" || status=1
  timeout "$(left 120)" bin/moe-exec plans/trained.mixtral_tiny.placed.moeplan --device "$dev" \
    --perplexity data/trained.mixtral_tiny/eval.bin --windows 16 --batch 16 --max-experts 6 --decode-batches \
    --json 2>&1 | sed "s/^/$dev lynx: /" | tee -a "$OUT/summary.txt" || status=1
done
echo "== hybrid: measured expert layers against moe-place-experts' prediction" | tee -a "$OUT/summary.txt"
late || timeout "$(left 120)" bin/moe-exec plans/trained.mixtral_tiny.placed.moeplan --device hybrid \
  --inputs data/trained.mixtral_tiny/test_data_set_0 --bench --profile-ops 2>&1 |
  grep -E "median|hybrid|layer" | tee -a "$OUT/summary.txt" || status=1
echo "== device profile" | tee -a "$OUT/summary.txt"
late || timeout "$(left 180)" bin/moe-exec --measure-device "$OUT/device-profile.json" > /dev/null 2>> "$OUT/summary.txt" || status=1
cat "$OUT/device-profile.json" >> "$OUT/summary.txt" 2>/dev/null
fi
if [ "$PHASE" = all ] || [ "$PHASE" = bench ]; then
echo "== Mixtral-shaped layer (h=4096, f=14336, E=8, k=2, bf16)" | tee -a "$OUT/summary.txt"
late || timeout "$(left 240)" bin/moe-cuda-bench --json "$OUT/moe-layer.json" 2>&1 | tee -a "$OUT/summary.txt" || status=1
late || timeout "$(left 180)" python3 bench/torch_moe.py --json "$OUT/torch-layer.json" 2>&1 | tee -a "$OUT/summary.txt" || status=1
python3 bench/compare.py "$OUT/moe-layer.json" "$OUT/torch-layer.json" "$OUT/cuda-moe-layer.json" \
  --command "moe-cuda-bench; torch_moe.py (tools/cuda-bundle.sh run.sh)" 2>&1 | tee -a "$OUT/summary.txt" || status=1
echo "== the same layer with the decode GEMVs up to T=16 (--decode-tokens 16), to place the decode threshold" | tee -a "$OUT/summary.txt"
late || timeout "$(left 120)" bin/moe-cuda-bench --tokens 1,2,4,8,16 --decode-tokens 16 --repeat 10 \
  --json "$OUT/moe-layer-decode.json" 2>&1 | tee -a "$OUT/summary.txt" || status=1
echo "== offload: LRU streaming, Fiddler, moe-place-experts (2 Mixtral-sized layers, bf16)" | tee -a "$OUT/summary.txt"
late || timeout "$(left 240)" bin/moe-cuda-bench --offload --layers 2 --repeat 10 --warmup 3 \
  --json "$OUT/offload.json" 2>&1 | tee -a "$OUT/summary.txt" || status=1
fi
if [ "$PHASE" = all ] || [ "$PHASE" = profile ]; then
# Where T=1's 1.8x of the byte floor goes: the kernels' times and gaps
# (nsys), and the decode GEMVs' achieved DRAM throughput (ncu). Last, as
# time allows; only the text summaries come back.
echo "== profile of a T=1 layer (nsys: kernel times; ncu: the decode GEMVs' memory throughput)" | tee -a "$OUT/summary.txt"
NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
if [ -n "$NSYS" ] && [ -x "$NSYS" ] && ! late; then
  timeout "$(left 150)" "$NSYS" profile --force-overwrite true -o /tmp/moe-t1 --stats=true \
    bin/moe-cuda-bench --tokens 1 --repeat 50 --warmup 5 > "$OUT/nsys-t1.txt" 2>&1 || status=1
  grep -A14 "cuda_gpu_kern_sum" "$OUT/nsys-t1.txt" | tee -a "$OUT/summary.txt"
else
  echo "nsys: not found or no time left" | tee -a "$OUT/summary.txt"
fi
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ] && [ -x "$NCU" ] && ! late; then
  timeout "$(left 150)" "$NCU" --kernel-name regex:"upKernel|downKernel" --launch-count 4 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis \
    bin/moe-cuda-bench --tokens 1 --repeat 2 --warmup 1 > "$OUT/ncu-t1.txt" 2>&1 || status=1
  grep -E "upKernel|downKernel|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy" \
    "$OUT/ncu-t1.txt" | head -40 | tee -a "$OUT/summary.txt"
else
  echo "ncu: not found or no time left" | tee -a "$OUT/summary.txt"
fi
fi
exit $status
RUN
chmod +x "$DIR/run.sh"
say "done: $(du -sh "$DIR" | cut -f1) in $DIR"
echo "$DIR"
