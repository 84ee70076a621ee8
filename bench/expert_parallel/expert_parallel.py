#!/usr/bin/python3
"""The expert- and tensor-parallel runtime on loopback MPI against the traffic model (run
it through bench/expert_parallel/run.sh, which builds the tools and writes the layer).

    expert_parallel.py --bin BUILD/bin --work DIR [--ranks 2,4] [--tokens 16,64,256]
                       [--chunks 1,2,4,8] [--layouts ep,tp[,hybrid]] [--repeat 10]
                       [--warmup 2]
                       [--out bench/results/expert-parallel.json] [--command TEXT]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import benchlib  # noqa: E402

benchlib.TOOL = "expert-parallel"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def ints(text):
    return [int(v) for v in text.split(",") if v]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--ranks", type=ints, default=[2, 4])
    p.add_argument("--tokens", type=ints, default=[16, 64, 256])
    p.add_argument("--chunks", type=ints, default=[1, 2, 4, 8])
    p.add_argument("--layouts", default="ep,tp",
                   help="ep (each chunk count), tp (tensor parallel: the weights cut "
                        "into a slice of F per rank, tokens gathered; unchunked) and, "
                        "on request, hybrid (this machine's ranks as 2 nodes with the "
                        "measured links between them: EP across, TP inside; 4 ranks or "
                        "more, unchunked)")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--compute-model", choices=["serial", "roofline"], default="serial",
                   help="how weight reads and FLOPs combine (default serial: the CPU "
                        "kernels do not overlap them)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "expert-parallel.json"))
    p.add_argument("--command", default="bench/expert_parallel/run.sh")
    a = p.parse_args(argv)
    for name in ("ranks", "tokens", "chunks"):
        if not getattr(a, name) or min(getattr(a, name)) < 1:
            p.error("--%s needs positive integers" % name)
    if max(a.chunks) > 8 or any(c not in (1, 2, 4, 8) for c in a.chunks):
        p.error("--chunks takes 1, 2, 4 and 8 (the counts the model predicts)")
    a.layouts = [v for v in a.layouts.split(",") if v]
    if not a.layouts or any(v not in ("ep", "tp", "hybrid") for v in a.layouts):
        p.error("--layouts takes ep, tp and hybrid")
    return a


def mpirun(ranks):
    return ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none"]


def bench(cmd):
    """The JSON line of moe-exec --bench --json."""
    found = benchlib.json_lines(benchlib.run(cmd))
    if not found:
        raise SystemExit("expert-parallel: error: no JSON from %s" % " ".join(cmd))
    return found[0]


def main(argv):
    a = parse_args(argv)
    if os.geteuid() == 0:  # OpenMPI refuses root unless told
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    models = os.path.join(a.work, "models")
    with open(os.path.join(models, "manifest.json")) as f:
        wl = json.load(f)["workloads"]["B"]
    H, F, E, K = wl["hidden"], wl["ffn"], wl["experts"], wl["k"]
    expert_bytes = wl["models"]["moe"]["bytes_per_expert"]
    onnx = os.path.join(models, wl["models"]["moe"]["file"])
    for t in a.tokens:
        if str(t) not in wl["inputs"] or len(wl["inputs"][str(t)]) < max(a.ranks):
            raise SystemExit("expert-parallel: error: the layer has no %d input sets of %d "
                             "tokens (make_models.py --tokens ... --sets ...)" % (max(a.ranks), t))
    opt, exe = benchlib.tools(a)
    sim = os.path.join(a.bin, "moe-partition-sim")
    timing = ["--bench", "--json", "--warmup", str(a.warmup), "--repeat", str(a.repeat),
              "--no-verify-weights"]
    inputs = lambda t, s: os.path.join(models, "B", "inputs", "T%d" % t, s)  # noqa: E731

    # 1. One rank, one thread: the rates a rank's model uses.
    base = os.path.join(a.work, "one.moeplan")
    benchlib.say("compiling the layer")
    benchlib.run([opt, onnx, "--moe-compile", "--emit-plan", base])
    tmin, tmax = min(a.tokens), max(a.tokens)
    benchlib.say("calibrating one rank at %d and %d tokens" % (tmin, tmax))
    t_small = bench([exe, base, "--threads", "1", "--inputs", inputs(tmin, "set_0")] + timing)
    t_large = bench([exe, base, "--threads", "1", "--inputs", inputs(tmax, "set_0")] + timing)
    cores = os.cpu_count() or 1
    single = {}
    for t in a.tokens:
        single[t] = bench([exe, base, "--inputs", inputs(t, "set_0")] + timing)["median_ms"]
    # Bytes of the experts set_0's tokens touch, and their FLOPs.
    touched = {t: len(wl["inputs"][str(t)][0]["experts_hit"]) * expert_bytes for t in (tmin, tmax)}
    flops = {t: t * K * 2.0 * 3 * H * F for t in (tmin, tmax)}

    def rates(ms_small, ms_large):
        """(bytes/s, FLOP/s) from the two runs. serial: t = bytes/M + FLOPs/F at both
        token counts (two equations); roofline: the small run is all reads, the large
        one all FLOPs."""
        t0, t1 = ms_small * 1e-3, ms_large * 1e-3
        if a.compute_model == "roofline":
            return touched[tmin] / t0, flops[tmax] / t1
        det = touched[tmin] * flops[tmax] - touched[tmax] * flops[tmin]
        inv_m = (t0 * flops[tmax] - t1 * flops[tmin]) / det
        inv_f = (touched[tmin] * t1 - touched[tmax] * t0) / det
        if inv_m <= 0 or inv_f <= 0:
            raise SystemExit("expert-parallel: error: the serial model does not fit the "
                             "calibration runs (%.2f ms, %.2f ms); try --compute-model "
                             "roofline" % (ms_small, ms_large))
        return 1 / inv_m, 1 / inv_f

    memory_rate, flop_rate = rates(t_small["median_ms"], t_large["median_ms"])
    # The node's rates with every core (one rank, all threads): R ranks share them.
    node_memory_rate, node_flop_rate = rates(single[tmin], single[tmax])

    rows, topologies = [], {}
    for r in a.ranks:
        # A rank runs one core's worth, or its share of the node when the ranks
        # outnumber the cores or the memory saturates.
        rank_memory = min(memory_rate, node_memory_rate / r)
        rank_flops = min(flop_rate, node_flop_rate / r)
        topo = os.path.join(a.work, "topology-%d.json" % r)
        benchlib.say("measuring the links of %d ranks" % r)
        benchlib.run(mpirun(r) + [exe, "--measure-network", topo])
        with open(topo) as f:
            topologies[str(r)] = json.load(f)
        for layout in a.layouts:
            where = topo
            if layout == "hybrid":
                if r < 4 or r % 2:
                    continue
                # One machine: its ranks as 2 nodes, linked by what was measured.
                nodes = dict(topologies[str(r)], ranks_per_node=r // 2,
                             name="%d ranks as 2 nodes (loopback)" % r)
                nodes["inter_bytes_per_s"] = nodes["intra_bytes_per_s"]
                nodes["inter_latency_s"] = nodes["intra_latency_s"]
                where = os.path.join(a.work, "topology-%d-nodes.json" % r)
                with open(where, "w") as f:
                    json.dump(nodes, f)
            plan = os.path.join(a.work, "%s-%d.moeplan" % (layout, r))
            benchlib.say("partitioning the layer over %d ranks (%s)" % (r, layout))
            benchlib.run([opt, onnx, "--pass-pipeline",
                          "builtin.module(canonicalize,cse,moe-raise-experts,canonicalize,cse,"
                          "moe-partition{topology=%s layout=%s tokens=%d flops-per-rank=%g "
                          "memory-bytes-per-s=%g compute-model=%s},moe-lower-to-plan)"
                          % (where, layout, tmax, rank_flops, rank_memory, a.compute_model),
                          "--emit-plan", plan])
            for t in a.tokens:
                preds = benchlib.json_lines(benchlib.run(
                    [sim, "--topology", where, "--layer", "%d,%d,%d,%d" % (H, F, E, K),
                     "--tokens", str(t), "--flops-per-rank", "%g" % rank_flops,
                     "--memory-bytes-per-s", "%g" % rank_memory,
                     "--expert-bytes", str(expert_bytes),
                     "--layout", {"ep": "EP", "tp": "TP", "hybrid": "TP-in-node+EP"}[layout],
                     "--compute-model", a.compute_model]))
                direct = {p["chunks"]: p for p in preds if p["schedule"] == "direct"}
                choice = [p["chunks"] for p in preds if p["chosen"]][0]
                # The tensor-parallel and hybrid layers run unchunked here.
                for c in (a.chunks if layout == "ep" else [1]):
                    benchlib.say("%d ranks, %s, %d tokens per rank, %d chunks"
                                 % (r, layout, t, c))
                    cmd = mpirun(r) + [exe, plan, "--inputs", inputs(t, "set_{rank}")]
                    if layout == "ep":
                        cmd += ["--exchange-chunks", str(c)]
                    m = bench(cmd + timing)
                    rows.append({
                        "ranks": r, "layout": layout, "tokens_per_rank": t, "chunks": c,
                        "model_choice": layout == "ep" and c == choice,
                        "measured_ms": m["median_ms"], "predicted_ms": direct[c]["ms"],
                        "ratio": m["median_ms"] / direct[c]["ms"],
                        "predicted_comm_ms": direct[c]["comm_ms"],
                        "predicted_compute_ms": direct[c]["compute_ms"],
                        "exchange_wait_ms": m.get("exchange", {}).get("wait_ms_per_run"),
                        "rows_sent_per_run": m.get("exchange", {}).get("rows_sent_per_run"),
                        "expert_bytes_held": m.get("exchange", {}).get("expert_bytes_held"),
                        "threads_per_rank": m["threads"],
                        "one_rank_all_cores_ms": single[t],
                        "rank_memory_bytes_per_s": rank_memory, "rank_flops_per_s": rank_flops,
                    })
            os.remove(plan)  # 1.5 GiB each
    benchlib.done()

    print("%5s %6s %7s %6s %12s %13s %6s %10s %12s %8s" % (
        "ranks", "layout", "tokens", "chunks", "measured ms", "predicted ms", "ratio",
        "wait ms", "rows sent", "choice"))
    for row in rows:
        print("%5d %6s %7d %6d %12.2f %13.2f %6.2f %10.2f %12.0f %8s" % (
            row["ranks"], row["layout"], row["tokens_per_rank"], row["chunks"],
            row["measured_ms"],
            row["predicted_ms"], row["ratio"], row["exchange_wait_ms"] or 0,
            row["rows_sent_per_run"] or 0, "model" if row["model_choice"] else ""))
    within = sum(1 for row in rows if 0.7 <= row["ratio"] <= 1.3)
    print("%d of %d predictions within 30%% of the measurement" % (within, len(rows)))
    for r in a.ranks:
        for t in a.tokens:
            case = [row for row in rows if row["ranks"] == r and row["tokens_per_rank"] == t]
            plain = [row for row in case if row["chunks"] == 1 and row["layout"] == "ep"]
            chosen = [row for row in case if row["model_choice"]]
            tp = [row for row in case if row["layout"] == "tp"]
            hy = [row for row in case if row["layout"] == "hybrid"]
            if plain and chosen:
                print("%d ranks, %d tokens: the model's choice (%d chunks) measures %.2f ms, "
                      "plain %.2f ms" % (r, t, chosen[0]["chunks"], chosen[0]["measured_ms"],
                                         plain[0]["measured_ms"]))
            if plain and tp:
                print("%d ranks, %d tokens: tensor parallel %.2f ms (predicted %.2f), expert "
                      "parallel %.2f ms (predicted %.2f)"
                      % (r, t, tp[0]["measured_ms"], tp[0]["predicted_ms"],
                         plain[0]["measured_ms"], plain[0]["predicted_ms"]))
            if hy:
                print("%d ranks, %d tokens: hybrid (as 2 nodes) %.2f ms (predicted %.2f)"
                      % (r, t, hy[0]["measured_ms"], hy[0]["predicted_ms"]))
    benchlib.write_json(a.out, {
        "benchmark": "expert-parallel", "command": a.command,
        "date": time.strftime("%Y-%m-%d"), "machine": benchlib.machine(),
        "layer": {"name": wl["name"], "hidden": H, "ffn": F, "experts": E, "top_k": K,
                  "weights": "float32", "bytes_per_expert": expert_bytes},
        "calibration": {
            "compute_model": a.compute_model,
            "threads": 1, "memory_bytes_per_s": memory_rate, "flops_per_s": flop_rate,
            "from": "one rank, one thread, unpartitioned plan: %d tokens (%d experts "
                    "touched) in %.2f ms; %d tokens in %.2f ms"
                    % (tmin, touched[tmin] // expert_bytes, t_small["median_ms"], tmax,
                       t_large["median_ms"]),
            "node_memory_bytes_per_s": node_memory_rate, "node_flops_per_s": node_flop_rate,
            "node_from": "one rank, %d threads: %d tokens in %.2f ms, %d tokens in %.2f ms"
                         % (cores, tmin, single[tmin], tmax, single[tmax]),
            "per_rank": "min(one thread's rate, the node's rate / ranks)"},
        "topologies": topologies,
        "predictions": "moe-partition-sim --topology (measured; hybrid: the ranks as 2 "
                       "nodes with the measured links) --layer: EP, TP and TP-in-node+EP, "
                       "direct",
        "rows": rows,
        "within_30_percent": within, "cases": len(rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
