"""The one promotion rule: when the ``challenger`` of a family becomes its ``champion``.

Every training run registers its model as a new version with the alias ``challenger``. Promotion
re-scores the current champion and the challenger on the same evaluation data (the newest
labelled data, which neither was trained on) and moves ``champion`` only when the challenger is
better by the configured margin on the family's headline metric, is not worse on the val split
beyond ``val_guard.relative_tolerance``, its gain holds under a paired day-block bootstrap of the
evaluation rows (``bootstrap``: the lower end of the interval above 0) and no guard metric
regresses (beyond ``guard_tolerance``). The old champion keeps the alias ``previous_champion``.

The decision is pure (this module); applying it (aliases, version tags, the audit line in
``08_reporting/promotions.jsonl``) is done by the catalog dataset
:class:`pdm_kedro.datasets.mlflow_model_registry.MlflowPromotionDataset`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial, update_wrapper
from typing import Any

import numpy as np
import pandas as pd
from kedro.pipeline import Node

from pdm_kedro import contract as c
from pdm_kedro.evaluation.regression_metrics import NASA_LATE_SCALE
from pdm_kedro.evaluation.report import frame_fingerprint
from pdm_kedro.families import get_family, greater_is_better

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"
PROMOTION_TAG = "promotion"  # node tag of the promotion nodes (the `promotion` pipeline)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def nasa_late_hours(mean_score: float | None) -> float | None:
    """The NASA score's per-row mean on a bounded, linear scale: ``10 ln(1 + mean)`` hours.

    The NASA/PHM08 score is ``exp(d / 10) - 1`` for a prediction ``d`` hours late; with RUL in
    hours its mean is dominated by the latest prediction and reaches 1e14 (a 320 h late row), so
    any change of it, however small in hours, reads as a huge regression. On this scale a change
    is a change of that (soft) worst lateness in hours, comparable with a tolerance in hours.
    """
    value = _finite(mean_score)
    return None if value is None else NASA_LATE_SCALE * math.log1p(max(value, 0.0))


# guards compared on another scale than their own (a bounded, linear one), and the unit of their
# tolerance on it (promotion.guard_tolerance_by_metric)
GUARD_SCALES: dict[str, Callable[[float | None], float | None]] = {
    "nasa_score_mean": nasa_late_hours
}


def guard_change(
    guard: str, new: float | None, old: float | None, promotion: dict[str, Any]
) -> tuple[float | None, float]:
    """(improvement of a guard metric on its comparison scale, its tolerance).

    The tolerance is ``promotion.guard_tolerance_by_metric[guard]`` when set, else
    ``promotion.guard_tolerance``; guards in :data:`GUARD_SCALES` are compared on that scale.
    """
    scale = GUARD_SCALES.get(guard)
    if scale is not None:
        new, old = scale(new), scale(old)
    by_metric = promotion.get("guard_tolerance_by_metric") or {}
    tolerance = float(by_metric.get(guard, promotion.get("guard_tolerance", 0.0)))
    return improvement(guard, new, old), tolerance


def improvement(metric: str, new: float | None, old: float | None) -> float | None:
    """How much better ``new`` is than ``old`` (positive = better), in the metric's direction."""
    new, old = _finite(new), _finite(old)
    if new is None or old is None:
        return None
    return new - old if greater_is_better(metric) else old - new


def decide(  # noqa: PLR0911 (one return per rule, each with its reason)
    family: str,
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    scores: dict[str, Any],
    promotion: dict[str, Any],
) -> dict[str, Any]:
    """The promotion decision for one machine and family (pure).

    Args:
        family: the family's name (headline and guard metrics come from ``pdm_kedro.families``).
        challenger: the challenger package (``registered_model``, ``registry_version``, ...).
        champion: the champion package, or None when there is no champion yet.
        scores: ``{"challenger": {metric: value}, "champion": {metric: value} | None,
            "evaluation": {"split", "rows", "from", "to", "fingerprint"}}`` from the family's
            scorer, on the same evaluation data.
        promotion: ``{"margin": {family: float}, "guard_tolerance": float}``.

    Returns:
        The audit record: machine, family, versions, both metric sets, margin, decision
        (``promote`` / ``keep``), reason, time, plus ``promote`` (bool).
    """
    spec = get_family(family)
    margin = float(promotion.get("margin", {}).get(family, 0.0))
    tolerance = float(promotion.get("guard_tolerance", 0.0))
    new = scores.get("challenger") or {}
    old = scores.get("champion")
    record = {
        "machine_id": challenger.get("machine_id"),
        "family": family,
        "registered_model": challenger.get("registered_model"),
        "challenger_version": challenger.get("registry_version"),
        "champion_version": champion.get("registry_version") if champion else None,
        "headline": spec.headline,
        "challenger_metrics": new,
        "champion_metrics": old,
        "margin": margin,
        "guard_tolerance": tolerance,
        "evaluation": scores.get("evaluation"),
        "bootstrap": scores.get("bootstrap"),
        "val": scores.get("val"),
        "champion_features": scores.get("champion_features"),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }

    def result(promote: bool, reason: str) -> dict[str, Any]:
        return record | {"decision": "promote" if promote else "keep", "promote": promote,
                         "reason": reason}  # fmt: skip

    if champion is None:
        return result(True, "no champion yet: the first version becomes champion")
    if champion.get("registry_version") is not None and champion.get(
        "registry_version"
    ) == challenger.get("registry_version"):
        return result(False, "the challenger is already the champion")
    overlap = scores.get("overlap")
    if overlap:
        return result(False, f"not comparable: {overlap}")
    if old is None:
        return result(False, "not comparable: the champion could not be scored")
    gain = improvement(spec.headline, new.get(spec.headline), old.get(spec.headline))
    if gain is None:
        return result(False, f"{spec.headline} undefined on the evaluation data")
    if gain <= margin:
        return result(
            False,
            f"{spec.headline} {_fmt(new.get(spec.headline))} vs champion "
            f"{_fmt(old.get(spec.headline))}: gain {gain:.4g} does not exceed the margin {margin:g}",
        )
    needed = (promotion.get("min_positives") or {}).get(family)
    positives = (scores.get("evaluation") or {}).get("positives")
    if needed is not None and positives is not None and positives < int(needed):
        return result(
            False,
            f"{spec.headline} {_fmt(new.get(spec.headline))} vs champion "
            f"{_fmt(old.get(spec.headline))}: only {positives} positive rows on the evaluation "
            f"data (min_positives {int(needed)}), too few to tell the two apart (one row moves "
            f"{spec.headline} by about {1 / max(positives, 1):.2g})",
        )
    regressed = _val_guard_verdict(spec.headline, scores.get("val"), promotion, challenger)
    if regressed is not None:
        return result(False, regressed)
    robust = _bootstrap_verdict(spec.headline, scores.get("bootstrap"), promotion)
    if robust is not None:
        return result(
            False,
            f"{spec.headline} {_fmt(new.get(spec.headline))} vs champion "
            f"{_fmt(old.get(spec.headline))}: {robust}",
        )
    for guard in spec.guards:
        change, allowed = guard_change(guard, new.get(guard), old.get(guard), promotion)
        if change is not None and change < -allowed:
            scale = GUARD_SCALES.get(guard)
            on_scale = f" ({-change:.4g} worse on the {scale.__name__} scale)" if scale else ""
            return result(
                False,
                f"guard {guard} regresses: {_fmt(new.get(guard))} vs champion "
                f"{_fmt(old.get(guard))}{on_scale} (tolerance {allowed:g})",
            )
    interval = ((scores.get("bootstrap") or {}).get("gain") or {}).get(spec.headline)
    held = f" (paired bootstrap gain interval {_fmt(interval[0])} to {_fmt(interval[1])})" if (
        interval
    ) else ""  # fmt: skip
    return result(
        True,
        f"{spec.headline} {_fmt(new.get(spec.headline))} beats champion "
        f"{_fmt(old.get(spec.headline))} by {gain:.4g} > margin {margin:g}{held}; "
        "no guard regresses",
    )


def trees_fitted_on(package: dict[str, Any] | None) -> str:
    """What a package's final trees were fitted on, as its metrics document says (``train``
    unless ``refit_on_train_val`` refitted them on ``train+val``)."""
    model = ((package or {}).get("metrics") or {}).get("model") or {}
    return str(model.get("trees_fitted_on") or "train")


def _val_guard_verdict(
    headline: str,
    val: dict[str, Any] | None,
    promotion: dict[str, Any],
    challenger: dict[str, Any],
) -> str | None:
    """Why the challenger regresses on the val split, or why the val split cannot tell (None
    when it does not regress, or when the rule asks for no val guard or the family's scorer
    gives no val scores).

    A challenger whose final trees were refitted on train+val (``refit_on_train_val``) is scored
    on rows it learned: its val figure is in-sample and vouches for nothing (a one-episode
    control refitted that way scored val RMSE 3.6 h and was promoted), so the guard keeps the
    champion.
    """
    guard = promotion.get("val_guard")
    if not guard or val is None:
        return None
    fitted_on = trees_fitted_on(challenger)
    if "val" in fitted_on.split("+"):
        return (
            f"the val guard cannot judge this challenger: its trees were refitted on "
            f"{fitted_on} (refit_on_train_val), so its val figure "
            f"{_fmt((val.get('challenger') or {}).get(headline))} is in-sample; without a val "
            "guard (promotion.val_guard: null) the evaluation data alone decide"
        )
    relative = float(guard.get("relative_tolerance", 0.0))
    new, old = (
        (val.get("challenger") or {}).get(headline),
        (val.get("champion") or {}).get(headline),
    )
    change = improvement(headline, new, old)
    if change is None or change >= -relative * abs(float(old)):
        return None
    return (
        f"regresses on the val split ({val.get('rows')} rows, {val.get('episodes')} episodes): "
        f"{headline} {_fmt(new)} vs champion {_fmt(old)}, worse by {-change:.4g} > "
        f"{relative:.0%} of the champion's (a win on the evaluation data alone is not enough)"
    )


def _bootstrap_verdict(
    headline: str, bootstrap: dict[str, Any] | None, promotion: dict[str, Any]
) -> str | None:
    """Why the headline gain does not hold under the paired bootstrap (None when it holds, or
    when the rule asks for none: ``promotion.bootstrap`` unset or the family's scorer gives no
    resampled scores, as forecasting's backtest does)."""
    if not promotion.get("bootstrap") or bootstrap is None:
        return None
    interval = (bootstrap.get("gain") or {}).get(headline)
    if interval is None:
        return (
            f"no paired bootstrap of the gain ({bootstrap.get('note', 'not computed')}): "
            "too little evidence to promote"
        )
    if interval[0] is None or interval[0] <= 0.0:
        return (
            f"the gain does not hold under a paired bootstrap over {bootstrap['blocks']} "
            f"{bootstrap['block']}s of the evaluation data: its {bootstrap['confidence']:.0%} "
            f"interval is {_fmt(interval[0])} to {_fmt(interval[1])} (lower end must be > 0)"
        )
    return None


def _fmt(value: Any) -> str:
    value = _finite(value)
    return "n/a" if value is None else f"{value:.4g}"


def evaluation_overlap(evaluation_from: str | None, *packages: dict[str, Any] | None) -> str | None:
    """Why the evaluation data are not new to one of the packages (None when they are).

    A package records ``trained_until`` (the last timestamp of the data it was fitted or tuned
    on); the evaluation data must start after it.
    """
    if evaluation_from is None:
        return None
    for package in packages:
        if not package:
            continue
        until = package.get("trained_until")
        if until not in (None, "", "None") and str(until) >= str(evaluation_from):
            return (
                f"v{package.get('registry_version')} was trained on data up to {until}, "
                f"the evaluation data start at {evaluation_from}"
            )
    return None


def decide_promotion(
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    scores: dict[str, Any],
    promotion: dict[str, Any],
    family: str,
) -> dict[str, Any]:
    """Node: the decision plus the packages, for :class:`MlflowPromotionDataset` to apply."""
    decision = decide(family, challenger, champion, scores, promotion)
    production = challenger if decision["promote"] else champion
    return decision | {"production": production}


def promotion_nodes(
    family: str, scorer: Callable[..., dict[str, Any]], evaluation: Sequence[str]
) -> list[Node]:
    """The two promotion nodes of a family pipeline (inside the family's namespace).

    ``scorer(challenger, champion, *evaluation)`` returns the ``scores`` of :func:`decide`;
    ``registered_model`` is the challenger (loaded back from the registry dataset),
    ``champion_model`` the current champion (None when there is none).
    """
    decide_node = partial(decide_promotion, family=family)
    update_wrapper(decide_node, decide_promotion)
    return [
        Node(
            scorer,
            inputs=["registered_model", "champion_model", *evaluation],
            outputs="promotion_scores",
            name="score_for_promotion",
            tags=[PROMOTION_TAG],
        ),
        Node(
            decide_node,
            inputs=["registered_model", "champion_model", "promotion_scores", "params:promotion"],
            outputs="production_model",
            name="decide_promotion",
            tags=[PROMOTION_TAG],
        ),
    ]


def _block_of(evaluation: pd.DataFrame, block: str, timestamp_column: str) -> np.ndarray:
    """The bootstrap unit of each evaluation row: its calendar day, or its episode."""
    if block == "day":
        return pd.to_datetime(evaluation[timestamp_column]).dt.strftime("%Y-%m-%d").to_numpy()
    if block == "episode":
        return evaluation[c.EPISODE].to_numpy()
    raise ValueError(f"promotion.bootstrap.block must be 'day' or 'episode', got {block!r}")


def paired_bootstrap(
    evaluation: pd.DataFrame,
    score_rows: Callable[[dict[str, Any], pd.DataFrame], dict[str, float]],
    challenger_model: dict[str, Any],
    champion_model: dict[str, Any],
    bootstrap: dict[str, Any],
    timestamp_column: str = "timestamp",
    label_column: str | None = None,
    champion_evaluation: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The interval of the challenger's gain over the champion per metric (positive = better),
    over block resamples of the evaluation rows: whole days (or episodes) drawn with
    replacement, the same draw for both models (paired), seeded. ``champion_evaluation`` (the
    same rows, row for row, as the features the champion was built for) is what the champion
    scores on; by default ``evaluation``.

    Rows of a day are autocorrelated, so blocks, not rows, are the units. With fewer than
    ``bootstrap.min_blocks`` blocks there is no interval (``gain`` empty, ``note`` says why).
    With ``label_column`` (a 0/1 label) a resample without a positive row is skipped: F1 is
    undefined there (both models score 0, a gain of 0 that says nothing).
    """
    block = str(bootstrap.get("block", "day"))
    blocks = _block_of(evaluation, block, timestamp_column)
    codes, uniques = pd.factorize(blocks)
    out: dict[str, Any] = {
        "block": block,
        "blocks": len(uniques),
        "resamples": int(bootstrap["resamples"]),
        "confidence": float(bootstrap["confidence"]),
        "seed": int(bootstrap["seed"]),
        "gain": {},
    }
    if len(uniques) < int(bootstrap["min_blocks"]):
        return out | {
            "note": f"{len(uniques)} {block}s of evaluation data < min_blocks "
            f"{int(bootstrap['min_blocks'])}"
        }
    members = [np.flatnonzero(codes == k) for k in range(len(uniques))]
    rng = np.random.default_rng(int(bootstrap["seed"]))
    gains: dict[str, list[float]] = {}
    for _ in range(int(bootstrap["resamples"])):
        picked = rng.integers(0, len(uniques), len(uniques))
        index = np.concatenate([members[k] for k in picked])
        rows = evaluation.iloc[index]
        if label_column is not None and not pd.to_numeric(rows[label_column]).fillna(0).any():
            out["skipped_without_positives"] = out.get("skipped_without_positives", 0) + 1
            continue
        theirs = rows if champion_evaluation is None else champion_evaluation.iloc[index]
        new, old = score_rows(challenger_model, rows), score_rows(champion_model, theirs)
        for metric in new:
            change = improvement(metric, new.get(metric), old.get(metric))
            gains.setdefault(metric, []).append(np.nan if change is None else change)
    alpha = (1.0 - out["confidence"]) / 2
    for metric, values in gains.items():
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        # a metric undefined on most resamples has no interval
        if len(finite) >= out["resamples"] / 2:
            lo, hi = np.quantile(finite, [alpha, 1 - alpha])
            out["gain"][metric] = [float(lo), float(hi)]
    return out


def score_both(  # noqa: PLR0913 (the models, the data, how to score them, the bootstrap)
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    evaluation: Any,
    score: Callable[[dict[str, Any]], dict[str, float]] | None = None,
    timestamp_column: str = "timestamp",
    challenger_scores: dict[str, float] | None = None,
    label_column: str | None = None,
    score_rows: Callable[[dict[str, Any], pd.DataFrame], dict[str, float]] | None = None,
    promotion: dict[str, Any] | None = None,
    guard_evaluation: pd.DataFrame | None = None,
    champion_frames: tuple[pd.DataFrame | None, pd.DataFrame | None] | None = None,
) -> dict[str, Any]:
    """``scores`` for :func:`decide`: ``score(model)`` of both packages on the same data.

    Without ``score``, a model is scored by ``score_rows(model, evaluation)``.

    ``evaluation`` is the evaluation frame (its timestamps say where it starts);
    ``challenger_scores``, when given, are reused instead of scoring the challenger again;
    ``label_column`` (a 0/1 label) adds the evaluation's count of ``positives``;
    ``score_rows(model, rows)`` (the metrics on any subset of the rows) with
    ``promotion.bootstrap`` set adds the :func:`paired_bootstrap` of the gain (``bootstrap``);
    ``guard_evaluation`` (the val split) with ``promotion.val_guard`` set adds both models'
    metrics on it (``val``), for the non-regression guard of :func:`decide`.

    ``champion_frames`` (from :func:`champion_features`): the evaluation and guard rows as
    features built the way the champion was trained on (its own sensor baselines), row for row
    the same rows; the champion is scored on them (``score_rows`` only).
    """
    own_test, own_val = champion_frames if champion_frames is not None else (None, None)
    if score is None:
        if score_rows is None:
            raise ValueError("score_both needs score or score_rows")

        def score(model: Any) -> dict[str, float]:
            return score_rows(model, evaluation)
    elif own_test is not None or own_val is not None:
        raise ValueError("champion_frames need score_rows (a model scored on any rows)")

    stamps = pd.to_datetime(evaluation[timestamp_column]) if len(evaluation) else None
    start = stamps.min().isoformat() if stamps is not None else None
    summary = {
        "split": "test",
        "rows": len(evaluation),
        "from": start,
        "to": stamps.max().isoformat() if stamps is not None else None,
        "fingerprint": frame_fingerprint(evaluation, list(evaluation.columns)),
    }
    if label_column is not None and label_column in evaluation:
        summary["positives"] = int(pd.to_numeric(evaluation[label_column]).fillna(0).sum())
    new = challenger_scores if challenger_scores is not None else score(challenger["model"])
    if champion is None:
        old = None
    elif own_test is not None:
        old = score_rows(champion["model"], own_test)
    else:
        old = score(champion["model"])
    out = {
        "challenger": new,
        "champion": old,
        "evaluation": summary,
        "overlap": evaluation_overlap(start, challenger, champion),
    }
    bootstrap = (promotion or {}).get("bootstrap")
    if bootstrap and score_rows is not None and champion is not None and len(evaluation):
        out["bootstrap"] = paired_bootstrap(
            evaluation,
            score_rows,
            challenger["model"],
            champion["model"],
            bootstrap,
            timestamp_column,
            label_column if label_column is not None and label_column in evaluation else None,
            own_test,
        )
    if (
        (promotion or {}).get("val_guard")
        and score_rows is not None
        and champion is not None
        and guard_evaluation is not None
        and len(guard_evaluation)
    ):
        out["val"] = {
            "rows": len(guard_evaluation),
            "episodes": int(guard_evaluation[c.EPISODE].nunique())
            if c.EPISODE in guard_evaluation
            else None,
            "challenger": score_rows(challenger["model"], guard_evaluation),
            "champion": score_rows(
                champion["model"], own_val if own_val is not None else guard_evaluation
            ),
        }
    if champion is not None:
        out["champion_features"] = (
            "this run's" if own_test is None else "rebuilt with its own sensor baselines"
        )
    return out


# what a row-wise family (classification, regression, anomaly) scores promotion on: the
# evaluation and val features, and what a champion's own features are rebuilt from
REBUILT_FROM = ("validated_test", "validated_val", "sensor_baselines")
ROW_EVALUATION = (
    "features_test",
    "features_val",
    "params:promotion",
    *REBUILT_FROM,
    "params:machine",
)


def row_scorer(
    score_rows: Callable[[dict[str, Any], pd.DataFrame], dict[str, float]],
    label_column: str | None = None,
) -> Callable[..., dict[str, Any]]:
    """The ``score_for_promotion`` node of a row-wise family (inputs: :data:`ROW_EVALUATION`),
    scoring a model on any rows with ``score_rows`` (``label_column``: its 0/1 label)."""

    def score_for_promotion(  # noqa: PLR0913 (both models, both splits as built for each)
        challenger: dict[str, Any],
        champion: dict[str, Any] | None,
        features_test: pd.DataFrame,
        features_val: pd.DataFrame | None = None,
        promotion: dict[str, Any] | None = None,
        validated_test: pd.DataFrame | None = None,
        validated_val: pd.DataFrame | None = None,
        sensor_baselines: dict[str, Any] | None = None,
        machine: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Challenger and champion on the same evaluation rows (the newest labelled split), with
        the paired bootstrap of the gain when ``promotion.bootstrap`` is set and both scored on
        the val split when ``promotion.val_guard`` is. The champion scores those rows as
        features built with its own sensor baselines when they differ from this run's
        (:func:`champion_features`)."""
        return score_both(
            challenger,
            champion,
            features_test,
            label_column=label_column,
            score_rows=score_rows,
            promotion=promotion,
            guard_evaluation=features_val,
            champion_frames=champion_features(
                champion,
                sensor_baselines,
                machine,
                (validated_test, features_test),
                (validated_val, features_val),
            ),
        )

    return score_for_promotion


def champion_features(
    champion: dict[str, Any] | None,
    sensor_baselines: dict[str, Any] | None,
    machine: dict[str, Any] | None,
    *splits: tuple[pd.DataFrame | None, pd.DataFrame | None],
) -> tuple[pd.DataFrame | None, ...] | None:
    """The features the champion was trained on, for each ``(validated rows, this run's
    features)`` split: rebuilt from the validated rows with the sensor baselines recorded in the
    champion's package (``model["sensor_baselines"]``, :func:`pdm_kedro.evaluation.tracking.
    registration_entry`) when they differ from this run's; None when nothing needs rebuilding
    (no champion, the same baselines, or a champion registered before its baselines were
    recorded: scored on this run's features, as before).

    Every run fits its baselines (per-sensor median and scale) on its own train split and builds
    every split's features with them; a champion scored on another run's features is handicapped
    by the difference (a challenger trained on one episode beat the champion's anomaly detector
    so, docs/continuous_training.md). Rows stay row for row the same (checked), so the paired
    bootstrap still pairs them.
    """
    theirs = ((champion or {}).get("model") or {}).get("sensor_baselines")
    if theirs is None or sensor_baselines is None or theirs == sensor_baselines:
        return None
    from pdm_kedro.pipelines.feature_engineering.nodes import (  # noqa: PLC0415 (no cycle)
        build_window_features,
    )

    out = []
    for validated, features in splits:
        if validated is None or features is None:
            out.append(None)
            continue
        rebuilt = build_window_features(validated, theirs, machine)
        keys = [c.TIMESTAMP, c.EPISODE]
        if not rebuilt[keys].reset_index(drop=True).equals(features[keys].reset_index(drop=True)):
            raise ValueError(
                f"{(machine or {}).get('machine_id', '?')}: the champion's features rebuilt "
                f"from the validated rows ({len(rebuilt)} rows) do not match this run's "
                f"({len(features)} rows) row for row"
            )
        out.append(rebuilt.reset_index(drop=True))
    return tuple(out)
