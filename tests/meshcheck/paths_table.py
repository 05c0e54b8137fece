#!/usr/bin/env python3
"""Condense `make verify-mesh` output into the per-host path tables of docs/verification.md.

    make verify-mesh | python3 tests/meshcheck/paths_table.py
"""
import re
import sys

rows = {}
order = []
seed = section = None
for line in sys.stdin:
    line = line.rstrip("\n")
    match = re.match(r"^== \S*/(\S+) \(", line)
    if match:
        seed = match.group(1)
        continue
    if line.startswith("-- "):
        section = line[3:]
        continue
    if not seed or section not in ("sidecar->gateway", "gateway->upstream") or " PASS" not in line \
            and " FAIL" not in line:
        continue
    cols = re.split(r"\s{2,}", line)
    entry, proxy, call, cluster, verdict = cols[0], cols[1], cols[2], cols[-2], cols[-1]
    key = (seed, entry)
    if key not in rows:
        rows[key] = {}
        order.append(key)
    # One workload call per host: the one without Istio's DNS proxy where there is one.
    if section in rows[key] and proxy.endswith("+dns"):
        continue
    rows[key][section] = (proxy, call, cluster, verdict)

current = None
for seed, entry in order:
    if seed != current:
        current = seed
        print("\n#### %s\n" % seed)
        print("| entry / host | workload call | sidecar -> gateway cluster | gateway -> external cluster | verdict |")
        print("| --- | --- | --- | --- | --- |")
    hops = rows[(seed, entry)]
    side = hops.get("sidecar->gateway", ("", "", "", ""))
    gate = hops.get("gateway->upstream", ("", "", "", ""))
    cells = (entry, side[0], side[1], side[2], side[3].replace("PASS ", ""), gate[2], gate[3])
    print("| `%s` | %s: `%s` | `%s` (%s) | `%s` | %s |"
          % tuple(c.replace("|", "\\|") for c in cells))
