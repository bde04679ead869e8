"""The fleet config: 20 valid machines, 10 priority ones, clear errors for unknown ids."""

import shutil

import pytest
import yaml

from pdm_kedro.fleet import (
    UnknownMachineError,
    load_project_parameters,
    machines_in_parameters,
    parse_machine,
    priority_machines,
    require_machine,
)
from tests.conftest import PROJECT_ROOT

EXPECTED_MACHINES = {
    "motor_siemens_1la7_001", "motor_abb_m3bp_002", "motor_weg_w22_003", "pump_grundfos_cr3_004",
    "pump_flowserve_ansi_005", "pump_ksb_etanorm_006", "fan_ebm_papst_a3g710_007",
    "fan_howden_buffalo_008", "compressor_ingersoll_rand_2545_009", "cnc_dmg_mori_nlx_010",
    "hydraulic_beckwood_press_011", "hydraulic_parker_hpu_012", "conveyor_dorner_2200_013",
    "conveyor_hytrol_e24ez_014", "robot_fanuc_m20ia_015", "robot_abb_irb6700_016",
    "transformer_square_d_017", "cooling_tower_bac_vti_018", "compressor_atlas_copco_ga30_001",
    "cnc_haas_vf2_001",
}  # fmt: skip
EXPECTED_PRIORITY = [
    "motor_siemens_1la7_001", "motor_abb_m3bp_002", "motor_weg_w22_003", "pump_grundfos_cr3_004",
    "pump_flowserve_ansi_005", "compressor_atlas_copco_ga30_001",
    "compressor_ingersoll_rand_2545_009", "cnc_dmg_mori_nlx_010", "hydraulic_beckwood_press_011",
    "cooling_tower_bac_vti_018",
]  # fmt: skip


@pytest.fixture(scope="module")
def parameters() -> dict:
    return load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf")


def test_fleet_has_the_twenty_machines_and_ten_priority_ones(parameters):
    machines = machines_in_parameters(parameters)
    assert EXPECTED_MACHINES <= set(machines)
    assert priority_machines(parameters) == EXPECTED_PRIORITY


def test_every_machine_config_is_complete_and_consistent(parameters):
    for machine_id, block in machines_in_parameters(parameters).items():
        spec = parse_machine(block)
        assert spec.machine_id == machine_id
        assert spec.manufacturer and spec.model and spec.category
        assert len(spec.sensors) >= 4
        assert len(spec.failure_modes) >= 2, machine_id
        assert len(spec.forecast_sensors) >= 1
        for sensor in spec.sensors:
            assert sensor.min < sensor.nominal < sensor.max or sensor.nominal == sensor.min


def test_unknown_machine_id_names_the_id_and_the_known_ones(parameters):
    machines = machines_in_parameters(parameters)
    with pytest.raises(UnknownMachineError, match="pump_nonexistent_999") as err:
        require_machine("pump_nonexistent_999", machines)
    assert "motor_siemens_1la7_001" in str(err.value)


def test_priority_list_with_an_undefined_machine_fails_clearly(parameters):
    broken = {**parameters, "fleet": {"priority_machines": ["motor_typo_001"]}}
    with pytest.raises(UnknownMachineError, match="motor_typo_001"):
        priority_machines(broken)


def test_machine_config_errors_name_the_machine_and_sensor(machine):
    bad = {**machine, "failure_modes": {"x": {"signature": {"no_such_sensor": {"level": 1.0}}}}}
    with pytest.raises(ValueError, match="motor_siemens_1la7_001.*no_such_sensor"):
        parse_machine(bad)


def test_adding_a_machine_is_adding_a_config_file(tmp_path):
    """A new machine file, no code change: the registry builds its namespaced pipeline."""
    from pdm_kedro.pipeline_registry import build_registry, discover_templates

    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf" / "base", conf / "base")
    (conf / "local").mkdir()
    source = conf / "base" / "parameters" / "machines" / "pump_grundfos_cr3_004.yml"
    block = yaml.safe_load(source.read_text())["pump_grundfos_cr3_004"]
    block["machine"]["machine_id"] = "pump_new_line_021"
    new_file = source.with_name("pump_new_line_021.yml")
    new_file.write_text(yaml.safe_dump({"pump_new_line_021": block}))

    registry = build_registry(discover_templates(), load_project_parameters("base", conf))
    assert "pump_new_line_021" in registry
    outputs = registry["pump_new_line_021"].all_outputs()
    assert "pump_new_line_021.features_test" in outputs
    assert "pump_new_line_021.validation_report" in outputs
    assert "pump_new_line_021.raw_train" not in registry["__default__"].all_outputs()
