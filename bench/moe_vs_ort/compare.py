#!/usr/bin/python3
"""The measuring half of bench/moe_vs_ort/run.sh (which builds and installs what this needs).

    compare.py --root MOE_ROOT --build BUILD --node-modules DIR --json FILE --command STR
               [--workloads A,B] [--tokens 1,16,128] [--forms moe,qmoe[,qmoe-i8][,moe-bf16]] [--sets 8]
               [--warmup 3] [--repeat 30] [--rounds 5] [--threads 2]

Generates the models (make_models.py, cached), compiles each with `moe-opt model.onnx
--moe-compile --emit-plan` (again only when the model or moe-opt changed), measures the
read bandwidth (moe-bench-kernels and readbw, before and after the cases and readbw before
each case; the best is the floor), then per case (workload, form, T) times, in alternating
rounds, `moe-exec --bench` and ort_bench.js on the same input sets (rotated, and set_0
alone), checks that their outputs agree and prints a table; every figure, the machine, the
versions and the command go to --json.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

TTY = sys.stderr.isatty()
FORM_NAMES = {"moe": "MoE fp32", "qmoe": "QMoE int4",
              "qmoe-i8": "QMoE int4, int8 activations",
              "moe-bf16": "MoE, bf16 experts and activations"}
# A form's model, and what moe-exec adds for it: qmoe-i8 runs the QMoE model with
# --int8-activations (int4 x int8 VNNI products, as llama.cpp's Q4 x Q8), against the
# same ONNX Runtime QMoE run.
# moe-bf16 compiles the float32 MoE model with bf16 experts and runs it with
# --bf16-activations (AVX512-BF16 dot products in prefill), against ONNX Runtime's
# float32 run of the same model: the "bf16/AMX where available" prefill form.
FORM_MODEL = {"moe": "moe", "qmoe": "qmoe", "qmoe-i8": "qmoe", "moe-bf16": "moe"}
FORM_FLAGS = {"moe": [], "qmoe": [], "qmoe-i8": ["--int8-activations"],
              "moe-bf16": ["--bf16-activations"]}
# A form whose plan the compiler writes differently: (plan suffix, moe-compile options).
FORM_COMPILE = {"moe-bf16": (".bf16", "expert-bits=16 expert-group-size=0")}
# Bytes of an expert in the form's plan, relative to the model's.
FORM_BYTES = {"moe-bf16": 0.5}
FP32_TOL = 1e-3  # max |diff| <= FP32_TOL * max |ref| for the float32 MoE


def say(msg):
    if TTY:
        print("moe-vs-ort: " + msg, file=sys.stderr, flush=True)


class CaseError(Exception):
    pass


def run(cmd, cwd=None, env=None, timeout=1800):
    """Runs cmd; returns stdout; raises CaseError with the tool's last stderr line."""
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CaseError("%s: timed out after %d s" % (os.path.basename(cmd[0]), timeout))
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise CaseError("%s exited with status %d: %s" % (
            os.path.basename(cmd[0]), p.returncode, err[-1] if err else "(no message)"))
    return p.stdout.decode(errors="replace")


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise CaseError("no JSON in the output: %r" % text[-200:])


# --- the machine -------------------------------------------------------------------------

def machine():
    info = {"platform": platform.platform()}
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True, check=True).stdout
        kv = {}
        for line in out.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                kv[k.strip()] = v.strip()
        flags = set(kv.get("Flags", "").split())
        info.update({
            "cpu": kv.get("Model name"),
            "cpus_online": kv.get("CPU(s)"),
            "threads_per_core": kv.get("Thread(s) per core"),
            "l2_cache": kv.get("L2 cache"),
            "l3_cache": kv.get("L3 cache"),
            "flags": {f: f in flags for f in (
                "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")},
        })
    except (OSError, subprocess.CalledProcessError):
        pass
    info["cores_usable"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def versions(a):
    v = {}
    try:
        with open(os.path.join(a.node_modules, "onnxruntime-node", "package.json")) as f:
            v["onnxruntime_node"] = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        v["onnxruntime_node"] = None
    for name, cmd in (("node", ["node", "--version"]), ("gxx", ["g++", "--version"])):
        try:
            v[name] = subprocess.run(cmd, stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            v[name] = None
    try:
        head = subprocess.run(["git", "-C", a.root, "rev-parse", "HEAD"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", a.root, "status", "--porcelain", "--untracked-files=no"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True).stdout.strip()
        v["moe_compiler_commit"] = head + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        head = ""
    if not head:  # a tree exported with git archive: the caller says which commit
        v["moe_compiler_commit"] = os.environ.get("MOE_SOURCE_COMMIT")
    try:
        with open(os.path.join(a.build, "CMakeCache.txt")) as f:
            m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", f.read(), re.M)
            v["moe_build_type"] = m.group(1) if m else None
    except OSError:
        v["moe_build_type"] = None
    v["python_onnx"] = onnx.__version__
    v["numpy"] = np.__version__
    return v


def first_bandwidth_line(cmd, what):
    """GB/s from the first "read bandwidth (N threads): X GB/s" line cmd prints; whatever
    it would print after that is not needed and it is stopped."""
    p = subprocess.Popen(["stdbuf", "-oL"] + cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        for line in p.stdout:
            m = re.match(r"read bandwidth \((\d+) threads?\): ([0-9.]+) GB/s", line)
            if m:
                return float(m.group(2))
    finally:
        if p.poll() is None:
            p.terminate()
        p.wait()
    raise CaseError("%s printed no 'read bandwidth' line" % what)


def bw_kernels(a):
    """moe-bench-kernels: the median of 10 sums of a 512 MiB buffer of doubles."""
    exe = os.path.join(a.build, "bin", "moe-bench-kernels")
    return first_bandwidth_line([exe, "--threads", str(a.threads), "--repeat", "40"],
                                "moe-bench-kernels")


def bw_vector(a):
    """readbw (built by run.sh from readbw.cpp): vector loads over 1 GiB, median of 10."""
    exe = os.path.join(a.build, "moe_vs_ort", "readbw")
    return first_bandwidth_line([exe, "1024", str(a.threads), "10"], "readbw")


def cpu_clock():
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its waited-for
    children, wall seconds): the difference of two readings tells how much CPU other
    processes (other users of a shared machine) took in between."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    t = os.times()
    return ((sum(fields[:8]) - idle) / hz, t.user + t.system + t.children_user + t.children_system,
            time.monotonic())


def others_share(c0, c1):
    """Share of the machine's CPUs (0..1) used by other processes between two cpu_clock()s."""
    wall = c1[2] - c0[2]
    if wall <= 0:
        return 0.0
    others = (c1[0] - c0[0]) - (c1[1] - c0[1])
    return max(0.0, others / (wall * len(os.sched_getaffinity(0))))


def wait_quiet(a):
    """Waits (up to --quiet-wait seconds) until other processes leave the CPUs idle (under
    --quiet-share of them over 1 s); returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < a.quiet_wait:
        c0 = cpu_clock()
        time.sleep(1.0)
        if others_share(c0, cpu_clock()) < a.quiet_share:
            break
    return round(time.monotonic() - start, 1)


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


# --- the cases ---------------------------------------------------------------------------

def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def compile_plan(a, model, plan, options=None):
    opt = os.path.join(a.build, "bin", "moe-opt")
    if (os.path.isfile(plan) and os.path.getmtime(plan) >= os.path.getmtime(model)
            and os.path.getmtime(plan) >= os.path.getmtime(opt)):
        return None
    t0 = time.time()
    compile_flag = "--moe-compile=" + options if options else "--moe-compile"
    run([opt, os.path.basename(model), compile_flag, "--emit-plan", os.path.basename(plan)],
        cwd=os.path.dirname(model), timeout=3600)
    return round(time.time() - t0, 2)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--node-modules", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--workloads", default="A,B")
    p.add_argument("--tokens", default="1,16,128")
    p.add_argument("--forms", default="moe,qmoe")
    p.add_argument("--sets", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quiet-share", type=float, default=0.05,
                   help="a round counts when other processes used less than this share of "
                        "the CPUs during it (default 0.05)")
    p.add_argument("--quiet-wait", type=float, default=60,
                   help="seconds to wait before a round for the others to go quiet (60)")
    a = p.parse_args(argv)
    if min(a.sets, a.repeat, a.threads, a.rounds) < 1 or a.warmup < 0:
        p.error("--sets, --repeat, --threads and --rounds must be at least 1")
    forms = [f for f in a.forms.split(",") if f]
    if any(f not in FORM_NAMES for f in forms):
        p.error("--forms takes moe, qmoe, qmoe-i8 and moe-bf16")
    work = os.path.join(a.build, "moe_vs_ort")
    here = os.path.dirname(os.path.abspath(__file__))
    exe = os.path.join(a.build, "bin", "moe-exec")
    env = dict(os.environ, NODE_PATH=a.node_modules)
    load_start = os.getloadavg()
    mach, ver = machine(), versions(a)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    say("generating the models in %s (make_models.py)" % work)
    run([sys.executable, os.path.join(here, "make_models.py"), "--out", work,
         "--workloads", a.workloads, "--tokens", a.tokens, "--sets", str(a.sets)], timeout=3600)
    with open(os.path.join(work, "manifest.json")) as f:
        manifest = json.load(f)

    def plan_key(wl, form):
        return (wl, FORM_MODEL[form] + FORM_COMPILE.get(form, ("", None))[0])

    compiled, errors = {}, {}
    for wl, wd in manifest["workloads"].items():
        for form in forms:
            key = plan_key(wl, form)
            if key in compiled or key in errors:
                continue
            suffix, options = FORM_COMPILE.get(form, ("", None))
            model = os.path.join(work, wd["models"][FORM_MODEL[form]]["file"])
            plan = model[:-len(".onnx")] + suffix + ".moeplan"
            say("moe-opt %s --moe-compile%s --emit-plan %s" % (
                os.path.relpath(model, work), "=" + options if options else "",
                os.path.basename(plan)))
            try:
                compiled[key] = {"plan": plan,
                                 "compile_s": compile_plan(a, model, plan, options)}
            except CaseError as e:
                errors[key] = "moe-opt: " + str(e)

    say("measuring the read bandwidth (moe-bench-kernels and readbw, %d threads)" % a.threads)
    bw_samples = {"moe-bench-kernels": [], "readbw": []}

    def sample_bandwidth(n=1):
        for _ in range(n):
            bw_samples["moe-bench-kernels"].append(bw_kernels(a))
            bw_samples["readbw"].append(bw_vector(a))

    sample_bandwidth(3)

    cases = []
    for wl, wd in manifest["workloads"].items():
        ort_fp32_out = {}
        for form in forms:
            mdesc = wd["models"][FORM_MODEL[form]]
            built = plan_key(wl, form)
            per_expert = round(mdesc["bytes_per_expert"] * FORM_BYTES.get(form, 1.0))
            for t in [int(x) for x in a.tokens.split(",") if x]:
                sets = wd["inputs"][str(t)]
                set_dirs = [os.path.join(work, s["dir"]) for s in sets]
                hit_mean = sum(len(s["experts_hit"]) for s in sets) / len(sets)
                hit0 = len(sets[0]["experts_hit"])
                case = {"workload": wl, "workload_name": wd["name"], "form": FORM_NAMES[form],
                        "op": mdesc["op"], "weights": mdesc["weights"], "tokens": t,
                        "hidden": wd["hidden"], "ffn": wd["ffn"], "experts": wd["experts"],
                        "k": wd["k"], "input_sets": [s["dir"] for s in sets],
                        "bytes_per_expert": per_expert,
                        "experts_hit": round(hit_mean, 3),
                        "touched_bytes": round(hit_mean * per_expert),
                        "experts_hit_per_set": [len(s["experts_hit"]) for s in sets],
                        "fixed_experts_hit": hit0,
                        "fixed_touched_bytes": hit0 * per_expert}
                cases.append(case)
                if built in errors:
                    case["error"] = errors[built]
                    continue
                case["compile_s"] = compiled[built]["compile_s"]
                outdir = os.path.join(work, "out", "%s_%s_T%d" % (wl, form, t))
                case["moe_exec_flags"] = FORM_FLAGS[form]
                os.makedirs(outdir, exist_ok=True)
                ort_out = os.path.join(outdir, "ort.f32")
                rot, fix, ort, bws, share = [], [], [], [], []
                try:
                    # Rounds alternate the tools (one process each), so that a slow spell of
                    # this shared machine hits both, with the read bandwidth sampled between
                    # rounds; outputs (of set_0) come from the first round.
                    for rnd in range(a.rounds):
                        waited = wait_quiet(a)
                        bws.append(bw_vector(a))
                        c0 = cpu_clock()
                        say("%s %s T=%d, round %d/%d: moe-exec --bench (rotated, fixed), "
                            "ort_bench.js" % (wl, FORM_NAMES[form], t, rnd + 1, a.rounds))
                        bench = [exe, compiled[built]["plan"], "--bench", "--json",
                                 "--warmup", str(a.warmup), "--repeat", str(a.repeat),
                                 "--threads", str(a.threads)] + FORM_FLAGS[form]
                        cmd = list(bench)
                        for d in set_dirs:
                            cmd += ["--inputs", d]
                        if rnd == 0:
                            cmd += ["--outputs", os.path.join(outdir, "moe-exec")]
                        rot.append(last_json(run(cmd)))
                        fix.append(last_json(run(bench + ["--inputs", set_dirs[0]])))
                        cmd = ["node", os.path.join(here, "ort_bench.js"),
                               "--model", os.path.join(work, mdesc["file"]),
                               "--sets", ",".join(set_dirs), "--warmup", str(a.warmup),
                               "--repeat", str(a.repeat), "--threads", str(a.threads)]
                        if rnd == 0:
                            cmd += ["--output", ort_out]
                        ort.append(last_json(run(cmd, env=env)))
                        share.append((round(others_share(c0, cpu_clock()), 3), waited))
                    bws.append(bw_vector(a))
                except CaseError as e:
                    case["error"] = str(e)
                    continue

                # Rounds during which other processes took CPU time are left out of the
                # medians, as long as a quiet one remains.
                used = [i for i in range(a.rounds) if share[i][0] < a.quiet_share]
                if not used:
                    used = list(range(a.rounds))

                def summary(rounds, key=None):
                    rs = [rounds[i][key] if key else rounds[i] for i in used]
                    return {"median_ms": round(median([r["median_ms"] for r in rs]), 4),
                            "min_ms": round(min(r["min_ms"] for r in rs), 4),
                            "round_medians_ms": [round(r["median_ms"], 4) for r in rs]}

                case["moe_exec"] = dict(summary(rot), fixed=summary(fix),
                                        threads=rot[0]["threads"])
                case["ort"] = dict(summary(ort, "rotated"), fixed=summary(ort, "fixed"),
                                   session_create_ms=ort[0]["session_create_ms"])
                case["rounds"] = [{
                    "read_bandwidth_gbps": max(bws[i], bws[i + 1]),
                    "moe_exec_ms": rot[i]["median_ms"], "ort_ms": ort[i]["rotated"]["median_ms"],
                    "ratio": round(ort[i]["rotated"]["median_ms"] / rot[i]["median_ms"], 3),
                    "fixed_moe_exec_ms": fix[i]["median_ms"],
                    "fixed_ort_ms": ort[i]["fixed"]["median_ms"],
                    "fixed_ratio": round(ort[i]["fixed"]["median_ms"] / fix[i]["median_ms"], 3),
                    "others_cpu_share": share[i][0], "waited_for_quiet_s": share[i][1],
                    "used": i in used}
                    for i in range(a.rounds)]
                case["rounds_used"] = len(used)
                case["read_bandwidth_gbps_samples"] = bws
                # The ratio within a round (same machine state), the median over rounds.
                case["ratio_ort_over_moe_exec"] = round(
                    median([r["ratio"] for r in case["rounds"] if r["used"]]), 3)
                case["fixed_ratio_ort_over_moe_exec"] = round(
                    median([r["fixed_ratio"] for r in case["rounds"] if r["used"]]), 3)
                got = load_pb(os.path.join(outdir, "moe-exec", "output_0.pb")).astype(np.float64)
                ref = np.fromfile(ort_out, np.float32).astype(np.float64)
                if ref.size != got.size:
                    case["error"] = "output sizes differ: moe-exec %s, ORT %d values" % (
                        got.shape, ref.size)
                    continue
                ref = ref.reshape(got.shape)
                diff, scale = float(np.abs(got - ref).max()), float(np.abs(ref).max())
                case["parity"] = {"max_abs_diff": diff, "max_abs_ref": scale,
                                  "relative": diff / scale if scale else diff}
                if form == "moe":
                    ort_fp32_out[t] = ref
                    case["parity"]["tolerance"] = FP32_TOL
                    case["parity"]["ok"] = diff <= FP32_TOL * scale
                elif t in ort_fp32_out:
                    q = float(np.abs(got - ort_fp32_out[t]).max())
                    case["parity"]["vs_fp32_model_relative"] = q / float(np.abs(ort_fp32_out[t]).max())

    say("measuring the read bandwidth again")
    sample_bandwidth(3)
    per_case = [b for c in cases for b in c.get("read_bandwidth_gbps_samples", [])]
    bw_k = max(bw_samples["moe-bench-kernels"])
    bw_v = max(bw_samples["readbw"] + per_case)
    bw = max(bw_k, bw_v)
    for c in cases:
        c["floor_ms"] = round(c["touched_bytes"] / (bw * 1e9) * 1e3, 4)
        c["fixed_floor_ms"] = round(c["fixed_touched_bytes"] / (bw * 1e9) * 1e3, 4)
        for who in ("moe_exec", "ort"):
            if who in c:
                c[who]["fraction_of_floor"] = round(c["floor_ms"] / c[who]["median_ms"], 3)
                c[who]["fixed"]["fraction_of_floor"] = round(
                    c["fixed_floor_ms"] / c[who]["fixed"]["median_ms"], 3)
        if "rounds" in c:
            # Each round against the bandwidth sampled around it, the median over rounds.
            for who in ("moe_exec", "ort"):
                c[who]["fraction_of_round_floor"] = round(median([
                    c["touched_bytes"] / (r["read_bandwidth_gbps"] * 1e6) / r[who + "_ms"]
                    for r in c["rounds"] if r["used"]]), 3)

    # The table.
    hdr = ("workload", "form", "T", "hit", "touched MB", "moe-exec ms", "ORT ms", "ORT/moe",
           "moe of floor", "ORT of floor", "case GB/s", "quiet", "fixed: moe ms", "ORT ms",
           "ORT/moe", "max|diff|/max|ref|")
    rows = []
    for c in cases:
        row = ["%s (%s)" % (c["workload"], c["workload_name"]), c["form"], str(c["tokens"]),
               "%.4g/%d" % (c["experts_hit"], c["experts"]), "%.1f" % (c["touched_bytes"] / 1e6)]
        if "error" in c and "moe_exec" not in c:
            row += ["error: " + c["error"]]
        else:
            par = c.get("parity", {})
            pstr = "%.1e" % par["relative"] if par else "-"
            if "ok" in par:
                pstr += " ok" if par["ok"] else " FAIL"
            if "vs_fp32_model_relative" in par:
                pstr += " (vs the fp32 model: %.1e)" % par["vs_fp32_model_relative"]
            if "error" in c:
                pstr += " (" + c["error"] + ")"
            m, o = c["moe_exec"], c["ort"]
            row += ["%.3f" % m["median_ms"], "%.3f" % o["median_ms"],
                    "%.2f" % c["ratio_ort_over_moe_exec"],
                    "%.2f" % m["fraction_of_floor"], "%.2f" % o["fraction_of_floor"],
                    "%.0f-%.0f" % (min(c["read_bandwidth_gbps_samples"]),
                                   max(c["read_bandwidth_gbps_samples"])),
                    "%d/%d" % (c["rounds_used"], a.rounds),
                    "%.3f" % m["fixed"]["median_ms"], "%.3f" % o["fixed"]["median_ms"],
                    "%.2f" % c["fixed_ratio_ort_over_moe_exec"], pstr]
        rows.append(row)
    full = [r for r in rows if len(r) == len(hdr)]
    widths = [max([len(hdr[i])] + [len(r[i]) for r in full]) for i in range(len(hdr))]
    print("moe-exec vs ONNX Runtime %s (CPU), %d threads each, on %s (%d cores)" % (
        ver["onnxruntime_node"], a.threads, mach.get("cpu"), mach["cores_usable"]))
    print("read bandwidth, %d threads: %.1f GB/s (best of the run; moe-bench-kernels %.1f, "
          "readbw %.1f); floor = touched bytes / %.1f GB/s" % (a.threads, bw, bw_k, bw_v, bw))
    print("case GB/s: readbw between the rounds of the case (this machine's bandwidth drifts; "
          "the JSON has each round, and fraction_of_round_floor)")
    print("time: median over the quiet rounds (tools alternating; quiet: other processes used "
          "< %g of the CPUs) of the median of %d runs after %d warm-up; ORT/moe: the median of "
          "those rounds' ratios; the %d input sets in turn (hit, touched: their mean), 'fixed': "
          "set_0 only" % (a.quiet_share, a.repeat, a.warmup, a.sets))
    print("  ".join(h.ljust(w) for h, w in zip(hdr, widths)).rstrip())
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())

    failed = [c for c in cases if "error" in c or not c.get("parity", {}).get("ok", True)]
    result = {
        "what": "One com.microsoft.MoE (float32) or QMoE (int4) layer, moe-exec against ONNX "
                "Runtime's CPU provider on the same ONNX file and the same inputs, %d threads each."
                % a.threads,
        "command": a.command,
        "date": started,
        "machine": mach,
        "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "versions": ver,
        "read_bandwidth_gbps": {
            "floor_uses": bw,
            "moe-bench-kernels": bw_samples["moe-bench-kernels"],
            "readbw": bw_samples["readbw"],
            "readbw_before_each_case": per_case,
            "how": "%d threads. moe-bench-kernels --threads %d: its first line, the median of 10 "
                   "sums of a 512 MiB buffer of doubles (scalar adds). readbw (readbw.cpp, "
                   "g++ -O3 -march=native): the median of 10 sums of 1 GiB of floats with 4 "
                   "vector accumulators. 3 samples of each before and after the cases, readbw "
                   "also between the rounds of each case; the floor uses the best of the run "
                   "(fraction_of_floor); each round against the larger of the samples around "
                   "it gives fraction_of_round_floor (median over rounds)." % (a.threads, a.threads)},
        "settings": {"warmup": a.warmup, "repeat": a.repeat, "rounds": a.rounds,
                     "quiet_share": a.quiet_share, "quiet_wait": a.quiet_wait,
                     "threads": a.threads,
                     "input_sets_per_T": a.sets,
                     "block_size": manifest["options"].get("block_size", 0)},
        "notes": [
            "median_ms: the median over the rounds (the tools alternate, one process per round) "
            "of each round's median of `repeat` runs after `warmup` runs; "
            "ratio_ort_over_moe_exec: the median of the rounds' ratios (a round's tools share "
            "the machine's state). Before each round the script waits (up to quiet_wait s) "
            "until other processes leave the CPUs idle; a round during which they used "
            "quiet_share of the CPUs or more (others_cpu_share: busy CPU time of the machine "
            "minus this script's and its tools') is left out of the medians when a quiet "
            "round remains (rounds_used). On 2 cores, one busy neighbour halves one of the "
            "two threads, and both tools then run about 2x slower. Both tools cycle "
            "through the input sets (moe-exec --bench with repeatable --inputs; "
            "ort_bench.js likewise: warm-up run i and timed run i use set i mod sets), so "
            "the routing and the experts read change between runs, as in serving. "
            "'fixed' figures repeat set_0 every run instead (the experts read stay the same "
            "and may be served from the cache).",
            "touched_bytes: distinct experts hit by a set's tokens (top-k of the router logits), "
            "averaged over the sets (fixed_touched_bytes: set_0's), x bytes per expert in the "
            "model's format (fp32: 3*H*F*4; int4: 3*H*F/2 + float32 scales). floor_ms = "
            "touched_bytes / read bandwidth; fraction_of_floor = floor_ms / median_ms.",
            "parity: max |moe-exec - ORT| / max |ORT| on set_0; fp32 must be <= %g. For QMoE, "
            "vs_fp32_model_relative compares moe-exec's int4 output with ORT's fp32 MoE output "
            "(the quantisation error). 'QMoE int4, int8 activations' runs moe-exec "
            "--int8-activations on the QMoE model; its parity is against ORT's QMoE, which "
            "keeps float activations." % FP32_TOL,
            "ORT times are around session.run() in node (including tensor wrapping); moe-exec "
            "times are around Executor::run.",
        ],
        "models": {wl: {"name": wd["name"], "hidden": wd["hidden"], "ffn": wd["ffn"],
                        "experts": wd["experts"], "k": wd["k"],
                        "forms": {f: {"op": wd["models"][FORM_MODEL[f]]["op"],
                                      "weights": wd["models"][FORM_MODEL[f]]["weights"],
                                      "bytes_per_expert":
                                          wd["models"][FORM_MODEL[f]]["bytes_per_expert"],
                                      "onnx_bytes": os.path.getsize(os.path.join(
                                          work, wd["models"][FORM_MODEL[f]]["file"])),
                                      "moe_exec_flags": FORM_FLAGS[f]}
                                  for f in forms}}
                   for wl, wd in manifest["workloads"].items()},
        "cases": cases,
        "ok": not failed,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    tmp = a.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(tmp, a.json)
    print("results: %s" % a.json)
    if failed:
        for c in failed:
            print("moe-vs-ort: error: %s %s T=%d: %s" % (
                c["workload"], c["form"], c["tokens"],
                c.get("error") or "outputs differ by %.3g of max |ref| (tolerance %g)"
                % (c["parity"]["relative"], FP32_TOL)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
