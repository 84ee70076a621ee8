"""End-to-end parity of one ONNX fixture folder (the ONNX test-data layout).

  onnx_fixture.py FIXTURE_DIR WORK_DIR [--expect-moe] [--threads N]

Imports and compiles FIXTURE_DIR/model.onnx once with
`moe-opt model.onnx --moe-compile --emit-plan`, runs the one plan with
`moe-exec --inputs test_data_set_N --outputs` for every data set, and compares
each output with the reference within max |out - ref| <= 1e-4 * max |ref|.
With --expect-moe, also checks that the compiled IR contains moe.experts and
no nn.topk (every MoE layer was imported or raised as moe ops).
Prints one `ok:` line per data set; exits non-zero on any failure.
"""
import glob
import os
import subprocess
import sys

import numpy as np
from onnx import TensorProto, numpy_helper


def load(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write("command failed: " + " ".join(cmd) + "\n" + r.stderr)
        sys.exit(1)
    return r.stdout


def main():
    args = sys.argv[1:]
    expect_moe = "--expect-moe" in args
    threads = []
    if "--threads" in args:
        i = args.index("--threads")
        threads = ["--threads", args[i + 1]]
        del args[i:i + 2]
    args = [a for a in args if not a.startswith("--")]
    fixture, work = args
    os.makedirs(work, exist_ok=True)
    model = os.path.join(fixture, "model.onnx")
    plan = os.path.join(work, "model.moeplan")
    ir = run(["moe-opt", model, "--moe-compile", "--emit-plan", plan,
              "-o", os.path.join(work, "compiled.mlir")])
    del ir
    if expect_moe:
        with open(os.path.join(work, "compiled.mlir")) as f:
            text = f.read()
        if "moe.experts" not in text:
            print("FAIL: no moe.experts in the compiled IR")
            sys.exit(1)
        if "nn.topk" in text:
            print("FAIL: a router (nn.topk) was not raised to moe ops")
            sys.exit(1)
        print("ok: moe.experts present, every router raised")
    sets = sorted(glob.glob(os.path.join(fixture, "test_data_set_*")))
    if not sets:
        print("FAIL: no test_data_set_* in " + fixture)
        sys.exit(1)
    failed = False
    for s in sets:
        name = os.path.basename(s)
        out = os.path.join(work, "out_" + name)
        run(["moe-exec", plan, "--inputs", s, "--outputs", out] + threads)
        refs = sorted(glob.glob(os.path.join(s, "output_*.pb")))
        for ref_path in refs:
            ref = load(ref_path)
            got_path = os.path.join(out, os.path.basename(ref_path))
            if not os.path.exists(got_path):
                print("FAIL: %s: %s was not written" % (name, got_path))
                failed = True
                continue
            got = load(got_path)
            if got.shape != ref.shape:
                print("FAIL: %s: shape %s, reference %s" % (name, got.shape, ref.shape))
                failed = True
                continue
            err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
            tol = 1e-4 * float(np.max(np.abs(ref))) if ref.size else 0.0
            status = "ok" if err <= tol else "FAIL"
            failed |= status != "ok"
            print("%s: %s %s max |out - ref| = %.3g (tolerance %.3g)"
                  % (status, name, os.path.basename(ref_path), err, tol))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
