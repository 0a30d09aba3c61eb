"""The ``ray`` executor: the compute phase of every cycle on a Ray cluster.

``converge run rules.cvg -f facts.jsonl --executor ray`` starts a local Ray for the job
(on 127.0.0.1, stopped when the job ends); ``--executor-option address=auto`` joins the
cluster this machine belongs to and ``--executor-option address=HOST:PORT`` the one at
that address (``CONVERGE_RAY_ADDRESS`` says the same for every job). ``--workers N``
is the number of replica actors (default: one per CPU of the cluster).

Ray is imported when a job builds the executor, never when the plugin registers it:
``converge check`` loads every plugin and runs no job. See ``docs/ray.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from converge_rules.plugins.api import hookimpl
from converge_rules.plugins.hookspecs import Register

if TYPE_CHECKING:
    from converge_rules.plugins.api import Executor

__version__ = "0.1.0"


def ray_executor(workers: int | None = None,
                 options: Mapping[str, str] | None = None) -> Executor:
    """The ``ray`` executor for one job: ``workers`` replica actors (default: one per
    CPU of the cluster); ``options`` are the ``--executor-option`` pairs (``address``:
    ``auto`` or ``HOST:PORT``; ``local-cpus``: the CPUs of a local Ray started for the
    job). An unknown option or a bad value is a ``ConvergeError`` saying which."""
    from converge_ray.executor import RayExecutor

    return RayExecutor.from_options(workers, options or {})


@hookimpl
def converge_register_executors(register: Register) -> None:
    register("ray", ray_executor,
             "replica actors on a Ray cluster (a local Ray unless --executor-option "
             "address=auto|HOST:PORT)")
