"""Monitoring of one machine: drift per sensor and model feature, prediction drift, data quality
per batch, realised performance on matured labels, model age, and the retraining decision.

Windows: one per scored day, the trailing ``monitoring.window_days`` days (drift) and
``monitoring.performance_window_days`` days (performance). Drift thresholds come from chunks of
the training reference (:class:`pdm_kedro.core.drift.DriftReference`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pdm_kedro import contract as c
from pdm_kedro.core.drift import FLAGGING, DriftReference
from pdm_kedro.edge.bundle import EdgeBundle
from pdm_kedro.evaluation.report import frame_fingerprint
from pdm_kedro.fleet import parse_machine

logger = logging.getLogger(__name__)

DAY = "%Y-%m-%d"
TRIGGERS = ("age", "performance", "drift", "data", "manual")
RUL_VALUE, RUL_MODEL_VALUE = "rul_hours.value", "rul_hours.model_value"
# the prediction-log column of each family's model output and the test-prediction column it is
# compared with (prediction drift). The RUL model's own value, not the served answer (capped
# while the failure alarm is on): monitoring judges each model against its own test figures
PREDICTIONS = {
    "classification": ("failure.probability", "probability"),
    "regression": (RUL_MODEL_VALUE, "rul_predicted"),
}


def regime_adjusted(frame: pd.DataFrame, medians: pd.DataFrame, sensors: list[str]) -> pd.DataFrame:
    """Readings minus the training median of the sensor in the row's operating regime (a regime
    training never saw: the overall training median), so a week with an unusual regime mix is not
    drift while a shifted sensor still is."""
    out = frame[[c.TIMESTAMP, c.REGIME]].copy()
    overall = medians.loc["__all__"]
    rows = medians.reindex(frame[c.REGIME].astype(str)).fillna(overall)
    out[sensors] = frame[sensors].to_numpy(dtype=np.float64) - rows[sensors].to_numpy()
    return out


def _regime_medians(train: pd.DataFrame, sensors: list[str]) -> pd.DataFrame:
    medians = train.groupby(train[c.REGIME].astype(str))[sensors].median()
    medians.loc["__all__"] = train[sensors].median()
    return medians


def _metric(metrics: dict, name: str) -> float | None:
    for entry in metrics.get("metrics", []):
        if entry["metric"] == name:
            return float(entry["value"])
    return None


def _interval(metrics: dict, name: str) -> list[float] | None:
    """The champion's bootstrap interval on test (``value_lo`` / ``value_hi``), if it has one."""
    for entry in metrics.get("metrics", []):
        if entry["metric"] == name:
            lo, hi = entry.get("value_lo"), entry.get("value_hi")
            return None if lo is None or hi is None else [float(lo), float(hi)]
    return None


def served_metrics(manifest: dict[str, Any], family: str, fallback: dict) -> dict:
    """The served champion's own test metrics (its edge manifest's ``metrics.test``) as a metrics
    document (``{"metrics": [...]}``); ``fallback`` (the family's last metrics document) when the
    manifest has none. After a retraining that promoted nothing the last metrics document is the
    kept challenger's, not the champion's."""
    rows = (((manifest.get("models") or {}).get(family) or {}).get("metrics") or {}).get("test")
    return {"metrics": rows} if rows else fallback


def data_until(*frames: pd.DataFrame) -> pd.Timestamp | None:
    """The newest timestamp of the last training run's data (None when there is none)."""
    stamps = [pd.to_datetime(f[c.TIMESTAMP]).max() for f in frames if f is not None and len(f)]
    stamps = [t for t in stamps if not pd.isna(t)]
    return max(stamps) if stamps else None


def count_labelled_after(labels_by_day: dict[str, Any], until: pd.Timestamp | None) -> int:
    """Matured labelled rows newer than ``until`` (all of them when None)."""
    total = 0
    for part in labels_by_day.values():
        frame = part() if callable(part) else part
        if frame is None or not len(frame):
            continue
        total += (
            len(frame) if until is None else int((pd.to_datetime(frame[c.TIMESTAMP]) > until).sum())
        )
    return total


def _f1(truth: np.ndarray, decision: np.ndarray) -> float:
    tp = float(np.sum(truth & decision))
    denom = float(np.sum(truth) + np.sum(decision))
    return 2 * tp / denom if denom else 0.0


def _day_of(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame[c.TIMESTAMP]).dt.strftime(DAY)


def data_quality(accounts: dict[str, dict]) -> dict[str, list[dict]]:
    """Per scored day, the accounts of the incoming files that brought its rows (file, rows in,
    scored, quarantined, ``rows_conserved``, missing rates), from ``scoring_batches``. A day sent
    twice (under another file name) shows both files, the second one's rows quarantined."""
    out: dict[str, list[dict]] = {}
    for account in accounts.values():
        summary = {k: v for k, v in account.items() if k not in ("days", "machine_id")}
        for day in account.get("days") or {}:
            out.setdefault(day, []).append(summary)
    return out


def _day_blocks(days: np.ndarray, n_days: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one day-block bootstrap resample (days drawn with replacement: rows of a
    day are autocorrelated, so days, not rows, are the units)."""
    codes, uniques = pd.factorize(days)
    members = [np.flatnonzero(codes == k) for k in range(len(uniques))]
    picked = rng.integers(0, len(uniques), n_days)
    return np.concatenate([members[k] for k in picked])


def _bootstrap(days: np.ndarray, statistic: Any, bootstrap: dict[str, Any]) -> list[float] | None:
    """The ``confidence`` interval of ``statistic(index)`` over day-block resamples (seeded);
    None with fewer than two days."""
    n_days = len(pd.unique(days))
    if n_days < 2:
        return None
    rng = np.random.default_rng(int(bootstrap["seed"]))
    values = [statistic(_day_blocks(days, n_days, rng)) for _ in range(int(bootstrap["resamples"]))]
    alpha = (1.0 - float(bootstrap["confidence"])) / 2
    lo, hi = np.quantile(np.asarray(values, dtype=np.float64), [alpha, 1 - alpha])
    return [float(lo), float(hi)]


def with_attainable_quorum(
    reference: DriftReference, checked: dict[str, dict], n_rows: int, min_statistics: int
) -> dict[str, dict]:
    """``checked`` (from ``reference.check``) with ``drifted`` decided among the statistics
    that can exceed their threshold on a window of ``n_rows`` rows.

    A bounded statistic (KS, PSI with its smoothing, Jensen-Shannon) cannot pass its maximum,
    the value it takes on a window wholly beyond the reference's range. Where the reference's
    healthy chunks vary so much that ``threshold_quantile`` x ``threshold_margin`` lands at or
    above that maximum (a sensor whose level wanders between episodes: KS threshold 1.16), the
    statistic is blind; counting it in the ``min_statistics`` quorum makes the sensor
    undetectable (a 20-sd offset never flagged). The quorum is ``min_statistics`` of the
    statistics that can vote (at least one); ``blind`` lists the others.
    """
    out = {}
    for col, entry in checked.items():
        values = reference.values[col]
        finite = values[np.isfinite(values)]
        if not len(finite) or n_rows < 1:
            out[col] = entry
            continue
        beyond = np.full(n_rows, finite.max() + 10.0 * max(reference.scales[col], 1e-12))
        ceiling = reference.window_statistics(col, beyond)
        thresholds = reference.thresholds[col]
        blind = [s for s in FLAGGING if np.isfinite(ceiling[s]) and thresholds[s] >= ceiling[s]]
        quorum = min(int(min_statistics), max(1, len(FLAGGING) - len(blind)))
        out[col] = entry | {
            "blind": blind,
            "quorum": quorum,
            "drifted": len(entry["above"]) >= quorum,
        }
    return out


def window_flag(
    drifted_sensors: list[str], drifted_features: list[str], min_drifted_features: int | None
) -> dict[str, bool]:
    """Is the drift window flagged: a sensor drifts, or at least ``min_drifted_features`` model
    features do (None: sensors only). Extra sensor noise leaves each sensor's distribution
    near its reference (the regime-adjusted level is unchanged) but moves the rolling
    statistics among the features."""
    by_features = min_drifted_features is not None and len(drifted_features) >= int(
        min_drifted_features
    )
    return {"flagged": bool(drifted_sensors) or by_features, "flagged_by_features": by_features}


def _performance(
    log: pd.DataFrame,
    labels: pd.DataFrame,
    rul_cap: float,
    monitoring: dict[str, Any],
) -> dict[str, Any]:
    """Realised performance on the matured labelled rows of a window: failure F1 (with its
    positives) and RUL RMSE/MAE (of the RUL model's own value), each with a day-block bootstrap
    interval (``*_interval``). None below ``min_labelled_rows``; classification also None below ``min_positives`` (the
    count is kept in ``positives``)."""
    joined = log.merge(labels, on=[c.TIMESTAMP, c.EPISODE], how="inner")
    joined = joined[joined["history_complete"]].reset_index(drop=True)
    out: dict[str, Any] = {"labelled_rows": len(joined)}
    if len(joined) < int(monitoring["min_labelled_rows"]):
        return out | {"classification": None, "regression": None}
    days = _day_of(joined).to_numpy()
    bootstrap = monitoring["bootstrap"]
    # failures whose horizon lies in the window: the independent events the figures rest on
    out["failures"] = failures = int(
        joined.loc[joined[c.FAILURE_WITHIN_HORIZON].astype(bool), c.EPISODE].nunique()
    )
    out["classification"] = None
    if "failure.decision" in joined:
        truth = joined[c.FAILURE_WITHIN_HORIZON].to_numpy().astype(bool)
        decision = joined["failure.decision"].to_numpy().astype(bool)
        out["positives"] = positives = int(truth.sum())
        if positives >= int(monitoring["min_positives"]):
            out["classification"] = {
                "f1": _f1(truth, decision),
                "f1_interval": _bootstrap(days, lambda i: _f1(truth[i], decision[i]), bootstrap),
                "positives": positives,
                "failures": failures,
            }
    out["regression"] = None
    if RUL_MODEL_VALUE in joined:  # the RUL model's own value (logs go through with_model_rul)
        err = joined[RUL_MODEL_VALUE].to_numpy() - np.minimum(joined[c.RUL].to_numpy(), rul_cap)
        out["regression"] = {
            "rmse": float(np.sqrt(np.mean(err**2))),
            "mae": float(np.mean(np.abs(err))),
            "rmse_interval": _bootstrap(
                days, lambda i: float(np.sqrt(np.mean(err[i] ** 2))), bootstrap
            ),
            "failures": failures,
        }
    return out


def _calibrated(
    name: str,
    reference: pd.DataFrame,
    columns: list[str],
    window_rows: int,
    options: dict[str, Any],
    stored: dict[str, Any],
    new: dict[str, dict],
) -> DriftReference:
    """The drift reference of ``columns``, its thresholds read from ``stored`` when an earlier
    run calibrated the same reference with the same options (else calibrated and put in
    ``new``): calibration is most of a monitoring run's cost and only changes with the champion."""
    key = json.dumps([columns, window_rows, options], sort_keys=True)
    fingerprint = frame_fingerprint(reference, columns)
    digest = hashlib.sha256(f"{key}|{fingerprint}".encode()).hexdigest()[:16]
    partition = f"{name}-{digest}"
    cached = stored.get(partition)
    cached = cached() if callable(cached) else cached
    thresholds = None
    if cached:
        thresholds = {
            col: {s: (float("inf") if v is None else float(v)) for s, v in t.items()}
            for col, t in cached["thresholds"].items()
        }
    ref = DriftReference(reference, columns, window_rows, thresholds=thresholds, **options)
    if not cached:
        new[partition] = {
            "columns": columns,
            "window_rows": window_rows,
            "options": options,
            "thresholds": {
                col: {s: (v if np.isfinite(v) else None) for s, v in t.items()}
                for col, t in ref.thresholds.items()
            },
        }
    return ref


def _window_days(days: list[str], i: int, n: int) -> list[str]:
    return days[max(0, i - n + 1) : i + 1]


def with_model_rul(log: pd.DataFrame) -> pd.DataFrame:
    """The log with the RUL model's own value in ``rul_hours.model_value`` (a log written before
    that column existed served the model's value as ``rul_hours.value``)."""
    if RUL_VALUE not in log:
        return log
    model = log[RUL_MODEL_VALUE] if RUL_MODEL_VALUE in log else pd.Series(np.nan, index=log.index)
    return log.assign(**{RUL_MODEL_VALUE: model.fillna(log[RUL_VALUE]).to_numpy()})


def _concat(partitions: dict[str, Any], names: list[str]) -> pd.DataFrame:
    frames = [partitions[n]() if callable(partitions[n]) else partitions[n] for n in names]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def monitor_machine(  # noqa: PLR0913, PLR0915
    validated_train: pd.DataFrame,
    features_train: pd.DataFrame,
    prediction_log: dict[str, Any],
    scored_features: dict[str, Any],
    scoring_batches: dict[str, Any],
    production_labels: dict[str, Any],
    monitoring_windows_seen: dict[str, Any],
    drift_calibration_seen: dict[str, Any],
    classification_metrics: dict,
    regression_metrics: dict,
    classification_test: pd.DataFrame,
    regression_test: pd.DataFrame,
    bundle: EdgeBundle,
    machine: dict[str, Any],
    monitoring: dict[str, Any],
    rul_cap_hours: float,
    validated_test: pd.DataFrame | None = None,
) -> tuple[dict[str, dict], dict[str, dict], dict[str, Any]]:
    """The windows of the scored days not monitored yet (``monitoring_windows``, one partition
    per day), the drift calibrations made by this run (``drift_calibration``, reused by later
    runs on the same reference) and ``monitoring.json`` of the machine: every window (stored and new) with drift by
    sensor and feature, prediction drift, data quality, realised performance beside the
    champion's test figures (the served bundle's), and model age. ``labelled_rows_new``: the
    matured labelled rows newer than the last training run's data (``validated_train``,
    ``validated_test``), what the ``data`` trigger counts.

    Incremental: a window uses only the days up to its own and the labels known by then, so a
    stored window never changes; only the new days' windows are computed, reading only the
    partitions they span (``prediction_log`` and ``scored_features`` load lazily).
    """
    spec = parse_machine(machine)
    rows_per_day = int(round(24 * spec.rows_per_hour))
    window_days = int(monitoring["window_days"])
    window_rows = window_days * rows_per_day
    options = {
        "bins": int(monitoring["bins"]),
        "step_fraction": float(monitoring["calibration_step_fraction"]),
        "max_chunks": int(monitoring.get("max_chunks", 40)),
        "quantile": float(monitoring["threshold_quantile"]),
        "margin": float(monitoring["threshold_margin"]),
    }
    min_stats = int(monitoring["min_statistics"])
    min_features = monitoring.get("min_drifted_features")
    min_features = None if min_features is None else int(min_features)
    manifest = bundle.manifest
    sensors = spec.sensor_names
    days = sorted(prediction_log or {})
    stored = {d: (v() if callable(v) else v) for d, v in (monitoring_windows_seen or {}).items()}
    todo = [i for i, d in enumerate(days) if d not in stored]
    accounts = {k: (v() if callable(v) else v) for k, v in (scoring_batches or {}).items()}
    quality = data_quality(accounts)
    labels_by_day = production_labels or {}
    classification_metrics = served_metrics(manifest, "classification", classification_metrics)
    regression_metrics = served_metrics(manifest, "regression", regression_metrics)
    champion = {
        "classification": {
            "f1": _metric(classification_metrics, "f1"),
            "f1_interval": _interval(classification_metrics, "f1"),
        },
        "regression": {
            "rmse": _metric(regression_metrics, "rmse"),
            "rmse_interval": _interval(regression_metrics, "rmse"),
            "mae": _metric(regression_metrics, "mae"),
        },
    }
    features = [f for f in manifest["feature_names"] if f in features_train]
    medians = _regime_medians(validated_train, sensors)
    new_windows: dict[str, dict] = {}
    new_calibration: dict[str, dict] = {}
    n_chunks = None
    if todo:
        adjusted_train = regime_adjusted(validated_train.sort_values(c.TIMESTAMP), medians, sensors)
        stored_cal = drift_calibration_seen or {}
        fence = monitoring.get("sensor_fence_iqr")
        sensor_options = options if fence is None else options | {"fence": float(fence)}
        sensor_ref = _calibrated(
            "sensors",
            adjusted_train,
            sensors,
            window_rows,
            sensor_options,
            stored_cal,
            new_calibration,
        )
        n_chunks = sensor_ref.n_chunks
        feature_ref = _calibrated(
            "features",
            features_train.sort_values(c.TIMESTAMP),
            features,
            window_rows,
            options,
            stored_cal,
            new_calibration,
        )
        pred_refs = {}
        for family, (_, test_col) in PREDICTIONS.items():
            test = classification_test if family == "classification" else regression_test
            if test_col in test:
                frame = test.rename(columns={test_col: family}).sort_values(c.TIMESTAMP)
                pred_refs[family] = _calibrated(
                    family,
                    frame,
                    [family],
                    min(window_rows, len(frame) // 2),
                    options,
                    stored_cal,
                    new_calibration,
                )
        perf_days = int(monitoring["performance_window_days"])
        logs: dict[str, pd.DataFrame] = {}  # day -> its log partition, loaded once

        def log_of(span: list[str]) -> pd.DataFrame:
            for d in span:
                if d not in logs:
                    logs[d] = with_model_rul(_concat(prediction_log, [d]))
            return pd.concat([logs[d] for d in span if len(logs[d])], ignore_index=True)

        labels_cache: dict[str, pd.DataFrame] = {}

        def labels_known(day: str, span: list[str]) -> pd.DataFrame:
            names = [d for d in labels_by_day if d <= day]
            for d in names:
                if d not in labels_cache:
                    labels_cache[d] = _concat(labels_by_day, [d])
            frames = [labels_cache[d] for d in names if len(labels_cache[d])]
            if not frames:
                return pd.DataFrame()
            known = pd.concat(frames, ignore_index=True)
            return known[_day_of(known).isin(span)]

        for i in todo:
            day = days[i]
            span = _window_days(days, i, window_days)
            entry: dict[str, Any] = {"day": day, "window": [span[0], span[-1]]}
            entry["complete"] = full = len(span) == window_days
            if full:
                window_log = log_of(span)
                adjusted = regime_adjusted(window_log, medians, sensors)
                feature_rows = _concat(
                    scored_features,
                    [n for n in sorted(scored_features or {}) if n[:10] in span],
                )
                sensor_drift = sensor_ref.check(adjusted, min_stats)
                if monitoring.get("blind_statistics_abstain", False):
                    sensor_drift = with_attainable_quorum(
                        sensor_ref, sensor_drift, len(adjusted), min_stats
                    )
                feature_drift = feature_ref.check(feature_rows, min_stats)
                pred_drift = {
                    family: ref.check(
                        window_log.rename(columns={PREDICTIONS[family][0]: family}), min_stats
                    )[family]
                    for family, ref in pred_refs.items()
                    if PREDICTIONS[family][0] in window_log
                }
                drifted_sensors = [s for s, v in sensor_drift.items() if v["drifted"]]
                drifted_features = [f for f, v in feature_drift.items() if v["drifted"]]
                entry["drift"] = {
                    **window_flag(drifted_sensors, drifted_features, min_features),
                    "drifted_sensors": drifted_sensors,
                    "drifted_features": len(drifted_features),
                    "features_checked": len(features),
                    "sensors": sensor_drift,
                    "features": {f: feature_drift[f] for f in drifted_features},
                    "predictions": pred_drift,
                }
            perf_span = _window_days(days, i, perf_days)
            labels = labels_known(day, perf_span)
            if len(labels):
                entry["performance"] = _performance(
                    log_of(perf_span), labels, rul_cap_hours, monitoring
                )
            else:
                entry["performance"] = {
                    "labelled_rows": 0,
                    "classification": None,
                    "regression": None,
                }
            entry["data_quality"] = quality.get(day)
            new_windows[day] = entry
    windows = [new_windows.get(d) or stored[d] for d in days]
    created = manifest.get("created_at")
    age_days = None
    if created:
        age_days = (datetime.now(UTC) - datetime.fromisoformat(created)).total_seconds() / 86400
    labelled_total = sum(len(_concat(labels_by_day, [d])) for d in labels_by_day)
    trained_through = data_until(validated_train, validated_test)
    labelled_new = count_labelled_after(labels_by_day, trained_through)
    report = {
        "machine_id": spec.machine_id,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "window_days": window_days,
        "performance_window_days": int(monitoring["performance_window_days"]),
        "reference": {
            "rows": len(validated_train),
            "chunks": n_chunks,
            "threshold_quantile": options["quantile"],
            "threshold_margin": options["margin"],
            "sensors": "regime-adjusted readings (minus the training median in the row's regime)",
            "sensor_fence_iqr": monitoring.get("sensor_fence_iqr"),
        },
        "champion": {
            "created_at": created,
            "age_days": None if age_days is None else round(age_days, 4),
            "versions": {
                f: {
                    "registered_model": e.get("registered_model"),
                    "registry_version": e.get("registry_version"),
                }
                for f, e in manifest["models"].items()
            },
            "test": champion,
        },
        "labelled_rows_total": labelled_total,
        "labelled_rows_new": labelled_new,
        "last_training_data_until": None
        if trained_through is None
        else trained_through.isoformat(),
        "batches": sorted(
            ({k: v for k, v in a.items() if k != "days"} for a in accounts.values()),
            key=lambda a: a["file"],
        ),
        "rows_conserved": all(a["rows_conserved"] for a in accounts.values()),
        "windows_computed": len(new_windows),
        "windows": windows,
    }
    flagged = sum(1 for w in windows if w.get("drift", {}).get("flagged"))
    logger.info(
        "%s: %d day(s) monitored (%d new window(s)), %d drift-flagged window(s), %d matured "
        "labelled rows",
        spec.machine_id,
        len(days),
        len(new_windows),
        flagged,
        labelled_total,
    )
    return new_windows, new_calibration, report


HEADLINES = {"classification": ("f1", True), "regression": ("rmse", False)}


def performance_verdict(
    family: str, realised: dict | None, test: dict, drop: float, min_failures: int = 1
) -> dict | None:
    """Is the realised headline more than ``drop`` worse than the champion's test figure, beyond
    the uncertainty of both? None when it cannot be judged (too few labelled rows or positives:
    the figure is null; fewer than ``min_failures`` failures in the window; or the champion has
    no test figure).

    A window's figures rest on the failures whose horizon it holds: with one failure, F1 is
    all or nothing (that failure caught or missed, a [0, 0] interval when missed), and the
    day-block interval cannot show how often a healthy champion misses one failure.

    The optimistic end of the realised window's bootstrap interval is compared with the
    pessimistic end of the champion's test interval (``value_lo`` / ``value_hi``), moved by
    ``drop``: F1 is worse when ``realised_hi < test_lo * (1 - drop)``, RMSE when
    ``realised_lo > test_hi * (1 + drop)``. A missing interval falls back to the point figure.
    """
    metric, higher_better = HEADLINES[family]
    value = (realised or {}).get(metric)
    ref = (test.get(family) or {}).get(metric)
    if value is None or ref is None:
        return None
    failures = realised.get("failures")
    if failures is not None and int(failures) < int(min_failures):
        return None
    r_lo, r_hi = realised.get(f"{metric}_interval") or [value, value]
    t_lo, t_hi = test[family].get(f"{metric}_interval") or [ref, ref]
    if higher_better:
        bound, limit = r_hi, t_lo * (1 - drop)
        worse = bound < limit
    else:
        bound, limit = r_lo, t_hi * (1 + drop)
        worse = bound > limit
    return {
        "metric": metric,
        "realised": value,
        "realised_bound": bound,
        "test": ref,
        "limit": limit,
        "worse": bool(worse),
    }


def min_failures_of(retraining: dict[str, Any], family: str) -> int:
    """``retraining.performance_min_failures[family]`` (1 when unset)."""
    return int((retraining.get("performance_min_failures") or {}).get(family, 1))


def decide_retraining(
    report: dict[str, Any], retraining: dict[str, Any], manual: bool = False
) -> dict[str, Any]:
    """The retraining decision of the machine (every family retrains together), with every
    trigger that fired and its reason: ``age``, ``performance``, ``drift``, ``data``, ``manual``."""
    reasons = []
    age = report["champion"]["age_days"]
    if age is not None and age > float(retraining["max_age_days"]):
        reasons.append({"trigger": "age", "detail": f"champion {age:.1f} days old"})
    windows = report["windows"]
    last = windows[-1] if windows else {}
    drop = float(retraining["performance_drop"])
    for family in ("classification", "regression"):
        verdict = performance_verdict(
            family,
            (last.get("performance") or {}).get(family),
            report["champion"]["test"],
            drop,
            min_failures_of(retraining, family),
        )
        if verdict and verdict["worse"]:
            reasons.append(
                {
                    "trigger": "performance",
                    "family": family,
                    "detail": f"{family} {verdict['metric']} {verdict['realised']:.3f} (interval "
                    f"bound {verdict['realised_bound']:.3f}) beyond {verdict['limit']:.3f}, the "
                    f"champion's test interval {drop:.0%} worse (test {verdict['test']:.3f})",
                }
            )
    n = int(retraining["drift_consecutive_windows"])
    run = 0
    for w in windows:
        run = run + 1 if w.get("drift", {}).get("flagged") else 0
    if run >= n:
        sensors = sorted({s for w in windows[-n:] for s in w["drift"]["drifted_sensors"]})
        reasons.append(
            {
                "trigger": "drift",
                "detail": f"drift in {run} consecutive windows ({', '.join(sensors)})",
            }
        )
    new = report.get("labelled_rows_new", report["labelled_rows_total"])
    if new >= int(retraining["min_new_labelled_rows"]):
        reasons.append(
            {
                "trigger": "data",
                "detail": f"{new} labelled rows newer than the last training's data",
            }
        )
    if manual:
        reasons.append({"trigger": "manual", "detail": "asked for"})
    return {
        "machine_id": report["machine_id"],
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "last_day": last.get("day"),
        "retrain": bool(reasons),
        "reasons": reasons,
    }


def plot_monitoring(report: dict[str, Any], retraining: dict[str, Any]) -> Figure:
    """Drift (largest sensor KS / its threshold) and realised performance per day, with the
    drift threshold (ratio 1) and the performance trigger lines drawn."""
    windows = report["windows"]
    days = [pd.Timestamp(w["day"]) for w in windows]
    ratio = []
    for w in windows:
        sensors = (w.get("drift") or {}).get("sensors") or {}
        r = [
            v["ks"] / v["thresholds"]["ks"]
            for v in sensors.values()
            if v["ks"] is not None and v["thresholds"]["ks"]
        ]
        ratio.append(max(r) if r else np.nan)
    fig = Figure(figsize=(9, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(days, ratio, marker="o", label="max sensor KS / threshold")
    top.axhline(1.0, color="red", linestyle="--", label="drift threshold")
    top.set_ylabel("drift ratio")
    top.legend(loc="upper left")
    drop = float(retraining["performance_drop"])
    test = report["champion"]["test"]

    def realised(family: str, metric: str) -> list[float]:
        values = [((w["performance"] or {}).get(family) or {}).get(metric) for w in windows]
        return [np.nan if v is None else v for v in values]

    def limit(family: str, metric: str, factor: float) -> float | None:
        ref = test[family].get(metric)
        if ref is None:
            return None
        lo, hi = test[family].get(f"{metric}_interval") or [ref, ref]
        return (lo if factor < 1 else hi) * factor

    bottom.plot(days, realised("classification", "f1"), marker="o", color="C1", label="realised F1")
    f1_limit = limit("classification", "f1", 1 - drop)
    if f1_limit is not None:
        bottom.axhline(
            f1_limit, color="C1", linestyle="--", label=f"F1 trigger (test lo -{drop:.0%})"
        )
    bottom.set_ylabel("F1")
    twin = bottom.twinx()
    twin.plot(
        days, realised("regression", "rmse"), marker="s", color="C2", label="realised RMSE (h)"
    )
    rmse_limit = limit("regression", "rmse", 1 + drop)
    if rmse_limit is not None:
        twin.axhline(
            rmse_limit, color="C2", linestyle=":", label=f"RMSE trigger (test hi +{drop:.0%})"
        )
    twin.set_ylabel("RMSE (h)")
    bottom.legend(loc="upper left")
    twin.legend(loc="upper right")
    fig.suptitle(f"{report['machine_id']}: monitoring")
    fig.autofmt_xdate()
    return fig
