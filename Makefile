# servicemesh.egress: developer and CI entry points.
#
#   make demo    set up and render the default example policy (no cluster needed)
#   make test    set up and run every test CI runs
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

.PHONY: help
help:
	@echo "make demo     render the default example policy into ./out"
	@echo "make test     everything CI runs (unit, sanity, integration, molecule, mesh checks)"
	@echo "make unit     fast unit tests only"
	@echo "make render POLICY=FILE OUT=DIR [MODE=sidecar|ambient]"
	@echo "source <(make -s env)   project tools on PATH"

# ---------------------------------------------------------------- environment

$(BIN)/.stamp: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(COLL_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

.PHONY: venv collection env
venv: $(BIN)/.stamp
collection: venv $(COLL_LINK)

env: collection
	@echo 'export PATH="$(BIN):$$PATH"'
	@echo 'export ANSIBLE_COLLECTIONS_PATH="$(COLLECTIONS)"'
	@echo 'export PYTHONPATH="$(COLLECTIONS)$${PYTHONPATH:+:$$PYTHONPATH}"'

# Regenerate constraints.txt from a fresh resolution of the requirements files.
.PHONY: lock
lock:
	rm -rf build/lockvenv && $(PYTHON) -m venv build/lockvenv
	build/lockvenv/bin/pip install --quiet -r requirements-dev.txt
	{ echo "# Every transitive dependency pinned, so a fresh machine installs exactly this set."; \
	  echo "# Regenerate with: make lock"; build/lockvenv/bin/pip freeze; } > constraints.txt

# ---------------------------------------------------------------- the main job

.PHONY: demo render
demo: collection
	ansible-playbook playbooks/render.yml

render: collection
	ansible-playbook playbooks/render.yml -e egress_policy_file=$(abspath $(POLICY)) \
	  -e egress_output_dir=$(abspath $(OUT)) -e egress_mode=$(MODE)

# ---------------------------------------------------------------- tests

PYTEST := $(BIN)/python -m pytest

.PHONY: test unit
unit: collection
	$(PYTEST) tests/unit

# Every part of `make test`; the mk/*.mk files add theirs to TEST_TARGETS.
TEST_TARGETS := unit
-include mk/*.mk

test: $(TEST_TARGETS)
	@echo "make test: all suites passed ($(TEST_TARGETS))"

.PHONY: clean
clean:
	rm -rf build out .pytest_cache
