"""The forkserver a LocalCluster's worker processes are forked from, with the run's libraries
imported in it once (:mod:`pdm_kedro.distributed.preload`).

Spawned workers (Dask's default) import the libraries each: about 5.5 s of CPU per worker,
taken from the other processes starting on the same cores (the MLflow server, the command).
Forked from this server they start with them imported. Standard library only, so that the
fleet command can start it before it imports anything heavy itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

# numerical libraries: one thread per single-threaded worker (Dask's nanny sets the same)
ONE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1",
}  # fmt: skip
# imported once by the forkserver the LocalCluster's workers are forked from
PRELOAD_MODULE = "pdm_kedro.distributed.preload"
# Dask's own start-up modules, preloaded as Dask preloads them for a forkserver
DASK_PRELOAD = "distributed"


def start_worker_forkserver() -> None:
    """Start this process's forkserver with :data:`PRELOAD_MODULE` preloaded, unless running.

    Call it as early as possible: the forkserver imports while the command reads its
    configuration, and workers asked for meanwhile wait for it. Dask's own preload list, set
    when its nanny first asks for the forkserver context, does not apply to a server already
    running. The server gets one thread per numerical library (no thread pool is running when
    it forks a worker).
    """
    import multiprocessing  # noqa: PLC0415
    import multiprocessing.forkserver  # noqa: PLC0415

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([DASK_PRELOAD, PRELOAD_MODULE])
    with _environ(ONE_THREAD_ENV):
        multiprocessing.forkserver.ensure_running()


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set inside the block, as it was after it."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
