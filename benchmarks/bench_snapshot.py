"""Snapshot-table benchmark: the pipeline's classifier against a plain XGBoost on the raw table.

    python benchmarks/bench_snapshot.py --env snapshot [--data-root DIR] [--reuse]

For the environment:

1. writes its snapshot table when it declares one (``snapshot_table`` parameters:
   ``python -m pdm_kedro.commands.snapshot_table --env <env>``), then runs ``kedro run -e <env>``
   with ``PDM_DATA_ROOT=<data root>/<env>`` and a throw-away MLflow store under it;
2. for every priority machine that is a snapshot source (``time_kind: none``) with the
   classification family, reads the pipeline's own test F1 (``metrics.json``);
3. fits the reference on the same raw splits the run wrote (``01_raw/<machine>/{train,val,test}``):
   a plain ``xgboost.XGBClassifier`` with its default settings (seeded, ``enable_categorical`` for
   the text columns) on the raw columns (sensors and categorical columns as given), fitted on
   train+val, with the decision threshold that maximises the out-of-fold F1 over train+val in the
   same seeded stratified folds as the pipeline (the machine's ``threshold_selection.folds`` and
   family ``seed``). Test is scored once.

The target (issue 11): the pipeline's test F1 at least the reference's. Writes
``<data root>/<env>/08_reporting/snapshot_benchmark.{json,md}``. The data root defaults to
$PDM_DATA_ROOT, else /tmp/pdm_snapshot. Nothing here names a machine or a file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from pdm_kedro import contract as c
from pdm_kedro.evaluation.classification_metrics import (
    best_f1_threshold,
    ranking_metrics,
    threshold_metrics,
)
from pdm_kedro.fleet import (
    family_parameters,
    load_project_parameters,
    machines_in_parameters,
    priority_machines,
)
from pdm_kedro.pipelines.classification.nodes import threshold_folds
from pdm_kedro.pipelines.feature_engineering.snapshot import (
    categorical_columns,
    is_snapshot_source,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FAMILY = "classification"
LABEL = c.FAILURE_WITHIN_HORIZON


def _environ(data_root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PDM_DATA_ROOT": str(data_root),
        "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{data_root / 'mlflow.db'}",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def run_environment(env: str, data_root: Path, cwd: Path, make_table: bool) -> dict[str, Any]:
    """The table (when the environment declares one), then ``kedro run -e env``."""
    data_root.mkdir(parents=True, exist_ok=True)
    steps = []
    if make_table:
        steps.append([sys.executable, "-m", "pdm_kedro.commands.snapshot_table", "--env", env])
    steps.append(["kedro", "run", "-e", env])
    start = time.perf_counter()
    for cmd in steps:
        done = subprocess.run(
            cmd, cwd=cwd, env=_environ(data_root), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{tail}")
    return {"wall_seconds": round(time.perf_counter() - start, 1), "commands": steps}


def raw_table(frame: pd.DataFrame, sensors: list[str], categorical: dict[str, str]) -> pd.DataFrame:
    """The raw columns as the user's table holds them: sensors, and text columns as categories."""
    table = frame[sensors].astype(np.float64).copy()
    for name, column in categorical.items():
        table[name] = frame[column].astype(str).astype("category")
    return table


def plain_xgboost_reference(
    splits: dict[str, pd.DataFrame],
    sensors: list[str],
    categorical: dict[str, str],
    folds: int,
    seed: int,
) -> dict[str, Any]:
    """Default XGBClassifier on the raw table (train+val), threshold by out-of-fold F1 in the
    pipeline's stratified folds, scored on test."""
    pooled = pd.concat([splits["train"], splits["val"]], ignore_index=True)
    levels = {
        name: sorted(pooled[column].astype(str).unique()) for name, column in categorical.items()
    }

    def table(frame: pd.DataFrame) -> pd.DataFrame:
        out = raw_table(frame, sensors, categorical)
        for name, values in levels.items():
            out[name] = pd.Categorical(out[name].astype(str), categories=values)
        return out

    def model() -> xgb.XGBClassifier:
        return xgb.XGBClassifier(
            random_state=seed, n_jobs=1, tree_method="hist", enable_categorical=True
        )

    x, y = table(pooled), pooled[LABEL].to_numpy(np.int8)
    fold, n_folds = threshold_folds(pooled, {"method": "stratified_cv", "folds": folds}, seed)
    oof = np.zeros(len(pooled))
    for k in range(n_folds):
        held = fold == k
        oof[held] = model().fit(x[~held], y[~held]).predict_proba(x[held])[:, 1]
    chosen = best_f1_threshold(y, oof, 0.0)
    final = model().fit(x, y)
    test = splits["test"]
    proba = final.predict_proba(table(test))[:, 1]
    y_test = test[LABEL].to_numpy(np.int8)
    return {
        "method": "xgboost.XGBClassifier defaults (seeded), raw columns, enable_categorical, "
        "fitted on train+val; threshold: max out-of-fold F1 over train+val (same stratified "
        "folds as the pipeline)",
        "features": [*sensors, *categorical],
        "threshold": float(chosen["threshold"]),
        "oof_f1": float(chosen["f1"]),
        "test": {
            **threshold_metrics(y_test, proba >= chosen["threshold"]),
            **ranking_metrics(y_test, proba),
        },
    }


def pipeline_figures(root: Path, machine_id: str) -> dict[str, Any]:
    """The run's own classification test figures of one machine."""
    doc = json.loads((root / "08_reporting" / machine_id / FAMILY / "metrics.json").read_text())
    values = {row["metric"]: row["value"] for row in doc["metrics"]}
    return {
        "test": {k: values[k] for k in ("f1", "precision", "recall", "pr_auc", "roc_auc")},
        "threshold": doc["threshold"],
        "threshold_chosen_on": doc["model"]["threshold_chosen_on"],
        "n_features": doc["model"]["n_features"],
        "settings": {k: v for k, v in doc["model"].items() if k not in ("estimator",)},
    }


def score_machine(
    root: Path, parameters: dict[str, Any], machine_id: str, block: dict[str, Any]
) -> dict[str, Any]:
    """Pipeline and reference figures of one snapshot machine, on the run's own splits."""
    params = family_parameters(parameters, block, FAMILY)
    splits = {
        name: pd.read_parquet(root / "01_raw" / machine_id / f"{name}.parquet") for name in c.SPLITS
    }
    sensors = [s["name"] for s in block["sensors"]]
    selection = params.get("threshold_selection") or {}
    reference = plain_xgboost_reference(
        splits,
        sensors,
        categorical_columns(block),
        int(selection.get("folds", 5)),
        int(params["seed"]),
    )
    ours = pipeline_figures(root, machine_id)
    return {
        "rows": {name: len(frame) for name, frame in splits.items()},
        "positive_rate": {name: float(frame[LABEL].mean()) for name, frame in splits.items()},
        "pipeline": ours,
        "plain_xgboost": reference,
        "target_met": bool(ours["test"]["f1"] >= reference["test"]["f1"]),
    }


def markdown(env: str, report: dict[str, Any]) -> str:
    """The report as a short markdown table."""
    lines = [
        f"# Snapshot benchmark: `{env}`",
        "",
        f"Run: {report['run']['wall_seconds']} s. Target: pipeline test F1 >= plain XGBoost.",
        "",
        "| machine | rows train/val/test | pipeline F1 | PR-AUC | plain XGBoost F1 | PR-AUC | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for machine_id, doc in report["machines"].items():
        ours, ref = doc["pipeline"]["test"], doc["plain_xgboost"]["test"]
        rows = "/".join(str(doc["rows"][s]) for s in c.SPLITS)
        lines.append(
            f"| {machine_id} | {rows} | {ours['f1']:.3f} | {ours['pr_auc']:.3f} | "
            f"{ref['f1']:.3f} | {ref['pr_auc']:.3f} | {'yes' if doc['target_met'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="score an existing run")
    parser.add_argument("--project", type=Path, default=PROJECT_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    base = args.data_root or Path(os.environ.get("PDM_DATA_ROOT") or "/tmp/pdm_snapshot")
    root = base.resolve() / args.env
    parameters = load_project_parameters(env=args.env, conf_source=args.project / "conf")
    run = (
        {"wall_seconds": None, "reused": True}
        if args.reuse
        else run_environment(args.env, root, args.project, "snapshot_table" in parameters)
    )
    machines = machines_in_parameters(parameters)
    scored = {
        machine_id: score_machine(root, parameters, machine_id, machines[machine_id])
        for machine_id in priority_machines(parameters)
        if is_snapshot_source(machines[machine_id])
        and FAMILY in (machines[machine_id]["source"].get("families") or [FAMILY])
    }
    if not scored:
        raise SystemExit(f"environment {args.env!r} has no snapshot machine with {FAMILY}")
    report = {"env": args.env, "data_root": str(root), "run": run, "machines": scored}
    out = root / "08_reporting"
    out.mkdir(parents=True, exist_ok=True)
    (out / "snapshot_benchmark.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "snapshot_benchmark.md").write_text(markdown(args.env, report))
    print(markdown(args.env, report))  # noqa: T201 (a benchmark's report)
    return report


if __name__ == "__main__":
    main()
