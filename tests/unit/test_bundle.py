"""Golden files: the full render of each seed example, byte for byte.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 make unit`` and review the diff.
"""
import os

import pytest

from helpers import SEEDS, example

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import render_files

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


@pytest.mark.parametrize("name", SEEDS)
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
