#!/usr/bin/python3
"""check_profile.py PPL_JSON REF_PPL PROFILE_JSON INFO_JSON

Checks moe-exec --perplexity --json output against the fixture's reference
perplexity (within 1%), and the routing profile's per-expert counts against
info.json's expert_counts_per_layer (exactly), and the samples' shape."""
import base64
import json
import sys


def main(argv):
    ppl = json.load(open(argv[1]))
    ref = float(argv[2])
    prof = json.load(open(argv[3]))
    info = json.load(open(argv[4]))
    rel = abs(ppl["perplexity"] - ref) / ref
    print("%s: perplexity %.4f, reference %.4f, relative difference %.2e"
          % ("ok" if rel <= 0.01 else "FAIL", ppl["perplexity"], ref, rel))
    if prof.get("format") != "moe-profile" or prof.get("version") != 1:
        print("FAIL: not a version-1 moe-profile")
        return 1
    counts = [[e["count"] for e in layer["experts"]] for layer in prof["layers"]]
    want = info["expert_counts_per_layer"]
    if counts == want:
        print("ok: expert counts of %d layers equal info.json" % len(counts))
    else:
        print("FAIL: counts %s, info.json %s" % (counts, want))
    bad = []
    for layer in prof["layers"]:
        s = layer.get("samples")
        if not s:
            bad.append("layer %d has no samples" % layer["layer"])
            continue
        data = base64.b64decode(s["data_f32le_base64"])
        if len(data) != 4 * s["rows"] * s["hidden"] or len(s["ids"]) != s["rows"] * layer["top_k"]:
            bad.append("layer %d samples have the wrong size" % layer["layer"])
        if sum(e["weight_sum"] for e in layer["experts"]) <= 0:
            bad.append("layer %d has no routing weight" % layer["layer"])
    print("ok: samples" if not bad else "FAIL: " + "; ".join(bad))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
