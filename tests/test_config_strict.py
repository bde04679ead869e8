"""Strict config: unknown keys with a "did you mean", split fractions, integer counts; checked by
:func:`pdm_kedro.config_check.check_parameters` before any node runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from pdm_kedro.config_check import ConfigError, check_parameters
from pdm_kedro.fleet import parse_machine

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(scope="module")
def params():
    loader = OmegaConfigLoader(str(CONF), base_env="base", default_run_env="local")
    return loader["parameters"]


def test_shipped_config_is_strict_clean(params):
    check_parameters(params, CONF, "local")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda p: p["simulation"].__setitem__("rows_per_machin", 3000),
            r"simulation.rows_per_machin: unknown key \(did you mean 'rows_per_machine'\?\)",
        ),
        (
            lambda p: p["validation"].__setitem__("max_nul_run", 3),
            r"validation.max_nul_run: unknown key \(did you mean 'max_null_run'\?\).*parameters.yml",
        ),
        (lambda p: p["splits"].__setitem__("test", 0.5), r"splits: .*sum to 1, got 1.35"),
        (
            lambda p: p["simulation"].__setitem__("rows_per_machine", 3000.5),
            r"simulation.rows_per_machine: must be an integer, got 3000.5",
        ),
    ],
    ids=["params_override_typo", "nested_typo", "splits_sum", "float_count"],
)
def test_config_faults_are_named(params, edit, expected):
    broken = copy.deepcopy(params)
    edit(broken)
    with pytest.raises(ConfigError, match=expected):
        check_parameters(broken, CONF, "local")


def test_machine_file_typo_has_did_you_mean(params):
    broken = copy.deepcopy(params)
    machine_id = next(k for k, v in broken.items() if isinstance(v, dict) and "machine" in v)
    broken[machine_id]["machine"]["sampling_intervall_min"] = 10
    with pytest.raises(ConfigError, match=r"sampling_intervall_min: Extra inputs.*did you mean"):
        check_parameters(broken, CONF, "local")


def test_failure_mode_diagnosis_fields_are_allowed(params):
    machine_id = next(k for k, v in params.items() if isinstance(v, dict) and "machine" in v)
    block = copy.deepcopy(params[machine_id]["machine"])
    mode = (
        next(iter(block["failure_modes"].values()))
        if isinstance(block.get("failure_modes"), dict)
        else block["failure_modes"][0]
    )
    mode |= {"action": "replace bearing", "part": "6205-2RS", "repair_time_h": 4.0}
    parse_machine(block)
