"""The simulator: deterministic, labelled from the latent state, realistic label balance."""

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.pipelines.data_generation.nodes import simulate_machine_history, split_by_episode
from tests.conftest import load_machine


def test_same_seed_same_numbers_other_seed_other_numbers(machine, tiny_params):
    sim, labels = tiny_params["simulation"], tiny_params["labels"]
    first = simulate_machine_history(machine, sim, labels)
    again = simulate_machine_history(machine, sim, labels)
    pd.testing.assert_frame_equal(first, again)
    other = simulate_machine_history(machine, {**sim, "seed": sim["seed"] + 1}, labels)
    assert not np.allclose(first["current"].fillna(0), other["current"].fillna(0))


def test_history_has_the_contract_columns_and_exact_size(tiny_history, machine, tiny_params):
    expected = [c.TIMESTAMP, c.EPISODE, *(s["name"] for s in machine["sensors"]), c.REGIME,
                c.RUL, c.FAILURE_WITHIN_HORIZON, c.ANOMALY]  # fmt: skip
    assert list(tiny_history.columns) == expected
    assert len(tiny_history) == tiny_params["simulation"]["rows_per_machine"]
    assert tiny_history[c.TIMESTAMP].is_monotonic_increasing
    assert pd.api.types.is_datetime64_any_dtype(tiny_history[c.TIMESTAMP])


def test_labels_follow_the_latent_state_not_the_readings(tiny_history, tiny_params):
    horizon = tiny_params["labels"]["failure_horizon_hours"]
    for _, episode in tiny_history.groupby(c.EPISODE):
        rul = episode[c.RUL].to_numpy()
        assert rul[-1] == 0.0  # every episode runs to failure
        assert np.all(np.diff(rul) < 0)
        np.testing.assert_array_equal(episode[c.FAILURE_WITHIN_HORIZON], (rul <= horizon))
    assert set(tiny_history[c.ANOMALY].unique()) <= {0, 1}


@pytest.mark.parametrize("machine_id", ["pump_flowserve_ansi_005", "cooling_tower_bac_vti_018"])
def test_default_size_has_a_positive_rate_between_3_and_6_percent(machine_id, project_params):
    history = simulate_machine_history(
        load_machine(machine_id), project_params["simulation"], project_params["labels"]
    )
    assert len(history) == 50_000
    assert 0.03 <= history[c.FAILURE_WITHIN_HORIZON].mean() <= 0.06
    assert 0.005 <= history[c.ANOMALY].mean() <= 0.06
    assert history[c.EPISODE].nunique() >= 15
    sensors = [s["name"] for s in load_machine(machine_id)["sensors"]]
    assert 0 < history[sensors].isna().mean().mean() < 0.01  # some missing readings, not many


def test_splits_are_whole_episodes_in_time_order(tiny_history, tiny_params):
    train, val, test = split_by_episode(tiny_history, tiny_params["splits"])
    assert len(train) + len(val) + len(test) == len(tiny_history)
    episodes = [set(part[c.EPISODE]) for part in (train, val, test)]
    assert not (episodes[0] & episodes[1]) and not (episodes[1] & episodes[2])
    assert not (episodes[0] & episodes[2])
    assert train[c.TIMESTAMP].max() < val[c.TIMESTAMP].min()
    assert val[c.TIMESTAMP].max() < test[c.TIMESTAMP].min()
    assert len(train) > len(val) and len(train) > len(test)


def test_split_refuses_too_few_episodes(tiny_history, tiny_params):
    two_episodes = tiny_history[tiny_history[c.EPISODE] < 2]
    with pytest.raises(ValueError, match="at least 3 episodes"):
        split_by_episode(two_episodes, tiny_params["splits"])


def test_hidden_state_is_row_for_row_and_leaves_the_readings_unchanged(machine, tiny_params):
    from pdm_kedro.pipelines.data_generation.nodes import (
        HIDDEN_COLUMNS,
        simulate_machine_history_and_hidden_state,
    )

    sim, labels = tiny_params["simulation"], tiny_params["labels"]
    history, hidden = simulate_machine_history_and_hidden_state(machine, sim, labels)
    pd.testing.assert_frame_equal(history, simulate_machine_history(machine, sim, labels))
    assert list(hidden.columns) == HIDDEN_COLUMNS and len(hidden) == len(history)
    pd.testing.assert_series_equal(hidden["timestamp"], history["timestamp"])
    for _, episode in hidden.groupby("episode_id"):
        wear = episode["latent_wear"].to_numpy()
        assert np.all(np.diff(wear) >= -1e-12) and wear[-1] == pytest.approx(1.0)
        assert episode["hours_since_repair"].iloc[0] == 0.0
        assert episode["failure_mode"].nunique() == 1
    assert set(hidden["failure_mode"]) <= set(machine["failure_modes"])
