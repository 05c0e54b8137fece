#!/usr/bin/env python3
"""Condense `make verify-mesh` output into the per-host path tables of docs/verification.md
(the seed renders, sidecar and ambient mode).

    make verify-mesh | python3 tests/meshcheck/paths_table.py
"""
import re
import sys

HOPS = {
    "sidecar": ("sidecar->gateway", "gateway->upstream"),
    "ambient": ("ztunnel->waypoint", "waypoint->upstream"),
}
HEADERS = {
    "sidecar": "| entry / host | workload call | sidecar -> gateway cluster | gateway -> external "
               "cluster | verdict |",
    "ambient": "| entry / host | workload dials | ztunnel -> waypoint | waypoint listener -> cluster "
               "| verdict |",
}

rows = {}
order = []
seed = section = None
for line in sys.stdin:
    line = line.rstrip("\n")
    match = re.match(r"^== (\S*/)?(\S+) \(", line)
    if match:
        # the renders of the seeds; the hand-written fixtures (tests/meshcheck/testdata) are not
        seed = None if "testdata/" in (match.group(1) or "") else match.group(2)
        continue
    if line.startswith("-- "):
        section = line[3:]
        continue
    mode = "ambient" if section in HOPS["ambient"] else "sidecar"
    if not seed or section not in HOPS[mode] or (" PASS" not in line and " FAIL" not in line):
        continue
    cols = re.split(r"\s{2,}", line)
    entry, proxy, call, cluster, verdict = cols[0], cols[1], cols[2], cols[-2], cols[-1]
    if entry.startswith("ENTRY"):
        continue
    key = (seed, entry)
    if key not in rows:
        rows[key] = {"mode": mode}
        order.append(key)
    # One workload call per host: the one without Istio's DNS proxy where there is one.
    if section in rows[key] and proxy.endswith("+dns"):
        continue
    rows[key][section] = (proxy, call, cluster, cols[3], verdict)


def cell(text):
    return text.replace("|", "\\|")


current = None
for seed, entry in order:
    hops = rows[(seed, entry)]
    mode = hops["mode"]
    if seed != current:
        current = seed
        suffix = "" if mode == "sidecar" or seed.endswith("ambient") else " (ambient)"
        print("\n#### %s%s\n" % (seed, suffix))
        print(HEADERS[mode])
        print("| --- | --- | --- | --- | --- |")
    first, second = (hops.get(h, ("", "", "", "", "")) for h in HOPS[mode])
    if mode == "sidecar":
        print("| `%s` | %s: `%s` | `%s` (%s) | `%s` | %s |" % tuple(cell(c) for c in (
            entry, first[0], first[1], first[2], first[4].replace("PASS ", ""), second[2],
            second[4])))
    else:
        print("| `%s` | `%s` | %s | `%s` -> `%s` | %s |" % tuple(cell(c) for c in (
            entry, first[1], first[4].replace("PASS ", ""), second[3].replace("fc=", ""),
            second[2], second[4])))
