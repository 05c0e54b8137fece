"""Write the route diagrams ``make diagram-check`` parses with Mermaid (tests/diagram/check.mjs).

    python tests/diagram/render_diagrams.py OUT_DIR

For every playbooks/examples/*.yaml and the hostile-name policy of hostile.py, in each mode it
loads in (sidecar and ambient for most): NAME-MODE.mmd (routes.mmd, as the render writes it) and NAME-MODE.json (the graph
it was written from, with the text each label must show). Also hostile-records-MODE: the seed 2
records with a nasty string in every field.
"""
import glob
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from hostile import POLICY, POLICY_NAME, hostile_gateway, hostile_records  # noqa: E402

from ansible_collections.servicemesh.egress.plugins.module_utils import diagram  # noqa: E402
from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import (  # noqa: E402
    render_files,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import (  # noqa: E402
    modes_of,
    render,
)

MODES = ("sidecar", "ambient")


def shown(text):
    """The text a label shows: control characters become spaces (diagram.escape)."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)


def expected(chart):
    """The graph with the texts Mermaid must read back."""
    return {
        "subgraphs": [{"id": s["id"], "title": shown(s["title"]),
                       "nodes": [{"id": n["id"], "shape": n["shape"],
                                  "lines": [shown(line) for line in n["lines"]]}
                                 for n in s["nodes"]]}
                      for s in chart["subgraphs"]],
        "edges": [{"start": e["start"], "end": e["end"], "text": shown(e["text"])}
                  for e in chart["edges"]],
    }


def write(out_dir, name, text, chart):
    with open(os.path.join(out_dir, name + ".mmd"), "w", encoding="utf-8") as handle:
        handle.write(text)
    with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as handle:
        json.dump(expected(chart), handle, indent=1, sort_keys=True)


def policies():
    for path in sorted(glob.glob(os.path.join(ROOT, "playbooks", "examples", "*.yaml"))):
        with open(path, encoding="utf-8") as handle:
            yield os.path.splitext(os.path.basename(path))[0], yaml.safe_load(handle)
    yield "hostile-names", POLICY


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    count = 0
    for name, data in policies():
        modes = modes_of(data)  # an example may use a feature of one mode only
        assert modes, name
        for mode in modes:
            result, files = render_files(data, mode)
            chart = diagram.graph(result["routes"], result["mode"], result["gateway"])
            write(out_dir, "%s-%s" % (name, mode), files["routes.mmd"], chart)
            count += 1
    with open(os.path.join(ROOT, "playbooks", "examples", "seed-2-https-upgrade.yaml"),
              encoding="utf-8") as handle:
        seed = yaml.safe_load(handle)
    for mode in MODES:
        result = render(seed, mode)
        records = hostile_records(result["routes"], mode)
        gateway = hostile_gateway(result["gateway"])
        text = diagram.mermaid(records, mode, gateway, POLICY_NAME)
        write(out_dir, "hostile-records-%s" % mode, text, diagram.graph(records, mode, gateway))
        count += 1
    print("%d diagrams written to %s" % (count, out_dir))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: render_diagrams.py OUT_DIR")
    main(sys.argv[1])
