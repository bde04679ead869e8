"""Explanations on the edge (and in the service): exact TreeSHAP in numpy, anomaly deviations and
the failure-mode diagnosis, from the bundle's ``explanation.json``. numpy and stdlib only.

The trees are the booster's ``get_dump(dump_format="json", with_stats=True)`` (each node's
``cover`` gives the path weights) packed into flat arrays (:func:`pack_trees`); the base value is
XGBoost's own bias (the last column of ``pred_contribs``). The algorithm is Lundberg et al.'s
TreeSHAP written over root-to-leaf paths (as GPUTreeShap does): a feature met several times on a
path is one path element whose zero fraction is the product of its cover ratios and whose one
fraction is 1 when the row takes every one of its branches; then the EXTEND / UNWOUND-SUM steps of
Algorithm 2 run for all paths of a depth at once as numpy array operations. XGBoost's conventions:
a row goes ``yes`` when ``x < split_condition`` (float32), a missing value (NaN) follows
``missing``. Tested equal to ``Booster.predict(pred_contribs=True)`` (tests/edge/test_edge_explain.py).

:class:`Explainer` turns one feature row into what a person reads: the top factors with sensor,
window, statistic, unit and text (``bearing_temperature, 48h mean, 84.9 degC, +0.41``), the
contributions summed per sensor, the anomaly inputs' standardised deviations from the training
reference, and the diagnosis (failure modes with confidence and the configured action).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from pdm_kedro.edge.errors import EdgeError

EXPLANATION_FILE = "explanation.json"
EXPLANATION_FORMAT = 1
DEVIATION_SPACE = "standardised deviation from the training reference (not a SHAP sum)"
STAT_TEXT = {
    "value": "current value",
    "zscore": "z-score vs training median",
    "abs_diff": "step change",
    "median_resid": "residual vs rolling median (scales)",
    "repeat_run": "repeated readings",
    "mean": "mean",
    "std": "std",
    "slope": "slope per reading",
    "min": "min",
    "max": "max",
    "spread": "spread over sensors",
    "rms": "rms over sensors",
    "peak": "peak rms",
    "index": "health index",
}


class ExplainRequestError(EdgeError):
    """An explanation that cannot be given: a bad N, or a family without explanations."""


def feature_text(description: dict[str, Any], value: float, contribution: float | None) -> str:
    """``"bearing_temperature, 48h mean, 84.9 degC, +0.41"``."""
    stat = STAT_TEXT.get(description["statistic"], description["statistic"])
    window = description["window"]  # None, or NaN once it passed through a DataFrame
    what = f"{window} {stat}" if isinstance(window, str) else stat
    unit = f" {description['unit']}" if description["unit"] else ""
    text = f"{description['sensor']}, {what}, {value:.4g}{unit}"
    return text if contribution is None else f"{text}, {contribution:+.3g}"


# ---------------------------------------------------------------------------------------------
# Trees: the booster's JSON dump -> flat arrays -> paths


def _feature_index(split: str | int, names: dict[str, int]) -> int:
    text = str(split)
    if text in names:
        return names[text]
    return int(text[1:]) if text.startswith("f") and text[1:].isdigit() else int(text)


def pack_trees(
    dump: list[str] | list[dict[str, Any]], feature_names: list[str] | None = None
) -> dict[str, list]:
    """Flat node arrays of a JSON dump (strings as the booster gives them, or dicts).

    ``roots`` (one node index per tree), and per node ``left`` / ``right`` / ``missing`` (node
    indices, -1 for a leaf), ``feature`` (model input index, -1 for a leaf), ``threshold`` (the
    float32 split value), ``cover`` and ``value`` (the leaf value, 0 for a split).
    """
    index = {name: i for i, name in enumerate(feature_names or [])}
    out: dict[str, list] = {k: [] for k in ("roots", "left", "right", "missing", "feature")}
    out |= {"threshold": [], "cover": [], "value": []}
    for tree in dump:
        root = json.loads(tree) if isinstance(tree, str) else tree
        nodes: dict[int, dict[str, Any]] = {}
        stack = [root]
        while stack:
            node = stack.pop()
            nodes[int(node["nodeid"])] = node
            stack.extend(node.get("children", []))
        offset = len(out["left"])
        ids = sorted(nodes)
        at = {nid: offset + k for k, nid in enumerate(ids)}
        out["roots"].append(at[int(root["nodeid"])])
        for nid in ids:
            node = nodes[nid]
            leaf = "leaf" in node
            out["left"].append(-1 if leaf else at[int(node["yes"])])
            out["right"].append(-1 if leaf else at[int(node["no"])])
            out["missing"].append(-1 if leaf else at[int(node["missing"])])
            out["feature"].append(-1 if leaf else _feature_index(node["split"], index))
            out["threshold"].append(0.0 if leaf else float(np.float32(node["split_condition"])))
            out["cover"].append(float(node["cover"]))
            out["value"].append(float(node["leaf"]) if leaf else 0.0)
    return out


@dataclass(frozen=True)
class _Bucket:
    """Every path with ``depth`` distinct features, as arrays (P paths)."""

    depth: int
    features: np.ndarray  # (P, depth) model input index of each path element
    zero: np.ndarray  # (P, depth) product of the element's cover ratios
    leaf: np.ndarray  # (P,)
    cond_feature: np.ndarray  # (S,) one entry per split on a path, grouped by element
    cond_threshold: np.ndarray  # (S,)
    cond_left: np.ndarray  # (S,) the path takes the ``yes`` branch
    cond_missing: np.ndarray  # (S,) a missing value follows the path's branch
    starts: np.ndarray  # (P * depth,) first split entry of each element


def _paths(packed: dict[str, list]) -> list[tuple[list[list[tuple]], float]]:
    """Per leaf: [(feature, [(threshold, left, missing), ...], zero fraction), ...], leaf value."""
    left, right, missing = packed["left"], packed["right"], packed["missing"]
    feature, threshold, cover = packed["feature"], packed["threshold"], packed["cover"]
    out = []
    for root in packed["roots"]:
        stack: list[tuple[int, list]] = [(root, [])]
        while stack:
            nid, path = stack.pop()
            if left[nid] < 0:
                elements: dict[int, list] = {}
                for f, thr, is_left, miss, ratio in path:
                    element = elements.setdefault(f, [f, [], 1.0])
                    element[1].append((thr, is_left, miss))
                    element[2] *= ratio
                out.append((list(elements.values()), packed["value"][nid]))
                continue
            for child, is_left in ((left[nid], True), (right[nid], False)):
                step = (
                    feature[nid],
                    threshold[nid],
                    is_left,
                    missing[nid] == child,
                    cover[child] / cover[nid],
                )
                stack.append((child, [*path, step]))
    return out


def _buckets(packed: dict[str, list]) -> list[_Bucket]:
    by_depth: dict[int, list] = {}
    for elements, leaf in _paths(packed):
        if elements:  # a single-leaf tree only moves the base value
            by_depth.setdefault(len(elements), []).append((elements, leaf))
    buckets = []
    for depth, paths in sorted(by_depth.items()):
        feats, zeros, leaves, cf, ct, cl, cm, starts = [], [], [], [], [], [], [], []
        for elements, leaf in paths:
            leaves.append(leaf)
            feats.append([e[0] for e in elements])
            zeros.append([e[2] for e in elements])
            for f, conditions, _ in elements:
                starts.append(len(cf))
                for thr, is_left, miss in conditions:
                    cf.append(f)
                    ct.append(thr)
                    cl.append(is_left)
                    cm.append(miss)
        buckets.append(
            _Bucket(
                depth=depth,
                features=np.array(feats, dtype=np.int64),
                zero=np.array(zeros, dtype=np.float64),
                leaf=np.array(leaves, dtype=np.float64),
                cond_feature=np.array(cf, dtype=np.int64),
                cond_threshold=np.array(ct, dtype=np.float64),
                cond_left=np.array(cl, dtype=bool),
                cond_missing=np.array(cm, dtype=bool),
                starts=np.array(starts, dtype=np.int64),
            )
        )
    return buckets


def _element_values(bucket: _Bucket, one: np.ndarray) -> np.ndarray:
    """(R, P, depth) contribution of each path element for the one fractions ``one``
    (Algorithm 2's EXTEND over the path, then UNWOUND-SUM without each element)."""
    d = bucket.depth
    one = one.astype(np.float64)
    zero = bucket.zero[None, :, :]
    weights = np.zeros((*one.shape[:2], d + 1))
    weights[..., 0] = 1.0  # the root element (zero = one = 1)
    for step in range(1, d + 1):  # EXTEND with element step (depth ``step``)
        o, z = one[..., step - 1], zero[..., step - 1]
        for i in range(step - 1, -1, -1):
            weights[..., i + 1] += o * weights[..., i] * (i + 1) / (step + 1)
            weights[..., i] = z * weights[..., i] * (step - i) / (step + 1)
    out = np.empty_like(one)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(d):  # UNWOUND-SUM without element k
            o, z = one[..., k], zero[..., k]
            nxt = weights[..., d]
            total_one = np.zeros_like(o)
            total_zero = np.zeros_like(o)
            for i in range(d - 1, -1, -1):
                tmp = nxt * (d + 1) / (i + 1)
                total_one += tmp
                nxt = weights[..., i] - tmp * z * (d - i) / (d + 1)
                total_zero += (weights[..., i] / z) / ((d - i) / (d + 1))
            total = np.where(o != 0, total_one, total_zero)
            out[..., k] = total * (o - z) * bucket.leaf[None, :]
    return out


def _value_table(bucket: _Bucket) -> np.ndarray:
    """(P, 2**depth, depth): the element contributions of every path for every pattern of one
    fractions (bit k of the pattern = element k taken), so that a row needs a lookup only."""
    patterns = np.arange(2**bucket.depth)
    bits = (patterns[:, None] >> np.arange(bucket.depth)[None, :]) & 1  # (2**d, d)
    one = np.broadcast_to(bits[:, None, :], (len(patterns), len(bucket.leaf), bucket.depth))
    return np.ascontiguousarray(_element_values(bucket, one).transpose(1, 0, 2))


# Paths of up to this many distinct features get a lookup table (2**d patterns x d values per
# path: 160 numbers at depth 5, 384 at 6); deeper ones are computed per row.
TABLE_MAX_DEPTH = 6


class TreeShap:
    """Exact TreeSHAP of one packed tree ensemble (paths built once, then vectorised per call).

    The split conditions of every path element of every depth are one set of arrays, so a row's
    one fractions take a handful of numpy calls; each depth then looks its element values up in
    its pattern table (or computes them, beyond ``TABLE_MAX_DEPTH``), and one ``bincount`` sums
    them per feature.
    """

    def __init__(self, packed: dict[str, list], n_features: int) -> None:
        self.n_features = int(n_features)
        self.buckets = _buckets(packed)
        self.tables = {
            b.depth: _value_table(b).reshape(-1, b.depth)
            for b in self.buckets
            if b.depth <= TABLE_MAX_DEPTH
        }
        buckets = self.buckets or []
        self._feature = np.concatenate([b.cond_feature for b in buckets] or [np.zeros(0, int)])
        self._threshold = np.concatenate([b.cond_threshold for b in buckets] or [np.zeros(0)])
        self._left = np.concatenate([b.cond_left for b in buckets] or [np.zeros(0, bool)])
        self._missing = np.concatenate([b.cond_missing for b in buckets] or [np.zeros(0, bool)])
        offsets = np.cumsum([0] + [len(b.cond_feature) for b in buckets])
        self._starts = np.concatenate(
            [b.starts + o for b, o in zip(buckets, offsets, strict=False)] or [np.zeros(0, int)]
        )
        sizes = np.cumsum([0] + [b.features.size for b in buckets])
        self._elements = [(int(a), int(z)) for a, z in zip(sizes[:-1], sizes[1:], strict=True)]
        self._element_feature = np.concatenate(
            [b.features.ravel() for b in buckets] or [np.zeros(0, int)]
        )
        self._rows_of = {  # (P,) first table row of each path, and the pattern bit weights
            b.depth: (np.arange(len(b.leaf)) * 2**b.depth, 1 << np.arange(b.depth)) for b in buckets
        }

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(R, features) contributions of the rows of ``x`` (read as float32, like XGBoost)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float32)).astype(np.float64)
        rows, n = x.shape[0], self.n_features
        if not self.buckets:
            return np.zeros((rows, n))
        xs = x[:, self._feature]
        taken = np.where(np.isnan(xs), self._missing, (xs < self._threshold) == self._left)
        fails = np.add.reduceat((~taken).view(np.int8), self._starts, axis=1)
        ones = fails == 0  # (R, elements)
        values = []
        for bucket, (a, z) in zip(self.buckets, self._elements, strict=True):
            one = ones[:, a:z].reshape(rows, -1, bucket.depth)
            table = self.tables.get(bucket.depth)
            if table is None:
                values.append(_element_values(bucket, one).reshape(rows, -1))
                continue
            first, bits = self._rows_of[bucket.depth]
            pattern = one.astype(np.int64) @ bits  # (R, P)
            values.append(table[first[None, :] + pattern].reshape(rows, -1))
        flat = np.concatenate(values, axis=1)  # (R, elements)
        index = (np.arange(rows)[:, None] * n + self._element_feature[None, :]).ravel()
        return np.bincount(index, weights=flat.ravel(), minlength=rows * n).reshape(rows, n)


def parse_trees(dump: list[str] | list[dict[str, Any]]) -> dict[str, list]:
    """The packed trees of a JSON dump (see :func:`pack_trees`)."""
    return pack_trees(dump)


def tree_contributions(
    trees: dict[str, list], base_value: float, x: np.ndarray
) -> tuple[np.ndarray, float]:
    """(contributions (n, features), base value) of every row of ``x``: the same numbers as
    XGBoost's ``pred_contribs`` (raw output space: log-odds or hours)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    return TreeShap(trees, x.shape[1]).contributions(x), float(base_value)


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


# ---------------------------------------------------------------------------------------------
# Failure-mode diagnosis


def diagnose(
    deviations: np.ndarray, signatures: dict[str, np.ndarray], temperature: float
) -> tuple[list[str], np.ndarray]:
    """(mode names, (n, modes) confidence) of each row: each mode's signature fitted to the
    observed deviations by a non-negative least-squares scale; confidence = softmax of the
    negative relative residual over ``temperature``."""
    modes = list(signatures)
    if not modes:
        return [], np.zeros((len(deviations), 0))
    obs = np.nan_to_num(np.asarray(deviations, dtype=np.float64))
    total = np.maximum((obs * obs).sum(axis=1), 1e-12)
    resid = []
    for mode in modes:
        e = np.asarray(signatures[mode], dtype=np.float64)
        ee = max(float(e @ e), 1e-12)
        a = np.maximum(obs @ e / ee, 0.0)
        r = obs - a[:, None] * e[None, :]
        resid.append((r * r).sum(axis=1) / total)
    resid = np.column_stack(resid)
    logits = -resid / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return modes, p / p.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# The bundle's explanation.json


class Explainer:
    """Explanations of one bundle's families from its ``explanation.json`` document.

    ``families[F]`` is ``{"method": "treeshap", "output_space", "base_value", "feature_names",
    "trees"}`` (XGBoost families) or ``{"method": "deviation", "output_space", "feature_names",
    "reference": {feature: {"mean", "sd"}}}`` (the anomaly detector); ``features`` describes every
    feature column; ``diagnosis`` holds the mode signatures, the healthy reference and the actions.
    The TreeSHAP paths of a family are built on its first explanation.
    """

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.families: dict[str, dict[str, Any]] = dict(document.get("families") or {})
        self.descriptions = {d["feature"]: d for d in document.get("features", [])}
        self.diagnosis_spec = document.get("diagnosis") or None
        self._shap: dict[str, TreeShap] = {}
        self._layouts: dict[str, tuple] = {}
        self._references: dict[str, tuple] = {}

    def explains(self, family: str) -> bool:
        """True when ``family`` has an explanation in this bundle."""
        return self.families.get(family, {}).get("method") in ("treeshap", "deviation")

    def _describe(self, name: str) -> dict[str, Any]:
        return self.descriptions.get(
            name,
            {
                "feature": name,
                "sensor": name.split("__", maxsplit=1)[0],
                "window": None,
                "statistic": "other",
                "unit": "",
            },  # fmt: skip
        )

    def shap(self, family: str) -> TreeShap:
        """The family's (cached) TreeSHAP."""
        if family not in self._shap:
            spec = self.families[family]
            self._shap[family] = TreeShap(spec["trees"], len(spec["feature_names"]))
        return self._shap[family]

    def contributions(self, family: str, x: np.ndarray) -> tuple[np.ndarray, float]:
        """(contributions, base value) of the rows of ``x`` (the family's model inputs)."""
        return self.shap(family).contributions(x), float(self.families[family]["base_value"])

    def _layout(self, family: str) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
        """(feature records, sensors, feature-to-sensor 0/1 matrix) of a family, cached."""
        if family not in self._layouts:
            records = [self._describe(n) for n in self.families[family]["feature_names"]]
            sensor_of = [r["sensor"] for r in records]
            sensors = list(dict.fromkeys(sensor_of))
            group = np.array([[s == t for t in sensors] for s in sensor_of], dtype=np.float64)
            self._layouts[family] = (records, sensors, group)
        return self._layouts[family]

    def explain_trees(self, family: str, x: np.ndarray, top_n: int) -> dict[str, Any]:
        """Top ``top_n`` factors and per-sensor sums of one row ``x`` of the family's inputs."""
        spec = self.families[family]
        values = np.asarray(x, dtype=np.float32).reshape(-1)
        contribs, base = self.contributions(family, values[None, :])
        contribs = contribs[0]
        records, sensors, group = self._layout(family)
        sums = contribs @ group
        order = np.argsort(-np.abs(contribs), kind="stable")[:top_n]
        return {
            "output_space": spec["output_space"],
            "base_value": base,
            "raw_prediction": base + float(contribs.sum()),
            "top_factors": [
                {
                    **records[j],
                    "value": float(values[j]),
                    "contribution": float(contribs[j]),
                    "text": feature_text(records[j], float(values[j]), float(contribs[j])),
                }
                for j in order
            ],
            "per_sensor": {
                sensors[k]: float(sums[k]) for k in np.argsort(-np.abs(sums), kind="stable")
            },
        }

    def explain_deviation(self, family: str, x: np.ndarray, top_n: int) -> dict[str, Any]:
        """Each input's ``(value - mean) / sd`` from the training reference, largest first."""
        spec = self.families[family]
        if family not in self._references:
            names = spec["feature_names"]
            self._references[family] = (
                np.array([spec["reference"][n]["mean"] for n in names]),
                np.array([spec["reference"][n]["sd"] for n in names]),
            )
        mean, sd = self._references[family]
        records, _, _ = self._layout(family)
        values = np.asarray(x, dtype=np.float64).reshape(-1)
        dev = (values - mean) / sd
        order = np.argsort(-np.abs(dev), kind="stable")
        per_sensor: dict[str, float] = {}
        for j in order:
            per_sensor.setdefault(records[j]["sensor"], float(dev[j]))
        return {
            "output_space": spec.get("output_space", DEVIATION_SPACE),
            "top_factors": [
                {
                    **records[j],
                    "value": float(values[j]),
                    "deviation": float(dev[j]),
                    "text": f"{feature_text(records[j], float(values[j]), None)}, "
                    f"{float(dev[j]):+.3g} sd",
                }
                for j in order[:top_n]
            ],
            "per_sensor": per_sensor,
        }

    def explain(self, family: str, x: np.ndarray, top_n: int) -> dict[str, Any]:
        """The family's explanation of one row of its model inputs."""
        if self.families[family]["method"] == "treeshap":
            return self.explain_trees(family, x, top_n)
        return self.explain_deviation(family, x, top_n)

    def diagnose_row(self, row: dict[str, float]) -> dict[str, Any] | None:
        """The likely developing failure modes of one row (``{feature: value}``), with confidence
        and the configured action; None when the machine configures no modes."""
        spec = self.diagnosis_spec
        if not spec or not spec.get("modes"):
            return None
        long = spec["long"]
        level, noise = [], []
        for sensor in spec["sensors"]:
            name, ref = sensor["name"], sensor["reference"]
            level.append((row[f"{name}__mean_{long}"] - ref["mean"]) / sensor["scale"])
            noise.append(row[f"{name}__std_{long}"] / ref["std"] - 1.0)
        deviations = np.array([level + noise], dtype=np.float64)
        modes = spec["modes"]
        signatures = {m: np.asarray(v["signature"], dtype=np.float64) for m, v in modes.items()}
        names, confidence = diagnose(deviations, signatures, float(spec["temperature"]))
        order = np.argsort(-confidence[0], kind="stable")[: int(spec["top_modes"])]
        return {
            "method": "signature match of the long-window level and noise shifts per sensor",
            "modes": [
                {
                    "mode": names[k],
                    "confidence": float(confidence[0, k]),
                    **{
                        key: modes[names[k]].get(key)
                        for key in ("description", "action", "part", "repair_time_h")
                    },  # fmt: skip
                }
                for k in order
            ],
        }


def check_top_n(top_n: Any, feature_count: int) -> int:
    """``top_n`` as an int in ``1..feature_count``, else :class:`ExplainRequestError` naming the
    allowed range."""
    if isinstance(top_n, bool) or not isinstance(top_n, int | str):
        raise ExplainRequestError(
            f"explain must be a whole number from 1 to {feature_count}, got {top_n!r}."
        )
    try:
        n = int(top_n)
    except ValueError:
        raise ExplainRequestError(
            f"explain must be a whole number from 1 to {feature_count}, got {top_n!r}."
        ) from None
    if not 1 <= n <= feature_count:
        raise ExplainRequestError(
            f"explain={n} is out of range: ask for 1 to {feature_count} factors "
            "(the number of model inputs)."
        )
    return n
