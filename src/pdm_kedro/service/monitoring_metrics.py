"""Prometheus gauges of the monitoring pipeline's figures (drift, realised performance, the
retraining decision), read from each served machine's ``08_reporting/<machine>/monitoring.json``
and ``retraining_decision.json`` beside the models' data root, refreshed on every scrape.

Alerting rules on them: ``deploy/prometheus/pdm_alerts.yml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

from pdm_kedro.service.metrics import GAUGE_MODE

DRIFT_FLAGGED = Gauge(
    "pdm_drift_flagged",
    "1 when the newest monitoring window of the machine flags input drift (0 otherwise).",
    ["machine"],
    **GAUGE_MODE,
)
DRIFT_SENSORS = Gauge(
    "pdm_drift_sensors",
    "Sensors flagged as drifted in the newest monitoring window.",
    ["machine"],
    **GAUGE_MODE,
)
DRIFT_KS_RATIO = Gauge(
    "pdm_drift_ks_ratio",
    "Largest sensor KS statistic over its calibrated threshold in the newest window (>1: above).",
    ["machine"],
    **GAUGE_MODE,
)
PERFORMANCE_RATIO = Gauge(
    "pdm_performance_ratio",
    "Realised headline over the champion's test figure (worse-is-higher: RMSE ratio, "
    "F1 test/realised), newest window with matured labels.",
    ["machine", "family"],
    **GAUGE_MODE,
)
RETRAIN_DECIDED = Gauge(
    "pdm_retraining_decided",
    "1 when the newest retraining decision of the machine says retrain.",
    ["machine"],
    **GAUGE_MODE,
)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def refresh(models_root: Path, machine_ids: list[str]) -> None:
    """Set the gauges of every served machine from its newest monitoring report (if any)."""
    reporting = Path(models_root).parent / "08_reporting"
    for machine_id in machine_ids:
        report = _read(reporting / machine_id / "monitoring.json")
        if report and report.get("windows"):
            _set_from_report(machine_id, report)
        decision = _read(reporting / machine_id / "retraining_decision.json")
        if decision is not None:
            RETRAIN_DECIDED.labels(machine_id).set(1.0 if decision.get("retrain") else 0.0)


def _set_from_report(machine_id: str, report: dict[str, Any]) -> None:
    drifted = [w for w in report["windows"] if w.get("drift")]
    if drifted:
        drift = drifted[-1]["drift"]
        DRIFT_FLAGGED.labels(machine_id).set(1.0 if drift["flagged"] else 0.0)
        DRIFT_SENSORS.labels(machine_id).set(len(drift["drifted_sensors"]))
        ratios = [
            v["ks"] / v["thresholds"]["ks"]
            for v in drift["sensors"].values()
            if v.get("ks") is not None and v["thresholds"].get("ks")
        ]
        if ratios:
            DRIFT_KS_RATIO.labels(machine_id).set(max(ratios))
    test = report["champion"]["test"]
    for window in reversed(report["windows"]):
        perf = window.get("performance") or {}
        cls, reg = perf.get("classification"), perf.get("regression")
        if cls is None and reg is None:
            continue
        if cls and test["classification"].get("f1"):
            PERFORMANCE_RATIO.labels(machine_id, "classification").set(
                test["classification"]["f1"] / max(cls["f1"], 1e-9)
            )
        if reg and test["regression"].get("rmse"):
            PERFORMANCE_RATIO.labels(machine_id, "regression").set(
                reg["rmse"] / test["regression"]["rmse"]
            )
        break
