# -*- coding: utf-8 -*-
# Copyright: servicemesh.egress contributors
# Apache License 2.0 (see LICENSE)
"""The egress_policy_import module with files on the controller: ``src`` read and ``dest``
written there, relative paths from the current directory. Objects from a file or inline are
imported on the controller (the import is pure); objects from the cluster are read by the module
on the target host (where the Kubernetes client and credentials are), and its result's files
written on the controller. Failures come back as ``msg`` plus ``errors``, never a traceback."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.servicemesh.egress.plugins.module_utils.bundle import write_files
from ansible_collections.servicemesh.egress.plugins.module_utils.egress_import import (
    import_files,
)
from ansible_collections.servicemesh.egress.plugins.module_utils.runner import (
    from_cwd,
    run_action,
)
from ansible_collections.servicemesh.egress.plugins.modules.egress_policy_import import (
    MUTUALLY_EXCLUSIVE,
    REQUIRED_ONE_OF,
    argument_spec,
    from_cluster,
    run,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, params = self.validate_argument_spec(
            argument_spec=argument_spec(), mutually_exclusive=MUTUALLY_EXCLUSIVE,
            required_one_of=REQUIRED_ONE_OF)
        dest = from_cwd(params.get("dest"))
        check_mode = self._play_context.check_mode

        def work():
            if not from_cluster(params):
                src = params.get("src")
                return run(dict(params, dest=dest, src=from_cwd(src), source_name=src), check_mode)
            args = dict((k, v) for k, v in self._task.args.items() if k != "dest")
            out = self._execute_module(module_name="servicemesh.egress.egress_policy_import",
                                       module_args=args, task_vars=task_vars)
            if dest is not None and not out.get("failed"):
                files = import_files(out)
                written = write_files(files, dest, check_mode)
                out.update(changed=bool(written), dest=dest, written=written, files=sorted(files))
            return out

        return run_action(result, work)
