# The AWX / Automation Controller execution environment (execution-environment.yml, docs/awx.md).
#
#   make ee-check    build the collection artifact into build/ee-collection, write the EE build
#                    context into build/ee with `ansible-builder create` (no container engine)
#                    and check it holds what the image needs
#   make ee          the same, then `ansible-builder build` (needs podman or docker, and the
#                    network for the base image, Galaxy and PyPI)

EE_CONTEXT := build/ee
EE_ARTIFACTS := build/ee-collection
EE_TAG ?= servicemesh-egress-ee:latest
EE_RUNTIME ?= podman
EE_VERSION = $(shell $(BIN)/python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')

.PHONY: ee-context ee-check ee

ee-context: collection
	rm -rf $(EE_CONTEXT) $(EE_ARTIFACTS)
	$(BIN)/ansible-galaxy collection build --force --output-path $(EE_ARTIFACTS) >/dev/null
	$(BIN)/ansible-builder create -f execution-environment.yml --context $(EE_CONTEXT) \
	  --output-filename Containerfile

# What the image needs, in the generated context:
#   - requirements.yml agrees with galaxy.yml's dependencies (AWX project sync uses it too);
#   - the galaxy and Python requirements are the repository's files, unchanged;
#   - the collection artifact of galaxy.yml's version, and the step installing it after
#     requirements.yml, in the galaxy stage (so introspection sees its requirements.txt);
#   - ansible-core pinned as in requirements.txt, and the Python requirements introspected.
ee-check: ee-context
	@set -e; ctx=$(EE_CONTEXT); cf=$$ctx/Containerfile; v=$(EE_VERSION); \
	fail() { echo "ee-check: $$*" >&2; exit 1; }; \
	$(BIN)/python -c 'import sys, yaml; \
	deps = yaml.safe_load(open("galaxy.yml"))["dependencies"]; \
	reqs = {c["name"]: c.get("version", "*") for c in yaml.safe_load(open("requirements.yml"))["collections"]}; \
	sys.exit(0 if reqs == deps else "requirements.yml %s != galaxy.yml dependencies %s" % (reqs, deps))'; \
	cmp -s requirements.yml $$ctx/_build/requirements.yml || fail "_build/requirements.yml is not requirements.yml"; \
	cmp -s requirements.txt $$ctx/_build/requirements.txt || fail "_build/requirements.txt is not requirements.txt"; \
	test -f $$ctx/_build/collections/servicemesh-egress-$$v.tar.gz \
	  || fail "no _build/collections/servicemesh-egress-$$v.tar.gz"; \
	test "$$(ls $$ctx/_build/collections | wc -l)" = 1 || fail "more than one artifact in _build/collections"; \
	tar -xzOf $$ctx/_build/collections/servicemesh-egress-$$v.tar.gz MANIFEST.json | $(BIN)/python -c \
	  'import json, sys, yaml; deps = json.load(sys.stdin)["collection_info"]["dependencies"]; \
	  sys.exit(deps != yaml.safe_load(open("galaxy.yml"))["dependencies"])' \
	  || fail "the artifact's dependencies are not galaxy.yml's"; \
	core=$$(grep -E '^ansible-core==' requirements.txt); \
	grep -q "ANSIBLE_INSTALL_REFS=\"$$core ansible-runner\"" $$cf || fail "ansible-core is not $$core"; \
	awk '/^FROM base AS galaxy/{g=1} /^FROM base AS builder/{g=0} \
	  g && /collection install .*-r requirements.yml/{r=NR} \
	  g && /collection install \/build\/collections\/servicemesh-egress-\*\.tar\.gz/{c=NR} \
	  END{exit !(r && c > r)}' $$cf || fail "the galaxy stage does not install requirements.yml, then the artifact"; \
	grep -q '^COPY _build /build$$' $$cf || fail "the context is not copied to /build"; \
	grep -q 'introspect.py introspect --user-pip=requirements.txt' $$cf || fail "no Python introspection"; \
	grep -q '^FROM $$EE_BASE_IMAGE AS base' $$cf || fail "no base stage"; \
	echo "ee-check: $$cf installs requirements.yml, servicemesh-egress-$$v.tar.gz and requirements.txt"

ee: ee-context
	$(BIN)/ansible-builder build -f execution-environment.yml --context $(EE_CONTEXT) \
	  --container-runtime $(EE_RUNTIME) -t $(EE_TAG)

TEST_TARGETS += ee-check
