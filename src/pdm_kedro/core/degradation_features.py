"""Degradation features a reliability engineer reads, in pure numpy (training and edge).

Works on one episode at a time (rows in time order, the first row right after a repair) and uses
only the current and earlier rows. Takes the whole history and returns a row per reading, so a
last-row path can call it on the tail of the history.

Groups (each optional, see :func:`degradation_feature_names`):

- ``long``: trailing windows of days (e.g. 168 h) of each sensor's z-score: mean and slope, and
  the slope of the fleet-style health index (mean |z|) over that window. Needs only the last
  ``long_rows`` readings.
- ``episode``: relative to the last repair (the episode start): operating hours since it, each
  sensor's shift from its own post-repair baseline (mean z over the first ``baseline_rows`` of the
  episode; expanding before that) and the health index of those shifts. Needs the readings from
  the episode start (the edge's ``from_episode_start``).

Only numpy is imported: this module runs on an edge device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pdm_kedro.core.window_features import forward_fill, rolling_stats

GROUPS = ("long", "episode")


def degradation_settings(params: dict[str, Any] | None, rows_per_hour: float) -> dict[str, Any]:
    """The feature stage's ``degradation`` parameters in rows (stored with the baselines and in
    the edge manifest): ``groups``, ``long_hours``/``long_rows``, ``baseline_hours``/
    ``baseline_rows``, ``rows_per_hour``. No parameters or no groups: ``groups`` is empty."""
    params = params or {}
    groups = [str(g) for g in params.get("groups") or []]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(
            f"features.degradation.groups: unknown groups {unknown} (known: {list(GROUPS)})"
        )
    long_hours = float(params.get("long_window_hours", 168.0))
    baseline_hours = float(params.get("baseline_hours", 24.0))
    return {
        "groups": groups,
        "long_hours": long_hours,
        "long_rows": max(2, round(long_hours * rows_per_hour)),
        "baseline_hours": baseline_hours,
        "baseline_rows": max(2, round(baseline_hours * rows_per_hour)),
        "rows_per_hour": float(rows_per_hour),
    }


def settings_feature_names(sensors: Sequence[str], settings: dict[str, Any] | None) -> list[str]:
    """:func:`degradation_feature_names` for stored settings (none: no columns)."""
    if not settings or not settings.get("groups"):
        return []
    return degradation_feature_names(
        sensors,
        settings["groups"],
        f"{settings['long_hours']:g}h",
        f"{settings['baseline_hours']:g}h",
    )


def history_rows(settings: dict[str, Any] | None) -> int:
    """Readings the last row's degradation features depend on (0 without groups). The
    ``episode`` group needs the readings from the episode start on top of this."""
    if not settings or not settings.get("groups"):
        return 0
    return int(settings["long_rows"])


def needs_episode_start(settings: dict[str, Any] | None) -> bool:
    """Whether the features are relative to the last repair (readings from the episode start)."""
    return bool(settings) and "episode" in settings.get("groups", [])


def degradation_block(
    readings: np.ndarray,
    median: np.ndarray,
    scale: np.ndarray,
    settings: dict[str, Any] | None,
) -> np.ndarray:
    """The degradation columns of one episode from its raw readings (NaN allowed) and the
    train-fitted median/scale: the same forward fill and z-score as ``episode_features``."""
    raw = np.asarray(readings, dtype=np.float64)
    if not settings or not settings.get("groups"):
        return np.empty((raw.shape[0], 0))
    z = (forward_fill(raw, median) - median) / scale
    return degradation_features(
        z,
        settings["rows_per_hour"],
        settings["groups"],
        settings["long_rows"],
        settings["baseline_rows"],
    )


def degradation_feature_names(
    sensors: Sequence[str], groups: Sequence[str], long_label: str, baseline_label: str
) -> list[str]:
    """Column names produced by :func:`degradation_features`, in order."""
    names: list[str] = []
    if "long" in groups:
        names += [f"{s}__zmean_{long_label}" for s in sensors]
        names += [f"{s}__zslope_{long_label}" for s in sensors]
        names += [f"health_index__abs_z_slope_{long_label}"]
    if "episode" in groups:
        names += ["hours_since_repair"]
        names += [f"{s}__shift_{baseline_label}" for s in sensors]
        names += [f"health_shift_{baseline_label}", f"health_shift__slope_{long_label}"]
    return names


def degradation_features(
    z: np.ndarray,
    rows_per_hour: float,
    groups: Sequence[str],
    long_rows: int,
    baseline_rows: int,
) -> np.ndarray:
    """Feature matrix of one episode, in the order of :func:`degradation_feature_names`.

    Args:
        z: (n, sensors) forward-filled z-scores ((reading - train median) / train scale) of one
            episode in time order.
        rows_per_hour: the machine's sampling rate (hours since repair = row index / rate;
            the first row of ``z`` must then be the episode's first reading).
        groups: which groups to compute (``long``, ``episode``).
        long_rows: the long trailing window in rows.
        baseline_rows: rows at the episode start that form each sensor's post-repair baseline.
    """
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    blocks: list[np.ndarray] = []
    if "long" in groups:
        stats = rolling_stats(z, int(long_rows), ("mean", "slope"))
        health = np.mean(np.abs(z), axis=1, keepdims=True)
        h_slope = rolling_stats(health, int(long_rows), ("slope",))["slope"]
        blocks += [stats["mean"], stats["slope"], h_slope]
    if "episode" in groups:
        age = np.arange(n, dtype=np.float64)[:, None] / float(rows_per_hour)
        head = min(int(baseline_rows), n)
        expanding = np.cumsum(z[:head], axis=0) / np.arange(1, head + 1)[:, None]
        base = np.vstack([expanding, np.broadcast_to(expanding[-1:], (n - head, z.shape[1]))])
        shift = z - base
        health = np.mean(np.abs(shift), axis=1, keepdims=True)
        # smooth before the slope: a single reading's noise is not degradation
        smooth = rolling_stats(health, max(2, int(baseline_rows)), ("mean",))["mean"]
        h_slope = rolling_stats(smooth, int(long_rows), ("slope",))["slope"]
        blocks += [age, shift, smooth, h_slope]
    if not blocks:
        return np.empty((n, 0))
    return np.column_stack(blocks)
