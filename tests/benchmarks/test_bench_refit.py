"""``benchmarks/bench_refit.py``'s nested grouped CV on the tiny fixtures: every held-out group
is scored for both models of both families, on train+val rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.benchmarks import load_benchmark
from tests.pipelines.classification.conftest import shrink


def _bench():
    return load_benchmark("bench_refit")


def test_nested_cv_scores_both_models_per_held_out_group(tiny_features, project_params) -> None:
    bench = _bench()
    pooled = pd.concat([tiny_features["train"], tiny_features["val"]], ignore_index=True)
    episodes = pooled["episode_id"].nunique()
    folds = min(3, episodes)
    for family, metrics in (
        ("classification", ("pr_auc", "best_f1")),
        ("regression", ("r2", "rmse")),
    ):
        scores = bench.nested_cv(pooled, shrink(project_params[family]), family, folds, 0.3)
        assert set(scores) == {f"{m}.{s}" for m in ("train_only", "refit") for s in metrics}
        assert all(len(v) == folds and np.isfinite(v).all() for v in scores.values())
        again = bench.nested_cv(pooled, shrink(project_params[family]), family, folds, 0.3)
        assert again == scores  # seeded: same numbers
