#!/usr/bin/python3
"""Uniform vs. LP-assigned (moe-assign-precision) expert precision at equal size.

Driven by run.sh (see its header); runs moe-opt and moe-exec, prints a table and writes the
results as JSON. Progress goes to stderr when it is a terminal."""
import argparse
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib  # noqa: E402
from benchlib import machine, run, say  # noqa: E402

benchlib.TOOL = "precision-fidelity"

UNIFORM = [  # (label, target bits, moe-compile options)
    ("int8/g128", "8", "expert-bits=8 expert-group-size=128"),
    ("int4/g128", "4", "expert-bits=4 expert-group-size=128"),
    ("int4/g128/zp", "4", "expert-bits=4 expert-group-size=128 quant-zero-points=1"),
    ("int3/g128", "3", "expert-bits=3 expert-group-size=128"),
    ("int3/g128/zp", "3", "expert-bits=3 expert-group-size=128 quant-zero-points=1"),
    ("int2/g32", "2.5", "expert-bits=2 expert-group-size=32"),
    ("int2/g128", "2", "expert-bits=2 expert-group-size=128"),
    ("int2/g128/zp", "2", "expert-bits=2 expert-group-size=128 quant-zero-points=1"),
]
LP_ONLY = [("LP 2.5 bits", "2.5", "expert-avg-bits=2.5"),
           ("LP 2.25 bits", "2.25", "expert-avg-bits=2.25")]



def main():
    ap = argparse.ArgumentParser()
    benchlib.driver_args(ap, "precision-fidelity.json")
    ap.add_argument("--models", default="mixtral_tiny,olmoe_tiny,mixtral_gen")
    ap.add_argument("--windows", type=int, default=64)
    a = ap.parse_args()
    opt, exe = benchlib.tools(a)
    models = benchlib.model_files(a)
    results = {"benchmark": "precision-fidelity", "machine": machine(),
               "command": a.command,
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "models": {}}
    failures = []
    for name in a.models.split(","):
        if name not in models:
            raise SystemExit("precision-fidelity: error: unknown model '%s'" % name)
        onnx, evalbin, trained = models[name]
        windows = a.windows if trained else min(a.windows, 16)
        d = os.path.join(a.work, name)
        os.makedirs(d, exist_ok=True)
        fp32 = os.path.join(d, "fp32.moeplan")
        profile = os.path.join(d, "profile.json")
        say("%s: fp32 plan and profile" % name)
        run([opt, onnx, "--moe-compile", "--emit-plan", fp32, "-o", os.devnull])
        run([exe, fp32, "--perplexity", evalbin, "--offset", "131072", "--windows", "32",
             "--profile", profile])

        def measure(label, target, options):
            plan = os.path.join(d, label.replace("/", "_").replace(" ", "_") + ".moeplan")
            say("%s: %s" % (name, label))
            run([opt, onnx, "--moe-compile=" + options, "--emit-plan", plan, "-o", os.devnull])
            desc = json.loads(run([exe, plan, "--describe", "--json"]))
            s = json.loads(run([exe, plan, "--perplexity", evalbin, "--windows", str(windows),
                                "--reference", fp32, "--json"]))
            return {"label": label, "target_bits": target, "options": options,
                    "expert_bytes": desc["expert_bytes"],
                    "expert_average_bits": desc["expert_average_bits"],
                    "plan_bytes": s["plan_bytes"], "perplexity": s["perplexity"],
                    "fp32_perplexity": s["reference_perplexity"], "kl_mean": s["kl_mean"],
                    "top1_agreement": s["top1_agreement"],
                    "logits_rel_error": s["logits_rel_error"],
                    "formats": sorted({e["format"] for l in desc["expert_layers"]
                                       for e in l["experts"]})}

        rows, lp_only = [], []
        for label, target, options in UNIFORM:
            u = measure(label, target, options)
            lp = measure("LP as " + label, target, "expert-budget-bytes=%d precision-profile=%s"
                         % (u["expert_bytes"], profile))
            # KL over ~16k predictions: differences within 1% (or 1e-5 nats) are
            # measurement noise, reported as equal.
            tol = 0.01 * u["kl_mean"] + 1e-5
            verdict = ("better" if lp["kl_mean"] < u["kl_mean"] - tol else
                       "equal" if lp["kl_mean"] <= u["kl_mean"] + tol else "WORSE")
            if verdict == "WORSE":
                failures.append("%s: LP worse than %s" % (name, label))
            rows.append({"uniform": u, "lp": lp, "lp_vs_uniform": verdict})
        for label, target, options in LP_ONLY:
            lp_only.append(measure(label, target, options + " precision-profile=" + profile))
        fp32_ppl = rows[0]["uniform"]["fp32_perplexity"]
        results["models"][name] = {"onnx": onnx, "eval": evalbin, "trained": trained,
                                   "windows": windows, "context": 256,
                                   "calibration": "eval.bin from byte 131072, 32 windows",
                                   "fp32_perplexity": fp32_ppl,
                                   "fp32_plan_bytes": os.path.getsize(fp32),
                                   "rows": rows, "lp_only": lp_only}
    benchlib.done()

    fmt = "%-13s %-6s %6s %10s %9s %9s %7s %9s"
    for name, m in results["models"].items():
        print("\n%s (fp32 perplexity %.4f%s, %d windows)" % (
            name, m["fp32_perplexity"], "" if m["trained"] else ", untrained", m["windows"]))
        print(fmt % ("plan", "", "bits", "bytes", "ppl", "KL", "top-1", "rel.err"))
        def line(r, tag):
            print(fmt % (r["label"][:13], tag, "%.3f" % r["expert_average_bits"],
                         r["expert_bytes"], "%.4f" % r["perplexity"], "%.5f" % r["kl_mean"],
                         "%.4f" % r["top1_agreement"], "%.4f" % r["logits_rel_error"]))
        for row in m["rows"]:
            line(row["uniform"], "unif")
            line(dict(row["lp"], label="  LP same size"), row["lp_vs_uniform"])
        for r in m["lp_only"]:
            line(r, "LP")
    benchlib.write_json(a.json, results)
    print("\nwrote %s" % a.json)
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
