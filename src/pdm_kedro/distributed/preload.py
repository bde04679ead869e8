"""Imported once by the forkserver a LocalCluster's workers are forked from
(:func:`pdm_kedro.distributed.engine.start_worker_forkserver`): the libraries every machine's
run imports, so that each forked worker starts with them imported.

A failure here must not stop the forkserver (the workers could not start, with an obscure
error): it is reported on stderr and the worker's own warm-up imports again and raises there.
"""

from __future__ import annotations

import sys
import traceback

try:
    from pdm_kedro.distributed.engine import import_run_libraries

    import_run_libraries()
except Exception:  # noqa: BLE001 (reported; the worker's warm-up raises it where it is seen)
    print(
        "pdm_kedro: the workers' forkserver could not import the run's libraries:", file=sys.stderr
    )
    traceback.print_exc()
