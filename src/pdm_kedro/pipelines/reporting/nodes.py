"""Reports a maintenance engineer can read: a model card per machine, the fleet metrics table.

Both take whatever family metrics exist (the registry passes every ``<machine>.<family>.metrics``
of the machines being run), so a family added later shows up without changes here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from pdm_kedro.evaluation.events import EVENT_METRICS, event_summary, records_interval
from pdm_kedro.families import LOWER_IS_BETTER, greater_is_better  # noqa: F401 (re-exported)
from pdm_kedro.fleet import parse_machine

logger = logging.getLogger(__name__)

FLEET_COLUMNS = [
    "machine_id",
    "family",
    "metric",
    "value",
    "baseline",
    "ceiling",
    "beats_baseline",
    "value_lo",
    "value_hi",
]
FLEET = "fleet"  # machine_id of the fleet-wide rows
NUMERIC_COLUMNS = ["value", "baseline", "ceiling", "value_lo", "value_hi"]


def beats_baseline(metric: str, value: float | None, baseline: float | None) -> bool | None:
    """Whether ``value`` is better than ``baseline`` for ``metric`` (None when either is missing)."""
    if value is None or baseline is None:
        return None
    return value > baseline if greater_is_better(metric) else value < baseline


def fleet_event_rows(family_metrics: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fleet-wide event figures (``machine_id`` = ``fleet``) of every document with
    ``events`` (the classification family): all machines' test episodes pooled, the bootstrap
    interval resampling those episodes with the settings of the first document."""
    docs = [doc for doc in family_metrics if doc.get("events")]
    if not docs:
        return []
    model = [r for doc in docs for r in doc["events"]["model"]["episodes"]]
    baseline = [r for doc in docs for r in doc["events"]["baseline"]["episodes"]]
    boot = docs[0]["events"]["bootstrap"]
    values, baselines = event_summary(model), event_summary(baseline)
    rows = []
    for metric in EVENT_METRICS:
        lo, hi = records_interval(
            model, metric, int(boot["resamples"]), int(boot["seed"]), float(boot["level"])
        )
        value = values[metric] if math.isfinite(values[metric]) else None
        base = baselines[metric] if math.isfinite(baselines[metric]) else None
        rows.append(
            {
                "machine_id": FLEET,
                "family": docs[0]["family"],
                "metric": metric,
                "value": value,
                "baseline": base,
                "ceiling": None,
                "beats_baseline": beats_baseline(metric, value, base),
                "value_lo": lo,
                "value_hi": hi,
            }
        )
    return rows


def build_fleet_metrics(*family_metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per machine, family and test metric: machine_id, family, metric, value, baseline,
    ceiling (the hidden-state reference, empty where there is none), beats_baseline (empty when
    either side is missing) and the bootstrap interval value_lo / value_hi (empty where none).

    A document's ``fleet_metrics`` rows (fleet-wide figures, ``machine_id`` = ``fleet``) are
    appended as they are."""
    rows = [
        {
            "machine_id": row.get("machine_id", doc["machine_id"]),
            "family": doc["family"],
            "metric": row["metric"],
            "value": row.get("value"),
            "baseline": row.get("baseline"),
            "ceiling": row.get("ceiling"),
            "beats_baseline": beats_baseline(row["metric"], row.get("value"), row.get("baseline")),
            "value_lo": row.get("value_lo"),
            "value_hi": row.get("value_hi"),
        }
        for doc in family_metrics
        for row in doc.get("metrics", [])
    ]
    rows += fleet_event_rows(family_metrics)
    frame = pd.DataFrame(rows, columns=FLEET_COLUMNS)
    frame[NUMERIC_COLUMNS] = frame[NUMERIC_COLUMNS].astype("float64")
    frame["beats_baseline"] = frame["beats_baseline"].astype("boolean")
    logger.info("fleet metrics: %d rows from %d family reports", len(frame), len(family_metrics))
    return frame.sort_values(["machine_id", "family"], kind="stable").reset_index(drop=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}"
    return str(value)


def _model_section(doc: dict[str, Any]) -> list[str]:
    lines = [f"### {doc['family']}", ""]
    model = doc.get("model") or {}
    # a null setting (e.g. XGBoost's n_jobs: the process's thread budget) reads as in the JSON
    simple = {
        k: v for k, v in model.items() if v is None or isinstance(v, str | int | float | bool)
    }
    if simple:
        lines += [
            ", ".join(
                f"`{key}` = {'null' if value is None else _fmt(value)}"
                for key, value in simple.items()
            ),
            "",
        ]
    nested = [k for k in model if k not in simple]
    if nested:
        lines += [f"More settings in `{doc['family']}/metrics.json`: {', '.join(nested)}.", ""]
    rule = (doc.get("threshold_rule") or {}).get("rule")
    if doc.get("threshold") is not None and rule in ("normal_far", "leading_window"):
        target = _fmt(doc["threshold_rule"].get("target_far"))
        where = (
            "each episode's own leading normal window (per-episode thresholds; the bundle keeps "
            "the val one)"
            if rule == "leading_window"
            else "val's normal rows"
        )
        lines += [
            f"Decision threshold: {_fmt(doc['threshold'])}, rule `{rule}`: target false-alarm "
            f"rate {target} on {where}; no labelled anomaly used.",
            "",
        ]
    elif doc.get("threshold") is not None:
        chosen_on = (doc.get("model") or {}).get("threshold_chosen_on", "val")
        lines += [f"Decision threshold: {_fmt(doc['threshold'])} (chosen on {chosen_on}).", ""]
    if doc.get("target"):
        lines += [f"Target: {doc['target']}.", ""]
    lines += _protocol_lines(doc)
    return lines


def _protocol_lines(doc: dict[str, Any]) -> list[str]:
    """The scoring protocol of a family's headline figures, and the secondary all-rows figures."""
    protocol = doc.get("protocol")
    if not protocol:
        return []
    lines = [
        f"Scoring protocol: {protocol['name']} (headline test figures on "
        f"{protocol.get('scored_on', 'the test split')}).",
        "",
    ]
    secondary = doc.get("all_rows_metrics")
    if secondary:
        shown = ", ".join(
            f"{row['metric']} {_fmt(row.get('value'))} (baseline {_fmt(row.get('baseline'))})"
            for row in secondary["metrics"]
            if row["metric"] in ("rmse", "mae")
        )
        lines += [f"Secondary, {secondary['label']}, {secondary['n_rows']} rows: {shown}.", ""]
    return lines


def _metrics_table(docs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| family | metric | model | 90 % interval | baseline | baseline name | beats baseline "
        "| ceiling |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for doc in docs:
        for row in doc.get("metrics", []):
            better = beats_baseline(row["metric"], row.get("value"), row.get("baseline"))
            mark = "n/a" if better is None else ("yes" if better else "**no**")
            interval = (
                f"{_fmt(row['value_lo'])} to {_fmt(row['value_hi'])}"
                if row.get("value_lo") is not None and row.get("value_hi") is not None
                else ""
            )
            ceiling = _fmt(row["ceiling"]) if row.get("ceiling") is not None else ""
            lines.append(
                f"| {doc['family']} | {row['metric']} | {_fmt(row.get('value'))} | {interval} | "
                f"{_fmt(row.get('baseline'))} | {row.get('baseline_name', '')} | {mark} | "
                f"{ceiling} |"
            )
    return lines


def _limitations(docs: list[dict[str, Any]], source: str) -> list[str]:
    lines = []
    if source == "synthetic":
        lines.append(
            "- Trained and scored on simulated data: figures describe the simulator, not a real "
            "machine. Re-validate on the machine's own history before trusting alarms."
        )
    if source == "synthetic":
        lines.append(
            "- Splits are whole run-to-failure episodes in time order; the test split holds only "
            "a few episodes, so test figures move a lot from one episode to the next."
        )
    for doc in docs:
        worse = [
            row["metric"]
            for row in doc.get("metrics", [])
            if beats_baseline(row["metric"], row.get("value"), row.get("baseline")) is False
        ]
        if worse:
            lines.append(
                f"- {doc['family']}: does not beat its baseline on {', '.join(worse)} (test)."
            )
        if doc.get("target"):
            lines.append(f"- {doc['family']}: metrics are on the {doc['target']}.")
    return lines


def _sampling_text(spec: Any) -> str:
    """How often the machine is read, in the data's own terms."""
    source = spec.source.model_dump()
    kind = (source.get("columns") or {}).get("time_kind")
    if kind == "cycle":
        return (
            f"one reading per cycle (a cycle counts as {source.get('cycle_minutes'):g} nominal "
            "minutes: windows and RUL are in cycles)"
        )
    if kind == "none":
        return "independent snapshots (no time order)"
    return f"one reading every {spec.sampling_interval_min:g} min"


SPLIT_TEXT = {
    "episode": "whole episodes of the data files in time order (train, val, test).",
    "time": "the leading {train_rows} rows of every file / episode train, the rest test; val "
    "{val}.",
    "files": "the source's train files for train and val (val: {val_fraction:.0%} of the training "
    "units drawn with seed {seed}), its test files for test.",
    "random": "independent rows drawn into train, val and test with seed {seed}{stratified}.",
}


def _features_text(sensor_baselines: dict[str, Any]) -> str:
    """What the models read: window features, or a snapshot table's row features."""
    rows = sensor_baselines["fitted_on"]["rows"]
    snapshot = sensor_baselines.get("snapshot")
    if not snapshot:
        return (
            f"Window features over {sensor_baselines['windows_hours']} hours, scaled with "
            f"per-sensor baselines fitted on the training split ({rows} rows)."
        )
    dropped = snapshot.get("dropped_constant") or []
    return (
        "Snapshot features (no windows: rows have no time order): each row's readings"
        + (", their z-scores per operating condition" if snapshot.get("zscores") else "")
        + (
            f", one 0/1 column per train level of {sorted(snapshot['levels'])}"
            if snapshot.get("levels")
            else ""
        )
        + f"; {len(snapshot['features'])} features, fitted on the training split ({rows} rows)"
        + (
            f", {len(dropped)} constant on train left out ({', '.join(dropped)})."
            if dropped
            else "."
        )
    )


def _split_text(spec: Any) -> str:
    """The real split of the machine's data (simulated machines: whole episodes)."""
    source = spec.source.model_dump()
    split = source.get("split")
    if spec.source.type != "file" or not split:
        return "whole episodes in time order (train, val, test)."
    files = source.get("files") or {}
    val = (
        "from the source's val files"
        if "val" in files
        else f"the next {split.get('val_rows')} rows"
    )
    fractions = split.get("fractions")
    stratified = (f" in fractions {fractions}" if fractions else " in the fleet's fractions") + (
        f", stratified on {split['stratify']}" if split.get("stratify") else ""
    )
    return SPLIT_TEXT[split["method"]].format(**{**split, "val": val, "stratified": stratified})


def _answer_note(docs: list[dict[str, Any]]) -> list[str]:
    """What the ``answer_*`` rows are, when a family's metrics have them."""
    notes = []
    for doc in docs:
        answer = doc.get("answer") or {}
        if answer.get("cap_at_alarm_hours") is not None:
            notes += [
                f"`answer_*` ({doc['family']}): the RUL as the edge and the service answer it, at "
                f"most {answer['cap_at_alarm_hours']:g} h while the failure classifier alarms "
                f"({answer.get('rows_capped', 0)} test rows capped); the other RUL rows are the "
                "RUL model's own.",
                "",
            ]
    return notes


def write_model_card(
    machine: dict[str, Any],
    reporting: dict[str, Any],
    sensor_baselines: dict[str, Any],
    *family_metrics: dict[str, Any],
) -> str:
    """The machine's model card (markdown): data, models, test metrics vs baselines, limitations,
    plots and how to retrain. Plot links are relative to the card's folder."""
    spec = parse_machine(machine)
    docs = sorted(family_metrics, key=lambda d: d["family"])
    refit = [d["family"] for d in docs if d.get("model", {}).get("trees_fitted_on") == "train+val"]
    sensors = ", ".join(
        f"{name} ({info.get('unit', '')})" for name, info in sensor_baselines["sensors"].items()
    )
    lines = [
        f"# Model card: {spec.machine_id}",
        "",
        "_Generated by the `reporting` pipeline from this run's metrics files; do not edit._",
        "",
        "## Machine and data",
        "",
        f"- {spec.manufacturer} {spec.model} ({spec.category})"
        + (f", {spec.power_kw:g} kW" if spec.power_kw else "")
        + (f", {spec.age_years:g} years old" if spec.age_years else "")
        + ".",
        f"- Data source: {spec.source.type}; {_sampling_text(spec)}.",
        f"- Sensors: {sensors}.",
        f"- {_features_text(sensor_baselines)}",
        f"- Splits: {_split_text(spec)} Trees are fitted on train"
        + (
            f" ({', '.join(refit)}: refitted on train+val with the tree count chosen on val)"
            if refit
            else ""
        )
        + "; early stopping uses val, thresholds val or cross-validation over train+val "
        "episodes; test is only scored.",
        "",
        "## Models",
        "",
    ]
    if not docs:
        lines += ["No model family has reported metrics for this machine yet.", ""]
    for doc in docs:
        lines += _model_section(doc)
    lines += [
        "## Test metrics vs baseline",
        "",
        *(_metrics_table(docs) if docs else ["No metrics yet."]),
        "",
        "`ceiling`: the same model kind trained on the simulator's hidden state (latent wear, "
        "hours since the repair) with the same splits and rules: what the data allows at most. "
        "Empty where there is none (a machine's own files have no hidden state).",
        "",
        *_answer_note(docs),
        "Test rows per family: "
        + ", ".join(f"{d['family']} {d.get('n_rows', 'n/a')}" for d in docs),
        "",
        "## Plots and files",
        "",
    ]
    for doc in docs:
        family = doc["family"]
        links = [f"[{name}]({family}/{name})" for name in doc.get("plots", [])]
        links.append(f"[metrics.json]({family}/metrics.json)")
        lines.append(f"- {family}: " + ", ".join(links) + f" (folder [{family}/]({family}/))")
    lines += [
        "",
        "## Limitations",
        "",
        *_limitations(docs, spec.source.type),
        "",
        "## How to retrain",
        "",
        f"- `{reporting['retrain_command'].format(machine_id=spec.machine_id)}` retrains every "
        "family of this machine, rewrites this card and logs one MLflow run.",
        f"- Models a family registers are named `{spec.machine_id}-<family>` in the MLflow model "
        "registry. Each run registers a `challenger`; the alias `champion` (what the edge bundle "
        "and the scoring pipeline use) moves only when the challenger beats it by the configured "
        "margin on the same evaluation data with no guard metric worse "
        "(`data/08_reporting/promotions.jsonl` says why); "
        f"`pdm-kedro models list {spec.machine_id}` shows the versions.",
        f"- Browse runs and the registry: `{reporting['mlflow_ui_command']}` "
        "(from the project root), then open http://127.0.0.1:5000.",
        "",
    ]
    return "\n".join(lines)
