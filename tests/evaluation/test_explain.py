"""Explanations on the tiny fixtures: local accuracy of XGBoost's TreeSHAP (and ONNX parity of
the raw prediction), feature names back to sensors for every feature kind, anomaly deviations
and the failure-mode diagnosis on episodes of each mode."""

from __future__ import annotations

import numpy as np
import pytest

from pdm_kedro.contract import feature_columns
from pdm_kedro.core.window_features import feature_names, window_labels
from pdm_kedro.evaluation import explain as ex
from pdm_kedro.fleet import parse_machine

LOCAL_ACCURACY = 1e-4


def _onnx(bundle_folder, family):
    import onnxruntime as ort

    return ort.InferenceSession(str(bundle_folder / f"{family}.onnx"))


@pytest.mark.parametrize("family", ["classification", "regression"])
def test_contributions_sum_to_the_raw_prediction_and_the_onnx_answer(
    family, tiny_models, tiny_features, tiny_bundle, project_params
):
    model = tiny_models[family]
    x = tiny_features["test"][model["feature_names"]].to_numpy(dtype=np.float32)
    contribs, base = ex.tree_contributions(model, x)
    margin = ex.raw_margin(model, x)
    assert contribs.shape == x.shape
    assert np.max(np.abs(contribs.sum(axis=1) + base - margin)) <= LOCAL_ACCURACY
    session = _onnx(tiny_bundle[0], family)
    outputs = session.run(None, {session.get_inputs()[0].name: x})
    parity = project_params["edge_export"]["parity"]
    if family == "classification":
        prob = np.asarray(outputs[1])[:, 1] if np.ndim(outputs[1]) == 2 else None
        if prob is None:  # ZipMap-free export keeps probabilities as a tensor
            pytest.fail("classifier ONNX output is not a probability matrix")
        expected = 1.0 / (1.0 + np.exp(-(contribs.sum(axis=1) + base)))
        assert np.max(np.abs(prob - expected)) <= parity["probability_atol"]
    else:
        value = np.asarray(outputs[0]).reshape(-1)
        tol = parity["rul_atol"] + parity["rul_rtol"] * np.maximum(
            np.abs(margin), model["rul_cap_hours"]
        )
        assert np.all(np.abs(value - (contribs.sum(axis=1) + base)) <= tol)


def test_explain_rows_reads_like_a_person_would(tiny_models, tiny_features, machine):
    rows = ex.explain_rows(tiny_models["classification"], tiny_features["test"].tail(3), machine, 3)
    assert len(rows) == 3
    first = rows[0]
    assert first["output_space"].startswith("log-odds")
    assert len(first["top_factors"]) == 3
    sensors = set(parse_machine(machine).sensor_names) | ex.AGGREGATES
    sensors |= {f"failure mode {m}" for m in machine["failure_modes"]}
    sensors |= {"best-fitting failure mode"}
    for factor in first["top_factors"]:
        assert factor["sensor"] in sensors
        assert factor["text"].startswith(factor["sensor"] + ", ")
        assert "nan" not in factor["text"].split(",")[1]
    assert (
        pytest.approx(sum(first["per_sensor"].values()) + first["base_value"], abs=1e-4)
        == (first["raw_prediction"])
    )
    absolute = [abs(v) for v in first["per_sensor"].values()]
    assert absolute == sorted(absolute, reverse=True)


def test_no_rows_to_explain_is_an_empty_answer(tiny_models, tiny_features, machine):
    # a test split where the classifier raises no alarm (a one-episode holdout of a retraining)
    model = tiny_models["classification"]
    none = tiny_features["test"].head(0)
    contribs, _ = ex.tree_contributions(model, none[list(model["feature_names"])].to_numpy())
    assert contribs.shape == (0, len(model["feature_names"]))
    assert ex.explain_rows(model, none, machine, 3) == []


def test_every_feature_kind_maps_back_to_its_sensor(machine, tiny_features):
    spec = parse_machine(machine)
    sensors = list(spec.sensor_names)
    kinds = [s.kind for s in spec.sensors]
    labels = window_labels([3, 12, 48])
    names = feature_names(sensors, kinds + ["temperature", "vibration"], labels)
    desc = ex.feature_descriptions(names, machine).set_index("feature")
    s = sensors[0]
    unit = spec.sensors[0].unit
    expected = {
        s: (s, None, "value", unit),
        f"{s}__zscore": (s, None, "zscore", ""),
        f"{s}__abs_diff": (s, None, "abs_diff", unit),
        f"{s}__median_resid_12h": (s, "12h", "median_resid", ""),
        f"{s}__repeat_run": (s, None, "repeat_run", "readings"),
        f"{s}__mean_48h": (s, "48h", "mean", unit),
        f"{s}__std_3h": (s, "3h", "std", unit),
        f"{s}__slope_12h": (s, "12h", "slope", f"{unit}/reading"),
        f"{s}__min_3h": (s, "3h", "min", unit),
        f"{s}__max_48h": (s, "48h", "max", unit),
        "temperature__mean": ("temperature", None, "mean", None),
        "temperature__max": ("temperature", None, "max", None),
        "temperature__spread": ("temperature", None, "spread", None),
        "vibration__rms": ("vibration", None, "rms", None),
        "vibration__peak_3h": ("vibration", "3h", "peak", None),
        "health_index": ("health_index", None, "index", ""),
        "health_index__slope_48h": ("health_index", "48h", "slope", None),
    }
    for name, (sensor, window, stat, unit_) in expected.items():
        row = desc.loc[name]
        got_window = (
            None if row["window"] is None or row["window"] != row["window"] else row["window"]
        )
        assert (row["sensor"], got_window, row["statistic"]) == (sensor, window, stat), name
        if unit_ is not None:
            assert row["unit"] == unit_, name
    # every column the feature pipeline really produces maps to a known sensor or aggregate
    real = ex.feature_descriptions(feature_columns(tiny_features["test"]), machine)
    modes = {f"failure mode {m}" for m in machine.get("failure_modes", {})}
    assert modes and set(real["sensor"]) & modes  # the signature group is on by default
    known = set(sensors) | ex.AGGREGATES | ex.CONTEXT | modes | {"best-fitting failure mode"}
    assert set(real["sensor"]) <= known
    assert "other" not in set(real["statistic"])
    # a failure-mode health indicator is described by its mode, unitless
    assert ex.describe_feature("hi_bearing_wear__slope_168h", sensors) == {
        "feature": "hi_bearing_wear__slope_168h",
        "sensor": "failure mode bearing_wear",
        "window": "168h",
        "statistic": "slope",
        "unit": "",
    }
    assert ex.describe_feature("hi_best__mean_48h", sensors)["sensor"] == (
        "best-fitting failure mode"
    )
    # unknown columns keep their prefix, never an error
    assert ex.describe_feature("new_thing__x", sensors)["statistic"] == "other"


def test_a_sensor_pushed_far_is_explained_first(tiny_models, tiny_features, machine):
    model = tiny_models["anomaly"]
    names = model["feature_names"]
    reference = ex.fit_reference(tiny_features["train"], names)
    row = {n: reference[n]["mean"] for n in names}
    sensor = parse_machine(machine).sensor_names[1]
    pushed = f"{sensor}__zscore"
    row[pushed] = reference[pushed]["mean"] + 12 * reference[pushed]["sd"]
    out = ex.anomaly_deviations(reference, row, machine, top_n=3)
    assert out["top_factors"][0]["feature"] == pushed
    assert next(iter(out["per_sensor"])) == sensor
    assert out["top_factors"][0]["deviation"] == pytest.approx(12.0)
    assert "not a SHAP" in out["output_space"]


def test_families_without_contributions_are_refused(tiny_models):
    with pytest.raises(ex.ExplainError, match="anomaly"):
        ex.explained_family(tiny_models["anomaly"])
