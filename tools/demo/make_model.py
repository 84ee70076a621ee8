#!/usr/bin/python3
"""Writes the demo's model: a small Mixtral-style decoder-only MoE language model in ONNX.

    /usr/bin/python3 tools/demo/make_model.py [--out DIR] [--layers N] [--hidden H] ...

DIR (default: build/demo) receives
    model.onnx                    opset 17 + com.microsoft 1, weights as raw_data initializers
    test_data_set_0/input_0.pb    input_ids [1, --tokens] (int64 TensorProto)
    test_data_set_0/output_0.pb   logits of an independent numpy reference
    bench_T/input_0.pb            input_ids [1, T] of random tokens for each T of --bench-tokens,
                                  for `moe-exec --bench` (realistic routing, unlike ids in [0, 2))
    model.json                    the options it was made with (and the counts the demo reports)

The graph, per layer (x: [batch, seq, hidden], both dims symbolic):
    h = x + Wo·Attention(RMSNorm(x))          causal, --heads heads, no RoPE
    x = h + MoE(RMSNorm(h))                   com.microsoft.MoE: router MatMul to E logits,
                                              softmax, top-2, renormalised; SwiGLU experts,
                                              fc1 [E, 2F, H] with gate/linear rows
                                              interleaved (swiglu_fusion 1), fc2 [E, H, F]
then logits = RMSNorm(x)·W_lm : [batch, seq, vocab]. The causal mask is built from the
input's own length (Shape → Gather → Range → Unsqueeze → LessOrEqual → Where), so one
model serves every sequence length.

Defaults (hidden 512, ffn 1408, 8 experts, top-2, 2 layers, 8 heads, vocab 512): about 37 M
parameters, 150 MB of fp32, of which 94 % are expert weights, as in Mixtral; a decode step
reads about 44 MB (attention, 2 of 8 experts per layer, LM head), so it is memory-bound
like the real thing while generation, compilation and timing stay within seconds on 2 cores.

Deterministic (numpy seed). Idempotent: when model.json records the same options (and
generator) and every file is there with the size it recorded, nothing is written.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

EPS = 1e-5


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="build/demo", help="output folder (default: build/demo)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--ffn", type=int, default=1408, help="expert width F")
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--positions", type=int, default=0,
                   help="learned absolute position embeddings for sequences of up to this "
                        "length (default: 0, none)")
    p.add_argument("--weights", default="",
                   help="take the weights from this .npz (names and layouts of make_weights; "
                        "e.g. written by tools/demo/train_model.py) instead of drawing them")
    p.add_argument("--tokens", type=int, default=16, help="length of test_data_set_0's input_ids")
    p.add_argument("--bench-tokens", default="1,16,128",
                   help="lengths of the bench_T input sets (default: 1,16,128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="write even if up to date")
    a = p.parse_args(argv)
    if a.positions < 0:
        p.error("--positions must not be negative")
    for name in ("layers", "hidden", "ffn", "experts", "top_k", "heads", "vocab", "tokens"):
        if getattr(a, name) < 1:
            p.error("--%s must be at least 1" % name.replace("_", "-"))
    try:
        a.bench_tokens = [int(t) for t in a.bench_tokens.split(",") if t]
    except ValueError:
        p.error("--bench-tokens wants comma-separated integers, got '%s'" % a.bench_tokens)
    if any(t < 1 for t in a.bench_tokens):
        p.error("--bench-tokens must be at least 1")
    if a.hidden % a.heads:
        p.error("--hidden (%d) must be a multiple of --heads (%d)" % (a.hidden, a.heads))
    if a.top_k > a.experts:
        p.error("--top-k (%d) must not exceed --experts (%d)" % (a.top_k, a.experts))
    if a.positions and max([a.tokens] + a.bench_tokens) > a.positions:
        p.error("--tokens and --bench-tokens must not exceed --positions (%d)" % a.positions)
    return a


def shapes(a):
    """Every weight's name and shape, in the layouts the ONNX graph uses."""
    H, F, E, V = a.hidden, a.ffn, a.experts, a.vocab
    s = {"embed": (V, H)}
    if a.positions:
        s["pos_embed"] = (a.positions, H)
    for l in range(a.layers):
        p = "layers.%d." % l
        s[p + "attn_norm"] = (H,)
        for n in ("q", "k", "v", "o"):
            s[p + "w" + n] = (H, H)
        s[p + "moe_norm"] = (H,)
        s[p + "router"] = (H, E)
        s[p + "fc1"] = (E, 2 * F, H)
        s[p + "fc2"] = (E, H, F)
    s["final_norm"] = (H,)
    s["lm_head"] = (H, V)
    return s


def load_weights(a):
    """The weights of --weights, checked against the options' shapes."""
    try:
        z = np.load(a.weights)
    except (OSError, ValueError) as e:
        raise SystemExit("make_model: error: cannot read --weights %s: %s" % (a.weights, e))
    w = {}
    for name, shape in shapes(a).items():
        if name not in z.files:
            raise SystemExit("make_model: error: %s has no weight '%s'" % (a.weights, name))
        if z[name].shape != shape:
            raise SystemExit("make_model: error: %s: '%s' is %s, the options want %s"
                             % (a.weights, name, z[name].shape, shape))
        w[name] = z[name].astype(np.float32)
    return w


def make_weights(a):
    """All weights, in the layouts the ONNX graph uses. Scales keep activations O(1)."""
    rng = np.random.default_rng(a.seed)
    H, F, E, V = a.hidden, a.ffn, a.experts, a.vocab

    def normal(shape, std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    w = {"embed": normal((V, H), 1.0)}
    if a.positions:
        w["pos_embed"] = normal((a.positions, H), 0.5)
    for l in range(a.layers):
        p = "layers.%d." % l
        w[p + "attn_norm"] = (1.0 + normal((H,), 0.1)).astype(np.float32)
        for n in ("q", "k", "v", "o"):
            w[p + "w" + n] = normal((H, H), H ** -0.5)          # y = x @ W ([in, out])
        w[p + "moe_norm"] = (1.0 + normal((H,), 0.1)).astype(np.float32)
        # Router logits with a spread of about 2: routing is decided, not a near-tie.
        w[p + "router"] = normal((H, E), 2.0 * H ** -0.5)
        w[p + "fc1"] = normal((E, 2 * F, H), H ** -0.5)         # [E, out, in], rows gate0, lin0, gate1, ...
        w[p + "fc2"] = normal((E, H, F), 0.5 * F ** -0.5)       # [E, out, in]
    w["final_norm"] = (1.0 + normal((H,), 0.1)).astype(np.float32)
    w["lm_head"] = normal((H, V), H ** -0.5)
    return w


def build_graph(a, w):
    H, E, nh = a.hidden, a.experts, a.heads
    hd = H // nh
    nodes, inits = [], []
    count = [0]

    def name(base):
        count[0] += 1
        return "%s_%d" % (base, count[0])

    def const(value, base="c"):
        n = name(base)
        inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def node(op, inputs, domain="", **attrs):
        out = name(op)
        nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    for k, v in w.items():
        inits.append(numpy_helper.from_array(v, k))

    def rms_norm(x, gamma):
        ms = node("ReduceMean", [node("Mul", [x, x])], axes=[-1], keepdims=1)
        inv = node("Reciprocal", [node("Sqrt", [node("Add", [ms, c_eps])])])
        return node("Mul", [node("Mul", [x, inv]), gamma])

    c_eps = const(np.float32(EPS), "eps")
    c_scale = const(np.float32(hd ** -0.5), "scale")
    c_heads = const(np.array([0, 0, nh, hd], np.int64), "heads_shape")
    c_merge = const(np.array([0, 0, H], np.int64), "merge_shape")
    c_flat = const(np.array([-1, H], np.int64), "flat_shape")

    x = node("Gather", ["embed", "input_ids"], axis=0)                     # [b, s, H]

    # Causal additive mask [s, s]: 0 where key <= query, -1e9 elsewhere.
    seq = node("Gather", [node("Shape", ["input_ids"]), const(np.int64(1), "one")], axis=0)
    pos = node("Range", [const(np.int64(0), "zero"), seq, const(np.int64(1), "step")])
    if "pos_embed" in w:
        x = node("Add", [x, node("Gather", ["pos_embed", pos], axis=0)])   # + [s, H]
    rows = node("Unsqueeze", [pos, const(np.array([1], np.int64), "axis1")])    # [s, 1] query
    cols = node("Unsqueeze", [pos, const(np.array([0], np.int64), "axis0")])    # [1, s] key
    visible = node("LessOrEqual", [cols, rows])
    mask = node("Where", [visible, const(np.float32(0.0), "zero_f"),
                          const(np.float32(-1e9), "neg_inf")])

    for l in range(a.layers):
        p = "layers.%d." % l
        xn = rms_norm(x, p + "attn_norm")

        def heads(wname):  # [b, s, H] -> [b, nh, s, hd]
            y = node("Reshape", [node("MatMul", [xn, p + wname]), c_heads])
            return node("Transpose", [y], perm=[0, 2, 1, 3])

        q, k, v = heads("wq"), heads("wk"), heads("wv")
        kt = node("Transpose", [k], perm=[0, 1, 3, 2])
        scores = node("Add", [node("Mul", [node("MatMul", [q, kt]), c_scale]), mask])
        probs = node("Softmax", [scores], axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        attn = node("MatMul", [node("Reshape", [ctx, c_merge]), p + "wo"])
        h = node("Add", [x, attn])

        hn = node("Reshape", [rms_norm(h, p + "moe_norm"), c_flat])            # [T, H]
        router = node("MatMul", [hn, p + "router"])                             # [T, E]
        moe = node("MoE", [hn, router, p + "fc1", "", p + "fc2"], domain="com.microsoft",
                   k=a.top_k, activation_type="swiglu", swiglu_fusion=1,
                   activation_alpha=1.0, activation_beta=0.0,
                   normalize_routing_weights=1)
        x = node("Add", [h, node("Reshape", [moe, node("Shape", [h])])])

    logits = node("MatMul", [rms_norm(x, "final_norm"), "lm_head"])
    nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))

    graph = helper.make_graph(
        nodes, "mixtral_demo",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", a.vocab])],
        inits)
    model = helper.make_model(
        graph, producer_name="moe-compiler tools/demo/make_model.py", producer_version="1",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model


def reference(a, w, ids):
    """The model in plain numpy (float64 accumulation), independent of the ONNX graph."""
    H, E, nh, F = a.hidden, a.experts, a.heads, a.ffn
    hd = H // nh

    def rms(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * g

    x = w["embed"][ids].astype(np.float64)                                  # [b, s, H]
    b, s = ids.shape
    if "pos_embed" in w:
        x = x + w["pos_embed"][:s]
    causal = np.tril(np.ones((s, s), bool))
    for l in range(a.layers):
        p = "layers.%d." % l
        xn = rms(x, w[p + "attn_norm"])
        q, k, v = (
            (xn @ w[p + "w" + n]).reshape(b, s, nh, hd).transpose(0, 2, 1, 3) for n in "qkv")
        sc = q @ k.transpose(0, 1, 3, 2) * hd ** -0.5
        sc = np.where(causal, sc, -np.inf)
        pr = np.exp(sc - sc.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        h = x + (pr @ v).transpose(0, 2, 1, 3).reshape(b, s, H) @ w[p + "wo"]
        hn = rms(h, w[p + "moe_norm"]).reshape(-1, H)
        logit = hn @ w[p + "router"]
        prob = np.exp(logit - logit.max(-1, keepdims=True))
        prob /= prob.sum(-1, keepdims=True)
        top = np.argsort(-prob, axis=-1, kind="stable")[:, : a.top_k]
        out = np.zeros_like(hn)
        for t in range(hn.shape[0]):
            sel = prob[t, top[t]]
            sel = sel / sel.sum()
            for e, g in zip(top[t], sel):
                f1 = w[p + "fc1"][e] @ hn[t]
                gate, lin = f1[0::2], f1[1::2]
                act = gate / (1.0 + np.exp(-gate)) * lin
                out[t] += g * (w[p + "fc2"][e] @ act)
        x = h + out.reshape(b, s, H)
    return (rms(x, w["final_norm"]) @ w["lm_head"]).astype(np.float32)


def counts(a):
    H, F, E, V, L = a.hidden, a.ffn, a.experts, a.vocab, a.layers
    expert = 3 * H * F
    per_layer = 4 * H * H + 2 * H + H * E + E * expert
    total = V * H + a.positions * H + L * per_layer + H + H * V
    active = total - L * (E - a.top_k) * expert
    return {"parameters": total, "expert_parameters": L * E * expert,
            "active_parameters_per_token": active}


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv):
    a = parse_args(argv)
    opts = {k: v for k, v in vars(a).items() if k not in ("out", "force")}
    with open(os.path.abspath(__file__), "rb") as f:
        opts["generator"] = hashlib.sha256(f.read()).hexdigest()[:16]
    if a.weights:
        try:
            with open(a.weights, "rb") as f:
                opts["weights"] = hashlib.sha256(f.read()).hexdigest()[:16]
        except OSError as e:
            raise SystemExit("make_model: error: cannot read --weights %s: %s" % (a.weights, e))
    out = a.out
    files = [os.path.join(out, "model.onnx"),
             os.path.join(out, "test_data_set_0", "input_0.pb"),
             os.path.join(out, "test_data_set_0", "output_0.pb")]
    files += [os.path.join(out, "bench_%d" % t, "input_0.pb") for t in a.bench_tokens]
    stamp = os.path.join(out, "model.json")
    if not a.force and all(os.path.isfile(f) for f in files) and os.path.isfile(stamp):
        try:
            with open(stamp) as f:
                old = json.load(f)
            sizes = {os.path.relpath(f, out): os.path.getsize(f) for f in files}
            if old.get("options") == opts and old.get("sizes") == sizes:
                print("make_model: %s is up to date" % out)
                return 0
        except (OSError, ValueError):
            pass

    os.makedirs(os.path.join(out, "test_data_set_0"), exist_ok=True)
    if os.path.exists(stamp):
        os.remove(stamp)  # a half-written model is never taken as up to date
    w = load_weights(a) if a.weights else make_weights(a)
    model = build_graph(a, w)
    onnx.checker.check_model(model)  # in memory: the default model stays under 2 GB
    write_atomic(files[0], model.SerializeToString())

    rng = np.random.default_rng(a.seed + 1)
    ids = rng.integers(0, a.vocab, size=(1, a.tokens), dtype=np.int64)
    write_atomic(files[1], numpy_helper.from_array(ids, "input_ids").SerializeToString())
    write_atomic(files[2], numpy_helper.from_array(reference(a, w, ids), "logits").SerializeToString())
    for t in a.bench_tokens:
        os.makedirs(os.path.join(out, "bench_%d" % t), exist_ok=True)
        ids = np.random.default_rng(a.seed + 100 + t).integers(0, a.vocab, size=(1, t), dtype=np.int64)
        write_atomic(os.path.join(out, "bench_%d" % t, "input_0.pb"),
                     numpy_helper.from_array(ids, "input_ids").SerializeToString())

    info = {"options": opts, **counts(a),
            "sizes": {os.path.relpath(f, out): os.path.getsize(f) for f in files},
            "config": {"layers": a.layers, "hidden": a.hidden, "ffn": a.ffn,
                       "experts": a.experts, "top_k": a.top_k, "heads": a.heads,
                       "vocab": a.vocab, "positions": a.positions}}
    write_atomic(stamp, (json.dumps(info, indent=1) + "\n").encode())
    print("make_model: wrote %s (%.1f M parameters, %.1f MiB)"
          % (files[0], info["parameters"] / 1e6, os.path.getsize(files[0]) / 2**20))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
