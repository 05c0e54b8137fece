# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""Per-host task timings for the fleet benchmark (benchmarks/fleet/run.py).

Records, for every host and task, when the task started on that host (a worker took it) and when
its result came back, and writes them as JSON to ``$FLEET_TIMING_FILE`` at the end of the run:
``[{"host": ..., "task": ..., "play": ..., "start": seconds, "end": seconds}, ...]`` (seconds on
the monotonic clock of the controller). Enabled with ANSIBLE_CALLBACKS_ENABLED=fleet_timing and
ANSIBLE_CALLBACK_PLUGINS pointing here; not part of the collection.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: fleet_timing
type: aggregate
short_description: per-host task timings for benchmarks/fleet
description: Writes per-host task start and end times to $FLEET_TIMING_FILE.
requirements: [enable in configuration]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._play = ""
        self._open = {}
        self._records = []

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def v2_runner_on_start(self, host, task):
        self._open[(host.get_name(), task._uuid)] = (task.get_name(), time.monotonic())

    def _done(self, result, *args, **kwargs):
        key = (result._host.get_name(), result._task._uuid)
        name, start = self._open.pop(key, (result._task.get_name(), None))
        if start is not None:
            self._records.append({"host": key[0], "task": name, "play": self._play,
                                  "start": start, "end": time.monotonic()})

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = _done
    v2_runner_on_unreachable = _done

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("FLEET_TIMING_FILE")
        if path:
            with open(path, "w") as f:
                json.dump(self._records, f)
