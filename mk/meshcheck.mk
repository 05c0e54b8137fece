# meshcheck: Istio's own config generator checks the rendered Istio objects (tests/meshcheck).
#
#   make meshcheck-build            build (or reuse) the cached meshcheck binary
#   make verify-mesh                render the seed examples in both modes and the partner-tls
#                                   examples in their own mode, check them and the hand-written
#                                   fixtures (tests/meshcheck/testdata)
#   make verify-mesh POLICY=FILE    render one policy file in both modes and check it
#   make verify-import SRC=FILE GATEWAY=NAME [SOURCES=ns1,ns2] [OUT=DIR] [VERBOSE=1]
#                                   import hand-written objects and prove the import equivalent
#                                   (VERBOSE=1 lists every call, not only the differing ones)
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
# examples written for one mode (file:mode): TLS origination, limits and wildcards
MESHCHECK_ONE_MODE := playbooks/examples/partner-tls.yaml:sidecar \
	playbooks/examples/partner-tls-ambient.yaml:ambient
endif

.PHONY: meshcheck-build verify-mesh verify-import meshcheck-test
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
	for pm in $(MESHCHECK_ONE_MODE); do \
	  p=$${pm%:*}; m=$${pm##*:}; n=$$(basename "$$p"); d="$(MESHCHECK_OUT)/$${n%.*}"; rm -rf "$$d"; \
	  echo "render $$p ($$m) -> $$d"; \
	  $(BIN)/python scripts/render-policy "$$p" "$$d" --mode $$m >/dev/null; \
	  dirs+=("$$d"); \
	done; \
	"$$mc" "$${dirs[@]}" $(MESHCHECK_FIXTURES)

verify-import: collection ## import SRC and prove it equivalent (meshcheck -equiv): SRC=FILE GATEWAY=NAME [SOURCES=]
	@test -n "$(SRC)" || { echo "make verify-import: SRC=FILE is required" >&2; exit 2; }
	@test -n "$(GATEWAY)" || { echo "make verify-import: GATEWAY=NAME is required" >&2; exit 2; }
	$(BIN)/python scripts/verify-import $(abspath $(SRC)) $(abspath $(OUT)) \
	  --gateway $(GATEWAY) --sources "$(SOURCES)" $(if $(VERBOSE),--verbose)

meshcheck-test: collection meshcheck-build ## the pytest suites around meshcheck (renders, mutants, import, telemetry)
	$(PYTEST) tests/integration/test_meshcheck.py tests/integration/test_meshcheck_mutants.py \
	  tests/integration/test_meshcheck_import.py tests/integration/test_meshcheck_telemetry.py
