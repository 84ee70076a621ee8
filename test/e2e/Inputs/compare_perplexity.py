"""Compares the perplexities of two `moe-exec --perplexity --json` runs:

    compare_perplexity.py A.json B.json TOL

Prints "perplexity A -> B: differs by D, within TOL" and exits 0 when the
relative difference D is at most TOL and not zero (a zero difference means
the two runs computed the same thing); exits 1 otherwise.
"""
import json
import sys


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    with open(argv[0]) as f:
        a = json.load(f)["perplexity"]
    with open(argv[1]) as f:
        b = json.load(f)["perplexity"]
    tol = float(argv[2])
    if a == b:
        print("the two runs give the same perplexity")
        return 1
    d = abs(b - a) / a
    if d > tol:
        print("perplexity %.6f -> %.6f: differs by %.3g, more than %g" % (a, b, d, tol))
        return 1
    print("perplexity %.6f -> %.6f: differs by %.3g, within %g" % (a, b, d, tol))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
