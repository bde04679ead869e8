"""The dashboard's readers of other pipelines' reports, on tiny files (no server)."""

from __future__ import annotations

import json

import pytest

from pdm_kedro.service import dashboard as d


def test_retraining_lines_of_one_machine_and_bad_lines_skipped(tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(d.logger, "warning", lambda msg, *args: said.append(msg % args))
    path = tmp_path / "retraining_decisions.jsonl"
    path.write_text(
        json.dumps({"machine_id": "m1", "retrain": True, "triggers": ["age"]})
        + "\nnot json\n\n"
        + json.dumps({"machine_id": "m2", "retrain": False})
        + "\n"
    )
    assert [r["retrain"] for r in d.read_jsonl(path, "m1")] == [True]
    assert len(d.read_jsonl(path)) == 2
    assert set(said) == {f"Dashboard: {path} line 2 is not JSON; skipped on the page."}
    assert d.read_jsonl(tmp_path / "missing.jsonl", "m1") is None


def test_reports_missing_unreadable_and_present(tmp_path, monkeypatch):
    monkeypatch.setattr(d.DashboardData, "root", staticmethod(lambda: tmp_path))
    data = d.DashboardData()
    assert data.reports("m1") == {
        "diagnosis_report": None,
        "diagnosis": None,
        "monitoring": None,
        "retraining": None,
    }
    reporting = tmp_path / "08_reporting"
    (reporting / "m1").mkdir(parents=True)
    (reporting / "m1" / "monitoring.json").write_text("{broken")
    top = {"mode": "bearing_wear", "action": "replace bearing", "confidence": 0.8}
    (reporting / "m1" / "diagnosis.json").write_text(
        json.dumps({"examples": [{"diagnosis": [{"mode": "x"}]}, {"diagnosis": [top]}]})
    )
    (reporting / "diagnosis_report.json").write_text(
        json.dumps({"machines": {"m1": {"accuracy": 0.7, "baseline_accuracy": 0.5}}})
    )
    got = data.reports("m1")
    assert got["monitoring"] is None  # unreadable: shown as not available, logged
    assert got["diagnosis"] == top
    assert got["diagnosis_report"] == {"accuracy": 0.7, "baseline_accuracy": 0.5}


@pytest.mark.parametrize(
    ("risk", "direction"),
    [([0.1] * 13, "steady"), ([0.1] * 12 + [0.5], "rising"), ([0.9] * 12 + [0.2], "falling")],
)
def test_trend_compares_with_the_risk_six_hours_before(risk, direction):
    stamps = [f"2025-01-01T{h:02d}:00:00" for h in range(13)]
    trend = d._trend(stamps, risk)
    assert trend["direction"] == direction
    assert trend["delta"] == pytest.approx(risk[-1] - risk[6])


def test_thinning_keeps_the_last_row():
    keep = d._thin(1000, 100)
    assert keep[0] == 0 and keep[-1] == 999 and len(keep) <= 101
    assert d._thin(10, 100) == list(range(10))
