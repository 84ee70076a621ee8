"""Checks that a multi-rank routing profile sums the ranks' own profiles.

    sum_profiles.py TOTAL PART...

For every layer, TOTAL's tokens and per-expert counts must equal the sums of
the PARTs' (moe-exec --profile JSON, docs/profile-format.md). Prints
"profiles add up: L layers, T tokens" or what differs; exits 1 then.
"""
import json
import sys


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    total = json.load(open(argv[0]))
    parts = [json.load(open(p)) for p in argv[1:]]
    tokens = 0
    for i, layer in enumerate(total["layers"]):
        want = sum(p["layers"][i]["tokens"] for p in parts)
        if layer["tokens"] != want:
            print("layer %d: %d tokens, the parts have %d" % (i, layer["tokens"], want))
            return 1
        for e, ex in enumerate(layer["experts"]):
            want = sum(p["layers"][i]["experts"][e]["count"] for p in parts)
            if ex["count"] != want:
                print("layer %d expert %d: count %d, the parts have %d" % (i, e, ex["count"], want))
                return 1
        tokens += layer["tokens"]
    print("profiles add up: %d layers, %d tokens" % (len(total["layers"]), tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
