# Benchmarks (not part of `make test`): each writes a results file beside its script.
.PHONY: bench-expand
bench-expand: collection
	$(BIN)/python benchmarks/expand/bench.py

# The slow property suite: 10,000 generated parameter sets per property (not part of `make test`).
.PHONY: test-slow
test-slow: collection
	HYPOTHESIS_PROFILE=slow $(PYTEST) tests/unit/test_properties.py
