"""The alerting rules in deploy/prometheus/ are valid (`promtool check rules`) and their unit
tests pass (`promtool test rules`: each alert fires on a synthetic series, quiet on a healthy one)."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.docs.documented import run_documented

RULES = PROJECT_ROOT / "deploy" / "prometheus"
PROMTOOL = (
    "cd deploy/prometheus && promtool check rules pdm_alerts.yml && "
    "promtool test rules pdm_alerts_test.yml"
)
ALERTS = {
    "PdmPredictionLatencyP99High",
    "PdmErrorRatioHigh",
    "PdmRateLimitedSpike",
    "PdmNoPredictions",
    "PdmModelTooOld",
    "PdmDriftFlagged",
    "PdmPerformanceDrop",
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["promtool", *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.requires("prometheus")
def test_rules_pass_promtool_check():
    result = promtool("check", "rules", "pdm_alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@pytest.mark.requires("prometheus")
def test_every_alert_has_a_firing_unit_test_and_they_pass():
    tests = yaml.safe_load((RULES / "pdm_alerts_test.yml").read_text())
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == ALERTS
    result = promtool("test", "rules", "pdm_alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.requires("prometheus")
def test_the_documented_promtool_command_passes():
    result = run_documented(PROMTOOL, cwd=PROJECT_ROOT, env=dict(os.environ), timeout=120)
    assert "SUCCESS" in result.stdout
