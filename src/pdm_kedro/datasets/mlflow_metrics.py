"""kedro-mlflow's metrics dataset, saved in one request instead of one per metric.

``kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset`` logs each metric with its own
``log_metric`` call: a family's 12-20 test metrics are as many store writes, and against a
tracking server (the fleet mode) as many HTTP requests, each answered by the one server the
workers share. :class:`MlflowMetricsBatchDataset` sends them in ``log_batch`` calls (at most
MLflow's 1,000 metrics each). Same keys (the ``prefix``), values and steps, same load, same
switch-off by kedro-mlflow's hook (it is a subclass).

While a Kedro run goes (:class:`pdm_kedro.tracking_hook.TrackingHook` calls
:func:`hold_metrics` once the MLflow run has started), saves are held and sent together when the
run ends, succeeded or failed (:func:`flush_held_metrics`, before the run is closed). Why: MLflow
3 links the run's metrics to every model logged after them (``log_model`` reads the history of
each metric logged so far: 76 requests per machine here, each family's model linked to the
*other* families' metrics). Held to the end, no metric precedes a model: no history reads, no
wrong links, and one request for all the families' metrics. A load during the run (nothing in
the project loads these) sends what is held first.
"""

from __future__ import annotations

import threading
from itertools import chain

import mlflow
from kedro.io import DatasetError
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import MAX_METRICS_PER_BATCH


class _HeldMetrics:
    """Metrics saved while a run goes, by MLflow run id, sent when it ends."""

    def __init__(self) -> None:
        self.run_id: str | None = None  # the run whose saves are held
        self.metrics: dict[str, list[Metric]] = {}
        self.lock = threading.Lock()


_HELD = _HeldMetrics()


def hold_metrics(run_id: str) -> None:
    """From now on, hold back the saves into MLflow run ``run_id`` (the start of a Kedro run);
    saves into any other run go at once."""
    with _HELD.lock:
        _HELD.run_id, _HELD.metrics = run_id, {}


def flush_held_metrics(client: MlflowClient | None = None) -> int:
    """Send the held metrics (``log_batch``, 1,000 at a time per run) and stop holding; how
    many were sent. Logging to a run that has ended is allowed by MLflow."""
    with _HELD.lock:
        held, _HELD.metrics, _HELD.run_id = _HELD.metrics, {}, None
    _log_batches(held, client)
    return sum(len(metrics) for metrics in held.values())


def _send_held() -> None:
    """Send what is held, and go on holding."""
    with _HELD.lock:
        held, _HELD.metrics = _HELD.metrics, {}
    _log_batches(held)


def _log_batches(by_run: dict[str, list[Metric]], client: MlflowClient | None = None) -> None:
    if not by_run:
        return
    client = client or MlflowClient()
    for run_id, metrics in by_run.items():
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])


class MlflowMetricsBatchDataset(MlflowMetricsHistoryDataset):
    """:class:`MlflowMetricsHistoryDataset` whose save is one ``log_batch`` per 1,000 metrics
    (held to the end of a Kedro run, see the module)."""

    def _load(self) -> dict:
        _send_held()
        return super()._load()

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
        with _HELD.lock:
            if run_id == _HELD.run_id:
                _HELD.metrics.setdefault(run_id, []).extend(metrics)
                return
        _log_batches({run_id: metrics})
