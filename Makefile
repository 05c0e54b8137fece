# servicemesh.egress: developer and CI entry points. `make help` lists every public target.
#
#   make demo    set up and render the default example policy (no cluster needed)
#   make test    set up and run every suite CI runs (listed below, in TEST_SUITES)
#   make check   the fast edit-test loop: unit, lint, sanity, docs-check (no Go builds)
#   source <(make -s env)   put the project's tools on PATH, with this working tree as the collection

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= $(CURDIR)/.venv
BIN := $(VENV)/bin
# The collection tree Ansible searches: ansible_collections/servicemesh/egress points at this
# working tree, so edits are live (no stale installed copy).
COLLECTIONS := $(CURDIR)/build/collections
COLL_LINK := $(COLLECTIONS)/ansible_collections/servicemesh/egress

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PYTHONPATH := $(COLLECTIONS)$(if $(PYTHONPATH),:$(PYTHONPATH))
export ANSIBLE_NOCOLOR := 1
export ANSIBLE_FORCE_COLOR := 0
export ANSIBLE_LOCALHOST_WARNING := 0
export ANSIBLE_INVENTORY_UNPARSED_WARNING := 0
# Ansible's temporary files stay inside this working tree, apart from any other Ansible run on
# the machine.
export ANSIBLE_LOCAL_TEMP := $(CURDIR)/build/ansible-tmp/local
export ANSIBLE_REMOTE_TEMP := $(CURDIR)/build/ansible-tmp/remote
export PATH := $(BIN):$(PATH)

POLICY ?= playbooks/examples/seed-2-https-upgrade.yaml
OUT ?= out
MODE ?= sidecar
PYTEST := $(BIN)/python -m pytest

# ---------------------------------------------------------------- what `make test` runs
# Every suite CI runs, in this order; each is a target below or in mk/*.mk.
TEST_SUITES :=
TEST_SUITES += unit            # the pure core and the kube layer (fake API server), no cluster
TEST_SUITES += playbook-test   # ansible-playbook runs without a cluster (render playbook, bad input)
TEST_SUITES += lint            # ansible-lint, production profile
TEST_SUITES += sanity          # ansible-test sanity from an ansible_collections/ tree
TEST_SUITES += test-matrix-edges # oldest ansible-core (2.16): sanity, units, smoke; newest: smoke
TEST_SUITES += docs-check      # docs/reference/ current, plugin and role docs lint, changelog lint,
                               # the docsite built and every page opened in headless Chromium
TEST_SUITES += diagram-check   # Mermaid's own parser reads every route diagram
TEST_SUITES += ee-check        # the AWX execution environment's build context
TEST_SUITES += integration     # modules, role and CRD against a real kube-apiserver (Go build)
TEST_SUITES += meshcheck-test  # Istio's own generator and analyzers on the renders (Go build)
TEST_SUITES += alerts-test     # promtool check and test rules on the role's alerts (Go build)
TEST_SUITES += molecule-syntax # every molecule scenario's playbooks parse
TEST_SUITES += molecule        # molecule default scenario on the real control plane
TEST_SUITES += molecule-ambient # the same in ambient mode
TEST_SUITES += package-test    # the built artifact installs offline and renders like the tree

# `make check`: the edit-test loop (no Go builds, no control plane).
CHECK_SUITES := unit playbook-test lint sanity docs-check

.PHONY: help test check
help: ## this list
	@echo "servicemesh.egress: make TARGET"
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort \
	  | awk -F ':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'
	@echo "make test runs, in order: $(strip $(TEST_SUITES))"

test: $(TEST_SUITES) ## every suite CI runs (TEST_SUITES above)
	@echo "make test: all suites passed ($(strip $(TEST_SUITES)))"

check: $(CHECK_SUITES) ## fast loop: unit, playbook-test, lint, sanity, docs-check
	@echo "make check: passed ($(CHECK_SUITES))"

# ---------------------------------------------------------------- environment

$(BIN)/.stamp: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(COLL_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

.PHONY: venv collection env lock clean
venv: $(BIN)/.stamp ## the project's virtualenv (.venv) from the pinned requirements
collection: venv $(COLL_LINK) ## venv + this working tree as ansible_collections/servicemesh/egress

env: collection ## shell exports: source <(make -s env)
	@echo 'export PATH="$(BIN):$$PATH"'
	@echo 'export ANSIBLE_COLLECTIONS_PATH="$(COLLECTIONS)"'
	@echo 'export PYTHONPATH="$(COLLECTIONS)$${PYTHONPATH:+:$$PYTHONPATH}"'

lock: ## regenerate constraints.txt from a fresh resolution of the requirements
	rm -rf build/lockvenv && $(PYTHON) -m venv build/lockvenv
	build/lockvenv/bin/pip install --quiet -r requirements-dev.txt
	{ echo "# Every transitive dependency pinned, so a fresh machine installs exactly this set."; \
	  echo "# Regenerate with: make lock"; build/lockvenv/bin/pip freeze; } > constraints.txt

clean: ## remove build/, out/ and test caches
	rm -rf build out .pytest_cache

# ---------------------------------------------------------------- the main job

.PHONY: demo render import
demo: collection ## render the default example policy into ./out
	ansible-playbook playbooks/render.yml

render: collection ## render POLICY=FILE into OUT=DIR [MODE=sidecar|ambient]
	ansible-playbook playbooks/render.yml -e egress_policy_file=$(abspath $(POLICY)) \
	  -e egress_output_dir=$(abspath $(OUT)) -e egress_mode=$(MODE)

# MODE defaults to sidecar for render; an import decides from what it finds unless told.
IMPORT_MODE = $(if $(filter command line environment,$(origin MODE)),$(MODE),auto)
import: collection ## import hand-written Istio objects: SRC=FILE OUT=DIR GATEWAY=NAME [SOURCES=ns1,ns2] [MODE=]
	@test -n "$(SRC)" || { echo "make import: SRC=FILE is required (the hand-written Istio objects)" >&2; exit 2; }
	@test -n "$(GATEWAY)" || { echo "make import: GATEWAY=NAME is required (the egress gateway of the new policy)" >&2; exit 2; }
	ansible-playbook playbooks/import.yml -e egress_import_file=$(abspath $(SRC)) \
	  -e egress_output_dir=$(abspath $(OUT)) -e egress_gateway=$(GATEWAY) \
	  -e egress_import_sources=$(SOURCES) -e egress_mode=$(IMPORT_MODE)

# ---------------------------------------------------------------- tests without a cluster

.PHONY: unit playbook-test test-slow
unit: collection ## unit tests: the pure core, the kube layer against a fake API server
	$(PYTEST) tests/unit

playbook-test: collection ## ansible-playbook runs that need no cluster (tests/playbooks)
	$(PYTEST) tests/playbooks

test-slow: collection ## the property tests with 10,000 examples each (not in make test)
	HYPOTHESIS_PROFILE=slow $(PYTEST) tests/unit/test_expand_properties.py

include mk/*.mk
