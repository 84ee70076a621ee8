#!/usr/bin/python3
"""Writes the MoE-vs-ONNX-Runtime workloads: one ONNX model per (workload, form), and inputs.

    /usr/bin/python3 bench/moe_vs_ort/make_models.py --out DIR [--workloads A,B]
                     [--tokens 1,16,128] [--sets 8] [--block-size 0] [--force]

Workloads (one MoE layer each, SwiGLU experts, weights [E, out, in]):
    A  Mixtral-like  hidden 1024, expert width 3584,  8 experts, top-2
    B  OLMoE-like    hidden 2048, expert width 1024, 64 experts, top-8

DIR receives, per workload W:
    W/moe.onnx    one com.microsoft.MoE node (opset 1): inputs `input` [T, H] and
                  `router_probs` [T, E] (router logits; the op applies the softmax) as graph
                  inputs with a symbolic T; fc1 [E, 2F, H] (gate/linear rows interleaved,
                  swiglu_fusion 1) and fc2 [E, H, F] as float32 raw_data initializers;
                  activation_type swiglu, k, normalize_routing_weights 1.
    W/qmoe.onnx   the same layer as com.microsoft.QMoE with expert_weight_bits 4: the same
                  weights quantised symmetrically (q = round(w / s) + 8 in [0, 15], packed two
                  per byte, low nibble first), float32 scales per row [E, out] (or per block of
                  --block-size inputs [E, out, in / block], with the block_size attribute).
    W/inputs/T<t>/set_<i>/input_0.pb, input_1.pb   `input` and `router_probs` (TensorProto,
                  for moe-exec --inputs) and input.f32, router_probs.f32 (raw little-endian
                  float32, for the node script), shapes.json
and DIR/manifest.json: the shapes, the bytes per expert in each form and, for every input
set, the experts its tokens are routed to (top-k of the router logits).

Weights are deterministic (numpy seed per tensor and expert): fc1 ~ N(0, 1/H), fc2 ~
N(0, 1/(4F)), so activations stay O(1). Hidden inputs ~ N(0, 1) and router logits ~ N(0, 1)
are random per token, so different tokens pick different experts (uniform routing).

The models are written by streaming the protobuf wire format (each weight is generated one
expert at a time), so even B's 1.6 GB float32 model needs little memory. Idempotent: when
manifest.json records the same options and generator and every file has the size it
recorded, nothing is written.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WORKLOADS = {
    "A": {"name": "Mixtral-like", "hidden": 1024, "ffn": 3584, "experts": 8, "k": 2},
    "B": {"name": "OLMoE-like", "hidden": 2048, "ffn": 1024, "experts": 64, "k": 8},
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workloads", default="A,B", help="comma-separated, of A, B (default: A,B)")
    p.add_argument("--tokens", default="1,16,128", help="token counts T (default: 1,16,128)")
    p.add_argument("--sets", type=int, default=8, help="input sets per T (default: 8)")
    p.add_argument("--block-size", type=int, default=0,
                   help="QMoE scale block (0: one scale per row, the default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="write even if up to date")
    a = p.parse_args(argv)
    a.workloads = [w for w in a.workloads.split(",") if w]
    for w in a.workloads:
        if w not in WORKLOADS:
            p.error("unknown workload '%s' (A or B)" % w)
    try:
        a.tokens = [int(t) for t in a.tokens.split(",") if t]
    except ValueError:
        p.error("--tokens wants comma-separated integers")
    if not a.tokens or any(t < 1 for t in a.tokens):
        p.error("--tokens must be at least 1")
    if a.sets < 1:
        p.error("--sets must be at least 1")
    if a.block_size < 0 or (a.block_size and a.block_size % 2):
        p.error("--block-size must be 0 or a positive even number")
    for w in a.workloads:
        d = WORKLOADS[w]
        for n in (d["hidden"], d["ffn"]):
            if a.block_size and n % a.block_size:
                p.error("--block-size %d does not divide %d (workload %s)" % (a.block_size, n, w))
    return a


# --- protobuf wire format ---------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def len_key(field):
    return varint((field << 3) | 2)  # wire type 2: length-delimited


class Tensor:
    """An initializer whose raw_data is produced chunk by chunk (`chunks()` yields bytes)."""

    def __init__(self, name, dtype, dims, chunks):
        t = TensorProto()
        t.name = name
        t.data_type = dtype
        t.dims.extend(dims)
        self.head = t.SerializeToString()  # dims (1), data_type (2), name (8)
        itemsize = {TensorProto.FLOAT: 4, TensorProto.UINT8: 1}[dtype]
        self.nbytes = int(np.prod(dims)) * itemsize
        self.chunks = chunks
        self.body_len = len(self.head) + len(len_key(9)) + len(varint(self.nbytes)) + self.nbytes

    def write(self, f):
        f.write(self.head)
        f.write(len_key(9) + varint(self.nbytes))  # raw_data (9)
        written = 0
        for c in self.chunks():
            f.write(c)
            written += len(c)
        if written != self.nbytes:
            raise RuntimeError("%s: wrote %d bytes, expected %d" % (self.head, written, self.nbytes))


def write_model(path, node, inputs, outputs, tensors, producer):
    """ModelProto: ir_version (1), producer_name (2), graph (7), opset_import (8), with the
    graph's initializers (5) streamed between its node/name (1, 2) and input/output (11, 12)."""
    g_head = onnx.GraphProto()
    g_head.node.extend([node])
    g_head.name = "moe_layer"
    g_tail = onnx.GraphProto()
    g_tail.input.extend(inputs)
    g_tail.output.extend(outputs)
    head, tail = g_head.SerializeToString(), g_tail.SerializeToString()
    graph_len = len(head) + len(tail) + sum(
        len(len_key(5)) + len(varint(t.body_len)) + t.body_len for t in tensors)
    m_head = onnx.ModelProto()
    m_head.ir_version = 8
    m_head.producer_name = producer
    m_head.producer_version = "1"
    m_tail = onnx.ModelProto()
    m_tail.opset_import.extend([helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(m_head.SerializeToString())
        f.write(len_key(7) + varint(graph_len))
        f.write(head)
        for t in tensors:
            f.write(len_key(5) + varint(t.body_len))
            t.write(f)
        f.write(tail)
        f.write(m_tail.SerializeToString())
    os.replace(tmp, path)


# --- weights -----------------------------------------------------------------------------

def expert_weight(a, wl, which, e):
    """fc1 [2F, H] or fc2 [H, F] of expert e, float32; deterministic per (workload, fc, e)."""
    H, F = WORKLOADS[wl]["hidden"], WORKLOADS[wl]["ffn"]
    seed = [a.seed, ord(wl), 1 if which == "fc1" else 2, e]
    rng = np.random.default_rng(seed)
    if which == "fc1":
        return rng.standard_normal((2 * F, H), dtype=np.float32) * np.float32(H ** -0.5)
    return rng.standard_normal((H, F), dtype=np.float32) * np.float32(0.5 * F ** -0.5)


def quantise(w, block):
    """Symmetric 4-bit: packed uint8 [out, in/2] (low nibble first) and float32 scales
    [out] (block 0) or [out, in/block]."""
    rows, cols = w.shape
    nb = 1 if block == 0 else cols // block
    wb = w.reshape(rows, nb, cols // nb)
    s = np.abs(wb).max(-1) / np.float32(7.0)
    s = np.where(s == 0, np.float32(1.0), s).astype(np.float32)
    q = (np.clip(np.rint(wb / s[..., None]), -8, 7).astype(np.int16) + 8).astype(np.uint8)
    q = q.reshape(rows, cols)
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8)
    return packed, (s[:, 0] if block == 0 else s)


def make_workload(a, wl, outdir):
    d = WORKLOADS[wl]
    H, F, E, k = d["hidden"], d["ffn"], d["experts"], d["k"]
    os.makedirs(outdir, exist_ok=True)
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["T", H]),
              helper.make_tensor_value_info("router_probs", TensorProto.FLOAT, ["T", E])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["T", H])]
    common = dict(k=k, activation_type="swiglu", swiglu_fusion=1, activation_alpha=1.0,
                  activation_beta=0.0, normalize_routing_weights=1)
    producer = "moe-compiler bench/moe_vs_ort/make_models.py"

    # float32 MoE
    def f32(which):
        return lambda: (expert_weight(a, wl, which, e).tobytes() for e in range(E))

    node = helper.make_node("MoE", ["input", "router_probs", "fc1", "", "fc2"], ["output"],
                            name="moe", domain="com.microsoft", **common)
    write_model(os.path.join(outdir, "moe.onnx"), node, inputs, outputs,
                [Tensor("fc1", TensorProto.FLOAT, [E, 2 * F, H], f32("fc1")),
                 Tensor("fc2", TensorProto.FLOAT, [E, H, F], f32("fc2"))], producer)

    # int4 QMoE: the same weights, quantised. Scales are collected while the packed
    # weights stream out, then written after them.
    scales = {"fc1": [], "fc2": []}

    def packed(which):
        def gen():
            scales[which].clear()
            for e in range(E):
                q, s = quantise(expert_weight(a, wl, which, e), a.block_size)
                scales[which].append(s)
                yield q.tobytes()
        return gen

    def scale_chunks(which):
        return lambda: (s.astype(np.float32).tobytes() for s in scales[which])

    def sdims(rows, cols):
        return [E, rows] if a.block_size == 0 else [E, rows, cols // a.block_size]

    qattrs = dict(common, expert_weight_bits=4)
    if a.block_size:
        qattrs["block_size"] = a.block_size
    node = helper.make_node("QMoE", ["input", "router_probs", "fc1", "fc1_scales", "",
                                     "fc2", "fc2_scales"], ["output"],
                            name="qmoe", domain="com.microsoft", **qattrs)
    write_model(os.path.join(outdir, "qmoe.onnx"), node, inputs, outputs,
                [Tensor("fc1", TensorProto.UINT8, [E, 2 * F, H // 2], packed("fc1")),
                 Tensor("fc1_scales", TensorProto.FLOAT, sdims(2 * F, H), scale_chunks("fc1")),
                 Tensor("fc2", TensorProto.UINT8, [E, H, F // 2], packed("fc2")),
                 Tensor("fc2_scales", TensorProto.FLOAT, sdims(H, F), scale_chunks("fc2"))],
                producer)

    per_row_scales = lambda cols: 1 if a.block_size == 0 else cols // a.block_size
    bytes_per_expert = {
        "moe": 4 * (2 * F * H + H * F),
        "qmoe": (2 * F * H + H * F) // 2 + 4 * (2 * F * per_row_scales(H) + H * per_row_scales(F)),
    }

    # Inputs: random hidden states and router logits; the experts each set reaches.
    sets = {}
    for t in a.tokens:
        sets[str(t)] = []
        for i in range(a.sets):
            rng = np.random.default_rng([a.seed, ord(wl), 1000 + t, i])
            x = rng.standard_normal((t, H), dtype=np.float32)
            r = rng.standard_normal((t, E), dtype=np.float32)
            sd = os.path.join("inputs", "T%d" % t, "set_%d" % i)
            full = os.path.join(outdir, sd)
            os.makedirs(full, exist_ok=True)
            for j, (n, v) in enumerate((("input", x), ("router_probs", r))):
                with open(os.path.join(full, "input_%d.pb" % j), "wb") as f:
                    f.write(numpy_helper.from_array(v, n).SerializeToString())
                v.tofile(os.path.join(full, n + ".f32"))
            with open(os.path.join(full, "shapes.json"), "w") as f:
                json.dump({"input": [t, H], "router_probs": [t, E]}, f)
            # top-k of the logits (= of the softmax), ties to the lower index
            top = np.argsort(-r, axis=1, kind="stable")[:, :k]
            sets[str(t)].append({"dir": os.path.join(wl, sd),
                                 "experts_hit": sorted(int(e) for e in np.unique(top))})
    return {"name": d["name"], "hidden": H, "ffn": F, "experts": E, "k": k,
            "models": {"moe": {"file": os.path.join(wl, "moe.onnx"), "op": "com.microsoft.MoE",
                               "weights": "float32",
                               "bytes_per_expert": bytes_per_expert["moe"]},
                       "qmoe": {"file": os.path.join(wl, "qmoe.onnx"), "op": "com.microsoft.QMoE",
                                "weights": "int4 symmetric, float32 scales " +
                                           ("per row" if a.block_size == 0
                                            else "per block of %d" % a.block_size),
                                "bytes_per_expert": bytes_per_expert["qmoe"]}},
            "inputs": sets}


def main(argv):
    a = parse_args(argv)
    opts = {k: v for k, v in vars(a).items() if k not in ("out", "force")}
    with open(os.path.abspath(__file__), "rb") as f:
        opts["generator"] = hashlib.sha256(f.read()).hexdigest()[:16]
    out = a.out
    stamp = os.path.join(out, "manifest.json")
    if not a.force and os.path.isfile(stamp):
        try:
            with open(stamp) as f:
                old = json.load(f)
            if old.get("options") == opts and all(
                    os.path.getsize(os.path.join(out, p)) == n for p, n in old["sizes"].items()):
                print("make_models: %s is up to date" % out)
                return 0
        except (OSError, ValueError, KeyError):
            pass
    os.makedirs(out, exist_ok=True)
    if os.path.exists(stamp):
        os.remove(stamp)  # a half-written set is never taken as up to date
    manifest = {"options": opts, "workloads": {}}
    for wl in a.workloads:
        manifest["workloads"][wl] = make_workload(a, wl, os.path.join(out, wl))
    files = [wd["models"][m]["file"] for wd in manifest["workloads"].values() for m in wd["models"]]
    files += [os.path.join(s["dir"], n) for wd in manifest["workloads"].values()
              for sets in wd["inputs"].values() for s in sets
              for n in ("input_0.pb", "input_1.pb", "input.f32", "router_probs.f32")]
    manifest["sizes"] = {p: os.path.getsize(os.path.join(out, p)) for p in sorted(files)}
    tmp = stamp + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.replace(tmp, stamp)
    for wl in a.workloads:
        for form in ("moe", "qmoe"):
            p = os.path.join(out, wl, form + ".onnx")
            print("make_models: wrote %s (%.1f MiB)" % (p, os.path.getsize(p) / 2**20))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
