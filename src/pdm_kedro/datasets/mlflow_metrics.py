"""kedro-mlflow's metrics dataset, saved in one request instead of one per metric.

``kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset`` logs each metric with its own
``log_metric`` call: a family's 12-20 test metrics are as many store writes, and against a
tracking server (the fleet mode) as many HTTP requests, each answered by the one server the
workers share. :class:`MlflowMetricsBatchDataset` sends them in ``log_batch`` calls (at most
MLflow's 1,000 metrics each). Same keys (the ``prefix``), values and steps, same load, same
switch-off by kedro-mlflow's hook (it is a subclass).
"""

from __future__ import annotations

from itertools import chain

import mlflow
from kedro.io import DatasetError
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import MAX_METRICS_PER_BATCH


class MlflowMetricsBatchDataset(MlflowMetricsHistoryDataset):
    """:class:`MlflowMetricsHistoryDataset` whose save is one ``log_batch`` per 1,000 metrics."""

    def _save(self, data: dict) -> None:
        if not self._logging_activated:
            return
        items = list(
            chain.from_iterable(
                self._build_args_list_from_metric_item(key, value) for key, value in data.items()
            )
        )
        try:
            run_id = self.run_id
        except DatasetError:
            run_id = None
        if run_id is None:  # no run: as the parent does, log_metric starts one
            for key, value, step in items:
                mlflow.log_metric(key, value, step=step)
            return
        now = get_current_time_millis()
        metrics = [Metric(key, float(value), now, int(step)) for key, value, step in items]
        client = MlflowClient()
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])
