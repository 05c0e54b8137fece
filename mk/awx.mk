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

ee-context: collection ## write the execution environment build context (build/ee)
	rm -rf $(EE_CONTEXT) $(EE_ARTIFACTS)
	$(BIN)/ansible-galaxy collection build --force --output-path $(EE_ARTIFACTS) >/dev/null
	$(BIN)/ansible-builder create -f execution-environment.yml --context $(EE_CONTEXT) \
	  --output-filename Containerfile

# What the image needs, in the generated context (scripts/ee-check says each check).
ee-check: ee-context ## check the AWX execution environment's build context
	PYTHON=$(BIN)/python scripts/ee-check $(EE_CONTEXT) $(EE_VERSION)

ee: ee-context ## build the execution environment image (podman or docker)
	$(BIN)/ansible-builder build -f execution-environment.yml --context $(EE_CONTEXT) \
	  --container-runtime $(EE_RUNTIME) -t $(EE_TAG)
