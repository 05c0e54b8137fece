# meshcheck: Istio's own config generator checks the rendered Istio objects (tests/meshcheck).
#
#   make meshcheck-build            build (or reuse) the cached meshcheck binary
#   make verify-mesh                render the seed examples and check them
#   make verify-mesh POLICY=FILE    render one policy file and check it
#   make meshcheck-test             the pytest suites around meshcheck
#   meshcheck -telemetry DIR...     what a render's spec.telemetry makes the proxies log

MESHCHECK_BUILD := tests/meshcheck/build.sh
MESHCHECK_OUT := build/meshcheck
# POLICY has a default in the main Makefile (for `make render`): only a POLICY given on the
# command line or in the environment narrows verify-mesh to one file.
ifneq ($(filter command line environment environment override,$(origin POLICY)),)
MESHCHECK_POLICIES := $(POLICY)
else
MESHCHECK_POLICIES := $(sort $(wildcard playbooks/examples/seed-*.yaml))
endif

.PHONY: meshcheck-build verify-mesh meshcheck-test
meshcheck-build: ## build (or reuse) the cached meshcheck binary
	@$(MESHCHECK_BUILD) >/dev/null

verify-mesh: collection ## Istio's generator on the seed renders [POLICY=FILE]
	@set -euo pipefail; mc=$$($(MESHCHECK_BUILD)); dirs=(); \
	for p in $(MESHCHECK_POLICIES); do \
	  n=$$(basename "$$p"); n=$${n%.*}; rm -rf "$(MESHCHECK_OUT)/$$n"; \
	  echo "render $$p -> $(MESHCHECK_OUT)/$$n"; \
	  $(BIN)/python scripts/render-policy "$$p" "$(MESHCHECK_OUT)/$$n" --mode sidecar >/dev/null; \
	  dirs+=("$(MESHCHECK_OUT)/$$n"); \
	done; \
	"$$mc" "$${dirs[@]}"

meshcheck-test: collection meshcheck-build ## the pytest suites around meshcheck (renders, telemetry)
	$(PYTEST) tests/integration/test_meshcheck.py tests/integration/test_meshcheck_telemetry.py
