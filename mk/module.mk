# The egress_policy and egress_policy_info modules against the local control plane
# (docs/module.md), and the apply benchmark (benchmarks/apply/README.md).
#
#   make module-test     the modules' integration tests (starts the control plane, or reuses a
#                        running one)
#   make bench-apply     the benchmark: module vs kubectl apply --server-side vs kubernetes.core.k8s
#                        (BENCH_ENTRIES=1000); writes benchmarks/apply/results.md

BENCH_ENTRIES ?= 1000

.PHONY: module-test bench-apply

module-test: collection
	$(PYTEST) tests/integration/test_egress_policy_module.py tests/integration/test_egress_policy_info.py -m integration

TEST_TARGETS += module-test

bench-apply: collection
	$(BIN)/python benchmarks/apply/run.py --entries $(BENCH_ENTRIES) --results benchmarks/apply/results.md
