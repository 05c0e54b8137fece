# Benchmarks (not part of `make test`): each writes a results file beside its script.
.PHONY: bench-expand
bench-expand: collection
	$(BIN)/python benchmarks/expand/bench.py
