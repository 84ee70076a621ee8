#!/usr/bin/env bash
# demo.sh - the main job end to end, starting from an ONNX model:
#   install what is missing -> build -> generate a small Mixtral-style MoE language model
#   in ONNX (tools/demo/make_model.py: 2 layers, hidden 512, 8 experts of width 1408,
#   top-2, com.microsoft.MoE) -> import and compile it to a plan
#   (moe-opt model.onnx --moe-compile --emit-plan model.moeplan) -> run it on the CPU and
#   check the logits against the generator's numpy reference -> time a decode step and
#   prefills -> print a short report.
#
#   tools/demo.sh                          default model, into ${MOE_BUILD_DIR:-build}/demo
#   tools/demo.sh --layers 4 --experts 16  options of tools/demo/make_model.py (--help);
#                                          the model is made again only when they change
#   MOE_BUILD_DIR=/tmp/b MOE_JOBS=1 tools/demo.sh
#
# Progress lines go to stderr, and only when it is a terminal; the report goes to stdout.
# Any failure stops the demo with one "demo: error: ..." line and a non-zero exit.
set -euo pipefail
MOE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$MOE_ROOT/tools/deps.sh"
BUILD="${MOE_BUILD_DIR:-$MOE_ROOT/build}"
PY=/usr/bin/python3 # Debian's, with python3-numpy and python3-onnx (tools/deps.sh)

say() { if [ -t 2 ]; then echo "demo: $*" >&2; fi; }
die() { echo "demo: error: $*" >&2; exit 1; }
trap 'die "unexpected failure at line $LINENO (exit status $?)"' ERR

moe_install_deps || die "installing the Debian packages failed"
mkdir -p "$BUILD"
BUILD="$(cd "$BUILD" && pwd)"
moe_configure "$BUILD" || die "configuring the build failed (log: $BUILD/configure.log)"
say "building moe-opt and moe-exec in $BUILD"
ninja -C "$BUILD" ${MOE_JOBS:+-j "$MOE_JOBS"} moe-opt moe-exec >"$BUILD/demo-build.log" 2>&1 ||
  { tail -30 "$BUILD/demo-build.log" >&2; die "build failed (log: $BUILD/demo-build.log)"; }

OUT="$BUILD/demo"
OPT="$BUILD/bin/moe-opt"
EXEC="$BUILD/bin/moe-exec"
LOG="$OUT/demo.log"
mkdir -p "$OUT"
: >"$LOG"

# step WHAT CMD...: runs CMD with its output in $LOG; on failure shows the end of it.
# step_to FILE WHAT CMD...: the same with CMD's stdout in FILE.
step() { step_to "" "$@"; }
step_to() {
  local file="$1" what="$2" rc=0
  shift 2
  echo "\$ $*${file:+ >$file}" >>"$LOG"
  if [ -n "$file" ]; then "$@" >"$file" 2>>"$LOG" || rc=$?; else "$@" >>"$LOG" 2>&1 || rc=$?; fi
  if [ "$rc" -ne 0 ]; then
    tail -15 "$LOG" >&2
    die "$what failed with exit status $rc (log: $LOG)"
  fi
}

for arg in "$@"; do
  case "$arg" in --out | --out=*) die "the model goes to $BUILD/demo; set MOE_BUILD_DIR instead of --out" ;; esac
done

# 1. The model: made once, again only when make_model.py or its options change.
say "generating the ONNX model in $OUT (tools/demo/make_model.py $*)"
step "generating the model" "$PY" "$MOE_ROOT/tools/demo/make_model.py" --out "$OUT" "$@"
for f in model.onnx model.json test_data_set_0/input_0.pb test_data_set_0/output_0.pb; do
  [ -f "$OUT/$f" ] || die "make_model.py did not write $OUT/$f"
done

cd "$OUT"
rm -rf outputs bench-*.json describe.json check.txt

# 2. Import + compile, timed.
say "moe-opt model.onnx --moe-compile --emit-plan model.moeplan"
start=$(date +%s%N)
step "import + compile (moe-opt)" "$OPT" model.onnx --moe-compile --emit-plan model.moeplan
compile_ns=$(($(date +%s%N) - start))
step_to describe.json "describing the plan (moe-exec --describe)" \
  "$EXEC" model.moeplan --describe --json

# 3. Run it on test_data_set_0; the generator's numpy reference must agree.
say "moe-exec model.moeplan --inputs test_data_set_0 --outputs outputs"
step "running the plan (moe-exec)" "$EXEC" model.moeplan --inputs test_data_set_0 --outputs outputs
step "checking the logits against the numpy reference" "$PY" - check <<'PY'
import sys
import numpy as np
import onnx
from onnx import numpy_helper

def load(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)

got = load("outputs/output_0.pb")
ref = load("test_data_set_0/output_0.pb")
if got.shape != ref.shape:
    sys.exit("logits have shape %s, the reference %s" % (got.shape, ref.shape))
diff = float(np.abs(got.astype(np.float64) - ref).max())
scale = float(np.abs(ref).max())
with open("check.txt", "w") as f:
    f.write("%s %g %g\n" % ("x".join(map(str, got.shape)), diff, scale))
if not diff <= 1e-3 * max(scale, 1.0):
    sys.exit("logits differ from the numpy reference by up to %g (largest |logit| %g)" % (diff, scale))
PY

# 4. Time it: one decode step (1 token) and prefills, median of moe-exec --bench.
tokens=$("$PY" -c 'import json; print(" ".join(map(str, json.load(open("model.json"))["options"]["bench_tokens"])))')
for t in $tokens; do
  say "moe-exec model.moeplan --inputs bench_$t --bench --json  (T=$t)"
  step_to "bench-$t.json" "timing $t token(s) (moe-exec --bench)" \
    "$EXEC" model.moeplan --inputs "bench_$t" --bench --json
done

# 5. The report.
"$PY" - "$compile_ns" "$tokens" "$OUT" "$(nproc)" <<'PY' || die "writing the report failed"
import json, os, sys
compile_ns, tokens, out, cores = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3], sys.argv[4]
info = json.load(open("model.json"))
cfg = info["config"]
plan = json.load(open("describe.json"))
meta = plan.get("metadata", {})
shape, diff, scale = open("check.txt").read().split()
mib = lambda n: n / 2**20

def per_layer(key):
    v = meta.get(key, [])
    return ", ".join(map(str, sorted(set(v)))) if v else "?"

print("== demo: a Mixtral-style MoE language model from ONNX, compiled and run on the CPU")
print("model          %s/model.onnx  (tools/demo/make_model.py)" % out)
print("layers         %d decoder layers (%d MoE layers in the plan), hidden %d, %d heads, vocab %d"
      % (cfg["layers"], meta.get("moe_layers", -1), cfg["hidden"], cfg["heads"], cfg["vocab"]))
print("experts        %s per layer, top-%s, SwiGLU of width %d (com.microsoft.MoE)"
      % (per_layer("experts_per_layer"), per_layer("top_k"), cfg["ffn"]))
print("parameters     %.1f M (%.1f M in experts; %.1f M used per token)"
      % (info["parameters"] / 1e6, info["expert_parameters"] / 1e6,
         info["active_parameters_per_token"] / 1e6))
print("model file     %.1f MiB" % mib(os.path.getsize("model.onnx")))
print("plan           %.1f MiB  model.moeplan: %d steps, %d weights"
      % (mib(os.path.getsize("model.moeplan")), len(plan["steps"]), len(plan["weights"])))
print("import+compile %.2f s  (moe-opt model.onnx --moe-compile --emit-plan model.moeplan)"
      % (compile_ns / 1e9))
print("run            logits %s on test_data_set_0: max |diff| %.2g vs the numpy reference (max |logit| %.3g)"
      % (shape, float(diff), float(scale)))
bench = {t: json.load(open("bench-%s.json" % t)) for t in tokens}
first = next(iter(bench.values()))
print("time per token (median of %d runs after %d warm-up, %s threads on %s cores; no KV cache)"
      % (first["repeat"], first["warmup"], first["threads"], cores))
for t, r in bench.items():
    n = int(t)
    kind = "decode step" if n == 1 else "prefill"
    print("  %-11s %4d token%s  %8.3f ms/token  (%.2f ms in all, min %.2f ms; %.0f tokens/s)"
          % (kind, n, " " if n == 1 else "s", r["median_ms"] / n, r["median_ms"], r["min_ms"],
             1e3 * n / r["median_ms"]))
PY
