"""The Dask engine's own settings (the fleet runs themselves are in test_fleet_run.py)."""

from __future__ import annotations

import os
import sys

import dask

from pdm_kedro.distributed import engine


def test_the_local_cluster_runs_dask_monitoring_less_often() -> None:
    """Scheduler and workers of the LocalCluster get LOCAL_CLUSTER_CONFIG (the workers from their
    nannies); the command's own config is left as it was."""
    before = {key: dask.config.get(key) for key in engine.LOCAL_CLUSTER_CONFIG}
    client, cluster = engine.connect(None, 1)
    try:
        keys = list(engine.LOCAL_CLUSTER_CONFIG)
        workers = client.run(lambda: [dask.config.get(k) for k in keys])
        tick_ms = cluster.scheduler.periodic_callbacks["tick"].callback_time
    finally:
        client.close()
        cluster.close()
    assert list(workers.values()) == [list(engine.LOCAL_CLUSTER_CONFIG.values())]
    assert tick_ms == 1000
    assert {key: dask.config.get(key) for key in engine.LOCAL_CLUSTER_CONFIG} == before


def test_local_workers_are_forked_with_the_run_libraries_imported() -> None:
    """The LocalCluster's workers come from the forkserver that preloaded the run's libraries:
    before any task or warm-up, a worker has MLflow, kedro-mlflow's hooks, xgboost and every
    stage's nodes imported, and one thread per numerical library."""
    modules = ("mlflow", "kedro_mlflow.framework.hooks", "xgboost", "sklearn", "IPython")
    client, cluster = engine.connect(None, 1)
    try:
        seen = client.run(
            lambda: (
                [m in sys.modules for m in modules],
                sorted(m for m in sys.modules if m.startswith("pdm_kedro.pipelines.")),
                os.environ.get("OMP_NUM_THREADS"),
            )
        )
    finally:
        client.close()
        cluster.close()
    ((imported, stages, threads),) = seen.values()
    assert imported == [True] * len(modules)
    assert {"pdm_kedro.pipelines.classification", "pdm_kedro.pipelines.diagnosis"} <= set(stages)
    assert threads == "1"
