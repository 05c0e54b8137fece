# Benchmarks (not part of `make test`): each appends to a results file beside its script.
#
#   make bench-expand    render/expand time and memory, 10 to 10,000 entries (benchmarks/expand)
#   make bench-mesh      Envoy configuration per proxy, the collection vs istio.io's recipes
#   make bench-apply     the module vs kubectl apply --server-side vs kubernetes.core.k8s against
#                        the local control plane (BENCH_ENTRIES=1000 BENCH_MODE=sidecar)
#   make bench-fleet     playbooks/fleet.yml on fleets of 1, 2, 4 and 8 local control planes (each
#                        started and stopped by the benchmark), 200 entries, forks 1 and 8
#                        (benchmarks/fleet; BENCH_FLEET_CLUSTERS=1,2,4,8 BENCH_FLEET_ENTRIES=200)

BENCH_ENTRIES ?= 1000
BENCH_MODE ?= sidecar

BENCH_FLEET_CLUSTERS ?= 1,2,4,8
BENCH_FLEET_ENTRIES ?= 200

.PHONY: bench-expand bench-apply bench-fleet
bench-expand: collection ## benchmark: expansion time and memory (benchmarks/expand)
	$(BIN)/python benchmarks/expand/bench.py

bench-apply: collection ## benchmark: the module vs kubectl and k8s [BENCH_ENTRIES= BENCH_MODE=]
	$(BIN)/python benchmarks/apply/run.py --entries $(BENCH_ENTRIES) --mode $(BENCH_MODE) \
	  --results benchmarks/apply/results.md

# The mesh's side: Envoy configuration per proxy (Istio's generator, meshcheck -cost) for 10, 100
# and 1,000 entries, beside istio.io's recipes; appends to benchmarks/mesh/results.md.
.PHONY: bench-mesh
bench-mesh: collection meshcheck-build ## benchmark: Envoy config per proxy vs the recipe [BENCH_ENTRIES=10,100]
	$(BIN)/python benchmarks/mesh/run.py $(if $(filter command line environment,$(origin BENCH_ENTRIES)),--sizes $(BENCH_ENTRIES))

bench-fleet: collection controlplane ## benchmark: fleet.yml on 1, 2, 4, 8 local control planes, forks 1 and 8
	$(BIN)/python benchmarks/fleet/run.py --clusters $(BENCH_FLEET_CLUSTERS) \
	  --entries $(BENCH_FLEET_ENTRIES) --results benchmarks/fleet/results.md
