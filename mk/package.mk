# The collection artifact (docs/development.md, "Releasing").
#
#   make package          build build/dist/servicemesh-egress-<version>.tar.gz (galaxy.yml
#                         build_ignore decides what ships)
#   make package-test     build it, check its members, install it offline into a fresh venv and
#                         collections directory (venv under build/package-test/), and run the demo
#                         against the installed copy from outside the repository: its files must
#                         equal the working tree's (scripts/package-test)
#   make demo-installed [OUT=DIR]   `make demo` against the installed artifact (FQCN playbook
#                         servicemesh.egress.render, fresh environment), output in OUT (./out)

PACKAGE_DIST := build/dist
PACKAGE_VERSION = $(shell sed -n 's/^version: *//p' galaxy.yml)
PACKAGE_ARTIFACT = $(PACKAGE_DIST)/servicemesh-egress-$(PACKAGE_VERSION).tar.gz
PACKAGE_TEST_DIR := $(CURDIR)/build/package-test

.PHONY: package package-test demo-installed

package: collection ## build the collection artifact into build/dist
	rm -f $(PACKAGE_DIST)/servicemesh-egress-*.tar.gz
	$(BIN)/ansible-galaxy collection build --force --output-path $(PACKAGE_DIST)

package-test: package ## install the artifact offline, run the demo from it
	PACKAGE_TEST_DIR=$(PACKAGE_TEST_DIR) VENV=$(VENV) PYTHON=$(BIN)/python BASE_PYTHON=$(PYTHON) \
	  scripts/package-test $(PACKAGE_ARTIFACT)

demo-installed: package ## make demo against the installed artifact [OUT=DIR]
	PACKAGE_TEST_DIR=$(PACKAGE_TEST_DIR) VENV=$(VENV) PYTHON=$(BIN)/python BASE_PYTHON=$(PYTHON) \
	  scripts/package-test --demo $(PACKAGE_ARTIFACT) $(abspath $(OUT))
