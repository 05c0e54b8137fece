"""policy/telemetry.py: spec.telemetry read in both spellings, every error in the reader."""

from ansible_collections.servicemesh.egress.plugins.module_utils.policy.fields import FieldReader
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.model import (
    PARAMS,
    RESOURCE,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.policy.telemetry import (
    read_telemetry,
)


def test_read_telemetry_collects_every_error_in_the_reader():
    reader = FieldReader(RESOURCE)
    got = read_telemetry(reader, {"accessLogging": "ALL", "deniedEgress": True}, "spec.telemetry")
    assert (got.access_logging, got.denied_egress, reader.errors) == ("all", True, [])
    assert read_telemetry(reader, None, "spec.telemetry") is None
    reader = FieldReader(PARAMS)
    assert read_telemetry(reader, {"access_logging": "on", "denied_egress": "x"},
                          "telemetry").denied_egress is None
    assert [str(e) for e in reader.errors] == [
        "telemetry.access_logging: must be one of all, errors, none (any case), got 'on'",
        "telemetry.denied_egress: must be a boolean, got 'x'"]
