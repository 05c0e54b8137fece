# promtool: Prometheus' own rule checker, built from its Go module by scripts/promtool into a cache
# outside the repository (once per version), checks and unit-tests the egress_gateway role's alerts.
#
#   make promtool        build (or reuse) the cached promtool binary
#   make alerts-test     promtool check rules and promtool test rules (tests/promtool)

PROMTOOL := $(CURDIR)/scripts/promtool

.PHONY: promtool alerts-test
promtool: ## build (or reuse) the cached promtool binary (Prometheus 3.16, from Go modules)
	@$(PROMTOOL) --print-path >/dev/null

alerts-test: collection promtool ## promtool check/test rules on the egress_gateway role's alerts
	$(PYTEST) tests/promtool
