# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""meshcheck -equiv: the import of each hand-written recipe (examples/istio) is proven equivalent,
for the traffic, to the recipe, with Istio's own config generator (scripts/verify-import).

- every sidecar recipe: no undeclared difference (declared ones are those import-report.json
  lists, e.g. TLS origination's direct path past the gateway);
- the proof can fail: a render that routes a host elsewhere, and a report whose declared
  differences are taken away, fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VERIFY = os.path.join(REPO, "scripts", "verify-import")
RECIPES = os.path.join(REPO, "examples", "istio")
SUMMARY = re.compile(r"^equivalence: (\d+) calls .*: (\d+) same, (\d+) declared differences, "
                     r"(\d+) undeclared differences", re.M)

# recipe -> (sources given to the import, declared differences expected)
SIDECAR_RECIPES = {
    "http-gateway": ("default", 0),
    "tls-origination": ("default", 4),
    "tcp-by-address": ("", 0),
    "tls-passthrough": ("", 0),
}


def verify(src, out, sources=""):
    proc = subprocess.run([sys.executable, VERIFY, src, str(out), "--gateway", "egressgateway-a",
                           "--sources", sources], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False, timeout=900)
    return proc.returncode, proc.stdout


def meshcheck_equiv(out):
    build = subprocess.run([os.path.join(REPO, "tests", "meshcheck", "build.sh")],
                           stdout=subprocess.PIPE, text=True, check=True)
    return subprocess.run([build.stdout.strip(), "-equiv", "-report",
                           str(out / "import-report.json"), str(out / "src.yaml"),
                           str(out / "render")], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)


@pytest.mark.parametrize("name", sorted(SIDECAR_RECIPES))
def test_each_sidecar_recipe_imports_into_an_equivalent_policy(tmp_path, name):
    sources, declared = SIDECAR_RECIPES[name]
    code, out = verify(os.path.join(RECIPES, name + ".yaml"), tmp_path / "out", sources)
    assert code == 0, out[-6000:]
    (summary,) = SUMMARY.findall(out)
    calls, same, got_declared, undeclared = (int(n) for n in summary)
    assert calls > 0 and undeclared == 0, out[-6000:]
    assert got_declared == declared and same + declared == calls, out[-6000:]


def test_undeclared_differences_fail(tmp_path):
    out = tmp_path / "out"
    code, text = verify(os.path.join(RECIPES, "tls-origination.yaml"), out, "default")
    assert code == 0, text[-6000:]
    (out / "src.yaml").write_text(open(os.path.join(RECIPES, "tls-origination.yaml")).read())
    report_path = out / "import-report.json"
    report = json.loads(report_path.read_text())
    report["report"]["differences"] = [d for d in report["report"]["differences"]
                                       if d["what"] != "direct"]
    report_path.write_text(json.dumps(report))
    proc = meshcheck_equiv(out)
    assert proc.returncode == 1, proc.stdout[-6000:]
    assert "0 declared differences, 4 undeclared differences" in proc.stdout


def test_a_render_that_routes_elsewhere_fails(tmp_path):
    out = tmp_path / "out"
    src = os.path.join(RECIPES, "http-gateway.yaml")
    code, text = verify(src, out, "default")
    assert code == 0, text[-6000:]
    (out / "src.yaml").write_text(open(src).read())
    resources = out / "render" / "resources.yaml"
    docs = [d for d in yaml.safe_load_all(resources.read_text()) if d]
    changed = 0
    for doc in docs:
        if doc.get("kind") == "ServiceEntry":
            doc["spec"]["endpoints"] = [{"address": "198.51.100.7"}]
            doc["spec"]["resolution"] = "STATIC"
            changed += 1
    assert changed
    resources.write_text(yaml.safe_dump_all(docs))
    proc = meshcheck_equiv(out)
    assert proc.returncode == 1, proc.stdout[-6000:]
    assert re.search(r"[1-9]\d* undeclared differences", proc.stdout), proc.stdout[-6000:]
