"""``benchmarks/bench_planted_bugs.py``: every planted bug still applies to the current source, a
patch that does not apply stops the script, and the documented one-bug run catches its bug."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.docs.documented import run_documented
from tests.docs.kedro_cli import isolated_env

CHECK_PATCHES = "python benchmarks/bench_planted_bugs.py --check-patches"
ONE_BUG = "python benchmarks/bench_planted_bugs.py --bug precision_recall_swapped"
# the bugs issue 17 names (its other two are not named; the script adds two of its own)
ISSUE_BUGS = {
    "sensor_baselines_fitted_on_test",
    "forecaster_fitted_on_hourly_test",
    "decision_threshold_chosen_on_train",
    "onnx_probability_tolerance_1",
    "quarantine_drops_wrong_rows",
    "constant_test_fingerprint",
    "forecasting_champion_one_sensor",
    "edge_nan_run_one_longer",
    "edge_accepts_minus_inf",
    "rul_trained_on_uncapped_target",
    "precision_recall_swapped",
    "edge_decision_inverted",
}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "bench_planted_bugs", PROJECT_ROOT / "benchmarks" / "bench_planted_bugs.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_every_patch_applies_to_the_current_source(bench, tmp_path):
    names = [bug.name for bug in bench.BUGS]
    assert len(names) == len(set(names)) == 14
    assert ISSUE_BUGS <= set(names)
    assert bench.check_patches(list(bench.BUGS)) == []
    result = run_documented(CHECK_PATCHES, cwd=PROJECT_ROOT, env=isolated_env(tmp_path))
    assert "all 14 patches apply to the current source" in result.stdout
    assert not (tmp_path / "data").exists()  # checking writes no report


def test_a_patch_that_does_not_apply_stops_the_script(bench, tmp_path):
    bug = bench.PlantedBug("toy", "toy", "src/x.py", "a >= b", "a < b", ("tests/test_x.py",))
    (tmp_path / "src").mkdir()
    path = tmp_path / "src" / "x.py"
    path.write_text("if a > b:\n    pass\n")
    with pytest.raises(bench.PatchError, match=r"toy: the search text 'a >= b' occurs 0 times"):
        bench.apply_patch(tmp_path, bug)
    path.write_text("x = a >= b\ny = a >= b\n")
    with pytest.raises(bench.PatchError, match="occurs 2 times in src/x.py"):
        bench.apply_patch(tmp_path, bug)
    assert bench.check_patches([bug], tmp_path) == [
        "toy: search text occurs 2 times in src/x.py",
        "toy: test path tests/test_x.py does not exist",
    ]
    path.write_text("x = a >= b\n")
    bench.apply_patch(tmp_path, bug)
    assert path.read_text() == "x = a < b\n"


def test_failing_tests_are_read_from_the_summary(bench):
    output = (
        "F\n=== short test summary info ===\n"
        "FAILED tests/a.py::test_x[p-1] - AssertionError: 1 != 2\n"
        "ERROR tests/b.py::test_y\n"
        "1 failed, 1 error in 0.1s\n"
    )
    assert bench.failing_tests(output) == [
        {"id": "tests/a.py::test_x[p-1]", "kind": "FAILED", "message": "AssertionError: 1 != 2"},
        {"id": "tests/b.py::test_y", "kind": "ERROR", "message": ""},
    ]


@pytest.mark.slow
def test_the_documented_one_bug_run_catches_it(tmp_path):
    """Two pytest runs in a copy of the project (unpatched, then planted): about 25 s."""
    run_documented(ONE_BUG, cwd=PROJECT_ROOT, env=isolated_env(tmp_path), timeout=600)
    report = json.loads(
        (tmp_path / "data" / "08_reporting" / "planted_bugs_report.json").read_text()
    )
    assert report["baseline"]["passed"] is True
    assert report["baseline"]["tests"] == ["tests/evaluation/test_metrics.py"]
    assert report["caught"] == report["total"] == 1 and report["missed"] == []
    (bug,) = report["bugs"]
    assert bug["name"] == "precision_recall_swapped" and bug["caught"] is True
    assert bug["file"] == "src/pdm_kedro/evaluation/classification_metrics.py"
    assert bug["failing_tests"]
    assert all(t.startswith("tests/evaluation/test_metrics.py::") for t in bug["failing_tests"])
    assert bug["seconds"] > 0
