"""Refit the final trees on train+val, or keep them train-only? Chosen on TRAIN+VAL only.

Reads the feature tables of a finished default run (``04_feature/<machine>/features_{train,val}
.parquet``; test is never read) and runs a nested grouped cross-validation per machine: the
train+val episodes in time order are dealt round robin into ``--folds`` groups; each group in
turn is held out as a stand-in for test, the newest ``--val-fraction`` of the other episodes is
the val split of early stopping and the rest trains. Two final models per held-out group, with
the family's own settings (``conf/base/parameters_{classification,regression}.yml``):

- ``train_only``: the early-stopped trees (what ``refit_on_train_val: false`` ships);
- ``refit``: the same number of trees fitted again on train+val (``refit_on_train_val: true``).

Scored on the held-out group: classification PR-AUC and best F1, regression R2 and RMSE on the
capped RUL (the RUL rows weighted near failure as in training); the means over groups per
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
import xgboost as xgb
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))


def _best_f1(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import precision_recall_curve  # noqa: PLC0415

    precision, recall, _ = precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(np.nanmax(f1[:-1]))


def nested_cv(
    pooled: pd.DataFrame,
    params: dict,
    family: str,
    folds: int,
    val_fraction: float,
) -> dict[str, list[float]]:
    """Per held-out group: the train-only and the refitted model's scores (see the module doc)."""
    from sklearn.metrics import average_precision_score, mean_squared_error, r2_score  # noqa: PLC0415

    from pdm_kedro import contract as c  # noqa: PLC0415
    from pdm_kedro.evaluation.model_inputs import (  # noqa: PLC0415
        feature_matrix,
        refit_settings,
        select_feature_names,
        xgboost_settings,
    )
    from pdm_kedro.pipelines.regression.nodes import capped_rul, near_failure_weights  # noqa: PLC0415

    names = select_feature_names(pooled, params.get("feature_columns"))
    x = feature_matrix(pooled, names)
    episode = pooled[c.EPISODE].to_numpy()
    episodes = list(pd.unique(episode))
    group = pd.Series({e: i % folds for i, e in enumerate(episodes)}).reindex(episode).to_numpy()
    if family == "classification":
        y = pooled[c.FAILURE_WITHIN_HORIZON].to_numpy(np.int8)
        weight = None
        kind = xgb.XGBClassifier
    else:
        cap = float(params["rul_cap_hours"])
        y = capped_rul(pooled, cap)
        weight = near_failure_weights(y, cap, params.get("near_failure_weighting"))
        kind = xgb.XGBRegressor
    scores: dict[str, list[float]] = {}
    for k in range(folds):
        held = group == k
        others = [e for e in episodes if group[episode == e][0] != k]
        n_val = max(1, round(val_fraction * len(others)))
        val = np.isin(episode, others[-n_val:])
        train = np.isin(episode, others[:-n_val])
        both = train | val
        w = lambda rows: None if weight is None else weight[rows]  # noqa: E731
        extra = {}
        if family == "classification":  # as train_failure_classifier weighs the classes
            spw = params.get("scale_pos_weight", "auto")
            positives = max(int(y[train].sum()), 1)
            extra["scale_pos_weight"] = float(
                (train.sum() - positives) / positives if spw == "auto" else spw
            )
        model = kind(**xgboost_settings(params), **extra)
        model.fit(x[train], y[train], sample_weight=w(train), eval_set=[(x[val], y[val])],
                  sample_weight_eval_set=None if weight is None else [weight[val]],
                  verbose=False)  # fmt: skip
        refit = kind(**refit_settings(params, int(model.best_iteration)), **extra)
        refit.fit(x[both], y[both], sample_weight=w(both), verbose=False)
        for name, fitted in (("train_only", model), ("refit", refit)):
            if family == "classification":
                p = fitted.predict_proba(x[held])[:, 1]
                pairs = {"pr_auc": average_precision_score(y[held], p),
                         "best_f1": _best_f1(y[held], p)}  # fmt: skip
            else:
                p = fitted.predict(x[held])
                pairs = {"r2": r2_score(y[held], p),
                         "rmse": float(np.sqrt(mean_squared_error(y[held], p)))}  # fmt: skip
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
