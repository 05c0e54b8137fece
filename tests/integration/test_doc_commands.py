# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The commands of README.md and docs/*.md that need a cluster (tests/playbooks/doc_commands.py
finds and classifies them), run as written against the local control plane, in the order each
page shows them: from the repository root, then from another directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "playbooks"))

from doc_commands import CLUSTER, ROOT, commands, elsewhere, prepared  # noqa: E402
from helpers_module import ensure_namespace  # noqa: E402

PAGES = {}
for _doc, _command, _how in commands():
    if _how == CLUSTER:
        PAGES.setdefault(_doc, []).append(_command)


def run(command, cwd, kubeconfig):
    script = "set -euo pipefail\nsource <(make -s -C %s env)\n%s\n" % (ROOT, command)
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=kubeconfig, ANSIBLE_NOCOLOR="1")
    for variable in ("ANSIBLE_COLLECTIONS_PATH", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(variable, None)
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900, check=False)


@pytest.mark.parametrize("where", ["root", "elsewhere"])
@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_pages_cluster_commands_run_in_order(page, where, controlplane, admin_api,
                                                 tmp_path):
    for namespace in ("istio-egress", "mytest"):
        ensure_namespace(admin_api, namespace)
    cwd = ROOT if where == "root" else str(tmp_path)
    try:
        for command in PAGES[page]:
            command = prepared(command, str(tmp_path), cwd)
            if where == "elsewhere":
                command = elsewhere(command)
            result = run(command, cwd, controlplane.admin_kubeconfig)
            output = result.stdout + result.stderr
            assert result.returncode == 0, "%s\n%s" % (command, output[-4000:])
            assert "Traceback" not in output
    finally:
        if where == "root" and os.path.exists(os.path.join(ROOT, "my-policy.yaml")):
            os.remove(os.path.join(ROOT, "my-policy.yaml"))
