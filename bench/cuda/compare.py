"""Joins moe-cuda-bench's and torch_moe.py's JSON into one result with the ratios
the issue's targets are stated in, and prints a table.

  python3 compare.py MOE.json TORCH.json OUT.json [--command "..."]
"""
import json
import sys


def main():
    moe_path, torch_path, out_path = sys.argv[1:4]
    command = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--command" else ""
    moe = json.load(open(moe_path))
    peer = json.load(open(torch_path))
    by_t = {r["tokens"]: r for r in peer["rows"]}
    rows = []
    print("%6s %10s %10s %10s %9s %9s" % ("T", "moe_ms", "torch_ms", "floor_ms",
                                          "x_floor", "speedup"))
    for r in moe["rows"]:
        t = by_t.get(r["tokens"])
        if not t:
            continue
        speedup = t["median_ms"] / r["median_ms"]
        rows.append(dict(r, torch_median_ms=t["median_ms"], speedup_vs_torch=speedup))
        print("%6d %10.4f %10.4f %10.4f %9.2f %9.2f" % (
            r["tokens"], r["median_ms"], t["median_ms"], r["floor_ms"], r["x_floor"],
            speedup))
    targets = {}
    one = [r for r in rows if r["tokens"] == 1]
    big = [r for r in rows if r["tokens"] == 4096]
    if one:
        targets["t1_x_floor_le_1.2"] = one[0]["x_floor"] <= 1.2
    targets["faster_than_torch_at_every_t"] = all(r["speedup_vs_torch"] > 1 for r in rows)
    if big:
        targets["speedup_ge_1.2_at_4096"] = big[0]["speedup_vs_torch"] >= 1.2
    print("targets:", json.dumps(targets))
    out = {"benchmark": "cuda-moe-layer", "command": command, "device": moe["device"],
           "torch": peer.get("torch"), "hidden": moe["hidden"], "ffn": moe["ffn"],
           "experts": moe["experts"], "k": moe["k"], "dtype": moe["dtype"],
           "hbm_read_bytes_per_s": moe["hbm_read_bytes_per_s"], "rows": rows,
           "targets": targets}
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
