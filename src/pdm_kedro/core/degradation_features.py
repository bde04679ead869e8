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
- ``signature``: one health indicator per failure mode of the machine's config, combining the
  sensors that mode is known to move: the noise-weighted least-squares size of the mode's
  signature (its ``level`` per sensor, in sensor units at failure) in the reading's deviation from
  the healthy reference of its operating regime (fitted on the first hours after each repair of
  the train split, :func:`fit_signature`). 0 is a healthy machine, 1 the signature's size at
  failure: an estimate of how far the mode has progressed. Each reading's indicator is clipped
  (a sensor fault must not look like wear), then averaged and sloped over trailing windows; the
  ``best`` columns follow the mode that explains the deviation most. Needs each reading's
  operating regime (``regimes``) when the data have one.

Only numpy is imported: this module runs on an edge device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pdm_kedro.core.window_features import forward_fill, rolling_stats

GROUPS = ("long", "episode", "signature")
POOLED = "__pooled__"


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
    settings = {
        "groups": groups,
        "long_hours": long_hours,
        "long_rows": max(2, round(long_hours * rows_per_hour)),
        "baseline_hours": baseline_hours,
        "baseline_rows": max(2, round(baseline_hours * rows_per_hour)),
        "rows_per_hour": float(rows_per_hour),
    }
    if "signature" in groups:
        sig = dict(params.get("signature") or {})
        mean_hours = [float(h) for h in sig.get("mean_hours", [12.0, 48.0])]
        slope_hours = [float(h) for h in sig.get("slope_hours", [48.0, long_hours])]
        clip = [float(v) for v in sig.get("clip", [-0.5, 1.5])]
        if not mean_hours or not slope_hours or len(clip) != 2 or clip[0] >= clip[1]:
            raise ValueError(
                "features.degradation.signature: mean_hours and slope_hours need at least one "
                f"window each and clip is [low, high] with low < high (got {sig})"
            )
        settings["signature_settings"] = {
            "mean_hours": mean_hours,
            "mean_rows": [max(2, round(h * rows_per_hour)) for h in mean_hours],
            "slope_hours": slope_hours,
            "slope_rows": [max(2, round(h * rows_per_hour)) for h in slope_hours],
            "clip": clip,
            "reference_hours": float(sig.get("reference_hours", 48.0)),
        }
    return settings


def settings_feature_names(sensors: Sequence[str], settings: dict[str, Any] | None) -> list[str]:
    """:func:`degradation_feature_names` for stored settings (none: no columns), then the
    ``signature`` columns of the fitted modes (:func:`signature_feature_names`)."""
    if not settings or not settings.get("groups"):
        return []
    names = degradation_feature_names(
        sensors,
        [g for g in settings["groups"] if g != "signature"],
        f"{settings['long_hours']:g}h",
        f"{settings['baseline_hours']:g}h",
    )
    return names + signature_feature_names(settings)


def signature_feature_names(settings: dict[str, Any] | None) -> list[str]:
    """The ``signature`` columns, in order: per fitted mode its indicator's trailing means and
    slopes, then the ``best`` mode's (no fitted modes: none)."""
    fitted = (settings or {}).get("signature")
    if not fitted or not fitted.get("modes"):
        return []
    options = settings["signature_settings"]
    means = [f"mean_{h:g}h" for h in options["mean_hours"]]
    slopes = [f"slope_{h:g}h" for h in options["slope_hours"]]
    names = [f"hi_{mode}__{stat}" for mode in fitted["modes"] for stat in means + slopes]
    return names + [f"hi_best__{stat}" for stat in means[-1:] + slopes]


def history_rows(settings: dict[str, Any] | None) -> int:
    """Readings the last row's degradation features depend on (0 without groups). The
    ``episode`` group needs the readings from the episode start on top of this."""
    if not settings or not settings.get("groups"):
        return 0
    rows = int(settings["long_rows"])
    if signature_feature_names(settings):
        options = settings["signature_settings"]
        rows = max(rows, *options["mean_rows"], *options["slope_rows"])
    return rows


def needs_episode_start(settings: dict[str, Any] | None) -> bool:
    """Whether the features are relative to the last repair (readings from the episode start)."""
    return bool(settings) and "episode" in settings.get("groups", [])


def degradation_block(
    readings: np.ndarray,
    median: np.ndarray,
    scale: np.ndarray,
    settings: dict[str, Any] | None,
    regimes: Sequence[Any] | np.ndarray | None = None,
) -> np.ndarray:
    """The degradation columns of one episode from its raw readings (NaN allowed) and the
    train-fitted median/scale: the same forward fill and z-score as ``episode_features``.
    ``regimes`` (each reading's operating regime) is read by the ``signature`` group only."""
    raw = np.asarray(readings, dtype=np.float64)
    if not settings or not settings.get("groups"):
        return np.empty((raw.shape[0], 0))
    filled = forward_fill(raw, median)
    z = (filled - median) / scale
    block = degradation_features(
        z,
        settings["rows_per_hour"],
        [g for g in settings["groups"] if g != "signature"],
        settings["long_rows"],
        settings["baseline_rows"],
    )
    if not signature_feature_names(settings):
        return block
    return np.column_stack([block, signature_features(filled, regimes, settings)])


def fit_signature(
    readings: np.ndarray,
    regimes: Sequence[Any] | np.ndarray | None,
    episode_starts: np.ndarray,
    sensors: Sequence[dict[str, Any]],
    failure_modes: dict[str, dict[str, dict[str, float]]],
    settings: dict[str, Any],
) -> dict[str, Any] | None:
    """The ``signature`` group's constants, fitted on the train split (stored with the
    baselines and in the edge manifest).

    Args:
        readings: (n, sensors) raw train readings, episodes in time order (NaN allowed).
        regimes: each row's operating regime (None: one pooled reference).
        episode_starts: row index of each episode's first reading.
        sensors: per sensor ``name``, ``nominal`` (None: the healthy reference's level),
            ``noise`` (None: the baseline's robust scale).
        failure_modes: mode -> sensor -> ``{"level": ...}`` (the machine config's signatures).
        settings: :func:`degradation_settings` with the ``signature`` group.

    Returns ``None`` when no mode moves a sensor's level (nothing to indicate). The healthy
    reference of a regime is the median of its readings in the first ``reference_hours`` after
    each repair; a regime without such rows uses the pooled one.
    """
    options = settings["signature_settings"]
    raw = np.asarray(readings, dtype=np.float64)
    n = raw.shape[0]
    head = max(1, round(options["reference_hours"] * settings["rows_per_hour"]))
    starts = np.asarray(episode_starts, dtype=np.int64)
    ends = np.r_[starts[1:], n]
    early = np.zeros(n, dtype=bool)
    for a, b in zip(starts, ends, strict=True):
        early[a : min(b, a + head)] = True
    pooled = _nanmedian_columns(raw[early])
    reference: dict[str, list[float]] = {POOLED: pooled.tolist()}
    if regimes is not None:
        labels = np.asarray(regimes).astype(str)
        for regime in sorted(set(labels[early].tolist())):
            level = _nanmedian_columns(raw[early & (labels == regime)])
            reference[regime] = np.where(np.isfinite(level), level, pooled).tolist()
    names = [s["name"] for s in sensors]
    weight = np.array([1.0 / max(float(s["noise"]), 1e-12) ** 2 for s in sensors])
    modes, directions = [], []
    for mode, signature in failure_modes.items():
        direction = np.zeros(len(names))
        for j, sensor in enumerate(sensors):
            level = float((signature.get(sensor["name"]) or {}).get("level", 0.0))
            nominal = sensor.get("nominal")
            size = abs(float(nominal)) if nominal else abs(float(pooled[j]))
            direction[j] = (size if size > 0 else float(sensor["noise"])) * level
        if np.any(direction != 0):
            modes.append(mode)
            directions.append(direction.tolist())
    if not modes:
        return None
    return {
        "modes": modes,
        "sensors": names,
        "direction": directions,
        "weight": weight.tolist(),
        "reference": reference,
        "fitted_on": {"split": "train", "reference_rows": int(early.sum())},
    }


def _nanmedian_columns(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape[1], np.nan)
    for j in range(x.shape[1]):
        col = x[:, j][np.isfinite(x[:, j])]
        if col.size:
            out[j] = float(np.median(col))
    return np.where(np.isfinite(out), out, 0.0) if x.shape[0] else out


def signature_features(
    filled: np.ndarray, regimes: Sequence[Any] | np.ndarray | None, settings: dict[str, Any]
) -> np.ndarray:
    """The ``signature`` columns of one episode (forward-filled raw readings, time order), in
    the order of :func:`signature_feature_names`."""
    fitted = settings["signature"]
    options = settings["signature_settings"]
    x = np.asarray(filled, dtype=np.float64)
    n = x.shape[0]
    reference = fitted["reference"]
    pooled = np.asarray(reference[POOLED], dtype=np.float64)
    if len(reference) > 1:
        if regimes is None:
            raise ValueError(
                "the signature health indicators need each reading's operating regime: the "
                "reference was fitted per regime"
            )
        labels = np.asarray(regimes).astype(str)
        table = {k: np.asarray(v, dtype=np.float64) for k, v in reference.items()}
        expected = np.vstack([table.get(r, pooled) for r in labels]) if n else x
    else:
        expected = np.broadcast_to(pooled, x.shape)
    deviation = x - expected
    weight = np.asarray(fitted["weight"], dtype=np.float64)
    low, high = options["clip"]
    columns, means_last, slopes_by_mode, sizes = [], [], [], []
    for direction in fitted["direction"]:
        d = np.asarray(direction, dtype=np.float64)
        norm = float(np.sum(weight * d * d))
        indicator = np.clip(deviation @ (weight * d) / norm, low, high)[:, None]
        means = [rolling_stats(indicator, r, ("mean",))["mean"][:, 0] for r in options["mean_rows"]]
        slopes = [
            rolling_stats(indicator, r, ("slope",))["slope"][:, 0] for r in options["slope_rows"]
        ]
        columns += means + slopes
        means_last.append(means[-1])
        slopes_by_mode.append(slopes)
        sizes.append(np.sqrt(norm))
    # the mode whose signature explains the smoothed deviation most (largest weighted projection)
    last_means = np.column_stack(means_last)
    best = np.argmax(last_means * np.asarray(sizes)[None, :], axis=1)  # empty for no rows
    rows = np.arange(n)
    columns.append(last_means[rows, best])
    for k in range(len(options["slope_rows"])):
        stacked = np.column_stack([slopes[k] for slopes in slopes_by_mode])
        columns.append(stacked[rows, best])
    return np.column_stack(columns)


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
