"""Event-level evaluation, what a maintenance planner acts on, and bootstrap intervals.

Definitions (per test episode, rows in time order, numpy only):

- a *sustained alarm* at row t: the row-level alarm is on at ``k`` of the ``n`` readings up to
  and including t in the same episode (``k`` = ``sustained_readings``, ``n`` =
  ``window_readings``, default ``k``: k readings in a row); with ``n > k`` a reading or two
  below the threshold inside an alarm stretch does not end it and start a new one (a k-of-n
  debounce, as alarm management does for noisy signals);
- the *warning window* of a failure: the rows with ``rul <= horizon`` (the label's horizon)
  of an episode that ends in a failure (its last ``rul`` is 0);
- *lead time* of a failure: the RUL at the first sustained-alarm row inside its warning window
  (0 h when none: a missed failure); *warned* when the lead time is >= ``warning_lead_hours``;
- a *false alarm*: the start of a sustained-alarm stretch at a row outside every warning window
  (``rul > horizon``); the rate is per 1,000 operating hours (every test row counts its
  sampling interval);
- the bootstrap interval resamples whole test episodes with replacement (seeded) and takes the
  central ``level`` quantiles of the metric over the resamples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

EVENT_METRICS = ("warned_24h_fraction", "false_alarms_per_1000h", "median_lead_time_h")


def sustained(alarm: np.ndarray, episode: np.ndarray, k: int, n: int | None = None) -> np.ndarray:
    """True where the alarm is on at ``k`` or more of the last ``n`` readings of the same episode
    (the reading itself included; ``n`` None or ``k``: ``k`` readings in a row)."""
    alarm = np.asarray(alarm).astype(bool)
    episode = np.asarray(episode)
    k = max(int(k), 1)
    n = k if n is None else int(n)
    if n < k:
        raise ValueError(f"window_readings ({n}) must be >= sustained_readings ({k})")
    if not len(alarm):
        return alarm.copy()
    starts = np.r_[True, episode[1:] != episode[:-1]]  # first row of each run of an episode
    first = np.maximum.accumulate(np.where(starts, np.arange(len(alarm)), 0))
    total = np.r_[0, np.cumsum(alarm, dtype=np.int64)]
    row = np.arange(len(alarm))
    lo = np.maximum(row - n + 1, first)  # the window never reaches into the episode before
    return (total[row + 1] - total[lo]) >= k


def episode_events(
    alarm: np.ndarray,
    episode: np.ndarray,
    rul: np.ndarray,
    hours_per_row: float,
    horizon_hours: float,
    k: int,
    warning_lead_hours: float = 24.0,
    n: int | None = None,
) -> list[dict[str, Any]]:
    """One record per episode: ``episode_id``, ``failure`` (ends in a failure), ``lead_time_h``,
    ``warned`` (lead >= ``warning_lead_hours``), ``false_alarms`` and ``hours``; the sustained
    alarm is ``k`` of the last ``n`` readings (:func:`sustained`)."""
    episode = np.asarray(episode)
    rul = np.asarray(rul, dtype=np.float64)
    on = sustained(alarm, episode, k, n)
    records = []
    for value in dict.fromkeys(episode.tolist()):
        rows = np.flatnonzero(episode == value)
        ep_on, ep_rul = on[rows], rul[rows]
        failure = bool(len(rows)) and bool(ep_rul[-1] <= 1e-9)
        in_window = failure & (ep_rul <= horizon_hours)
        warned_rows = np.flatnonzero(ep_on & in_window)
        lead = float(ep_rul[warned_rows[0]]) if failure and len(warned_rows) else 0.0
        starts = ep_on & ~np.concatenate([[False], ep_on[:-1]])
        records.append(
            {
                "episode_id": value,
                "failure": failure,
                "lead_time_h": lead if failure else None,
                "warned": bool(failure and lead >= warning_lead_hours),
                "false_alarms": int(np.sum(starts & ~in_window)),
                "hours": float(len(rows) * hours_per_row),
            }
        )
    return records


def event_summary(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """``warned_24h_fraction``, ``false_alarms_per_1000h`` and ``median_lead_time_h`` of episode
    records (NaN where undefined: no failure, no operating hour)."""
    failures = [r for r in records if r["failure"]]
    hours = sum(r["hours"] for r in records)
    return {
        "warned_24h_fraction": (
            float(np.mean([r["warned"] for r in failures])) if failures else float("nan")
        ),
        "false_alarms_per_1000h": (
            1000.0 * sum(r["false_alarms"] for r in records) / hours if hours else float("nan")
        ),
        "median_lead_time_h": (
            float(np.median([r["lead_time_h"] for r in failures])) if failures else float("nan")
        ),
    }


def bootstrap_interval(
    groups: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    resamples: int,
    seed: int,
    level: float = 0.9,
) -> tuple[float | None, float | None]:
    """The central ``level`` interval of ``statistic(rows)`` over resamples of whole groups.

    ``groups`` gives each row's group (a test episode); ``statistic`` takes the row indices of a
    resample (a group drawn twice contributes its rows twice). None, None without two groups.
    """
    groups = np.asarray(groups)
    labels = list(dict.fromkeys(groups.tolist()))
    if len(labels) < 2 or resamples < 1:
        return None, None
    members = [np.flatnonzero(groups == g) for g in labels]
    rng = np.random.default_rng(int(seed))
    values = []
    for _ in range(int(resamples)):
        picks = rng.integers(len(labels), size=len(labels))
        value = statistic(np.concatenate([members[i] for i in picks]))
        if value is not None and np.isfinite(value):
            values.append(value)
    if not values:
        return None, None
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail])
    return float(lo), float(hi)


def records_interval(
    records: Sequence[dict[str, Any]], metric: str, resamples: int, seed: int, level: float
) -> tuple[float | None, float | None]:
    """Bootstrap interval of one :func:`event_summary` metric over the episode records."""
    index = np.arange(len(records))
    return bootstrap_interval(
        index,
        lambda rows: event_summary([records[i] for i in rows])[metric],
        resamples,
        seed,
        level,
    )
