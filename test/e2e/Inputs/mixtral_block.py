#!/usr/bin/python3
"""Weights, inputs and an independent numpy reference for mixtral_block.mlir.

  mixtral_block.py gen DIR        write DIR/weights.bin and DIR/test_data_set_N
  mixtral_block.py gen DIR --quant BITS,BITS,BITS,BITS --group G [--f32-scales] [--zero-points]
                                  the same, but the references use each expert's
                                  weights quantised as the plan stores them
                                  (kernels/cpu/Quant.h), re-implemented here
  mixtral_block.py compare REF OUT [--rtol R]

The reference is written from the model's definition (RMSNorm, softmax
router, top-2 with renormalised weights, SwiGLU experts, residual), not from
the compiler's kernels. Tensors are read and written with onnx.numpy_helper.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper

H, F, E, K = 32, 48, 4, 2
EPS = 1e-5


def weights(rng):
    return {
        "norm": (1.0 + 0.1 * rng.standard_normal(H)).astype(np.float32),
        "router": rng.standard_normal((E, H)).astype(np.float32),
        "w1": (0.2 * rng.standard_normal((E, F, H))).astype(np.float32),
        "w2": (0.2 * rng.standard_normal((E, H, F))).astype(np.float32),
        "w3": (0.2 * rng.standard_normal((E, F, H))).astype(np.float32),
    }


def reference(x, w):
    x64 = x.astype(np.float64)
    h = x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + EPS) * w["norm"]
    logits = h @ w["router"].T.astype(np.float64)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    out = x64.copy()
    for t in range(x.shape[0]):
        top = np.argsort(-p[t], kind="stable")[:K]
        gates = p[t, top] / p[t, top].sum()
        for e, g in zip(top, gates):
            a = w["w1"][e].astype(np.float64) @ h[t]
            b = w["w3"][e].astype(np.float64) @ h[t]
            act = a / (1.0 + np.exp(-a)) * b
            out[t] += g * (w["w2"][e].astype(np.float64) @ act)
    return out.astype(np.float32)


def quantise(w, bits, group, f16_scales, zero_points):
    """Round-to-nearest group-wise quantisation of w [rows, cols], returned
    dequantised, following the documented format (not the C++ code)."""
    rows, cols = w.shape
    out = np.empty_like(w)
    levels = (1 << bits) - 1
    mid = 1 << (bits - 1)
    for r in range(rows):
        for c0 in range(0, cols, group):
            x = w[r, c0:c0 + group].astype(np.float32)
            if zero_points:
                lo = np.float32(min(x.min(), 0.0))
                hi = np.float32(max(x.max(), 0.0))
                scale = np.float32((hi - lo) / np.float32(levels))
                zero = int(np.clip(np.floor(-lo / scale + 0.5), 0, levels)) if scale > 0 else 0
            else:
                scale = np.float32(np.abs(x).max() / np.float32(max(mid - 1, 1)))
                zero = mid
            stored = np.float32(np.float16(scale)) if f16_scales else scale
            inv = np.float32(1.0) / stored if stored > 0 else np.float32(0.0)
            q = np.floor(np.abs(x * inv) + 0.5) * np.sign(x * inv)  # round half away
            codes = np.clip(q + zero, 0, levels)
            out[r, c0:c0 + group] = (codes - zero).astype(np.float32) * stored
    return out


def quantise_experts(w, spec):
    bits_list, group, f16_scales, zero_points = spec
    for name in ("w1", "w2", "w3"):
        for e, bits in enumerate(bits_list):
            if bits:
                w[name][e] = quantise(w[name][e], bits, group, f16_scales, zero_points)


def write_tensor(path, array, name):
    tensor = numpy_helper.from_array(array, name)
    with open(path, "wb") as f:
        f.write(tensor.SerializeToString())


def gen(directory, spec=None):
    rng = np.random.default_rng(20261122)
    w = weights(rng)
    blob = b"".join(w[k].tobytes() for k in ("norm", "router", "w1", "w2", "w3"))
    with open(os.path.join(directory, "weights.bin"), "wb") as f:
        f.write(blob)
    if spec:
        quantise_experts(w, spec)
    for n, tokens in enumerate((7, 1, 33)):
        d = os.path.join(directory, "test_data_set_%d" % n)
        os.makedirs(d, exist_ok=True)
        x = rng.standard_normal((tokens, H)).astype(np.float32)
        write_tensor(os.path.join(d, "input_0.pb"), x, "x")
        write_tensor(os.path.join(d, "output_0.pb"), reference(x, w), "output_0")


def compare(ref_path, out_path, rtol):
    ref = numpy_helper.to_array(TensorProto.FromString(open(ref_path, "rb").read()))
    out = numpy_helper.to_array(TensorProto.FromString(open(out_path, "rb").read()))
    if ref.shape != out.shape or ref.dtype != out.dtype:
        print("mismatch: reference %s %s, output %s %s"
              % (ref.shape, ref.dtype, out.shape, out.dtype))
        return 1
    err = float(np.max(np.abs(out - ref)))
    scale = float(np.max(np.abs(ref)))
    ok = err <= rtol * scale
    print("%s: max |out - ref| = %.3g, max |ref| = %.3g, tolerance %.3g"
          % ("ok" if ok else "FAIL", err, scale, rtol * scale))
    return 0 if ok else 1


def main(argv):
    if len(argv) >= 2 and argv[0] == "gen":
        spec = None
        if "--quant" in argv:
            bits = [int(b) for b in argv[argv.index("--quant") + 1].split(",")]
            group = int(argv[argv.index("--group") + 1])
            spec = (bits, group, "--f32-scales" not in argv, "--zero-points" in argv)
        gen(argv[1], spec)
        return 0
    if len(argv) >= 3 and argv[0] == "compare":
        rtol = float(argv[4]) if len(argv) >= 5 and argv[3] == "--rtol" else 1e-5
        return compare(argv[1], argv[2], rtol)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
