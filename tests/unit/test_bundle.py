"""Golden files: the full render of each seed example, byte for byte.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 make unit`` and review the diff.
"""
import os

import pytest

from helpers import SEEDS, example

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import (
    render_files,
    render_to,
    write_files,
)

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


# partner-tls: every extension of the last hop (tls, trafficPolicy, wildcard hosts)
@pytest.mark.parametrize("name", SEEDS + ("partner-tls",))
@pytest.mark.parametrize("file_name", ["policy.yaml", "resources.yaml", "routes.json",
                                       "routes.txt"])
def test_golden(name, file_name):
    files = render_files(example(name))[1]
    # ".golden" keeps linters from reading the copies as the project's own YAML and JSON.
    path = os.path.join(GOLDEN, name, file_name + ".golden")
    if os.environ.get("UPDATE_GOLDEN"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(files[file_name])
    with open(path, encoding="utf-8") as handle:
        assert files[file_name] == handle.read()


def test_write_files_writes_what_changed_and_nothing_in_check_mode(tmp_path):
    dest = tmp_path / "out"
    assert write_files({"a.txt": "1\n", "b.txt": "2\n"}, str(dest), check_mode=True) == [
        "a.txt", "b.txt"]
    assert not dest.exists()
    assert write_files({"a.txt": "1\n", "b.txt": "2\n"}, str(dest)) == ["a.txt", "b.txt"]
    assert write_files({"a.txt": "1\n", "b.txt": "3\n"}, str(dest)) == ["b.txt"]
    assert (dest / "b.txt").read_text() == "3\n"


def test_render_to_reports_the_render_and_writes_its_files(tmp_path):
    result = render_to(example("seed-1-http"), "ambient", str(tmp_path))
    assert result["changed"] and result["mode"] == "ambient"
    assert result["policy"] == "egress-by-egressgateway-a" and result["objects"] == 3
    assert sorted(os.listdir(tmp_path)) == result["files"] == sorted(result["written"])
    assert render_to(example("seed-1-http"), "ambient", str(tmp_path))["changed"] is False
    assert "dest" not in render_to(example("seed-1-http"))
