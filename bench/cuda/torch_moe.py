"""PyTorch eager peer of moe-cuda-bench: a Mixtral-style sparse MoE block written
the way Hugging Face's MixtralSparseMoeBlock computes it (router in the model dtype,
softmax in float32, top-k, renormalise, then a Python loop over the experts hit, each
gathering its tokens, running SwiGLU with three matmuls and index_add_-ing the
weighted result), on bf16 weights on the GPU.

  python3 torch_moe.py [--hidden 4096] [--ffn 14336] [--experts 8] [--k 2]
                       [--tokens 1,4,...] [--repeat 20] [--warmup 5] [--json FILE]

Times each T with CUDA events around each call (median of --repeat) and prints one
JSON object with a row per T.
"""
import argparse
import json
import statistics

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--ffn", type=int, default=14336)
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--tokens", default="1,4,16,64,256,1024,4096")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json")
    a = p.parse_args()
    H, F, E, K = a.hidden, a.ffn, a.experts, a.k
    dev, dt = "cuda", torch.bfloat16
    torch.manual_seed(0)
    gate = (torch.rand(E, H, device=dev, dtype=dt) * 2 - 1) * 0.05
    w1 = (torch.rand(E, F, H, device=dev, dtype=dt) * 2 - 1) / H
    w3 = (torch.rand(E, F, H, device=dev, dtype=dt) * 2 - 1) / H
    w2 = (torch.rand(E, H, F, device=dev, dtype=dt) * 2 - 1) / F

    def block(x):
        logits = x @ gate.T
        weights = torch.softmax(logits, dim=1, dtype=torch.float)
        weights, selected = torch.topk(weights, K, dim=-1)
        weights /= weights.sum(dim=-1, keepdim=True)
        weights = weights.to(x.dtype)
        out = torch.zeros_like(x)
        mask = torch.nn.functional.one_hot(selected, num_classes=E).permute(2, 1, 0)
        hit = torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero()
        for e in hit:
            e = int(e)
            idx, top = torch.where(mask[e])
            cur = x[None, top].reshape(-1, H)
            h = torch.nn.functional.silu(cur @ w1[e].T) * (cur @ w3[e].T)
            y = (h @ w2[e].T) * weights[top, idx, None]
            out.index_add_(0, top, y.to(x.dtype))
        return out

    rows = []
    with torch.inference_mode():
        for T in [int(t) for t in a.tokens.split(",")]:
            x = torch.randn(T, H, device=dev, dtype=dt)
            for _ in range(a.warmup):
                block(x)
            torch.cuda.synchronize()
            ms = []
            for _ in range(a.repeat):
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                block(x)
                e.record()
                e.synchronize()
                ms.append(s.elapsed_time(e))
            rows.append({"tokens": T, "median_ms": statistics.median(ms), "min_ms": min(ms)})
            print("T=%d: %.4f ms" % (T, rows[-1]["median_ms"]), flush=True)
    result = {"peer": "pytorch-eager", "torch": torch.__version__,
              "device": torch.cuda.get_device_name(0), "hidden": H, "ffn": F,
              "experts": E, "k": K, "dtype": "bf16", "repeat": a.repeat, "rows": rows}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
