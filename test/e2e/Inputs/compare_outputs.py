"""Compares two ONNX TensorProto files: compare_outputs.py REF OUT [--rtol R]

Prints "identical" when the bytes of the values agree, else the largest
difference relative to the reference's largest magnitude, and "ok" or
"too far" against R (default 1e-5). Exits 1 when too far or the shapes
differ.
"""
import sys

import numpy as np
from onnx import TensorProto, numpy_helper


def load(path):
    with open(path, "rb") as f:
        return numpy_helper.to_array(TensorProto.FromString(f.read()))


def main(argv):
    rtol = 1e-5
    if "--rtol" in argv:
        i = argv.index("--rtol")
        rtol = float(argv[i + 1])
        del argv[i:i + 2]
    if len(argv) != 2:
        print(__doc__)
        return 2
    ref, out = load(argv[0]), load(argv[1])
    if ref.shape != out.shape or ref.dtype != out.dtype:
        print("mismatch: reference %s %s, output %s %s"
              % (ref.shape, ref.dtype, out.shape, out.dtype))
        return 1
    if np.array_equal(ref.view(np.uint8), out.view(np.uint8)):
        print("identical")
        return 0
    scale = max(float(np.max(np.abs(ref.astype(np.float64)))), 1e-30)
    err = float(np.max(np.abs(out.astype(np.float64) - ref))) / scale
    print("relative error %.3g: %s" % (err, "ok" if err <= rtol else "too far"))
    return 0 if err <= rtol else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
