"""Imported once by the forkserver a LocalCluster's workers are forked from
(:func:`pdm_kedro.distributed.forkserver.start_worker_forkserver`): the libraries every machine's
run imports, so that each forked worker starts with them imported.

A failure here must not stop the forkserver (the workers could not start, with an obscure
error): it is reported on stderr and the worker's own warm-up imports again and raises there.

The forkserver ends when the command that started it ends. Tearing down an interpreter that
imported all of the above takes about 1.5 s of CPU, during which it still holds the command's
stderr: whoever reads the command's output (a pipe, ``| tee``, CI, the benchmark) waited for
it. The server has nothing to flush or clean up (each worker is its own forked process, ended
by its nanny), so it exits at once.
"""

from __future__ import annotations

import atexit
import os
import sys
import traceback


def _exit_now() -> None:
    """The forkserver's exit, without the interpreter's teardown (only this process runs it:
    the processes forked from it end with ``os._exit`` and run no exit handlers)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


try:
    from pdm_kedro.distributed.engine import import_run_libraries

    import_run_libraries()
except Exception:  # noqa: BLE001 (reported; the worker's warm-up raises it where it is seen)
    print(
        "pdm_kedro: the workers' forkserver could not import the run's libraries:",
        file=sys.stderr,
    )
    traceback.print_exc()

atexit.register(_exit_now)
