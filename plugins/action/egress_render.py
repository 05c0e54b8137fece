# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The egress_render module on the controller: paths relative to the current directory, the
policy read and the files written there, failures as ``msg`` plus ``errors`` (never a
traceback, never Ansible's templating wrapper around a filter's error)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.servicemesh.egress.plugins.module_utils.runner import (
    from_cwd,
    run_action,
)
from ansible_collections.servicemesh.egress.plugins.modules.egress_render import (
    ARGUMENT_SPEC,
    MUTUALLY_EXCLUSIVE,
    REQUIRED_ONE_OF,
    render,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, params = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE,
            required_one_of=REQUIRED_ONE_OF)
        params = dict(params, src=from_cwd(params.get("src")), dest=from_cwd(params.get("dest")))
        return run_action(result, lambda: render(params, self._play_context.check_mode))
