"""Answer the maintenance questions for one machine from its recent raw readings.

Every family in the bundle answers by the kind its manifest entry declares (``answer.kind``, see
:mod:`pdm_kedro.families`), under its ``answer.key``:

- ``probability`` (classification, key ``failure``): probability and decision (threshold chosen on
  validation data);
- ``value`` (regression, key ``rul_hours``): remaining useful life in hours; while the failure
  alarm is on, at most the model's ``cap_at_alarm_hours`` (:mod:`pdm_kedro.core.rul_answer`),
  the RUL model's own value beside it as ``model_value``;
- ``score`` (anomaly, key ``anomaly``): anomaly score and flag;
- ``forecast`` (forecasting, key ``forecast``): 24-hour forecast of the key sensors.

A new family of one of these kinds is answered without a change here. Only numpy, onnxruntime
and the standard library are imported (plus ``pdm_kedro.core``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pdm_kedro.core.rul_answer import rul_at_alarm
from pdm_kedro.edge.bundle import INPUT_NAME, EdgeBundle
from pdm_kedro.edge.explain import ExplainRequestError, check_top_n
from pdm_kedro.edge.features import compute_features, model_inputs
from pdm_kedro.edge.forecast import forecast_from_readings
from pdm_kedro.edge.readings import Readings, check_readings

CLASSIFICATION, REGRESSION = "classification", "regression"  # the two families the RUL rule joins
FORECAST_PREFIX = "{sensor}__"  # names of one sensor's graph inside forecasting.onnx
FORECAST_OUTPUTS = ("forecast", "lower", "upper")
SECONDS_PER_HOUR = 3600


def _output(session: Any, name: str, inputs: np.ndarray) -> np.ndarray:
    return session.run([name], {INPUT_NAME: inputs})[0]


def family_output(bundle: EdgeBundle, family: str, features: np.ndarray) -> np.ndarray:
    """The family's numeric answer for each row of the full feature matrix, by its kind:
    P(positive) (``probability``), the value (``value``) or the score, higher = more anomalous
    (``score``)."""
    entry = bundle.manifest["models"][family]
    x = model_inputs(features, bundle.manifest, family)
    raw = np.asarray(_output(bundle.sessions[family], entry["output"], x), dtype=np.float64)
    kind = entry["answer"]["kind"]
    if kind == "probability":
        return raw[:, int(entry["positive_column"])]
    if kind == "score":
        return float(entry["score_sign"]) * raw.reshape(-1)
    return raw.reshape(-1)


def failure_probability(bundle: EdgeBundle, features: np.ndarray) -> np.ndarray:
    """P(failure within the horizon) for each row of the full feature matrix."""
    return family_output(bundle, "classification", features)


def remaining_useful_life(bundle: EdgeBundle, features: np.ndarray) -> np.ndarray:
    """Predicted remaining useful life in hours for each row."""
    return family_output(bundle, "regression", features)


def anomaly_score(bundle: EdgeBundle, features: np.ndarray) -> np.ndarray:
    """Anomaly score for each row (higher = more anomalous)."""
    return family_output(bundle, "anomaly", features)


class SensorForecastView:
    """One sensor's graph inside the merged ``forecasting.onnx``, with a session's interface.

    onnxruntime needs every graph input, so the other sensors' inputs get a zero state (a few
    hundred multiply-adds); only this sensor's outputs are computed and returned.
    """

    def __init__(self, session: Any, sensor: str) -> None:
        prefix = FORECAST_PREFIX.format(sensor=sensor)
        inputs = {i.name: i for i in session.get_inputs()}
        if f"{prefix}state" not in inputs:
            raise KeyError(f"forecasting.onnx has no graph for sensor {sensor!r}")
        self._session = session
        self._input = inputs[f"{prefix}state"]
        self._outputs = [f"{prefix}{name}" for name in FORECAST_OUTPUTS]
        self._idle = {
            name: np.zeros((1, int(i.shape[1])), dtype=np.float64)
            for name, i in inputs.items()
            if name != self._input.name
        }

    def get_inputs(self) -> list[Any]:
        """The sensor's ``state`` input only."""
        return [self._input]

    def run(self, output_names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:  # noqa: ARG002
        """``forecast, lower, upper`` of this sensor for the state in ``feed``."""
        return self._session.run(self._outputs, {**self._idle, **feed})


def _hour_iso(hour: int) -> str:
    return str(np.datetime64(int(hour) * SECONDS_PER_HOUR, "s"))


def forecast(bundle: EdgeBundle, readings: Readings) -> dict[str, Any]:
    """24-hour forecasts (with intervals) of the key sensors from the recent readings."""
    family = next(
        f for f, e in bundle.manifest["models"].items() if e["answer"]["kind"] == "forecast"
    )
    entry = bundle.manifest["models"][family]
    session = bundle.sessions[family]
    views = {sensor: SensorForecastView(session, sensor) for sensor in entry["sensors"]}
    columns = {name: readings.values[:, j] for j, name in enumerate(readings.sensors)}
    raw = forecast_from_readings(views, entry["spec"], readings.timestamps, columns)
    units = {s["name"]: s["unit"] for s in bundle.manifest["sensors"]}
    return {
        "origin": _hour_iso(raw["origin_hour"]),
        "hours": [_hour_iso(h) for h in raw["hours"]],
        "sensors": {
            sensor: {"unit": units.get(sensor)}
            | {k: np.asarray(v, dtype=np.float64).tolist() for k, v in values.items()}
            for sensor, values in raw["sensors"].items()
        },
    }


def _rows(values: np.ndarray, all_rows: bool) -> Any:
    return values.tolist() if all_rows else values[-1].item()


def predict(
    bundle: EdgeBundle,
    readings: Mapping[str, Any],
    *,
    all_rows: bool = False,
    from_episode_start: bool = False,
    explain: int | None = None,
) -> dict[str, Any]:
    """The four answers for the last reading (or every reading with ``all_rows``).

    Args:
        bundle: a loaded bundle (:func:`pdm_kedro.edge.bundle.load_bundle`).
        readings: column -> values: ``timestamp``, ``regime`` and every sensor of the machine,
            oldest first, one running episode.
        all_rows: answer for every row (rows before ``min_history_rows`` only equal training
            when ``from_episode_start``).
        from_episode_start: the readings start at the episode's first reading.
        explain: explain the last reading's answers with the top ``explain`` factors (see
            :func:`explain_answers`); None: no explanation.

    Raises:
        EdgeInputError: readings the runtime cannot answer from (see ``check_readings``).
        ExplainRequestError: ``explain`` out of range, or no answered family has explanations.
    """
    manifest = bundle.manifest
    top_n = None if explain is None else explain_request(bundle, explain)
    checked = check_readings(
        readings, manifest, int(manifest["inputs"]["min_history_rows"]), from_episode_start
    )
    # a live answer needs the last row only: its features come from the minimal tail
    features = compute_features(checked, manifest, last_row=not all_rows)
    models = manifest["models"]
    result: dict[str, Any] = {
        "machine_id": bundle.machine_id,
        "rows": len(checked),
        "timestamp": (
            [str(t) for t in checked.timestamps] if all_rows else str(checked.timestamps[-1])
        ),
    }
    warnings = []
    unknown = sorted(set(checked.regimes.tolist()) - set(manifest["regimes"]["codes"]))
    if unknown:
        warnings.append(f"unknown regimes {unknown} were coded as -1 (not seen in training)")
    for family in bundle.families:
        mismatch = feature_constants_warning(family, models[family])
        if mismatch is not None:
            warnings.append(mismatch)
        parity = models[family].get("parity", {})
        if parity.get("passed") is False:
            warnings.append(
                f"{family}: the ONNX model did not match the native model at export "
                f"({parity.get('failure', 'see the manifest')}); use its answers with care"
            )
    for family in bundle.families:
        if family not in bundle.sessions:
            continue
        result[models[family]["answer"]["key"]] = answer(
            bundle, family, features, checked, all_rows
        )
    apply_rul_rule(result, manifest, warnings)
    result["warnings"] = warnings
    if top_n is not None:
        result["explanation"] = explain_answers(bundle, features[-1:], top_n)
    return result


def feature_constants_warning(family: str, entry: Mapping[str, Any]) -> str | None:
    """The warning every answer of ``family`` carries when its manifest entry says the model was
    trained with other sensor baselines than the bundle's (``feature_constants_match`` false,
    :func:`pdm_kedro.pipelines.edge_export.nodes.check_feature_constants`); else None."""
    if entry.get("feature_constants_match") is not False:
        return None
    return (
        f"{family}: the model was trained on features built with other sensor baselines than "
        "this bundle computes them with; use its answers with care"
    )


def rul_rule(manifest: Mapping[str, Any]) -> tuple[str, str, float] | None:
    """``(RUL answer key, failure answer key, cap)`` when the bundle's RUL model caps its answer
    while the failure alarm is on (``cap_at_alarm_hours``), else None."""
    models = manifest["models"]
    if REGRESSION not in models or models[REGRESSION].get("cap_at_alarm_hours") is None:
        return None
    failure_key = models[CLASSIFICATION]["answer"]["key"] if CLASSIFICATION in models else None
    return (
        models[REGRESSION]["answer"]["key"],
        failure_key,
        float(models[REGRESSION]["cap_at_alarm_hours"]),
    )


def apply_rul_rule(
    result: dict[str, Any], manifest: Mapping[str, Any], warnings: list[str]
) -> None:
    """The RUL answer consistent with the failure alarm, in place: ``value`` becomes the answer
    (:func:`pdm_kedro.core.rul_answer.rul_at_alarm`), ``model_value`` the RUL model's own and
    ``capped_by_alarm`` says where the alarm capped it (None, with a warning, when the
    classification model did not answer: the model's value, unchecked)."""
    rule = rul_rule(manifest)
    if rule is None or result.get(rule[0]) is None:
        return
    rul_key, failure_key, cap = rule
    rul = result[rul_key]
    failure = result.get(failure_key) if failure_key else None
    rul["model_value"] = rul["value"]
    if failure is None:
        rul["capped_by_alarm"] = None
        warnings.append(
            f"{rul_key}: the RUL model's value, not checked against the failure alarm (the "
            f"classification model did not answer; with it the RUL is at most {cap:g} h while "
            "the alarm is on)"
        )
        return
    answer, capped = rul_at_alarm(np.asarray(rul["value"]), np.asarray(failure["decision"]), cap)
    rul["value"] = answer.tolist()
    rul["capped_by_alarm"] = capped.tolist()


def explained_families(bundle: EdgeBundle) -> list[str]:
    """The answered families (sessions loaded) whose answers the bundle can explain."""
    explainer = bundle.explainer
    if explainer is None:
        return []
    return [f for f in bundle.families if f in bundle.sessions and explainer.explains(f)]


def explain_request(bundle: EdgeBundle, explain: Any) -> int:
    """The number of factors asked for, checked against what the bundle can explain.

    Raises:
        ExplainRequestError: the bundle carries no ``explanation.json``; none of the answered
            families has an explanation (forecasting); ``explain`` is not in 1..inputs.
    """
    if bundle.explainer is None:
        raise ExplainRequestError(
            f"Bundle {bundle.path} carries no explanation.json (exported before explanations "
            "existed): re-export it to get explanations."
        )
    families = explained_families(bundle)
    if not families:
        answered = ", ".join(f for f in bundle.families if f in bundle.sessions)
        can = ", ".join(f for f in bundle.families if bundle.explainer.explains(f)) or "none"
        raise ExplainRequestError(
            f"explain: the {answered} answer has no explanation; explanations exist for "
            f"{can} of machine {bundle.machine_id}."
        )
    largest = max(len(bundle.explainer.families[f]["feature_names"]) for f in families)
    return check_top_n(explain, largest)


def explain_answers(bundle: EdgeBundle, features: np.ndarray, top_n: int) -> dict[str, Any]:
    """Why the last row's answers are what they are, under each family's answer key:
    TreeSHAP top factors and per-sensor sums (classification in log-odds, regression in hours)
    with the base value, the anomaly inputs' standardised deviations, and ``diagnosis``: the
    likely developing failure modes with confidence and action."""
    explainer = bundle.explainer
    manifest = bundle.manifest
    row = features[-1:]
    out: dict[str, Any] = {"top_n": top_n}
    for family in explained_families(bundle):
        x = model_inputs(row, manifest, family)
        key = manifest["models"][family]["answer"]["key"]
        out[key] = explainer.explain(family, x[0], top_n)
    values = dict(zip(manifest["feature_names"], row[0].tolist(), strict=True))
    out["diagnosis"] = explainer.diagnose_row(values)
    return out


def answer(
    bundle: EdgeBundle, family: str, features: np.ndarray, readings: Readings, all_rows: bool
) -> dict[str, Any]:
    """One family's answer, shaped by its kind; the entry's ``answer.fields`` are copied in."""
    entry = bundle.manifest["models"][family]
    spec = entry["answer"]
    kind = spec["kind"]
    if kind == "forecast":
        return forecast(bundle, readings)
    values = family_output(bundle, family, features)
    fields = {name: entry.get(key) for name, key in spec["fields"].items()}
    if kind == "value":
        return {"value": _rows(values, all_rows), **fields}
    threshold = float(entry["threshold"])
    flag = "decision" if kind == "probability" else "flag"
    name = "probability" if kind == "probability" else "score"
    return {
        name: _rows(values, all_rows),
        flag: _rows(values >= threshold, all_rows),
        "threshold": threshold,
        **fields,
    }
