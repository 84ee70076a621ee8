"""Helpers shared by the Python benchmark drivers (precision_fidelity, pruning).

    sys.path.insert(0, <bench folder>); import benchlib; benchlib.TOOL = "pruning"
"""
import json
import os
import platform
import subprocess
import sys

TOOL = "bench"  # the prefix of progress lines and errors


def say(msg):
    """A progress line on stderr, only when it is a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write("\r%s: %s\033[K" % (TOOL, msg))
        sys.stderr.flush()


def done():
    """Clears the progress line."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


def run(cmd):
    """Runs cmd; its stdout, or exits with the command and its error."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("%s: error: %s failed: %s"
                         % (TOOL, " ".join(cmd), (r.stderr or r.stdout).strip()[-2000:]))
    return r.stdout


def driver_args(ap, results_file):
    """The options of the model-sweep drivers: --bin, --work, --fixtures, --command and
    --json (default bench/results/<results_file>)."""
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--command", default="")
    ap.add_argument("--json", default=os.path.normpath(os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results", results_file)))


def model_files(a):
    """Per model name: (model.onnx, its text for perplexity, trained). The trained
    fixtures have their own eval.bin; the generated models (made under --work) use
    mixtral_tiny's, scored against their unpruned/fp32 selves."""
    text = os.path.join(a.fixtures, "mixtral_tiny", "eval.bin")
    files = {}
    for name in ("mixtral_tiny", "olmoe_tiny"):
        files[name] = (os.path.join(a.fixtures, name, "model.onnx"),
                       os.path.join(a.fixtures, name, "eval.bin"), True)
    for name in ("mixtral_gen", "olmoe_gen"):
        files[name] = (os.path.join(a.work, name, "model.onnx"), text, False)
    return files


def tools(a):
    """(moe-opt, moe-exec) under --bin."""
    return os.path.join(a.bin, "moe-opt"), os.path.join(a.bin, "moe-exec")


def json_lines(text):
    """The JSON objects of the lines of text that start with '{'."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def machine():
    """The CPU model, core count and system, for the results file."""
    model = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "system": platform.platform()}


def write_json(path, results):
    """Writes results to path atomically (path.partial, then renamed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
