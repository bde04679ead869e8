"""Nodes of the diagnosis stage (pure: inputs and outputs through the catalog)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.evaluation import explain as ex
from pdm_kedro.fleet import parse_machine

logger = logging.getLogger(__name__)


def fit_diagnosis_reference(
    features_train: pd.DataFrame,
    machine: dict[str, Any],
    sensor_baselines: dict[str, Any],
    diagnosis: dict[str, Any],
) -> dict[str, Any]:
    """The healthy training reference the deviations are measured from (train split only)."""
    return ex.fit_deviation_reference(features_train, machine, sensor_baselines, diagnosis)


def recommended_action(machine: dict[str, Any], mode: str) -> dict[str, Any]:
    """``{"mode", "description", "action", "part", "repair_time_h"}`` of a configured mode."""
    fm = parse_machine(machine).failure_modes[mode]
    return {
        "mode": mode,
        "description": fm.description,
        "action": fm.action,
        "part": fm.part,
        "repair_time_h": fm.repair_time_h,
    }


def diagnose_rows(
    features: pd.DataFrame,
    machine: dict[str, Any],
    sensor_baselines: dict[str, Any],
    reference: dict[str, Any],
    diagnosis: dict[str, Any],
) -> tuple[list[str], np.ndarray]:
    """(modes, (n, modes) confidence) of every row of a feature table."""
    deviations = ex.row_deviations(features, machine, sensor_baselines, reference)
    signatures = ex.mode_signatures(machine, sensor_baselines)
    return ex.diagnose(deviations, signatures, float(diagnosis["temperature"]))


def _episode_modes(hidden: pd.DataFrame) -> pd.Series:
    return hidden.groupby(c.EPISODE)[c.FAILURE_MODE].first()


def evaluate_diagnosis(
    features_test: pd.DataFrame,
    hidden_state_train: pd.DataFrame,
    hidden_state_test: pd.DataFrame,
    machine: dict[str, Any],
    sensor_baselines: dict[str, Any],
    reference: dict[str, Any],
    diagnosis: dict[str, Any],
) -> dict[str, Any]:
    """Diagnosis accuracy on the test rows of the last ``window_hours`` before each failure,
    beside always guessing the most common mode of the training episodes.

    The simulator's hidden state is read here ONLY to score (the true mode of each episode and
    whether it ends in a failure); the diagnosis itself sees the feature table only.
    """
    spec = parse_machine(machine)
    modes = list(spec.failure_modes)
    doc: dict[str, Any] = {"machine_id": spec.machine_id, "modes": modes, "split": "test"}
    if hidden_state_test.empty or not modes:
        logger.info("%s: no hidden state (file source): diagnosis not evaluated", spec.machine_id)
        return doc | {"accuracy": None, "baseline_accuracy": None, "rows": 0, "episodes": 0}
    wear = hidden_state_test.groupby(c.EPISODE)[c.LATENT_WEAR].max()
    failed = wear[wear >= float(diagnosis["failure_wear"])].index
    window = features_test[
        (features_test[c.RUL] <= float(diagnosis["window_hours"]))
        & features_test[c.EPISODE].isin(failed)
    ]
    truth = _episode_modes(hidden_state_test).reindex(window[c.EPISODE]).to_numpy()
    train_modes = _episode_modes(hidden_state_train)
    common = train_modes.value_counts().sort_index().idxmax() if len(train_modes) else modes[0]
    names, confidence = diagnose_rows(window, machine, sensor_baselines, reference, diagnosis)
    predicted = np.array(names)[confidence.argmax(axis=1)] if len(window) else np.array([])
    correct = predicted == truth
    per_mode = {
        m: {"rows": int((truth == m).sum()), "accuracy": float(correct[truth == m].mean())}
        for m in modes
        if (truth == m).any()
    }
    per_episode = (
        pd.DataFrame({"episode": window[c.EPISODE].to_numpy(), "ok": correct})
        .groupby("episode")["ok"]
        .mean()
    )
    last = window.groupby(c.EPISODE).tail(1)
    last_names, last_conf = diagnose_rows(last, machine, sensor_baselines, reference, diagnosis)
    examples = []
    for i, (_, row) in enumerate(last.iterrows()):
        order = np.argsort(-last_conf[i])
        examples.append(
            {
                "episode_id": str(row[c.EPISODE]),
                "timestamp": str(row[c.TIMESTAMP]),
                "true_mode": str(_episode_modes(hidden_state_test)[row[c.EPISODE]]),
                "diagnosis": [
                    {
                        "confidence": float(last_conf[i, k]),
                        **recommended_action(machine, last_names[k]),
                    }
                    for k in order[: int(diagnosis["top_modes"])]
                ],
            }
        )
    return doc | {
        "window_hours": float(diagnosis["window_hours"]),
        "rows": len(window),
        "episodes": int(window[c.EPISODE].nunique()),
        "accuracy": float(correct.mean()) if len(window) else None,
        "baseline_accuracy": float((truth == common).mean()) if len(window) else None,
        "baseline": f"always {common} (the most common mode of the training episodes)",
        "episode_accuracy": float(per_episode.mean()) if len(per_episode) else None,
        "per_mode": per_mode,
        "examples": examples,
    }


def compute_test_contributions(
    features_test: pd.DataFrame, model: dict[str, Any]
) -> dict[str, Any]:
    """The model's exact TreeSHAP contributions and base value on every test row, computed once
    for the local-accuracy check and the card's global importance."""
    x = features_test[list(model["feature_names"])].to_numpy(dtype=np.float32)
    contribs, base = ex.tree_contributions(model, x)
    return {"contributions": contribs, "base_value": base}


def check_local_accuracy(
    features_test: pd.DataFrame,
    model: dict[str, Any],
    contributions: dict[str, Any],
    diagnosis: dict[str, Any],
) -> dict[str, Any]:
    """max |sum of contributions + base - raw prediction| over the test rows (every row unless
    ``local_accuracy_rows`` caps it: then an evenly spaced, deterministic subset)."""
    names = list(model["feature_names"])
    x = features_test[names].to_numpy(dtype=np.float32)
    contribs, base = contributions["contributions"], contributions["base_value"]
    cap = diagnosis.get("local_accuracy_rows")
    if cap is not None and len(x) > int(cap):
        keep = np.linspace(0, len(x) - 1, int(cap)).round().astype(int)
        x, contribs = x[keep], contribs[keep]
    error = np.abs(contribs.sum(axis=1) + base - ex.raw_margin(model, x))
    return {
        "family": model["family"],
        "output_space": ex.OUTPUT_SPACE[model["family"]],
        "base_value": base,
        "rows": len(x),
        "max_local_accuracy_error": float(error.max()) if len(error) else 0.0,
    }


def build_diagnosis_report(*documents: dict[str, Any]) -> dict[str, Any]:
    """Fleet report: per machine accuracy beside the baseline, row-weighted fleet figures, and
    the largest local-accuracy error of every contribution check."""
    machines: dict[str, Any] = {}
    errors: list[float] = []
    checked = 0
    for doc in documents:
        if "family" in doc:  # a local-accuracy check
            errors.append(float(doc["max_local_accuracy_error"]))
            checked += int(doc["rows"])
            continue
        machines[doc["machine_id"]] = {
            k: doc.get(k)
            for k in (
                "accuracy",
                "baseline_accuracy",
                "baseline",
                "rows",
                "episodes",
                "modes",
                "episode_accuracy",
                "per_mode",
            )
        }
    scored = {m: d for m, d in machines.items() if d["accuracy"] is not None and d["rows"]}
    rows = sum(d["rows"] for d in scored.values())

    def weighted(key: str) -> float | None:
        return sum(d[key] * d["rows"] for d in scored.values()) / rows if rows else None

    multi = {m: d for m, d in scored.items() if len(d["modes"]) > 1}
    return {
        "fleet_accuracy": weighted("accuracy"),
        "fleet_baseline_accuracy": weighted("baseline_accuracy"),
        "rows": rows,
        "beats_baseline_on_every_multi_mode_machine": all(
            d["accuracy"] > d["baseline_accuracy"] for d in multi.values()
        ),
        "machines_not_beating_baseline": sorted(
            m for m, d in multi.items() if d["accuracy"] <= d["baseline_accuracy"]
        ),
        "max_local_accuracy_error": max(errors) if errors else None,
        "local_accuracy_rows_checked": checked,
        "machines": machines,
    }


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def write_explanation_section(
    features_test: pd.DataFrame,
    classifier: dict[str, Any],
    regressor: dict[str, Any],
    classifier_contributions: dict[str, Any],
    regressor_contributions: dict[str, Any],
    machine: dict[str, Any],
    diagnosis: dict[str, Any],
) -> str:
    """The model card's explanation section (markdown): global importance per sensor of both
    XGBoost models (mean |contribution| over the test rows, from their
    :func:`compute_test_contributions`) and the explanation of the last test alarms (rows the
    classifier flags at its threshold)."""
    spec = parse_machine(machine)
    n_top = int(diagnosis["card_top_factors"])
    lines = [
        f"# {spec.machine_id}: explanations",
        "",
        "Exact TreeSHAP contributions from XGBoost (classification in log-odds, RUL in hours), "
        "summed per sensor; see docs/explanations.md.",
        "",
        "## Global importance per sensor (mean |contribution| over the test rows)",
        "",
    ]
    imp_c = ex.global_importance_per_sensor(
        classifier, features_test, machine, classifier_contributions["contributions"]
    )
    imp_r = ex.global_importance_per_sensor(
        regressor, features_test, machine, regressor_contributions["contributions"]
    )
    rows = [[s, f"{imp_c[s]:.3f}", f"{imp_r.get(s, 0.0):.2f}"] for s in imp_c]
    lines += _table(rows, ["sensor", "classification (log-odds)", "RUL (hours)"])
    x = features_test[list(classifier["feature_names"])].to_numpy(dtype=np.float32)
    proba = classifier["estimator"].predict_proba(x)[:, 1]
    alarms = features_test[proba >= float(classifier["threshold"])]
    last = alarms.groupby(c.EPISODE).tail(1).tail(int(diagnosis["card_alarms"]))
    lines += ["", f"## The last {len(last)} test alarms", ""]
    if last.empty:
        lines.append("No test row reached the decision threshold.")
    for (_, row), exp in zip(
        last.iterrows(), ex.explain_rows(classifier, last, machine, n_top), strict=True
    ):
        p = 1.0 / (1.0 + np.exp(-exp["raw_prediction"]))
        lines += [
            f"- episode {row[c.EPISODE]}, {row[c.TIMESTAMP]}: P(failure) {p:.2f} "
            f"(base {exp['base_value']:+.2f} log-odds); "
            + "; ".join(f["text"] for f in exp["top_factors"])
        ]
    return "\n".join(lines) + "\n"
