"""Golden files: the full render of each seed example, byte for byte.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 make unit`` and review the diff
(exactly ``1``; refused when ``CI`` is set).
"""
import os

import pytest

from helpers import SEEDS, check_golden, example, update_golden

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
    check_golden(os.path.join(GOLDEN, name, file_name + ".golden"), files[file_name])


@pytest.mark.parametrize("value,ci,rewrites", [
    (None, None, False), ("", None, False), ("0", None, False), ("1", None, True),
    ("0", "true", False), (None, "true", False),
])
def test_only_update_golden_1_rewrites(monkeypatch, value, ci, rewrites):
    for name, setting in (("UPDATE_GOLDEN", value), ("CI", ci)):
        if setting is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, setting)
    assert update_golden() is rewrites


@pytest.mark.parametrize("value,ci,refusal", [
    ("1", "true", "refused when CI is set"),
    ("yes", None, "set UPDATE_GOLDEN=1 to rewrite"),
    ("true", None, "set UPDATE_GOLDEN=1 to rewrite"),
])
def test_update_golden_refused_under_ci_or_with_another_value(
        monkeypatch, tmp_path, value, ci, refusal):
    monkeypatch.setenv("UPDATE_GOLDEN", value)
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    golden = tmp_path / "x.golden"
    golden.write_text("kept\n")
    with pytest.raises(AssertionError, match=refusal):
        check_golden(str(golden), "new\n")
    assert golden.read_text() == "kept\n"


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
