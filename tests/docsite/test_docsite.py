# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The built docsite (make docsite, build/docsite/html) in a real browser: every page opens in
headless Chromium without a broken internal link, a missing image or a console error, the route
diagrams are drawn, and the user guide's screenshot is saved
(build/docsite/screenshots/user-guide.png). ``make docsite-test`` builds the site and runs this.

The checker is shown to catch each kind of problem on a small broken site first, so a clean
walk of the docsite means something.
"""

from __future__ import annotations

import glob
import os
import struct
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from browser import walk  # noqa: E402

SITE = os.environ.get("DOCSITE_HTML") or os.path.join(REPO, "build", "docsite", "html")
SCREENSHOT = os.path.join(os.path.dirname(SITE), "screenshots", "user-guide.png")
USER_GUIDE = "docs/user-guide.html"


@pytest.fixture(scope="module")
def docsite():
    if not os.path.exists(os.path.join(SITE, "index.html")):
        pytest.fail("no docsite in %s: run make docsite-test (it builds it)" % SITE,
                    pytrace=False)
    return walk(SITE, screenshots={USER_GUIDE: SCREENSHOT})


def test_the_checker_finds_each_kind_of_problem(tmp_path):
    (tmp_path / "index.html").write_text(
        "<html><head><title>t</title></head><body>"
        "<a href='other.html'>ok</a> <a href='other.html#there'>ok anchor</a>"
        "<a href='missing.html'>gone</a> <a href='other.html#nowhere'>bad anchor</a>"
        "<a href='https://example.invalid/'>elsewhere, not checked</a>"
        "<img src='missing.png'>"
        "<script>undefinedFunction();</script>"
        "</body></html>")
    (tmp_path / "other.html").write_text(
        "<html><head><title>o</title></head><body><h1 id='there'>x</h1>"
        "<pre class='mermaid'>not drawn</pre></body></html>")
    results, problems = walk(str(tmp_path))
    text = "\n".join(problems)
    assert "index.html: broken link: /missing.html" in problems
    assert "index.html: broken anchor: /other.html#nowhere" in problems
    assert "index.html: image does not load: " in text
    assert "index.html: console error: " in text and "undefinedFunction" in text
    assert "other.html: Mermaid diagram 1 was not drawn" in problems
    assert not [p for p in problems if "example.invalid" in p or "#there" in p]
    assert set(results) == {"index.html", "other.html"}


def test_every_page_opens_without_a_problem(docsite):
    results, problems = docsite
    assert problems == [], "\n".join(problems)
    assert len(results) >= 40


def expected_pages():
    """Pages the site must have: the overview, every docs page, every plugin and role of the
    reference (docs/reference/*.rst names them), a route page per example and mode."""
    pages = ["index.html", "README.html"]
    pages += ["docs/%s.html" % os.path.basename(p)[:-3]
              for p in glob.glob(os.path.join(REPO, "docs", "*.md"))]
    pages += ["collections/servicemesh/egress/%s.html" % os.path.basename(p)[:-4]
              for p in glob.glob(os.path.join(REPO, "docs", "reference", "*_*.rst"))]
    pages += ["routes/%s-%s.html" % (os.path.basename(p)[:-5], mode)
              for p in glob.glob(os.path.join(REPO, "playbooks", "examples", "*.yaml"))
              for mode in _modes_of(p)]
    return sorted(pages)


def _modes_of(path):
    """The modes an example renders in (one may use a feature of one mode only, e.g. a wildcard
    with dynamicDns in ambient mode)."""
    from ansible_collections.servicemesh.egress.plugins.module_utils.expand import modes_of
    from ansible_collections.servicemesh.egress.plugins.module_utils.policy.source import (
        load_yaml,
    )

    with open(path, encoding="utf-8") as handle:
        modes = modes_of(load_yaml(handle.read(), path))
    assert modes, path
    return modes


def test_the_site_has_the_guides_the_reference_and_the_route_diagrams(docsite):
    results, dummy = docsite
    missing = [p for p in expected_pages() if p not in results]
    assert missing == []
    assert results["collections/servicemesh/egress/egress_policy_module.html"]["title"] \
        .startswith("servicemesh.egress.egress_policy module")


def test_route_diagrams_are_drawn(docsite):
    results, dummy = docsite
    routes = {p: f for p, f in results.items() if p.startswith("routes/")}
    assert routes
    for page, facts in list(routes.items()) + [("docs/diagrams.html",
                                                results["docs/diagrams.html"])]:
        assert facts["diagrams"], "%s has no diagram" % page
        assert all(d["drawn"] and not d["error"] for d in facts["diagrams"]), page
    sidecar = results["routes/seed-2-https-upgrade-sidecar.html"]["diagrams"][0]["text"]
    assert "egress gateway egressgateway-a" in sidecar and "www.httpbin.org" in sidecar


def test_the_user_guide_screenshot_is_saved(docsite):
    with open(SCREENSHOT, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width >= 1000 and height >= 800
