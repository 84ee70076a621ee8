#!/usr/bin/python3
"""Writes a damaged copy of a plan file for the error tests.

  corrupt.py IN OUT truncate N      keep the first N bytes
  corrupt.py IN OUT flip OFFSET     invert the byte at OFFSET (negative: from the end)
  corrupt.py IN OUT version V       set the header's version field
  corrupt.py IN OUT garbage         replace everything with non-plan bytes
"""
import struct
import sys

src, dst, what = sys.argv[1], sys.argv[2], sys.argv[3]
data = bytearray(open(src, "rb").read())
if what == "truncate":
    data = data[: int(sys.argv[4])]
elif what == "flip":
    data[int(sys.argv[4])] ^= 0xFF
elif what == "version":
    struct.pack_into("<I", data, 8, int(sys.argv[4]))
elif what == "garbage":
    data = bytearray(b"this is not a plan file\n" * 8)
else:
    sys.exit(__doc__)
open(dst, "wb").write(data)
