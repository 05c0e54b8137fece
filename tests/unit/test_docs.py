"""The user documentation, executed, so it cannot drift from the code.

* docs/user-guide.md: every fenced block after ``<!-- routes: FILE MODE -->``,
  ``<!-- objects: FILE MODE -->`` or ``<!-- warnings: FILE MODE -->`` is what the code renders
  now for ``playbooks/examples/FILE`` in that mode.
* docs/troubleshooting.md: every ``### `message` `` heading is a message the code produces.
  Placeholders ``<...>`` stand for any text, and ``…`` for the rest of a long message. An entry
  with ``<!-- example -->`` (or ``<!-- example: ambient -->``) followed by a YAML block is run
  through the policy model, and the message must be among its errors or warnings. An entry
  without an example must be a cluster-side or role message: its text must be in the code outside
  the pure core (the core's messages all need an example).
* docs/*.md and README.md: every relative link points to an existing file.
"""
import ast
import glob
import os
import re

import pytest
import yaml

from helpers import EXAMPLES, ROOT

from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import load_yaml
from ansible_collections.servicemesh.egress.plugins.module_utils.errors import PolicyError
from ansible_collections.servicemesh.egress.plugins.module_utils.expand import render

DOCS = os.path.join(ROOT, "docs")
USER_GUIDE = os.path.join(DOCS, "user-guide.md")
TROUBLESHOOTING = os.path.join(DOCS, "troubleshooting.md")
SEED_FILES = ("seed-1-http.yaml", "seed-2-https-upgrade.yaml", "seed-3-auto-ports.yaml")
MODES = ("sidecar", "ambient")

# The pure core: its messages are exercised by examples, not found by text.
# The plugins' code whose messages come from module parameters, files or the cluster, never from
# a policy's content: the kube layer, the modules' glue and the policy's sources.
NOT_CORE = ("egress_apply.py", "egress_info.py", "egress_resource.py", "runner.py", "source.py",
            "credentials.py")

_FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def blocks_after(text, marker):
    """``[(arguments, block text)]``: each fenced block right after ``<!-- marker... -->``."""
    found = []
    pattern = re.compile(r"<!--\s*%s(?::\s*([^>]*?))?\s*-->\s*\n\s*```[a-z]*\n(.*?)```" % marker,
                         re.S)
    for match in pattern.finditer(text):
        found.append(((match.group(1) or "").split(), match.group(2)))
    return found


def rendered(file_name, mode):
    with open(os.path.join(EXAMPLES, file_name), encoding="utf-8") as handle:
        return render(yaml.safe_load(handle), mode)


# ---------------------------------------------------------------------------- the user guide


GUIDE_KINDS = ("routes", "objects", "warnings")


def guide_blocks(kind):
    return blocks_after(read(USER_GUIDE), kind)


def actual_lines(kind, result):
    if kind == "routes":
        return result["route_lines"]
    if kind == "warnings":
        return result["warnings"]
    return ["%s %s %s/%s" % (o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""),
                             o["metadata"]["name"]) for o in result["objects"]]


@pytest.mark.parametrize("kind", GUIDE_KINDS)
def test_user_guide_covers_every_seed_in_both_modes(kind):
    documented = set(tuple(args) for args, dummy in guide_blocks(kind))
    missing = set((f, m) for f in SEED_FILES for m in MODES) - documented
    assert not missing


@pytest.mark.parametrize("kind", GUIDE_KINDS)
def test_user_guide_blocks_are_what_the_code_renders(kind):
    for (file_name, mode), block in guide_blocks(kind):
        result = rendered(file_name, mode)
        lines = [line for line in block.splitlines() if line.strip()]
        if kind == "objects":
            lines = [" ".join(line.split()) for line in lines]
        assert lines == actual_lines(kind, result), \
            "%s of %s in %s mode" % (kind, file_name, mode)


# ---------------------------------------------------------------------------- troubleshooting


def message_pattern(heading):
    """The heading's message as a regular expression: ``<...>`` any text, ``…`` the rest."""
    parts = re.split(r"(<[^<>]+>|…)", heading)
    out = []
    for part in parts:
        if part == "…":
            out.append(".*")
        elif part.startswith("<") and part.endswith(">") and len(part) > 2:
            out.append(".*?")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + r"\Z", re.S)


def fragments(heading):
    """The literal parts of a heading, trimmed of punctuation at their ends."""
    parts = re.split(r"<[^<>]+>|…", heading)
    trimmed = [p.strip(" :;,.()'\"") for p in parts]
    return [p for p in trimmed if len(p) >= 3]


def entries():
    """``[(message, [(mode, example text)])]`` for each ``### `message` `` of troubleshooting.md."""
    text = read(TROUBLESHOOTING)
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    result = []
    for section in sections:
        heading, dummy, body = section.partition("\n")
        match = re.match(r"^`(.+)`\s*$", heading)
        assert match, "a troubleshooting heading is not a message in backticks: %r" % heading
        body = re.split(r"^## ", body, flags=re.M)[0]
        examples = [((args[0] if args else "sidecar"), block)
                    for args, block in blocks_after(body, "example")]
        result.append((match.group(1), examples))
    return result


def outcome(text, mode):
    """Every error and warning a policy text produces (the way the module reads ``src``)."""
    try:
        result = render(load_yaml(text, "src (policy.yaml)"), mode)
    except PolicyError as exc:
        return exc.errors + exc.warnings
    return result["warnings"]


def _python_strings(path):
    tree = ast.parse(read(path))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def source_texts(core):
    """String constants of the plugins (core or not), and the roles' task files (not core)."""
    texts = []
    plugins = os.path.join(ROOT, "plugins")
    for path in sorted(glob.glob(os.path.join(plugins, "**", "*.py"), recursive=True)):
        in_core = ("module_utils" in path and os.sep + "kube" + os.sep not in path
                   and os.path.basename(path) not in NOT_CORE)
        if in_core == core:
            texts.extend(_python_strings(path))
    if not core:
        for path in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "*.yml"))):
            texts.append(" ".join(read(path).split()))
    return [" ".join(t.split()) for t in texts]


ENTRIES = entries()


def test_troubleshooting_has_the_likely_messages():
    assert len(ENTRIES) >= 25
    assert len(set(m for m, dummy in ENTRIES)) == len(ENTRIES), "a message is listed twice"


@pytest.mark.parametrize("message,examples", [e for e in ENTRIES if e[1]],
                         ids=[e[0][:60] for e in ENTRIES if e[1]])
def test_troubleshooting_example_produces_its_message(message, examples):
    pattern = message_pattern(message)
    for mode, text in examples:
        assert mode in MODES
        got = outcome(text, mode)
        assert any(pattern.search(m) for m in got), (
            "the example does not produce %r; it produces:\n%s" % (message, "\n".join(got)))


@pytest.mark.parametrize("message", [m for m, e in ENTRIES if not e],
                         ids=[m[:60] for m, e in ENTRIES if not e])
def test_troubleshooting_message_without_example_is_in_the_code(message):
    outside = source_texts(core=False)
    missing = [f for f in fragments(message) if not any(f in t for t in outside)]
    assert not missing, "not found in the plugins (outside the core) or roles: %r" % missing


def test_every_core_message_has_an_example():
    """A message of the pure core can always be produced by a policy: show one."""
    core = source_texts(core=True)
    outside = source_texts(core=False)
    for message, examples in ENTRIES:
        if examples:
            continue
        parts = fragments(message)
        in_core = all(any(f in t for t in core) for f in parts)
        in_outside = all(any(f in t for t in outside) for f in parts)
        assert in_outside or not in_core, "%r comes from the core: add an example" % message


# ---------------------------------------------------------------------------- links


def doc_files():
    return sorted(glob.glob(os.path.join(DOCS, "*.md"))) + [os.path.join(ROOT, "README.md")]


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(path):
    text = _FENCE.sub("", read(path))
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor on the same page
        yield target.split("#")[0]


# Pages the README lists that are being written in parallel: a missing one is skipped, not
# failed, until it lands (then it is checked like every other link). Empty this set once they exist.
PENDING = {"docs/diagrams.md", "docs/awx.md", "docs/reference/", "docs/reliability.md"}


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_point_to_existing_files(path):
    base = os.path.dirname(path)
    missing = [t for t in relative_links(path) if not os.path.exists(os.path.join(base, t))]
    pending = [t for t in missing
               if os.path.relpath(os.path.join(base, t), ROOT) + ("/" if t.endswith("/") else "")
               in PENDING]
    assert not set(missing) - set(pending), "%s links to missing files: %s" % (
        os.path.relpath(path, ROOT), sorted(set(missing) - set(pending)))
    if pending:
        pytest.skip("pages not written yet: %s" % ", ".join(pending))


# ---------------------------------------------------------------------------- migration


def test_migration_policy_renders_its_route_table():
    text = read(os.path.join(DOCS, "migration.md"))
    policies = blocks_after(text, "policy")
    routes = blocks_after(text, "policy-routes")
    assert len(policies) == 1 and len(routes) == 1
    (mode,), block = routes[0]
    result = render(load_yaml(policies[0][1]), mode)
    assert result["warnings"] == []
    assert [line for line in block.splitlines() if line.strip()] == result["route_lines"]
