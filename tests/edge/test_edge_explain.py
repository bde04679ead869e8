"""The edge's numpy TreeSHAP over the booster's JSON dump equals XGBoost's pred_contribs, and its
top factors equal the training-side explanation's (pdm_kedro.evaluation.explain); the bundle's
explanation.json is sealed like a model file; ``predict(explain=N)`` and ``--explain N`` give the
top factors, anomaly deviations and diagnosis, and refuse a bad N in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pdm_kedro import contract as c
from pdm_kedro.edge import explain as edge_explain
from pdm_kedro.edge.__main__ import main
from pdm_kedro.edge.bundle import load_bundle, sha256_hex
from pdm_kedro.edge.errors import BundleError
from pdm_kedro.edge.explain import ExplainRequestError
from pdm_kedro.edge.manifest import seal_manifest
from pdm_kedro.edge.readings import read_readings_csv
from pdm_kedro.edge.runtime import predict
from pdm_kedro.evaluation import explain as ex
from pdm_kedro.fleet import parse_machine
from pdm_kedro.pipelines.diagnosis.nodes import diagnose_rows, recommended_action

from .readings_helpers import as_readings, episode_rows, write_readings_csv

ROWS = 40


@pytest.mark.parametrize("table_depth", [edge_explain.TABLE_MAX_DEPTH, 0])
@pytest.mark.parametrize("family", ["classification", "regression"])
def test_numpy_treeshap_equals_xgboost(
    family, table_depth, tiny_models, tiny_features, monkeypatch
):
    """With the per-pattern lookup tables, and computed per row (deeper paths than tabled)."""
    monkeypatch.setattr(edge_explain, "TABLE_MAX_DEPTH", table_depth)
    model = tiny_models[family]
    names = model["feature_names"]
    x = tiny_features["test"][names].to_numpy(dtype=np.float32)[-ROWS:].copy()
    x[0, 3] = np.nan  # a missing reading follows the tree's default direction
    expected, base = ex.tree_contributions(model, x)
    booster = model["estimator"].get_booster()
    trees = edge_explain.parse_trees(booster.get_dump(dump_format="json", with_stats=True))
    got, got_base = edge_explain.tree_contributions(trees, base, x)
    assert np.max(np.abs(got - expected)) <= 1e-4
    assert got_base == base
    for i in range(len(x)):
        edge_top = edge_explain.top_factors(got[i], names, x[i], 3)
        order = np.argsort(-np.abs(expected[i]), kind="stable")[:3]
        assert [f["feature"] for f in edge_top] == [names[j] for j in order]


# ---------------------------------------------------------------------------------------------
# The bundle's explanation.json, the runtime's ``explain`` and the CLI's ``--explain N``

CUTS = 4  # readings windows explained per test (each ends at a test row of one episode)


@pytest.fixture()
def episode(tiny_splits):
    raw = tiny_splits[2]
    return episode_rows(raw, raw[c.EPISODE].value_counts().idxmax())


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    folder = tmp_path / tiny_bundle[1]["machine_id"] / "edge"
    shutil.copytree(tiny_bundle[0], folder)
    return folder


def _cuts(episode, manifest):
    first = manifest["inputs"]["min_history_rows"]
    return np.linspace(first, len(episode), CUTS).astype(int)


def test_bundle_lists_and_carries_the_explanation(tiny_bundle, machine):
    folder, manifest = tiny_bundle
    entry = manifest["explanation"]
    data = (folder / entry["file"]).read_bytes()
    assert entry["sha256"] == sha256_hex(data) and entry["size_bytes"] == len(data)
    bundle = load_bundle(folder)
    explainer = bundle.explainer
    assert [f for f in bundle.families if explainer.explains(f)] == [
        "classification",
        "regression",
        "anomaly",
    ]
    modes = explainer.diagnosis_spec["modes"]
    assert set(modes) == set(parse_machine(machine).failure_modes)
    assert all(m["action"] for m in modes.values())


def test_a_changed_explanation_file_is_refused(bundle_copy, capsys):
    path = bundle_copy / "explanation.json"
    path.write_text(path.read_text().replace('"top_modes":2', '"top_modes":9'))
    with pytest.raises(BundleError, match=r"explanation\.json .*sha256"):
        load_bundle(bundle_copy)
    assert main(["info", "--bundle", str(bundle_copy)]) == 2
    assert "explanation.json" in capsys.readouterr().err


def test_edge_explanation_equals_xgboost_and_the_training_side(
    tiny_bundle, tiny_models, tiny_features, tiny_baselines, machine, tiny_params, episode
):
    folder, manifest = tiny_bundle
    bundle = load_bundle(folder)
    sensors = [s["name"] for s in manifest["sensors"]]
    test = tiny_features["test"]
    table = test[test[c.EPISODE] == episode[c.EPISODE].iloc[0]].sort_values(c.TIMESTAMP)
    reference = ex.fit_reference(
        tiny_features["train"][tiny_features["train"][c.ANOMALY] == 0],
        tiny_models["anomaly"]["feature_names"],
    )
    diag_ref = ex.fit_deviation_reference(
        tiny_features["train"], machine, tiny_baselines, tiny_params["diagnosis"]
    )
    for cut in _cuts(episode, manifest):
        answer = predict(
            bundle, as_readings(episode.iloc[:cut], sensors), from_episode_start=True, explain=3
        )
        got = answer["explanation"]
        row = table.iloc[cut - 1 : cut]
        assert (
            str(row[c.TIMESTAMP].iloc[0].to_datetime64().astype("datetime64[s]"))
            == answer["timestamp"]
        )
        for family, key in (("classification", "failure"), ("regression", "rul_hours")):
            want = ex.explain_rows(tiny_models[family], row, machine, 3)[0]
            mine = got[key]
            assert [f["feature"] for f in mine["top_factors"]] == [
                f["feature"] for f in want["top_factors"]
            ]
            for a, b in zip(mine["top_factors"], want["top_factors"], strict=True):
                assert a["contribution"] == pytest.approx(b["contribution"], abs=1e-4)
                assert {k: a[k] for k in ("sensor", "statistic", "unit")} == {
                    k: b[k] for k in ("sensor", "statistic", "unit")
                }
                assert a["window"] == (b["window"] if isinstance(b["window"], str) else None)
            assert mine["base_value"] == want["base_value"]
            assert mine["output_space"] == want["output_space"]
            assert list(mine["per_sensor"]) == list(want["per_sensor"])
            assert mine["raw_prediction"] == pytest.approx(want["raw_prediction"], abs=1e-4)
        p = answer["failure"]["probability"]
        assert 1 / (1 + np.exp(-got["failure"]["raw_prediction"])) == pytest.approx(p, abs=1e-4)
        # the explanation is of the RUL model's own value (the answer may be capped by the alarm)
        rul = answer["rul_hours"]
        assert got["rul_hours"]["raw_prediction"] == pytest.approx(rul["model_value"], abs=1e-3)
        assert rul["value"] == pytest.approx(
            min(rul["model_value"], rul["cap_at_alarm_hours"])
            if answer["failure"]["decision"]
            else rul["model_value"]
        )
        want = ex.anomaly_deviations(reference, row.iloc[0], machine, 3)
        assert [f["feature"] for f in got["anomaly"]["top_factors"]] == [
            f["feature"] for f in want["top_factors"]
        ]
        for a, b in zip(got["anomaly"]["top_factors"], want["top_factors"], strict=True):
            assert a["deviation"] == pytest.approx(b["deviation"], rel=1e-6)
        names, confidence = diagnose_rows(
            row, machine, tiny_baselines, diag_ref, tiny_params["diagnosis"]
        )
        best = np.argsort(-confidence[0], kind="stable")[: tiny_params["diagnosis"]["top_modes"]]
        modes = got["diagnosis"]["modes"]
        assert [m["mode"] for m in modes] == [names[k] for k in best]
        for m, k in zip(modes, best, strict=True):
            assert m["confidence"] == pytest.approx(confidence[0, k], abs=1e-9)
            assert m["action"] == recommended_action(machine, names[k])["action"]


def test_a_sensor_pushed_far_is_the_anomaly_explanation_first(tiny_bundle, episode):
    folder, manifest = tiny_bundle
    bundle = load_bundle(folder)
    sensors = [s["name"] for s in manifest["sensors"]]
    window = episode.iloc[: manifest["inputs"]["min_history_rows"] + 5].copy()
    pushed = sensors[0]
    spec = next(s for s in manifest["sensors"] if s["name"] == pushed)
    window.loc[window.index[-1], pushed] = min(
        spec["max"], spec["median"] + 40 * spec["scale"]
    )  # one reading far off, inside the physical range
    answer = predict(bundle, as_readings(window, sensors), from_episode_start=True, explain=2)
    first = answer["explanation"]["anomaly"]["top_factors"][0]
    assert first["sensor"] == pushed and abs(first["deviation"]) > 5
    assert list(answer["explanation"]["anomaly"]["per_sensor"])[0] == pushed


def _one_line(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def test_cli_explain_and_its_errors(tiny_bundle, episode, tmp_path, capsys):
    folder, manifest = tiny_bundle
    sensors = [s["name"] for s in manifest["sensors"]]
    path = write_readings_csv(episode, sensors, tmp_path / "recent.csv")
    argv = ["predict", "--bundle", str(folder), "--readings", str(path)]
    assert main([*argv, "--explain", "2"]) == 0
    answer = json.loads(capsys.readouterr().out)
    direct = predict(
        load_bundle(folder), read_readings_csv(str(path)), explain=2
    )  # the CLI reads only the tail it needs: the same answer
    assert answer["explanation"] == direct["explanation"]
    assert len(answer["explanation"]["failure"]["top_factors"]) == 2
    assert answer["explanation"]["diagnosis"]["modes"][0]["action"]
    inputs = len(manifest["models"]["classification"]["feature_names"])
    for bad in ("0", "-1", "abc", "2.5", str(inputs + 1)):
        err = _one_line(capsys, [*argv, "--explain", bad])
        assert f"1 to {inputs}" in err, err


def test_explain_needs_an_explained_family_and_a_bundle_with_explanations(bundle_copy, episode):
    bundle = load_bundle(bundle_copy, families=("classification",))
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    readings = as_readings(episode, sensors)
    assert "failure" in predict(bundle, readings, explain=1)["explanation"]
    only_rul = load_bundle(bundle_copy, families=("regression",))
    only_rul.explainer.families.pop("regression")  # as a family without an explanation
    with pytest.raises(ExplainRequestError, match="regression answer has no explanation"):
        predict(only_rul, readings, explain=1)
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest.pop("explanation")
    (bundle_copy / "manifest.json").write_text(json.dumps(seal_manifest(manifest)))
    (bundle_copy / "explanation.json").unlink()
    old = load_bundle(bundle_copy)
    assert old.explainer is None and "failure" in predict(old, readings)
    with pytest.raises(ExplainRequestError, match="carries no explanation.json"):
        predict(old, readings, explain=1)
