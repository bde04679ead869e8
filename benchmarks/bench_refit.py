"""Refit the final trees on train+val, or keep them train-only? Chosen on TRAIN+VAL only.

Reads the feature tables of a finished default run (``04_feature/<machine>/features_{train,val}
.parquet``; test is never read) and runs a nested grouped cross-validation per machine: the
train+val episodes in time order are dealt round robin into ``--folds`` groups; each group in
turn is held out as a stand-in for test, the newest ``--val-fraction`` of the other episodes is
the val split of early stopping and the rest trains. Two final models per held-out group, with
the family's own settings (``conf/base/parameters_{classification,regression}.yml``):

- ``train_only``: the early-stopped trees (what ``refit_on_train_val: false`` ships);
- ``refit``: the same number of trees fitted again on train+val (``refit_on_train_val: true``).

Both are trained and scored by the families' own nodes (``train_failure_classifier`` /
``refit_failure_classifier``, ``train_rul_regressor`` / ``refit_rul_regressor``).

Scored on the held-out group: classification PR-AUC and best F1, regression R2 and RMSE on the
capped RUL (predictions clipped to ``[0, cap]`` as the pipeline's); the means over groups per
machine, and the means over machines.

    python benchmarks/bench_refit.py --data-root <data root of a default run>

Results: ``<data root>/08_reporting/benchmark_refit.json``. Not run by the tests: about
5 minutes for the 10 priority machines on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))


def nested_cv(
    pooled: pd.DataFrame,
    params: dict,
    family: str,
    folds: int,
    val_fraction: float,
) -> dict[str, list[float]]:
    """Per held-out group: the train-only and the refitted model's scores (see the module doc),
    both trained and scored by the family's own nodes."""
    from pdm_kedro import contract as c  # noqa: PLC0415
    from pdm_kedro.evaluation.classification_metrics import best_f1_threshold, pr_auc  # noqa: PLC0415
    from pdm_kedro.evaluation.regression_metrics import regression_metrics  # noqa: PLC0415
    from pdm_kedro.pipelines.classification import nodes as cls  # noqa: PLC0415
    from pdm_kedro.pipelines.regression import nodes as reg  # noqa: PLC0415

    train_only = {**params, "refit_on_train_val": False}
    refit_on = {**params, "refit_on_train_val": True}
    episode = pooled[c.EPISODE].to_numpy()
    episodes = list(pd.unique(episode))
    group = pd.Series({e: i % folds for i, e in enumerate(episodes)}).reindex(episode).to_numpy()
    scores: dict[str, list[float]] = {}
    for k in range(folds):
        held = pooled[group == k]
        others = [e for e in episodes if group[episode == e][0] != k]
        n_val = max(1, round(val_fraction * len(others)))
        val = pooled[np.isin(episode, others[-n_val:])]
        train = pooled[np.isin(episode, others[:-n_val])]
        if family == "classification":
            model = cls.train_failure_classifier(train, val, train_only)
            models = {"train_only": model,
                      "refit": cls.refit_failure_classifier(model, train, val, refit_on)}  # fmt: skip
        else:
            model = reg.train_rul_regressor(train, val, train_only)
            models = {"train_only": model,
                      "refit": reg.refit_rul_regressor(model, train, val, refit_on)}  # fmt: skip
        for name, fitted in models.items():
            if family == "classification":
                y = held[c.FAILURE_WITHIN_HORIZON].to_numpy()
                p = cls.failure_probability(fitted, held)
                pairs = {"pr_auc": pr_auc(y, p), "best_f1": best_f1_threshold(y, p)["f1"]}
            else:
                m = regression_metrics(
                    reg.capped_rul(held, fitted["rul_cap_hours"]), reg.predict_rul(fitted, held)
                )
                pairs = {"r2": m["r2"], "rmse": m["rmse"]}
            for metric, value in pairs.items():
                scores.setdefault(f"{name}.{metric}", []).append(float(value))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--machines", nargs="*", default=None)
    parser.add_argument("--families", nargs="*", default=["classification", "regression"])
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    args = parser.parse_args()
    params: dict = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    results: dict = {"folds": args.folds, "val_fraction": args.val_fraction, "machines": {}}
    for m in args.machines or params["fleet"]["priority_machines"]:
        folder = args.data_root / "04_feature" / m
        if not (folder / "features_val.parquet").exists():
            continue
        pooled = pd.concat(
            [pd.read_parquet(folder / f"features_{s}.parquet") for s in ("train", "val")],
            ignore_index=True,
        )
        results["machines"][m] = {}
        for family in args.families:
            scores = nested_cv(pooled, params[family], family, args.folds, args.val_fraction)
            means = {k: round(float(np.mean(v)), 4) for k, v in scores.items()}
            results["machines"][m][family] = means
            print(m, family, means, flush=True)
    summary: dict = {}
    for family in args.families:
        rows = [r[family] for r in results["machines"].values() if family in r]
        if rows:
            keys = rows[0].keys()
            summary[family] = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys}
            print("mean", family, summary[family])
    results["mean_over_machines"] = summary
    out = args.data_root / "08_reporting" / "benchmark_refit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
