"""Small, fast settings of the supervised families for tests (same code, fewer trees)."""

from __future__ import annotations

import copy

import pytest


def shrink(params: dict) -> dict:
    """A family's parameters with few, shallow trees and one thread."""
    out = copy.deepcopy(params)
    out["xgboost"].update(n_estimators=40, max_depth=3, n_jobs=1)
    out["early_stopping_rounds"] = 10
    return out


@pytest.fixture(scope="session")
def clf_params(project_params: dict) -> dict:
    return shrink(project_params["classification"])
