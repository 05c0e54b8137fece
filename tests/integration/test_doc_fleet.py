# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The fleet walk-through of docs/fleet.md, and the AWX fleet commands of docs/awx.md, run as
written from the repository root (tests/playbooks/doc_commands.py finds them): three local control
planes, fleet.yml on them, a cluster whose API server is stopped failing alone (exit status 2), a
canary rollout, the AWX inventory's run with one kubeconfig of contexts, and the fleet stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "playbooks"))

from doc_commands import FLEET, ROOT, commands  # noqa: E402

pytestmark = pytest.mark.integration

DOWN = "scripts/fleet-controlplanes down"


def _commands():
    """The fleet pages' commands in the order a reader runs them: docs/fleet.md (its ``down``
    moved last, after the canary section below it), then docs/awx.md's."""
    found = [(doc, c) for doc, c, how in commands() if how == FLEET]
    fleet = [c for doc, c in found if doc == "docs/fleet.md" and c != DOWN]
    awx = [c for doc, c in found if doc == "docs/awx.md"]
    assert fleet and awx and (("docs/fleet.md", DOWN) in found), found
    return fleet + awx


def _run(command):
    script = "set -euo pipefail\nsource <(make -s env)\n%s\n" % command
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    for variable in ("ANSIBLE_COLLECTIONS_PATH", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL",
                     "K8S_AUTH_KUBECONFIG", "KUBECONFIG"):
        env.pop(variable, None)
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1200, check=False)


def _report():
    with open(os.path.join(ROOT, "fleet-report.json"), encoding="utf-8") as handle:
        return {c["cluster"]: c for c in json.load(handle)["clusters"]}


def test_the_fleet_walkthrough_runs_as_written():
    _run(DOWN)  # a fleet left by an earlier run
    stopped = False
    try:
        for command in _commands():
            result = _run(command)
            output = result.stdout[-3000:] + result.stderr[-3000:]
            if "apiserver stop" in command:
                stopped = True
            elif "apiserver start" in command:
                stopped = False
            if stopped and "playbooks/fleet.yml" in command:
                # prod-us fails alone, as the page shows
                assert result.returncode == 2, (command, output)
                report = _report()
                assert report["prod-us"]["status"].startswith("failed"), report
                assert {report[c]["status"] for c in ("prod-eu", "staging-eu")} == {
                    "unchanged"}, report
                continue
            assert result.returncode == 0, (command, output)
            if "playbooks/fleet.yml" in command:
                report = _report()
                assert set(report) == {"prod-eu", "prod-us", "staging-eu"}, report
                assert not any(c["status"].startswith("failed") for c in report.values()), report
    finally:
        down = _run(DOWN)
        for name in ("fleet-report.json", "fleet-report.md"):
            if os.path.exists(os.path.join(ROOT, name)):
                os.remove(os.path.join(ROOT, name))
    assert down.returncode == 0, down.stdout + down.stderr
