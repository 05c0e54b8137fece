# Route diagrams (docs/diagrams.md): Mermaid's own parser reads every diagram the render writes.
#
#   make diagram-check   render the diagrams of every playbooks/examples/*.yaml (sidecar and
#                        ambient) and of hostile names, then parse them with Mermaid in Node.js
#                        and check every label reads back as written (tests/diagram/check.mjs)
#
# Needs Node.js 20+ and npm. The pinned packages (tests/diagram/package-lock.json) are installed
# with `npm ci` into tests/diagram/node_modules (ignored by git and by the collection build);
# npm's cache serves later installs offline.

DIAGRAM_SRC := tests/diagram
DIAGRAM_OUT := build/diagram

$(DIAGRAM_SRC)/node_modules/.stamp: $(DIAGRAM_SRC)/package.json $(DIAGRAM_SRC)/package-lock.json
	cd $(DIAGRAM_SRC) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: diagram-check
diagram-check: collection $(DIAGRAM_SRC)/node_modules/.stamp ## Mermaid parses every route diagram
	rm -rf $(DIAGRAM_OUT)
	$(BIN)/python $(DIAGRAM_SRC)/render_diagrams.py $(DIAGRAM_OUT)
	node $(DIAGRAM_SRC)/check.mjs $(DIAGRAM_SRC) $(DIAGRAM_OUT)

# About 10 s with a fresh `npm ci` (offline from npm's cache after the first install), 3 s after.
