#!/usr/bin/python3
"""Expert pruning sweeps: time per token and fidelity. Driven by run.sh (see its header)."""
import argparse
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib  # noqa: E402
from benchlib import machine, run, say  # noqa: E402

benchlib.TOOL = "pruning"

import numpy as np
from onnx import numpy_helper



def token_sets(evalbin, d, batch, sets=8):
    """Decode-step inputs: [batch, 1] text bytes, `sets` different ones."""
    data = np.frombuffer(open(evalbin, "rb").read(), dtype=np.uint8)
    dirs = []
    for s in range(sets):
        p = os.path.join(d, "b%d_%d" % (batch, s))
        os.makedirs(p, exist_ok=True)
        start = 4096 + s * 997 * batch
        ids = data[start:start + batch].astype(np.int64).reshape(batch, 1)
        with open(os.path.join(p, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(ids, "input_ids").SerializeToString())
        dirs.append(p)
    return dirs


def main():
    ap = argparse.ArgumentParser()
    benchlib.driver_args(ap, "pruning.json")
    ap.add_argument("--models",
                    default="mixtral_tiny,olmoe_tiny,mixtral_gen,olmoe_gen,olmoe_trained")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    opt, exe = benchlib.tools(a)
    # Experts and top-k of each.
    shapes = {"mixtral_tiny": (8, 2), "olmoe_tiny": (32, 4), "mixtral_gen": (8, 2),
              "olmoe_gen": (64, 8), "olmoe_trained": (64, 8)}
    files = benchlib.model_files(a)
    # olmoe_trained (tools/demo/train_model.py, run.sh): timed with its experts
    # zero-padded (wide/, the same function), scored unpadded; held-out text is
    # olmoe_tiny's eval.bin (PyTorch sources; it trained on the Python standard library).
    trained_dir = os.path.join(a.work, "olmoe_trained")
    files["olmoe_trained"] = (os.path.join(trained_dir, "wide", "model.onnx"),
                              os.path.join(a.fixtures, "olmoe_tiny", "eval.bin"), True)
    models = {name: f + shapes[name] for name, f in files.items()}
    scored = {"olmoe_trained": os.path.join(trained_dir, "model.onnx")}
    results = {"benchmark": "pruning", "machine": machine(), "command": a.command,
               "threads": a.threads,
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "models": {}}
    for name in a.models.split(","):
        if name not in models:
            raise SystemExit("pruning: error: unknown model '%s'" % name)
        onnx, evalbin, trained, E, k = models[name]
        d = os.path.join(a.work, name)
        os.makedirs(d, exist_ok=True)
        # Each plan is a pair: (timed, scored). They differ only for olmoe_trained.
        plain = (os.path.join(d, "plain.moeplan"), os.path.join(d, "plain.scored.moeplan"))
        say("%s: compile" % name)
        run([opt, onnx, "--moe-compile", "--emit-plan", plain[0], "-o", os.devnull])
        if name in scored:
            run([opt, scored[name], "--moe-compile", "--emit-plan", plain[1], "-o", os.devnull])
        else:
            plain = (plain[0], plain[0])
        sets = {b: token_sets(evalbin, d, b) for b in (1, 32)}
        # Fidelity windows: the trained fixtures' 64 windows of 256 bytes; olmoe_trained's
        # 256 of 64 (its positions end at 64); the generated (larger, untrained) ones 32
        # windows of 64 bytes.
        windows, context = {"olmoe_trained": (256, 64)}.get(
            name, (64, 256) if trained else (32, 64))

        def bench(plan, batch, extra):
            cmd = [exe, plan, "--bench", "--json", "--repeat", str(a.repeat), "--warmup", "3",
                   "--threads", str(a.threads)] + extra
            for s in sets[batch]:
                cmd += ["--inputs", s]
            r = json.loads(run(cmd))
            return r

        def fidelity(plan, extra, batch):
            prof = os.path.join(d, "scored.profile.json")
            cmd = [exe, plan, "--perplexity", evalbin, "--windows", str(windows), "--context",
                   str(context), "--batch", str(batch), "--reference", plain[1], "--json",
                   "--threads", str(a.threads), "--profile", prof,
                   "--profile-samples", "0"] + extra
            r = json.loads(run(cmd))
            # What pruning changed over all scored tokens: at batch 1 every token reads
            # its own experts, so the share of skipped slots is the share of expert
            # bytes not read (experts of a layer are the same size).
            layers = json.load(open(prof))["layers"]
            slots = sum(l["tokens"] * l["top_k"] for l in layers)
            r["skipped_slot_share"] = sum(l["pruning"]["skipped_slots"] for l in layers) / slots
            # Per batch the router decided for: a call, or with --decode-batches
            # each position of the windows (one decode step of `batch` sequences).
            calls = sum(l["pruning"]["calls"] for l in layers)
            r["distinct_experts_per_batch"] = sum(l["pruning"]["distinct_experts"]
                                                  for l in layers) / calls
            r["unpruned_distinct_experts_per_batch"] = sum(
                l["pruning"]["unpruned_distinct_experts"] for l in layers) / calls
            r["expert_bytes_share"] = sum(l["pruning"]["expert_bytes_read"] for l in layers) / \
                max(1.0, sum(l["pruning"]["unpruned_expert_bytes_read"] for l in layers))
            return r

        rows = []

        def measure(policy, knob, plan, extra, batches, decode_batches=False):
            for batch in batches:
                say("%s: %s %s batch %d" % (name, policy, knob, batch))
                t = bench(plan[0], batch, extra)
                f = fidelity(plan[1], extra + (["--decode-batches"] if decode_batches else []),
                             32 if decode_batches else 8)
                pr = t.get("pruning", {})
                rows.append({
                    "policy": policy, "knob": knob, "batch": batch,
                    "ms_per_token": t["median_ms"] / batch,
                    "expert_bytes_read_per_step": pr.get("expert_bytes_read_per_run"),
                    "unpruned_expert_bytes_read_per_step":
                        pr.get("unpruned_expert_bytes_read_per_run"),
                    "skipped_slot_share": pr.get("skipped_slot_share", 0.0),
                    "distinct_experts_per_layer": pr.get("distinct_experts_per_layer"),
                    "eval_skipped_slot_share": f["skipped_slot_share"],
                    "eval_distinct_experts_per_batch": f["distinct_experts_per_batch"],
                    "eval_unpruned_distinct_experts_per_batch":
                        f["unpruned_distinct_experts_per_batch"],
                    "eval_expert_bytes_share": f["expert_bytes_share"],
                    "perplexity": f["perplexity"],
                    "unpruned_perplexity": f["reference_perplexity"],
                    "kl_mean": f["kl_mean"], "top1_agreement": f["top1_agreement"],
                    "logits_rel_error": f["logits_rel_error"]})

        measure("none", "", plain, [], (1, 32))
        for t in (0.05, 0.1, 0.15, 0.2, 0.3):
            measure("token", "skip-threshold=%g" % t, plain, ["--skip-threshold", str(t)], (1, 32))
        caps = sorted({max(k, int(round(E * f))) for f in (0.875, 0.75, 0.5, 0.375, 0.25)},
                      reverse=True)
        for c in caps:
            measure("batch", "max-experts=%d" % c, plain, ["--max-experts", str(c)], (32,),
                    decode_batches=True)
        for m in (0.995, 0.99, 0.95, 0.9):
            measure("batch", "batch-mass=%g" % m, plain, ["--batch-mass", str(m)], (32,),
                    decode_batches=True)
        if trained:
            # The calibration profile, on held-out windows. A profile names its model,
            # so olmoe_trained's padded twin gets its own (the same routing).
            profiles = []
            for i in (0, 1) if plain[0] != plain[1] else (0,):
                profiles.append(os.path.join(d, "profile%s.json" % ("", ".scored")[i]))
                run([exe, plain[i], "--perplexity", evalbin, "--offset", "131072",
                     "--windows", str(32 * 256 // context), "--context", str(context),
                     "--profile", profiles[-1], "--profile-samples", "0"])
            for keep in sorted({E - 1, (3 * E) // 4}, reverse=True):
                plan = []
                for src, suffix, prof in ((onnx, "", profiles[0]),
                                          (scored.get(name), ".scored", profiles[-1])):
                    if src is None:
                        plan.append(plan[0])
                        continue
                    plan.append(os.path.join(d, "keep%d%s.moeplan" % (keep, suffix)))
                    run([opt, src, "--pass-pipeline=builtin.module(canonicalize,cse,"
                         "moe-raise-experts,canonicalize,cse,moe-prune-experts{profile=%s "
                         "keep=%d},moe-lower-to-plan)" % (prof, keep), "--emit-plan",
                         plan[-1], "-o", os.devnull])
                measure("static", "keep=%d" % keep, plan, [], (1, 32))
        base = {r["batch"]: r["ms_per_token"] for r in rows if r["policy"] == "none"}
        for r in rows:
            r["speedup"] = base[r["batch"]] / r["ms_per_token"]
        results["models"][name] = {"onnx": onnx, "scored_onnx": scored.get(name, onnx),
                                   "eval": evalbin, "trained": trained,
                                   "experts": E, "top_k": k, "windows": windows,
                                   "context": context, "rows": rows}
    benchlib.done()
    fmt = "%-8s %-18s %5s %9s %7s %8s %9s %8s %9s %9s %7s"
    for name, m in results["models"].items():
        print("\n%s (%d experts, top-%d%s)" % (name, m["experts"], m["top_k"],
                                                "" if m["trained"] else ", untrained"))
        print(fmt % ("policy", "knob", "batch", "ms/token", "speedup", "bytes", "bytes(ev)",
                     "skip(ev)", "ppl", "KL", "top-1"))
        for r in m["rows"]:
            rb, ub = r["expert_bytes_read_per_step"], r["unpruned_expert_bytes_read_per_step"]
            print(fmt % (r["policy"], r["knob"], r["batch"], "%.4f" % r["ms_per_token"],
                         "%.2fx" % r["speedup"],
                         "%+.1f%%" % (100.0 * (rb - ub) / ub) if rb is not None and ub else "-",
                         "%+.1f%%" % (100.0 * (r["eval_expert_bytes_share"] - 1))
                         if r["policy"] == "batch" else "-",
                         "%.1f%%" % (100 * r["eval_skipped_slot_share"]),
                         "%.4f" % r["perplexity"], "%.5f" % r["kl_mean"],
                         "%.4f" % r["top1_agreement"]))
    benchlib.write_json(a.json, results)
    print("\nwrote %s" % a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
