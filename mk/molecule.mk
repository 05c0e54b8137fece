# Molecule scenarios (extensions/molecule/) and ansible-lint. Molecule 25.9+ finds the scenarios
# under extensions/molecule/ when run from the collection root (where galaxy.yml is), and reads
# extensions/molecule/config.yml as the shared base config. The Makefile exports PATH (project
# venv) and ANSIBLE_COLLECTIONS_PATH (this working tree as servicemesh.egress).
#
#   make molecule            the default scenario: a real control plane (scripts/controlplane)
#   make molecule-ambient    the same in ambient mode
#   make molecule-kind       kind + Istio + real requests (needs Docker, kind, helm, internet)
#   make molecule-syntax     syntax check of every scenario's playbooks
#   make lint                ansible-lint, production profile (.ansible-lint)

MOLECULE := NO_COLOR=1 MOLECULE_NO_COLOR=1 $(BIN)/molecule
MOLECULE_SCENARIOS := default ambient kind

.PHONY: molecule molecule-ambient molecule-kind molecule-syntax lint

molecule: collection controlplane ## molecule default scenario (real control plane)
	$(MOLECULE) test -s default

molecule-ambient: collection controlplane ## molecule ambient scenario
	$(MOLECULE) test -s ambient

molecule-kind: collection ## molecule with kind + Istio (needs Docker and internet)
	$(MOLECULE) test -s kind

# Playbooks of the scenarios (not task files, vars or inventories).
MOLECULE_PLAYBOOKS := $(filter-out %/molecule.yml %/inventory.yml %/vars.yml,\
  $(wildcard extensions/molecule/*/*.yml))

# `molecule syntax` checks each scenario's converge; ansible-playbook the other playbooks too.
# No cluster is touched.
molecule-syntax: collection ## syntax check of every molecule scenario
	@set -e; for s in $(MOLECULE_SCENARIOS); do $(MOLECULE) syntax -s $$s; done
	@set -e; for p in $(MOLECULE_PLAYBOOKS); do \
	  $(BIN)/ansible-playbook --syntax-check -i extensions/molecule/inventory.yml $$p >/dev/null; \
	  echo "syntax ok: $$p"; done

lint: collection ## ansible-lint, production profile
	$(BIN)/ansible-lint roles/ playbooks/ extensions/ examples/ awx/
