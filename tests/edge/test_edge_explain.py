"""The edge's numpy TreeSHAP over the booster's JSON dump equals XGBoost's pred_contribs, and its
top factors equal the service-side explanation's (pdm_kedro.evaluation.explain)."""

from __future__ import annotations

import numpy as np
import pytest

from pdm_kedro.edge import explain as edge_explain
from pdm_kedro.evaluation import explain as ex

ROWS = 40


@pytest.mark.parametrize("family", ["classification", "regression"])
def test_numpy_treeshap_equals_xgboost(family, tiny_models, tiny_features):
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
