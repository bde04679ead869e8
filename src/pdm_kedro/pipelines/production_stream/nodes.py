"""The production stream: the simulator (:mod:`pdm_kedro.core.simulator`) continued after the
test period, in daily batches, with labels that arrive late and an optional drift scenario.

Scenarios (``production_stream.scenario``, from ``start_day`` on, with a ``size``):

- ``none``: the same process as training;
- ``sensor_offset``: one sensor (``sensor``, default the first) reads ``size`` noise sd higher
  (a recalibrated sensor);
- ``sensor_noise``: every sensor's noise grows by ``size`` times its noise sd (an extra
  independent noise term);
- ``new_regime``: the operating regimes' loads are multiplied by ``1 + size`` (a new operating
  point; the change starts with an overhaul, i.e. a new episode);
- ``faster_wear``: machine lives are divided by ``1 + size`` (a changed failure process; also
  from an overhaul).

Labels arrive late, as in a plant: the rows of an episode get their labels (``rul``,
``failure_within_horizon``, ``anomaly``) on the day the episode fails; an episode still running
at the end of the stream (or cut by the overhaul of a scenario) has none yet.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.core.simulator import machine_rng, simulate_machine_history_and_hidden_state
from pdm_kedro.fleet import parse_machine

logger = logging.getLogger(__name__)

DAY = "%Y-%m-%d"
SCENARIOS = ("none", "sensor_offset", "new_regime", "faster_wear", "sensor_noise")
LABEL_COLUMNS = [c.RUL, c.FAILURE_WITHIN_HORIZON, c.ANOMALY]
SEGMENTED = ("new_regime", "faster_wear")  # scenarios that change the simulated process


def _changed_simulation(simulation: dict, scenario: str, size: float) -> dict:
    sim = copy.deepcopy(simulation)
    if scenario == "new_regime":
        sim["regimes"] = [{**r, "load": r["load"] * (1.0 + size)} for r in sim["regimes"]]
    elif scenario == "faster_wear":
        sim["life_hours"] = {
            k: (v / (1.0 + size) if k != "shape" else v) for k, v in sim["life_hours"].items()
        }
    return sim


def _segment(
    machine: dict,
    simulation: dict,
    labels: dict,
    start: pd.Timestamp,
    days: int,
    seed: int,
    first_episode: int,
) -> pd.DataFrame:
    """``days`` days of readings and labels from ``start``, episodes numbered from
    ``first_episode``; an episode cut at the end keeps no failure (its ``rul`` is unknown).

    The simulator fills its rows with whole run-to-failure episodes, the last one absorbing the
    remainder: it would fail exactly at the segment's end, whatever its life. So the segment is
    simulated a longest plus a shortest life beyond its end and cut there: every episode runs
    its own life, and the one running at the end (or at a scenario's overhaul) is cut,
    unlabelled, as in a plant."""
    spec = parse_machine(machine)
    life = simulation["life_hours"]
    beyond = float(life["max"]) + float(life["min"])  # the absorbing episode starts past the end
    rows = int(round((days * 24 + beyond) * spec.rows_per_hour))
    sim = {**simulation, "seed": seed, "rows_per_machine": rows, "start": str(start)}
    history, _ = simulate_machine_history_and_hidden_state(machine, sim, labels)
    end = start + pd.Timedelta(days=days)
    history = history[history[c.TIMESTAMP] < end].copy()
    history[c.EPISODE] = history[c.EPISODE] + first_episode
    return history.reset_index(drop=True)


def simulate_production_stream(
    raw_test: pd.DataFrame,
    machine: dict[str, Any],
    simulation: dict[str, Any],
    labels: dict[str, Any],
    stream: dict[str, Any],
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, Any]]:
    """Daily incoming batches (``<YYYY-MM-DD>``: the raw contract without labels), the labels
    known on each day (one partition per day, possibly empty) and a report of the stream.

    ``stream``: ``days``, ``scenario`` (one of :data:`SCENARIOS`), ``start_day`` (day index the
    change starts), ``size``, ``seed``, optional ``sensor`` and ``first_day`` (default: the day
    after the test period's last reading).
    """
    spec = parse_machine(machine)
    scenario = str(stream.get("scenario", "none"))
    if scenario not in SCENARIOS:
        raise ValueError(
            f"{spec.machine_id}: production_stream.scenario '{scenario}' is not one of "
            f"{', '.join(SCENARIOS)}"
        )
    days, start_day = int(stream["days"]), int(stream.get("start_day", 0))
    size, seed = float(stream.get("size", 0.0)), int(stream["seed"])
    if days < 1 or not 0 <= start_day:
        raise ValueError(f"{spec.machine_id}: production_stream needs days >= 1, start_day >= 0")
    first_day = (
        pd.Timestamp(stream["first_day"])
        if stream.get("first_day")
        else pd.Timestamp(raw_test[c.TIMESTAMP].max()).normalize() + pd.Timedelta(days=1)
    )
    first_episode = int(raw_test[c.EPISODE].max()) + 1
    changed = scenario != "none" and start_day < days
    if changed and scenario in SEGMENTED and start_day > 0:
        before = _segment(machine, simulation, labels, first_day, start_day, seed, first_episode)
        after = _segment(
            machine,
            _changed_simulation(simulation, scenario, size),
            labels,
            first_day + pd.Timedelta(days=start_day),
            days - start_day,
            seed + 1,
            int(before[c.EPISODE].max()) + 1,
        )
        history = pd.concat([before, after], ignore_index=True)
    else:
        sim = _changed_simulation(simulation, scenario, size) if changed else simulation
        history = _segment(machine, sim, labels, first_day, days, seed, first_episode)
    change_at = first_day + pd.Timedelta(days=start_day)
    affected = (history[c.TIMESTAMP] >= change_at).to_numpy() if changed else None
    if changed and scenario in ("sensor_offset", "sensor_noise"):
        rng = machine_rng(seed + 2, spec.machine_id)
        names = (
            [stream.get("sensor") or spec.sensor_names[0]]
            if scenario == "sensor_offset"
            else spec.sensor_names
        )
        for sensor in spec.sensors:
            if sensor.name not in names:
                continue
            col = history[sensor.name].to_numpy(dtype=np.float64).copy()
            if scenario == "sensor_offset":
                col[affected] += size * sensor.noise
            else:
                col[affected] += rng.normal(0.0, size * sensor.noise, int(affected.sum()))
            history[sensor.name] = col
    # labels: an episode's rows are labelled on the day it fails (its last row has rul 0 and it
    # was not cut at a segment's end)
    last = history.groupby(c.EPISODE)[[c.TIMESTAMP, c.RUL]].last()
    failed = last[last[c.RUL] == 0]
    day_of = pd.to_datetime(history[c.TIMESTAMP]).dt.strftime(DAY)
    day_names = [(first_day + pd.Timedelta(days=d)).strftime(DAY) for d in range(days)]
    label_day = history[c.EPISODE].map(failed[c.TIMESTAMP].dt.strftime(DAY))
    label_frame = history[[c.TIMESTAMP, c.EPISODE, *LABEL_COLUMNS]]
    readings = history.drop(columns=LABEL_COLUMNS)
    batches, known = {}, {}
    for day in day_names:
        batches[day] = readings[day_of == day].reset_index(drop=True)
        known[day] = label_frame[label_day == day].reset_index(drop=True)
    batches = {d: b for d, b in batches.items() if len(b)}
    report = {
        "machine_id": spec.machine_id,
        "scenario": scenario,
        "size": size,
        "seed": seed,
        "days": days,
        "first_day": day_names[0],
        "last_day": day_names[-1],
        "change_day": change_at.strftime(DAY) if changed else None,
        "sensor": (stream.get("sensor") or spec.sensor_names[0])
        if scenario == "sensor_offset"
        else None,
        "rows": len(readings),
        "episodes": int(history[c.EPISODE].nunique()),
        "failures": len(failed),
        "labelled_rows": int(label_day.notna().sum()),
    }
    logger.info(
        "%s: production stream of %d days (%s), %d rows, %d failures with labels",
        spec.machine_id,
        days,
        scenario,
        len(readings),
        len(failed),
    )
    return batches, known, report
