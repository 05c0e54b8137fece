"""Shared test set-up: make the working tree importable as ansible_collections.servicemesh.egress."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "servicemesh", "egress")
if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(ROOT, LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

# Property-test profiles for every suite: `default` (make test) and `slow` (make test-slow,
# 10,000 examples). Under CI the examples are derived from each test's name, so a run is
# repeatable: a failure in CI fails again on the same examples, and a pass is not luck.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # suites that do not use hypothesis run without it
    settings = None
if settings is not None:
    _CI = bool(os.environ.get("CI"))
    settings.register_profile("default", max_examples=150, deadline=None, derandomize=_CI,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("slow", max_examples=10000, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
