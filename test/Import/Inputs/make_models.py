"""Writes the binary ONNX models the importer error tests need.

  make_models.py OUTDIR

- ext_ok/model.onnx + weights.bin: a MatMul whose weight is external data.
- ext_missing/model.onnx: the same, without weights.bin.
- ext_escape/model.onnx: external data located at ../weights.bin.
- bad_input/: input_0.pb files of the wrong shape and of the wrong dtype
  for the synthetic fixtures' x [2, 4, 16] float32.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save


def model(location):
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "48")):
        e = w.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def main():
    out = sys.argv[1]
    for name, loc, data in (("ext_ok", "weights.bin", True),
                            ("ext_missing", "weights.bin", False),
                            ("ext_escape", "../weights.bin", False)):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        save(model(loc), os.path.join(d, "model.onnx"))
        if data:
            np.arange(12, dtype=np.float32).tofile(os.path.join(d, "weights.bin"))
    np.arange(12, dtype=np.float32).tofile(os.path.join(out, "weights.bin"))
    for name, arr in (("bad_shape", np.zeros((2, 4, 8), np.float32)),
                      ("bad_dtype", np.zeros((2, 4, 16), np.int64))):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        t = numpy_helper.from_array(arr, "x")
        with open(os.path.join(d, "input_0.pb"), "wb") as f:
            f.write(t.SerializeToString())
    d = os.path.join(out, "ext_in")
    os.makedirs(d, exist_ok=True)
    t = numpy_helper.from_array(np.ones((2, 4), np.float32), "x")
    with open(os.path.join(d, "input_0.pb"), "wb") as f:
        f.write(t.SerializeToString())


if __name__ == "__main__":
    main()
