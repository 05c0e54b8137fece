"""The layout rules of the code: tests mirror the core, modes implement the whole interface,
files keep to one job and a readable size."""
import ast
import glob
import os

import pytest

from helpers import ROOT

PLUGINS = os.path.join(ROOT, "plugins")
MODULE_UTILS = os.path.join(PLUGINS, "module_utils")
UNIT = os.path.join(ROOT, "tests", "unit")
MAX_LINES = 600


def mirrored_test(path):
    """The unit test file of a plugin file: ``module_utils/policy/read.py`` ->
    ``test_policy_read.py``, ``module_utils/kube/apply.py`` -> ``test_kube_apply.py``; a mode's
    package (``modes/sidecar/*.py``) -> ``test_modes_sidecar.py``; ``filter/egress.py`` ->
    ``test_filter_egress.py``."""
    rel = os.path.relpath(path, PLUGINS)
    parts = rel[:-len(".py")].split(os.sep)
    if parts[0] == "module_utils":
        parts = parts[1:]
    if parts[0] == "modes" and len(parts) == 3:
        parts = parts[:2]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return os.path.join(UNIT, "test_%s.py" % "_".join(parts))


def public_names(path):
    """Functions and classes a module defines without a leading underscore."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]


CODE = sorted(p for p in glob.glob(os.path.join(MODULE_UTILS, "**", "*.py"), recursive=True)
              if public_names(p)) + [os.path.join(PLUGINS, "filter", "egress.py")]


@pytest.mark.parametrize("path", CODE, ids=[os.path.relpath(p, PLUGINS) for p in CODE])
def test_every_public_function_has_a_test_in_the_mirrored_file(path):
    test_file = mirrored_test(path)
    assert os.path.exists(test_file), "%s has no test file %s" % (path, test_file)
    text = open(test_file, encoding="utf-8").read()
    missing = [name for name in public_names(path) if name not in text]
    assert not missing, "%s: not named in %s: %s" % (
        os.path.relpath(path, ROOT), os.path.basename(test_file), missing)


@pytest.mark.parametrize("path", CODE, ids=[os.path.relpath(p, PLUGINS) for p in CODE])
def test_files_of_the_core_stay_readable(path):
    with open(path, encoding="utf-8") as handle:
        lines = sum(1 for dummy in handle)
    assert lines <= MAX_LINES, "%s has %d lines (at most %d)" % (path, lines, MAX_LINES)


def test_every_test_file_mirrors_a_plugin_file():
    plugin_files = glob.glob(os.path.join(PLUGINS, "**", "*.py"), recursive=True)
    mirrored = set(mirrored_test(p) for p in plugin_files)
    topical = {"test_layout.py", "test_docs.py", "test_expand_properties.py"}
    strays = [os.path.basename(p) for p in glob.glob(os.path.join(UNIT, "test_*.py"))
              if p not in mirrored and os.path.basename(p) not in topical]
    assert not strays, "unit test files that mirror no plugin file: %s" % strays


def test_no_merge_conflict_markers_in_tracked_files():
    import subprocess
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    marked = []
    for name in filter(None, files):
        path = os.path.join(ROOT, name)
        if not os.path.isfile(path) or os.path.getsize(path) > 2000000:
            continue
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.startswith((b"<<<<<<< ", b">>>>>>> ")):
                    marked.append("%s:%d" % (name, number))
    assert marked == []


def _multi_document_ignores(path):
    """The files an ignore file lets be several YAML documents (each version names the rule its
    own way)."""
    rules = ("yamllint:multiple-yaml-documents", "yamllint:unparsable-with-libyaml")
    with open(path, encoding="utf-8") as handle:
        return set(line.split()[0] for line in handle if any(r in line for r in rules))


def test_every_ansible_test_version_lets_the_same_files_hold_several_documents():
    """A multi-document fixture added to one tests/sanity/ignore-*.txt and not the others fails
    only in the ansible-core matrix (make test-matrix-edges runs 2.16): say so here first."""
    ignores = sorted(glob.glob(os.path.join(ROOT, "tests", "sanity", "ignore-*.txt")))
    assert len(ignores) >= 2
    found = dict((os.path.basename(p), _multi_document_ignores(p)) for p in ignores)
    newest = found[os.path.basename(ignores[-1])]
    assert newest
    assert dict((name, files ^ newest) for name, files in found.items()) == \
        dict((name, set()) for name in found)
