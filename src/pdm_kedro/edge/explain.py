"""Exact TreeSHAP in numpy over an XGBoost booster's JSON dump, for the edge (no xgboost there).

The trees are the booster's ``get_dump(dump_format="json", with_stats=True)`` (each node's
``cover`` gives the path weights) and the base value is XGBoost's own bias (the last column of
``pred_contribs``). The algorithm is Lundberg et al.'s polynomial-time TreeSHAP (Algorithm 2),
with XGBoost's conventions: a row goes ``yes`` when ``x < split_condition``, missing values
(NaN) follow ``missing``. Tested equal to ``Booster.predict(pred_contribs=True)``
(tests/edge/test_edge_explain.py). Imports only numpy and the standard library.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def parse_trees(dump: list[str] | list[dict[str, Any]]) -> list[dict[int, dict[str, Any]]]:
    """{node id: node} per tree of a JSON dump (strings as the booster gives them, or dicts)."""
    trees = []
    for tree in dump:
        root = json.loads(tree) if isinstance(tree, str) else tree
        nodes: dict[int, dict[str, Any]] = {}
        stack = [root]
        while stack:
            node = stack.pop()
            nodes[int(node["nodeid"])] = node
            stack.extend(node.get("children", []))
        trees.append(nodes)
    return trees


def _feature_index(split: str | int) -> int:
    text = str(split)
    return int(text[1:]) if text.startswith("f") and text[1:].isdigit() else int(text)


def _extend(path: list[list[float]], zero: float, one: float, feature: int) -> None:
    path.append([feature, zero, one, 1.0 if not path else 0.0])
    depth = len(path) - 1
    for i in range(depth - 1, -1, -1):
        path[i + 1][3] += one * path[i][3] * (i + 1) / (depth + 1)
        path[i][3] = zero * path[i][3] * (depth - i) / (depth + 1)


def _unwind(path: list[list[float]], index: int) -> None:
    depth = len(path) - 1
    one, zero = path[index][2], path[index][1]
    nxt = path[depth][3]
    for i in range(depth - 1, -1, -1):
        if one != 0:
            tmp = path[i][3]
            path[i][3] = nxt * (depth + 1) / ((i + 1) * one)
            nxt = tmp - path[i][3] * zero * (depth - i) / (depth + 1)
        else:
            path[i][3] = path[i][3] * (depth + 1) / (zero * (depth - i))
    for i in range(index, depth):
        path[i][0], path[i][1], path[i][2] = path[i + 1][0], path[i + 1][1], path[i + 1][2]
    path.pop()


def _unwound_sum(path: list[list[float]], index: int) -> float:
    depth = len(path) - 1
    one, zero = path[index][2], path[index][1]
    nxt = path[depth][3]
    total = 0.0
    for i in range(depth - 1, -1, -1):
        if one != 0:
            tmp = nxt * (depth + 1) / ((i + 1) * one)
            total += tmp
            nxt = path[i][3] - tmp * zero * ((depth - i) / (depth + 1))
        else:
            total += (path[i][3] / zero) / ((depth - i) / (depth + 1))
    return total


def _tree_shap(nodes: dict[int, dict[str, Any]], x: np.ndarray, phi: np.ndarray) -> None:
    def recurse(nid: int, path: list[list[float]], zero: float, one: float, feature: int) -> None:
        path = [p[:] for p in path]
        _extend(path, zero, one, feature)
        node = nodes[nid]
        if "leaf" in node:
            for i in range(1, len(path)):
                w = _unwound_sum(path, i)
                phi[int(path[i][0])] += w * (path[i][2] - path[i][1]) * float(node["leaf"])
            return
        f = _feature_index(node["split"])
        value = x[f]
        if np.isnan(value):
            hot = int(node["missing"])
        else:
            hot = int(node["yes"]) if value < float(node["split_condition"]) else int(node["no"])
        cold = int(node["no"]) if hot == int(node["yes"]) else int(node["yes"])
        cover = float(node["cover"])
        hot_zero = float(nodes[hot]["cover"]) / cover
        cold_zero = float(nodes[cold]["cover"]) / cover
        incoming_zero, incoming_one = 1.0, 1.0
        k = next((i for i in range(1, len(path)) if int(path[i][0]) == f), None)
        if k is not None:
            incoming_zero, incoming_one = path[k][1], path[k][2]
            _unwind(path, k)
        recurse(hot, path, hot_zero * incoming_zero, incoming_one, f)
        recurse(cold, path, cold_zero * incoming_zero, 0.0, f)

    recurse(0, [], 1.0, 1.0, -1)


def tree_contributions(
    trees: list[dict[int, dict[str, Any]]], base_value: float, x: np.ndarray
) -> tuple[np.ndarray, float]:
    """(contributions (n, features), base value) of every row of ``x``: the same numbers as
    XGBoost's ``pred_contribs`` (raw output space: log-odds or hours)."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    out = np.zeros(x.shape, dtype=np.float64)
    for r in range(x.shape[0]):
        for nodes in trees:
            _tree_shap(nodes, x[r], out[r])
    return out, float(base_value)


def top_factors(
    contributions: np.ndarray, feature_names: list[str], values: np.ndarray, n: int
) -> list[dict[str, Any]]:
    """The ``n`` largest |contribution| features of one row, largest first (stable ties)."""
    order = np.argsort(-np.abs(contributions), kind="stable")[:n]
    return [
        {
            "feature": feature_names[j],
            "value": float(values[j]),
            "contribution": float(contributions[j]),
        }
        for j in order
    ]
