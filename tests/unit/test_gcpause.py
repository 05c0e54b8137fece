"""gcpause.py: the collector is paused during the work and restored after, even on errors."""
import gc

import pytest

from ansible_collections.servicemesh.egress.plugins.module_utils.gcpause import gc_paused


@gc_paused
def state(fail=False):
    if fail:
        raise ValueError("boom")
    return gc.isenabled()


def test_paused_inside_and_restored_after():
    assert gc.isenabled()
    assert state() is False
    assert gc.isenabled()
    with pytest.raises(ValueError):
        state(fail=True)
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled():
    gc.disable()
    try:
        assert state() is False
        assert not gc.isenabled()
    finally:
        gc.enable()
