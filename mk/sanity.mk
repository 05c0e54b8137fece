# ansible-test sanity runs from an ansible_collections/<namespace>/<name> tree: a copy of the files
# git tracks (or would track) in this working tree, refreshed on every run.
#
# `make sanity-run` is the same without setting up .venv, for another ansible-core's venv:
# make test-matrix (tests/matrix/noxfile.py) runs it with SANITY_VENV (that venv), SANITY_DIR (a
# tree of its own) and, as always, kubernetes.core from .venv.
SANITY_DIR ?= $(CURDIR)/build/sanity
SANITY_VENV ?= $(VENV)
SANITY_ROOT = $(SANITY_DIR)/ansible_collections/servicemesh/egress
# The venv's Python version (ansible-test runs its tests with it) and its site-packages.
SANITY_PYTHON ?= $(shell $(SANITY_VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV_SITE = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
SANITY_SITE = $(shell $(SANITY_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
# kubernetes.core (from the pinned `ansible` package) beside it: the modules use its doc fragment
# and client code.
SANITY_DEPS = $(SANITY_DIR)/ansible_collections/kubernetes/core
# Development tooling that is not part of the built collection (galaxy.yml build_ignore) and is
# checked by its own tools instead: Go modules, shell/python helper scripts, make fragments, the
# nox matrix.
SANITY_SKIP := .ci mk scripts benchmarks tests/controlplane tests/meshcheck tests/matrix
space := $(subst ,, )

# ansible-test's pip bootstrap script (see mk/ansible-test-get-pip.py), for the pip
# version the installed ansible-test asks for (the first pin is the default; ansible-test 2.16
# to 2.18 list older pips for Python 2.7 and 3.6 after it).
ANSIBLE_TEST_PIP = $(shell sed -n "s/^ *pip='\([0-9.]*\)',.*/\1/p" \
  $(SANITY_SITE)/ansible_test/_internal/python_requirements.py 2>/dev/null | head -1)
GET_PIP_CACHE = $(HOME)/.ansible/test/cache/get_pip_$(subst .,_,$(ANSIBLE_TEST_PIP)).py

.PHONY: sanity sanity-run
sanity: collection sanity-run ## ansible-test sanity

sanity-run:
	@test -x $(SANITY_VENV)/bin/ansible-test || { \
	  echo "sanity: $(SANITY_VENV)/bin/ansible-test missing (make sanity sets up .venv)" >&2; exit 1; }
	mkdir -p $(dir $(GET_PIP_CACHE)) && cp mk/ansible-test-get-pip.py $(GET_PIP_CACHE)
	rm -rf $(SANITY_ROOT) $(SANITY_DEPS) && mkdir -p $(SANITY_ROOT) $(dir $(SANITY_DEPS))
	cp -r $(VENV_SITE)/ansible_collections/kubernetes/core $(SANITY_DEPS)
	git ls-files -z --cached --others --exclude-standard | \
	  grep -zv -E '^($(subst $(space),|,$(SANITY_SKIP)))/' | \
	  tar --null --ignore-failed-read -cf - -T - 2>/dev/null | tar -xf - -C $(SANITY_ROOT)
	cd $(SANITY_ROOT) && git init -q . && ANSIBLE_COLLECTIONS_PATH= PYTHONPATH= \
	  $(SANITY_VENV)/bin/ansible-test sanity --python $(SANITY_PYTHON) --requirements --color no
