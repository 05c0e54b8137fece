# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Walk a built docsite in headless Chromium (Debian's chromium and chromedriver, through
Selenium) and report what a reader would hit: broken internal links (a page, a file or an
anchor that is not there), images that do not load, console errors (JavaScript errors, failed
requests), Mermaid diagrams that were not drawn.

The site is served over HTTP from its directory on 127.0.0.1 (as a web server would serve it;
ES modules do not load from file:// URLs).
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import shutil
import threading
import time
import urllib.parse

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
                or "/usr/bin/chromedriver")
MERMAID_TIMEOUT = 30


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map,
                          **{".mjs": "text/javascript", ".js": "text/javascript"})

    def log_message(self, *args):
        pass


class Site:
    """``root`` served on 127.0.0.1 (a context manager); ``url(path)``."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Handler, directory=self.root))
        self.base = "http://127.0.0.1:%d/" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path):
        return urllib.parse.urljoin(self.base, path.replace(os.sep, "/"))

    def pages(self):
        """Every HTML page, relative to the root, sorted."""
        found = []
        for directory, dummy, files in os.walk(self.root):
            for name in files:
                if name.endswith(".html"):
                    found.append(os.path.relpath(os.path.join(directory, name), self.root))
        return sorted(found)

    def file_of(self, url):
        """The file a same-site URL serves, or None."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        full = os.path.join(self.root, path.lstrip("/"))
        if os.path.isdir(full):
            full = os.path.join(full, "index.html")
        return full if os.path.isfile(full) else None


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.ids.add(value)


@functools.lru_cache(maxsize=None)
def anchors(path):
    """The ids (and ``<a name>``s) of an HTML file."""
    parser = _Ids()
    with open(path, encoding="utf-8", errors="replace") as handle:
        parser.feed(handle.read())
    return frozenset(parser.ids)


def browser(width=1280, height=1000):
    """Headless Chromium through its chromedriver, console messages recorded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=%d,%d" % (width, height), "--hide-scrollbars",
                     "--no-first-run", "--disable-extensions", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


_PAGE_FACTS = """
const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
const images = Array.from(document.images).map(i => ({src: i.currentSrc || i.src,
  ok: i.complete && i.naturalWidth > 0}));
const diagrams = Array.from(document.querySelectorAll('.mermaid')).map(d => ({
  drawn: d.querySelector('svg') !== null,
  error: d.textContent.includes('Syntax error') || d.querySelector('.error-icon') !== null,
  text: d.textContent}));
return {links, images, diagrams, title: document.title, height: document.body.scrollHeight};
"""

_DRAWN = """
const blocks = Array.from(document.querySelectorAll('.mermaid'));
return blocks.every(d => d.querySelector('svg') !== null || d.textContent.includes('Syntax error'));
"""


def visit(driver, site, page):
    """Open ``page``; ``(facts, problems)``: the page's links, images, diagrams and title, and
    every problem found, each ``"<page>: <what>"``."""
    driver.get_log("browser")  # drop messages of the page before
    driver.get(site.url(page))
    deadline = time.time() + MERMAID_TIMEOUT
    while driver.execute_script("return document.readyState") != "complete" \
            or not driver.execute_script(_DRAWN):
        if time.time() > deadline:
            break
        time.sleep(0.1)
    facts = driver.execute_script(_PAGE_FACTS)
    problems = []
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            problems.append("console error: %s" % entry.get("message"))
    for image in facts["images"]:
        if not image["ok"]:
            problems.append("image does not load: %s" % image["src"])
    for index, diagram in enumerate(facts["diagrams"]):
        if diagram["error"]:
            problems.append("Mermaid diagram %d has a syntax error" % (index + 1))
        elif not diagram["drawn"]:
            problems.append("Mermaid diagram %d was not drawn" % (index + 1))
    for link in sorted(set(facts["links"])):
        if not link.startswith(site.base):
            continue  # another site: not ours to check
        target = site.file_of(link)
        if target is None:
            problems.append("broken link: %s" % link[len(site.base) - 1:])
            continue
        fragment = urllib.parse.unquote(urllib.parse.urlsplit(link).fragment)
        if fragment and target.endswith(".html") and fragment not in anchors(target):
            problems.append("broken anchor: %s" % link[len(site.base) - 1:])
    return facts, ["%s: %s" % (page, p) for p in problems]


def walk(root, pages=None, screenshots=None):
    """Open every page of the site at ``root`` (or ``pages``): ``(facts by page, problems)``.
    ``screenshots``: ``{page: png path}`` saved as full-page screenshots."""
    screenshots = screenshots or {}
    results, problems = {}, []
    driver = browser()
    try:
        with Site(root) as site:
            for page in pages or site.pages():
                facts, found = visit(driver, site, page)
                results[page] = facts
                problems.extend(found)
                if page in screenshots:
                    height = min(max(facts["height"], 800), 6000)
                    driver.set_window_size(1280, height)
                    os.makedirs(os.path.dirname(screenshots[page]), exist_ok=True)
                    driver.save_screenshot(screenshots[page])
                    driver.set_window_size(1280, 1000)
    finally:
        driver.quit()
    return results, problems
