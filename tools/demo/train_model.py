#!/usr/bin/python3
"""Trains make_model.py's MoE language model on local text, in numpy, and writes it.

    /usr/bin/python3 tools/demo/train_model.py --out DIR [--experts 64 --top-k 8 ...]
        [--text DIR_OR_FILE ...] [--steps N] [--pad-ffn F]

Why: pruning and placement decisions must be judged on a model whose router was trained,
and the trained fixtures in ../shared are small (at most 32 experts). This trains the
architecture of tools/demo/make_model.py (byte vocabulary, learned positions, causal
attention, RMSNorm, a softmax top-k router with renormalised weights, SwiGLU experts) with
hand-written backpropagation and Adam, on text that is already on the machine (by default
the Python standard library's sources, /usr/lib/python3.*), so nothing is downloaded.
The router gets the Switch Transformer load-balancing loss (coefficient --balance), as
OLMoE's training does.

--pad-ffn F widens every expert from the trained width to F with zero rows of fc1 and zero
columns of fc2. The function is exactly the trained one (a zero gate and a zero linear half
give silu(0)·0 = 0), but a decode step reads the bytes of a model of width F, so the time
per token of a pruned plan shows the bytes it does not read.

DIR receives weights.npz (make_model.py's names and layouts), train.json (options, loss
curve, held-out perplexity with --eval), and what make_model.py --weights writes from them
(model.onnx, test_data_set_0, model.json); with --pad-ffn, DIR/wide/ the same for the
padded weights. Deterministic for given options and text. Idempotent: an up-to-date
train.json (same options, text and trainer) skips the training.
"""
import argparse
import glob
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

EPS = 1e-5
HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--experts", type=int, default=64)
    p.add_argument("--top-k", type=int, default=8)
    p.add_argument("--ffn", type=int, default=64, help="trained expert width")
    p.add_argument("--pad-ffn", type=int, default=0,
                   help="written expert width (zero-padded; default: the trained width)")
    p.add_argument("--context", type=int, default=64, help="training sequence length")
    p.add_argument("--batch", type=int, default=32, help="sequences per step")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--balance", type=float, default=0.01,
                   help="load-balancing loss coefficient (default: 0.01)")
    p.add_argument("--text", action="append", default=[],
                   help="a file or a folder of *.py files to train on (repeatable; default: "
                        "the Python standard library's sources)")
    p.add_argument("--text-bytes", type=int, default=32 << 20,
                   help="read at most this many bytes of text (default: 32 MiB)")
    p.add_argument("--eval", default="", help="held-out text: report byte perplexity on it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-gradients", action="store_true",
                   help="compare the backward pass with finite differences on a tiny model "
                        "and exit")
    a = p.parse_args(argv)
    for name in ("layers", "hidden", "heads", "experts", "top_k", "ffn", "context", "batch",
                 "steps"):
        if getattr(a, name) < 1:
            p.error("--%s must be at least 1" % name.replace("_", "-"))
    if a.hidden % a.heads:
        p.error("--hidden must be a multiple of --heads")
    if a.top_k > a.experts:
        p.error("--top-k must not exceed --experts")
    if a.pad_ffn and a.pad_ffn < a.ffn:
        p.error("--pad-ffn (%d) must be at least --ffn (%d)" % (a.pad_ffn, a.ffn))
    if a.eval and not os.path.isfile(a.eval):
        p.error("--eval %s: no such file" % a.eval)
    if a.eval and os.path.getsize(a.eval) < a.context:
        p.error("--eval %s: shorter than one window of --context (%d) bytes"
                % (a.eval, a.context))
    return a


# ---------------------------------------------------------------------------------------
# The model. Weights use make_model.py's names and layouts: y = x @ W for the dense ones,
# fc1 [E, 2F, H] with gate/linear rows interleaved, fc2 [E, H, F].


def init_weights(cfg, rng):
    H, F, E, V, P = cfg["hidden"], cfg["ffn"], cfg["experts"], 256, cfg["context"]

    def normal(shape, std):
        return rng.standard_normal(shape) * std

    w = {"embed": normal((V, H), 1.0), "pos_embed": normal((P, H), 0.1)}
    for l in range(cfg["layers"]):
        p = "layers.%d." % l
        w[p + "attn_norm"] = np.ones(H)
        for n in "qkv":
            w[p + "w" + n] = normal((H, H), H ** -0.5)
        w[p + "wo"] = normal((H, H), 0.5 * H ** -0.5 / math.sqrt(cfg["layers"]))
        w[p + "moe_norm"] = np.ones(H)
        w[p + "router"] = normal((H, E), 0.1 * H ** -0.5)
        w[p + "fc1"] = normal((E, 2 * F, H), H ** -0.5)
        w[p + "fc2"] = normal((E, H, F), 0.5 * F ** -0.5 / math.sqrt(cfg["layers"]))
    w["final_norm"] = np.ones(H)
    w["lm_head"] = normal((H, V), H ** -0.5)
    return w


def rms_fwd(x, g):
    inv = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS)
    return x * inv * g, (x, inv, g)


def rms_bwd(dy, cache, grads, gname):
    x, inv, g = cache
    xhat = x * inv
    grads[gname] += (dy * xhat).reshape(-1, x.shape[-1]).sum(0)
    dxh = dy * g
    return inv * dxh - x * inv ** 3 * np.mean(dxh * x, axis=-1, keepdims=True)


def softmax(z, axis=-1):
    z = z - z.max(axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis, keepdims=True)


def forward_backward(w, cfg, ids, balance, need_grads=True):
    """Mean next-byte cross-entropy of ids [b, s] (+ balance loss), and the gradients."""
    b, s = ids.shape
    H, nh, E, k = cfg["hidden"], cfg["heads"], cfg["experts"], cfg["top_k"]
    hd = H // nh
    scale = hd ** -0.5
    causal = np.tril(np.ones((s, s), bool))
    caches = []
    aux = 0.0
    x = w["embed"][ids] + w["pos_embed"][:s]
    for l in range(cfg["layers"]):
        p = "layers.%d." % l
        c = {}
        xn, c["rms_a"] = rms_fwd(x, w[p + "attn_norm"])
        q, kk, v = ((xn @ w[p + "w" + n]).reshape(b, s, nh, hd).transpose(0, 2, 1, 3)
                    for n in "qkv")
        sc = np.where(causal, q @ kk.transpose(0, 1, 3, 2) * scale, -np.inf)
        pr = softmax(sc)
        ctx = (pr @ v).transpose(0, 2, 1, 3).reshape(b, s, H)
        h = x + ctx @ w[p + "wo"]
        c.update(xn=xn, q=q, k=kk, v=v, pr=pr, ctx=ctx)
        hn, c["rms_m"] = rms_fwd(h, w[p + "moe_norm"])
        hn = hn.reshape(-1, H)
        T = hn.shape[0]
        logit = hn @ w[p + "router"]
        prob = softmax(logit)
        top = np.argsort(-logit, axis=-1, kind="stable")[:, :k]               # [T, k]
        gate = softmax(np.take_along_axis(logit, top, axis=-1))               # renormalised
        frac = np.bincount(top.ravel(), minlength=E) / (T * k)
        aux += balance * E * float(np.sum(frac * prob.mean(0)))
        out = np.zeros_like(hn)
        flat = top.ravel()
        order = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[order], np.arange(E + 1))
        per_expert = []
        F = cfg["ffn"]
        for e in range(E):
            sel = order[bounds[e]:bounds[e + 1]]                               # slots
            tok = sel // k
            xe = hn[tok]
            f1 = xe @ w[p + "fc1"][e].T
            ga, li = f1[:, 0::2], f1[:, 1::2]
            sg = 1.0 / (1.0 + np.exp(-ga))
            act = ga * sg * li
            ye = act @ w[p + "fc2"][e].T
            out[tok] += gate.ravel()[sel, None] * ye  # a token picks an expert once
            per_expert.append((sel, tok, xe, ga, li, sg, act, ye))
        x = h + out.reshape(b, s, H)
        c.update(hn=hn, prob=prob, top=top, gate=gate, frac=frac, experts=per_expert, F=F)
        caches.append(c)
    xf, cf = rms_fwd(x, w["final_norm"])
    logits = xf @ w["lm_head"]                                                 # [b, s, V]
    pl = softmax(logits[:, :-1])
    tgt = ids[:, 1:]
    n = tgt.size
    ce = -float(np.mean(np.log(np.take_along_axis(pl, tgt[..., None], -1) + 1e-30)))
    if not need_grads:
        return ce, aux, None
    grads = {name: np.zeros_like(v) for name, v in w.items()}
    dlog = np.zeros_like(logits)
    dlog[:, :-1] = pl
    np.put_along_axis(dlog[:, :-1], tgt[..., None],
                      np.take_along_axis(pl, tgt[..., None], -1) - 1.0, -1)
    dlog /= n
    grads["lm_head"] += xf.reshape(-1, H).T @ dlog.reshape(-1, dlog.shape[-1])
    dx = rms_bwd(dlog @ w["lm_head"].T, cf, grads, "final_norm")
    for l in reversed(range(cfg["layers"])):
        p = "layers.%d." % l
        c = caches[l]
        hn, prob, top, gate = c["hn"], c["prob"], c["top"], c["gate"]
        T = hn.shape[0]
        dh = dx.copy()
        dout = dx.reshape(-1, H)
        dhn = np.zeros_like(hn)
        dgate = np.zeros(gate.size)
        for e, (sel, tok, xe, ga, li, sg, act, ye) in enumerate(c["experts"]):
            if sel.size == 0:
                continue
            g = gate.ravel()[sel, None]
            dgate[sel] = np.sum(dout[tok] * ye, axis=1)
            dye = dout[tok] * g
            grads[p + "fc2"][e] += dye.T @ act
            dact = dye @ w[p + "fc2"][e]
            dli = dact * ga * sg
            dga = dact * li * sg * (1.0 + ga * (1.0 - sg))
            df1 = np.empty((sel.size, 2 * c["F"]))
            df1[:, 0::2], df1[:, 1::2] = dga, dli
            grads[p + "fc1"][e] += df1.T @ xe
            dhn[tok] += df1 @ w[p + "fc1"][e]
        dgate = dgate.reshape(T, -1)
        dsel = gate * (dgate - np.sum(gate * dgate, axis=1, keepdims=True))
        dlogit = np.zeros_like(prob)
        np.put_along_axis(dlogit, top, dsel, axis=1)
        # Balance loss: balance * E * sum_e frac_e * mean_t prob[t, e]; frac is a count.
        dprob = np.broadcast_to(balance * E * c["frac"] / T, prob.shape)
        dlogit += prob * (dprob - np.sum(prob * dprob, axis=1, keepdims=True))
        grads[p + "router"] += hn.T @ dlogit
        dhn += dlogit @ w[p + "router"].T
        dh += rms_bwd(dhn.reshape(dx.shape), c["rms_m"], grads, p + "moe_norm")
        # Attention.
        b, s = ids.shape
        nh_, hd = cfg["heads"], H // cfg["heads"]
        grads[p + "wo"] += c["ctx"].reshape(-1, H).T @ dh.reshape(-1, H)
        dctx = (dh @ w[p + "wo"].T).reshape(b, s, nh_, hd).transpose(0, 2, 1, 3)
        pr, q, kk, v = c["pr"], c["q"], c["k"], c["v"]
        dv = pr.transpose(0, 1, 3, 2) @ dctx
        dpr = dctx @ v.transpose(0, 1, 3, 2)
        dsc = pr * (dpr - np.sum(pr * dpr, axis=-1, keepdims=True)) * hd ** -0.5
        dq = dsc @ kk
        dk = dsc.transpose(0, 1, 3, 2) @ q
        xn = c["xn"].reshape(-1, H)
        dxn = 0.0
        for n, d in (("q", dq), ("k", dk), ("v", dv)):
            d = d.transpose(0, 2, 1, 3).reshape(-1, H)
            grads[p + "w" + n] += xn.T @ d
            dxn = dxn + d @ w[p + "w" + n].T
        dx = dh + rms_bwd(dxn.reshape(dh.shape), c["rms_a"], grads, p + "attn_norm")
    np.add.at(grads["embed"], ids.ravel(), dx.reshape(-1, H))
    grads["pos_embed"][:ids.shape[1]] += dx.sum(0)
    return ce, aux, grads


def check_gradients():
    """Finite differences against the backward pass, in float64 on a tiny model."""
    cfg = {"layers": 2, "hidden": 8, "heads": 2, "experts": 6, "top_k": 3, "ffn": 4,
           "context": 5}
    rng = np.random.default_rng(1)
    w = init_weights(cfg, rng)
    for name in w:
        if name.endswith("norm"):
            w[name] = 1.0 + rng.standard_normal(w[name].shape) * 0.2
    w["layers.0.router"] *= 20  # a decided routing: small steps keep the same top-k
    ids = rng.integers(0, 256, size=(2, 5))
    _, _, grads = forward_backward(w, cfg, ids, 0.05)
    worst = 0.0
    for name in w:
        flat = w[name].reshape(-1)
        for i in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + 1e-6
            lp = sum(forward_backward(w, cfg, ids, 0.05, False)[:2])
            flat[i] = old - 1e-6
            lm = sum(forward_backward(w, cfg, ids, 0.05, False)[:2])
            flat[i] = old
            num = (lp - lm) / 2e-6
            ana = grads[name].reshape(-1)[i]
            err = abs(num - ana) / max(1e-6, abs(num) + abs(ana))
            worst = max(worst, err)
            if err > 1e-4:
                print("train_model: gradient of %s[%d]: numeric %.6g, backward %.6g"
                      % (name, i, num, ana))
    print("train_model: worst relative gradient error %.2e" % worst)
    return 0 if worst < 1e-4 else 1


# ---------------------------------------------------------------------------------------


def read_text(a):
    paths = []
    for t in a.text or sorted(glob.glob("/usr/lib/python3.[0-9]*")):
        if os.path.isdir(t):
            paths += sorted(glob.glob(os.path.join(t, "**", "*.py"), recursive=True))
        else:
            paths.append(t)
    chunks, size = [], 0
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        chunks.append(data)
        size += len(data)
        if size >= a.text_bytes:
            break
    if size < 64 << 10:
        raise SystemExit("train_model: error: only %d bytes of text (from %s); give --text"
                         % (size, ", ".join(a.text) or "/usr/lib/python3.*"))
    return np.frombuffer(b"".join(chunks)[:a.text_bytes], dtype=np.uint8)


def perplexity(w, cfg, data):
    """Byte perplexity over the first 16 KiB of data in non-overlapping windows of the
    trained context (the fixtures' definition is 64 windows of 256 bytes; this model's
    positions end at --context)."""
    context = cfg["context"]
    windows = min((64 * 256) // context, data.size // context)
    total, n = 0.0, 0
    for i in range(0, windows, 16):
        m = min(16, windows - i)
        ids = np.stack([data[(i + j) * context:(i + j + 1) * context] for j in range(m)])
        ce, _, _ = forward_backward(w, cfg, ids.astype(np.int64), 0.0, False)
        total += ce * ids[:, 1:].size
        n += ids[:, 1:].size
    return math.exp(total / n)


def write_model(a, out, npz, ffn):
    """make_model.py --weights npz into out."""
    sys.stdout.flush()  # our lines before the child's
    subprocess.run([sys.executable, os.path.join(HERE, "make_model.py"), "--out", out,
                    "--weights", npz, "--layers", str(a.layers), "--hidden", str(a.hidden),
                    "--ffn", str(ffn), "--experts", str(a.experts), "--top-k", str(a.top_k),
                    "--heads", str(a.heads), "--vocab", "256", "--positions", str(a.context),
                    "--tokens", str(min(16, a.context)), "--bench-tokens", "1"], check=True)


def progress(msg):
    if sys.stderr.isatty():
        sys.stderr.write("\rtrain_model: %s\033[K" % msg)
        sys.stderr.flush()


def main(argv):
    a = parse_args(argv)
    if a.check_gradients:
        return check_gradients()
    cfg = {"layers": a.layers, "hidden": a.hidden, "heads": a.heads, "experts": a.experts,
           "top_k": a.top_k, "ffn": a.ffn, "context": a.context}
    os.makedirs(a.out, exist_ok=True)
    text = read_text(a)
    opts = {k: v for k, v in vars(a).items()
            if k not in ("out", "check_gradients", "pad_ffn")}
    opts["text_sha"] = hashlib.sha256(text.tobytes()).hexdigest()[:16]
    with open(os.path.abspath(__file__), "rb") as f:
        opts["trainer"] = hashlib.sha256(f.read()).hexdigest()[:16]
    stamp = os.path.join(a.out, "train.json")
    npz = os.path.join(a.out, "weights.npz")
    info = None
    if os.path.isfile(stamp) and os.path.isfile(npz):
        try:
            with open(stamp) as f:
                old = json.load(f)
            if old.get("options") == opts:
                info = old
                print("train_model: %s is up to date" % npz)
        except (OSError, ValueError):
            pass
    if info is None:
        if os.path.exists(stamp):
            os.remove(stamp)
        rng = np.random.default_rng(a.seed)
        w = {n: v.astype(np.float32) for n, v in init_weights(cfg, rng).items()}
        m = {n: np.zeros_like(v) for n, v in w.items()}
        v2 = {n: np.zeros_like(v) for n, v in w.items()}
        curve = []
        t0 = time.time()
        warm = max(1, a.steps // 20)
        for step in range(1, a.steps + 1):
            starts = rng.integers(0, text.size - a.context, size=a.batch)
            ids = np.stack([text[s:s + a.context] for s in starts]).astype(np.int64)
            ce, aux, g = forward_backward(w, cfg, ids, a.balance)
            norm = math.sqrt(sum(float(np.sum(x * x)) for x in g.values()))
            clip = min(1.0, 1.0 / (norm + 1e-12))
            lr = a.lr * min(1.0, step / warm) * (0.1 + 0.9 * 0.5 * (
                1 + math.cos(math.pi * min(1.0, step / a.steps))))
            for n in w:
                gn = g[n] * clip
                m[n] = 0.9 * m[n] + 0.1 * gn
                v2[n] = 0.99 * v2[n] + 0.01 * gn * gn
                mh = m[n] / (1 - 0.9 ** step)
                vh = v2[n] / (1 - 0.99 ** step)
                w[n] -= lr * mh / (np.sqrt(vh) + 1e-8)
            if step % 50 == 0 or step == a.steps:
                curve.append({"step": step, "loss": round(ce, 4), "balance": round(aux, 4),
                              "seconds": round(time.time() - t0, 1)})
                progress("step %d/%d loss %.3f (bits/byte %.2f) balance %.3f, %.0f s"
                         % (step, a.steps, ce, ce / math.log(2), aux, time.time() - t0))
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        info = {"options": opts, "config": cfg, "curve": curve,
                "train_seconds": round(time.time() - t0, 1)}
        if a.eval:
            data = np.frombuffer(open(a.eval, "rb").read(), dtype=np.uint8)
            info["eval"] = a.eval
            info["eval_ppl_bytes"] = perplexity(w, cfg, data)
        tmp = npz + ".tmp.npz"
        np.savez(tmp, **{n: v.astype(np.float32) for n, v in w.items()})
        os.replace(tmp, npz)
        with open(stamp + ".tmp", "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        os.replace(stamp + ".tmp", stamp)
        if "eval_ppl_bytes" in info:
            print("train_model: held-out byte perplexity %.4f" % info["eval_ppl_bytes"])
    write_model(a, a.out, npz, a.ffn)
    if a.pad_ffn > a.ffn:
        # The same function, with experts zero-padded to --pad-ffn: fc1 gains zero
        # gate/linear rows, fc2 zero columns.
        wide = os.path.join(a.out, "wide")
        os.makedirs(wide, exist_ok=True)
        z = np.load(npz)
        out = {}
        for n in z.files:
            v = z[n]
            if n.endswith("fc1"):
                v = np.concatenate([v, np.zeros((a.experts, 2 * (a.pad_ffn - a.ffn), a.hidden),
                                                np.float32)], 1)
            elif n.endswith("fc2"):
                v = np.concatenate([v, np.zeros((a.experts, a.hidden, a.pad_ffn - a.ffn),
                                                np.float32)], 2)
            out[n] = v
        wnpz = os.path.join(wide, "weights.npz")
        np.savez(wnpz + ".tmp.npz", **out)
        os.replace(wnpz + ".tmp.npz", wnpz)
        write_model(a, wide, wnpz, a.pad_ffn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
