# The ansible-core matrix (docs/development.md, "The ansible-core matrix"): every minor that
# meta/runtime.yml claims (2.16 to 2.19) on this machine's Python 3.11, with nox
# (tests/matrix/noxfile.py; nox pinned in requirements-dev.txt). One venv per minor under
# build/nox/, rebuilt only when its pins change.
#
#   make test-matrix         every minor: ansible-test sanity and the unit tests; the module smoke
#                            test (render playbook, modules against the local API server) on the
#                            oldest and newest. Not in make test (see the times in
#                            docs/development.md).
#   make test-matrix-edges   in make test: the oldest minor in full (sanity, units, smoke) and the
#                            newest's smoke. The newest's sanity and units are the sanity and unit
#                            suites: .venv pins the same ansible-core.
#   make test-matrix MATRIX_SESSIONS="ansible-2.17" MATRIX_STEPS=units   one minor, some steps

NOX := $(BIN)/nox -f tests/matrix/noxfile.py --envdir $(CURDIR)/build/nox --no-color
MATRIX_SESSIONS ?=
MATRIX_STEPS ?=

.PHONY: test-matrix test-matrix-edges
test-matrix: collection controlplane ## sanity + units on ansible-core 2.16-2.19, smoke on oldest/newest
	$(NOX) $(if $(MATRIX_SESSIONS),-s $(MATRIX_SESSIONS),-t matrix) $(if $(MATRIX_STEPS),-- $(MATRIX_STEPS))

test-matrix-edges: collection controlplane ## oldest ansible-core in full, newest's smoke (make test)
	$(NOX) -s ansible-2.16
	$(NOX) -s ansible-2.19 -- smoke
