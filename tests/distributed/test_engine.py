"""The Dask engine's own settings (the fleet runs themselves are in test_fleet_run.py)."""

from __future__ import annotations

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
