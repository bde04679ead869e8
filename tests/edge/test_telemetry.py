"""Library telemetry is off by default, with one switch (PDM_TELEMETRY=on) to allow it."""

from __future__ import annotations

import os
import subprocess
import sys

from pdm_kedro import telemetry

SWITCHES = (
    "KEDRO_DISABLE_TELEMETRY",
    "MLFLOW_DISABLE_TELEMETRY",
    "ORT_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",
)


def test_off_switches_are_set_unless_the_user_set_them(monkeypatch):
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(telemetry.SWITCH, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")  # the user's own choice is kept
    added = telemetry.disable_library_telemetry()
    assert added == {"KEDRO_DISABLE_TELEMETRY": "1", "ORT_DISABLE_TELEMETRY": "1"}
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"


def test_the_switch_leaves_the_libraries_alone(monkeypatch):
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(telemetry.SWITCH, "on")
    assert telemetry.disable_library_telemetry() == {}
    assert "ORT_DISABLE_TELEMETRY" not in os.environ


# CI=true and DO_NOT_TRACK (set by .ci/run) silence onnxruntime by themselves: drop them too,
# so these tests see the project's own switch only
AMBIENT = ("CI", "DO_NOT_TRACK")


def clean_env(home) -> dict[str, str]:
    dropped = {*SWITCHES, telemetry.SWITCH, *AMBIENT}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return env | {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}


SCRIPT = (
    "import sys; from pdm_kedro.edge.bundle import load_bundle; load_bundle(sys.argv[1]); "
    "import mlflow"
)


def test_edge_runtime_and_mlflow_write_nothing_under_home(tiny_bundle, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_bundle[0])], env=clean_env(home), check=True
    )
    assert not (home / ".cache" / "Microsoft").exists()  # onnxruntime's device id and event db
    assert not (home / ".config" / "mlflow").exists()


def test_with_the_switch_on_onnxruntime_writes_its_device_id(tiny_bundle, tmp_path):
    """The check above can fail: the same import writes under HOME once telemetry is allowed."""
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home) | {telemetry.SWITCH: "on"}
    subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_bundle[0])], env=env, check=True)
    assert list((home / ".cache" / "Microsoft").rglob("deviceid"))
