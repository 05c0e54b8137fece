# meshcheck: Istio's own config generator checks the rendered Istio objects (tests/meshcheck).
#
#   make meshcheck-build            build (or reuse) the cached meshcheck binary
#   make verify-mesh                render the seed examples in both modes, check them and the
#                                   hand-written fixtures (tests/meshcheck/testdata)
#   make verify-mesh POLICY=FILE    render one policy file in both modes and check it
#   make meshcheck-test             the pytest suites around meshcheck
#   meshcheck -telemetry DIR...     what a render's spec.telemetry makes the proxies log

MESHCHECK_BUILD := tests/meshcheck/build.sh
MESHCHECK_OUT := build/meshcheck
# POLICY has a default in the main Makefile (for `make render`): only a POLICY given on the
# command line or in the environment narrows verify-mesh to one file.
ifneq ($(filter command line environment environment override,$(origin POLICY)),)
MESHCHECK_POLICIES := $(POLICY)
MESHCHECK_FIXTURES :=
else
MESHCHECK_POLICIES := $(sort $(wildcard playbooks/examples/seed-*.yaml))
MESHCHECK_FIXTURES := $(patsubst %/,%,$(sort $(wildcard tests/meshcheck/testdata/*/)))
endif

.PHONY: meshcheck-build verify-mesh meshcheck-test
meshcheck-build: ## build (or reuse) the cached meshcheck binary
	@$(MESHCHECK_BUILD) >/dev/null

verify-mesh: collection ## Istio's generator on the seed renders, both modes [POLICY=FILE]
	@set -euo pipefail; mc=$$($(MESHCHECK_BUILD)); dirs=(); \
	for p in $(MESHCHECK_POLICIES); do \
	  n=$$(basename "$$p"); n=$${n%.*}; \
	  for m in sidecar ambient; do \
	    d="$(MESHCHECK_OUT)/$$n$$([[ $$m == ambient ]] && echo -ambient || true)"; rm -rf "$$d"; \
	    echo "render $$p ($$m) -> $$d"; \
	    $(BIN)/python scripts/render-policy "$$p" "$$d" --mode $$m >/dev/null; \
	    dirs+=("$$d"); \
	  done; \
	done; \
	"$$mc" "$${dirs[@]}" $(MESHCHECK_FIXTURES)

meshcheck-test: collection meshcheck-build ## the pytest suites around meshcheck (renders, mutants, telemetry)
	$(PYTEST) tests/integration/test_meshcheck.py tests/integration/test_meshcheck_mutants.py \
	  tests/integration/test_meshcheck_telemetry.py
