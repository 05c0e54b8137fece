# The egress_policy and egress_policy_info modules against the local control plane
# (docs/module.md), and the apply benchmark (benchmarks/apply/README.md).
#
#   make module-test     the modules' integration tests (starts the control plane, or reuses a
#                        running one)
#   make bench-apply     the benchmark: module vs kubectl apply --server-side vs kubernetes.core.k8s
#                        (BENCH_ENTRIES=1000 BENCH_MODE=sidecar); appends to
#                        benchmarks/apply/results.md

BENCH_ENTRIES ?= 1000
BENCH_MODE ?= sidecar

.PHONY: module-test bench-apply

module-test: collection
	$(PYTEST) tests/integration/test_egress_policy_module.py tests/integration/test_egress_policy_info.py -m integration

# module-test runs a subset of `make integration` (which CI runs); kept for quick runs.
# TEST_TARGETS += module-test

bench-apply: collection
	$(BIN)/python benchmarks/apply/run.py --entries $(BENCH_ENTRIES) --mode $(BENCH_MODE) \
	  --results benchmarks/apply/results.md
