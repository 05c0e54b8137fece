# The collection docsite (docs/development.md, "The docsite"): antsibull-docs sphinx-init +
# Sphinx, as collections publish theirs, with the user guide and docs pages (Markdown, MyST), the
# examples' route diagrams (Mermaid, drawn in the browser by the pinned mermaid of tests/diagram)
# and the module, filter and role reference.
#
#   make docsite        build build/docsite/html (scripts/docsite; -W: any warning fails)
#   make browser        Debian's chromium and chromium-driver, installed with apt-get when missing
#                       (scripts/setup-browser; root or sudo)
#   make docsite-test   build it, then open every page in headless Chromium: no broken internal
#                       link, missing image or console error, every diagram drawn; saves
#                       build/docsite/screenshots/user-guide.png (tests/docsite). Part of
#                       make docs-check.

DOCSITE := $(CURDIR)/build/docsite

.PHONY: docsite browser docsite-test
docsite: collection $(DIAGRAM_SRC)/node_modules/.stamp ## build the docsite into build/docsite/html
	$(BIN)/python scripts/docsite $(DOCSITE)

browser: ## install Debian's chromium and chromium-driver when missing (apt-get)
	@scripts/setup-browser

docsite-test: docsite browser ## every docsite page in headless Chromium; screenshot of the user guide
	DOCSITE_HTML=$(DOCSITE)/html $(PYTEST) tests/docsite
