# ASM compatibility (docs/policy.md, "ASM's own resource"): the ASMEgressTrafficPolicy CRD
# generated from Alibaba Cloud Service Mesh's published Go types, and the test that applies every
# rendered example to it.
#
#   make asm-crd    regenerate tests/integration/testdata/asm/ with controller-gen
#                   (scripts/asm-crd; ASM_API_SRC=<git clone of alibabacloud-servicemesh-api>,
#                   else it clones github.com/aliyun/alibabacloud-servicemesh-api into the cache).
#                   The Go module proxy does not serve that repository (its go.mod says
#                   "module istio.io/api"); controller-gen and the dependencies come from it.
#   make asm-test   tests/integration/test_asm_crd.py alone (part of make integration): a control
#                   plane of its own with ASM's CRD, every rendered example with strict field
#                   validation

.PHONY: asm-crd asm-test
asm-crd: ## regenerate ASM's CRD (test data) from its Go types with controller-gen
	GO=$(CONTROLPLANE_GO) scripts/asm-crd

asm-test: collection controlplane ## every rendered example against ASM's generated CRD
	$(PYTEST) tests/integration/test_asm_crd.py -m integration
