import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


import pytest  # noqa: E402

from fake_cluster import FakeCluster  # noqa: E402


@pytest.fixture
def cluster():
    """An empty in-memory API server with the namespaces istio-egress, mytest and other."""
    return FakeCluster()
