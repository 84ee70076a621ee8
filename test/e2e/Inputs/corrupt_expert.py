"""Flips one byte of one expert of a plain expert weight in a plan file.

    corrupt_expert.py PLAN WEIGHT EXPERT

Reads `moe-exec PLAN --describe` on stdin to find where the weight named
WEIGHT (a substring of its name; the first match) lies, and flips a byte in
the middle of index EXPERT of its dimension 0, in place.
"""
import re
import sys


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    plan, name, expert = argv[0], argv[1], int(argv[2])
    text = sys.stdin.read()
    base = int(re.search(r"offsets \+N from byte (\d+) of the file", text).group(1))
    for line in text.splitlines():
        m = re.match(r"\s+\d+: (\S+) : (\d+)x\S+ \((\d+) bytes at \+(\d+)\)", line)
        if m and name in m.group(1):
            experts, size, offset = int(m.group(2)), int(m.group(3)), int(m.group(4))
            per = size // experts
            at = base + offset + per * expert + per // 2
            with open(plan, "r+b") as f:
                f.seek(at)
                b = f.read(1)
                f.seek(at)
                f.write(bytes([b[0] ^ 0x20]))
            print("flipped byte %d (%s, expert %d)" % (at, m.group(1), expert))
            return 0
    print("no weight matching %r" % name)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
