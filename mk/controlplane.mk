# Local Kubernetes control plane for the integration tests (docs/development.md, "Local control
# plane"): etcd, kube-apiserver, kube-controller-manager and kubectl built from Go modules in
# tests/controlplane/ into a cache outside the repository (no containers).
#
#   make controlplane         build the binaries (once per version) and fetch the CRDs
#   make controlplane-up      start it (builds when needed); prints the kubeconfigs
#   make controlplane-down    stop it
#   make integration          pytest tests/integration -m integration (starts and stops it,
#                             or reuses one already running)
#   make module-test          the modules' integration tests alone (a part of integration)

CONTROLPLANE := $(CURDIR)/scripts/controlplane
# The Go toolchain for the build: `go` on PATH, else the usual install location.
CONTROLPLANE_GO := $(or $(shell command -v go 2>/dev/null),$(wildcard /usr/local/go/bin/go))

.PHONY: controlplane controlplane-up controlplane-down controlplane-status integration module-test

# Without Go (and without cached binaries) scripts/controlplane stops with a clear message.
controlplane: ## build the control plane binaries (cached outside the repository)
	GO=$(CONTROLPLANE_GO) $(CONTROLPLANE) build >/dev/null

controlplane-up: controlplane ## start the local control plane; prints the kubeconfigs
	GO=$(CONTROLPLANE_GO) $(CONTROLPLANE) up

controlplane-down: ## stop the local control plane
	$(CONTROLPLANE) down

controlplane-status: ## is the local control plane running
	$(CONTROLPLANE) status

integration: collection controlplane ## tests against a real kube-apiserver (tests/integration)
	$(PYTEST) tests/integration -m integration

module-test: collection controlplane ## the modules' integration tests alone (part of integration)
	$(PYTEST) tests/integration/test_egress_policy_module.py tests/integration/test_egress_policy_info.py -m integration
