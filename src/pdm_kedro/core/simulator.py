"""Simulate run-to-failure sensor histories for one machine (shared by ``data_generation``, which
simulates the training history, and ``production_stream``, which continues it after the test
period: no pipeline imports another).

Labels come from the latent health state (wear) of the simulator, never from thresholds on the
readings: ``rul`` is the time until the latent wear reaches 1 (failure), ``anomaly`` marks the
injected sensor faults and process upsets.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.fleet import MachineSpec, parse_machine

logger = logging.getLogger(__name__)

# The simulator's hidden state columns (for the measured ceiling only) are in the contract.
LATENT_WEAR, FAILURE_MODE, HOURS_SINCE_REPAIR = c.LATENT_WEAR, c.FAILURE_MODE, c.HOURS_SINCE_REPAIR
HIDDEN_COLUMNS = c.HIDDEN_COLUMNS


def machine_rng(seed: int, machine_id: str) -> np.random.Generator:
    """A random generator owned by one machine: same seed and id, same numbers."""
    return np.random.default_rng([int(seed), zlib.crc32(machine_id.encode())])


def _episode_lengths(n_rows: int, dt_h: float, life: dict, rng: np.random.Generator) -> list[int]:
    """Rows of each run-to-failure episode; the last one absorbs the remainder exactly."""
    min_rows = max(2, round(life["min"] / dt_h))
    lengths: list[int] = []
    remaining = n_rows
    while remaining > 0:
        hours = np.clip(life["scale"] * rng.weibull(life["shape"]), life["min"], life["max"])
        rows = round(hours / dt_h)
        if remaining - rows < min_rows:
            rows = remaining
        lengths.append(rows)
        remaining -= rows
    return lengths


def _regime_sequence(
    n: int, dt_h: float, regimes: list[dict], mean_hours: float, rng: np.random.Generator
) -> np.ndarray:
    """Indices of operating regimes, switching after exponential dwell times."""
    weights = np.array([r["weight"] for r in regimes], dtype=float)
    weights /= weights.sum()
    out = np.empty(n, dtype=np.int64)
    pos = 0
    while pos < n:
        dwell = max(1, round(rng.exponential(mean_hours) / dt_h))
        out[pos : pos + dwell] = rng.choice(len(regimes), p=weights)
        pos += dwell
    return out


def _latent_wear(n: int, sim: dict, rng: np.random.Generator) -> np.ndarray:
    """Latent wear from a random initial level to 1 (failure) at the episode's last row.

    A gamma-process time change makes the degradation speed stochastic; the power makes it
    accelerate towards the end.
    """
    increments = rng.gamma(sim["wear_process_shape"], 1.0, size=n)
    progress = np.cumsum(increments)
    progress = (progress - progress[0]) / max(progress[-1] - progress[0], 1e-12)
    w0 = rng.uniform(sim["initial_wear"]["min"], sim["initial_wear"]["max"])
    p = rng.uniform(sim["wear_exponent"]["min"], sim["wear_exponent"]["max"])
    return w0 + (1.0 - w0) * progress**p


def _simulate_episode(
    spec: MachineSpec,
    sim: dict,
    start: pd.Timestamp,
    n: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Clean sensor readings (n, sensors), regime indices, wear, timestamps and failure mode of
    one episode."""
    dt_h = 1.0 / spec.rows_per_hour
    regimes = sim["regimes"]
    regime_idx = _regime_sequence(n, dt_h, regimes, sim["regime_mean_duration_hours"], rng)
    load = np.array([r["load"] for r in regimes])[regime_idx]
    wear = _latent_wear(n, sim, rng)
    signature = wear ** sim["signature_exponent"]
    timestamps = start + pd.to_timedelta(np.arange(n) * spec.sampling_interval_min, unit="min")
    hour = timestamps.hour.to_numpy() + timestamps.minute.to_numpy() / 60.0
    daily = np.sin(2 * np.pi * (hour - 9.0) / 24.0)  # warmest mid-afternoon

    modes = list(spec.failure_modes)
    mode = modes[rng.integers(len(modes))] if modes else ""
    mode_signature = spec.failure_modes[mode].signature if modes else {}

    values = np.empty((n, len(spec.sensors)))
    for j, sensor in enumerate(spec.sensors):
        sig = mode_signature.get(sensor.name)
        level_gain = sig.level if sig else 0.0
        noise_gain = sig.noise if sig else 0.0
        scale = abs(sensor.nominal) if sensor.nominal else sensor.noise
        base = sensor.nominal * (1.0 + sensor.load_sensitivity * (load - 1.0))
        base = base + sensor.daily_amplitude * daily + scale * level_gain * signature
        drift = (
            np.cumsum(rng.normal(0.0, 1.0, n)) / np.sqrt(n) * sim["drift_noise_sd"] * sensor.noise
        )
        noise = rng.normal(0.0, 1.0, n) * sensor.noise * (1.0 + noise_gain * signature)
        values[:, j] = base + drift + noise
    return values, regime_idx, wear, timestamps.to_numpy(), mode


def _inject_sensor_faults(
    values: np.ndarray, spec: MachineSpec, faults: dict, rng: np.random.Generator
) -> np.ndarray:
    """Inject spikes, stuck values, dropouts and process upsets in place; return the anomaly flags."""
    n, n_sensors = values.shape
    anomaly = np.zeros(n, dtype=np.int8)
    noise = np.array([max(s.noise, 1e-9) for s in spec.sensors])
    nominal = np.array([abs(s.nominal) if s.nominal else s.noise for s in spec.sensors])

    def events(kind: str) -> int:
        return int(rng.poisson(faults[kind]["rate_per_1000_rows"] * n / 1000.0))

    def duration(kind: str) -> int:
        lo, hi = faults[kind]["duration_rows"]
        return int(rng.integers(lo, hi + 1))

    for _ in range(events("spike")):
        row, j = int(rng.integers(n)), int(rng.integers(n_sensors))
        sign = rng.choice([-1.0, 1.0])
        values[row, j] += (
            sign * faults["spike"]["magnitude_noise_sd"] * noise[j] * rng.uniform(1, 2)
        )
        anomaly[row] = 1
    for _ in range(events("stuck")):
        d = duration("stuck")
        row, j = int(rng.integers(1, max(2, n - d))), int(rng.integers(n_sensors))
        values[row : row + d, j] = values[row - 1, j]
        anomaly[row : row + d] = 1
    for _ in range(events("dropout")):
        d = duration("dropout")
        row, j = int(rng.integers(max(1, n - d))), int(rng.integers(n_sensors))
        values[row : row + d, j] = max(spec.sensors[j].min, 0.0)
        anomaly[row : row + d] = 1
    for _ in range(events("process_upset")):
        d = duration("process_upset")
        row = int(rng.integers(max(1, n - d)))
        affected = rng.choice(
            n_sensors, size=min(n_sensors, int(rng.integers(2, 4))), replace=False
        )
        for j in affected:
            shift = max(faults["process_upset"]["magnitude_fraction"] * nominal[j], 8 * noise[j])
            values[row : row + d, j] += rng.choice([-1.0, 1.0]) * shift
        anomaly[row : row + d] = 1
    return anomaly


def simulate_machine_history(
    machine: dict[str, Any], simulation: dict[str, Any], labels: dict[str, Any]
) -> pd.DataFrame:
    """Simulate a machine's run-to-failure history (the readings and labels only)."""
    return simulate_machine_history_and_hidden_state(machine, simulation, labels)[0]


def simulate_machine_history_and_hidden_state(
    machine: dict[str, Any], simulation: dict[str, Any], labels: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate a machine's run-to-failure history with labels from its latent state.

    The second frame is the simulator's hidden state, row for row (see :data:`HIDDEN_COLUMNS`):
    only the measured-ceiling nodes may read it, never a model, feature or threshold.

    Args:
        machine: the machine's ``machine:`` parameters block (sensors, failure modes, ...).
        simulation: fleet-wide simulation parameters (size, seed, degradation, faults).
        labels: label parameters (``failure_horizon_hours``).

    Returns:
        ``(history, hidden_state)``: history has one row per reading (timestamp, episode_id, one
        column per sensor, regime, rul (hours), failure_within_horizon and anomaly); the hidden
        state has timestamp, episode_id, latent_wear, failure_mode and hours_since_repair.
    """
    spec = parse_machine(machine)
    rng = machine_rng(simulation["seed"], spec.machine_id)
    dt_h = 1.0 / spec.rows_per_hour
    lengths = _episode_lengths(
        int(simulation["rows_per_machine"]), dt_h, simulation["life_hours"], rng
    )
    regime_names = np.array([r["name"] for r in simulation["regimes"]])

    frames = []
    hidden = []
    start = pd.Timestamp(simulation["start"])
    for episode, n in enumerate(lengths):
        values, regime_idx, wear, timestamps, mode = _simulate_episode(
            spec, simulation, start, n, rng
        )
        anomaly = _inject_sensor_faults(values, spec, simulation["sensor_faults"], rng)
        lows = np.array([s.min for s in spec.sensors])
        highs = np.array([s.max for s in spec.sensors])
        values = np.clip(values, lows, highs)
        values[rng.random(values.shape) < simulation["missing_rate"]] = np.nan
        rul = (n - 1 - np.arange(n)) * dt_h  # the latent wear reaches 1 at the last reading
        frame = pd.DataFrame(values, columns=spec.sensor_names)
        frame.insert(0, c.EPISODE, np.int64(episode))
        frame.insert(0, c.TIMESTAMP, pd.DatetimeIndex(timestamps).as_unit("ns"))
        frame[c.REGIME] = regime_names[regime_idx]
        frame[c.RUL] = rul
        frame[c.FAILURE_WITHIN_HORIZON] = (rul <= labels["failure_horizon_hours"]).astype(np.int8)
        frame[c.ANOMALY] = anomaly
        frames.append(frame)
        hidden.append(
            pd.DataFrame(
                {
                    c.TIMESTAMP: pd.DatetimeIndex(timestamps).as_unit("ns"),
                    c.EPISODE: np.int64(episode),
                    LATENT_WEAR: wear.astype(np.float64),
                    FAILURE_MODE: mode,
                    HOURS_SINCE_REPAIR: np.arange(n) * dt_h,
                }
            )
        )
        gap_h = rng.uniform(
            simulation["repair_gap_hours"]["min"], simulation["repair_gap_hours"]["max"]
        )
        gap_rows = max(1, round(gap_h / dt_h))
        start = pd.Timestamp(timestamps[-1]) + pd.Timedelta(
            minutes=spec.sampling_interval_min * gap_rows
        )
    history = pd.concat(frames, ignore_index=True)
    logger.info(
        "%s: simulated %d rows in %d episodes (positive rate %.3f, anomaly rate %.3f)",
        spec.machine_id,
        len(history),
        len(lengths),
        history[c.FAILURE_WITHIN_HORIZON].mean(),
        history[c.ANOMALY].mean(),
    )
    return history, pd.concat(hidden, ignore_index=True)
