"""The model families: the one place that says what a family is.

A family answers one maintenance question for a machine. Everything that handles "every family"
(the pipeline registry, the edge exporter, the edge runtime, the reports, the promotion rule and
the MLflow registry) iterates over :data:`FAMILIES` or reads a :class:`Family` from here; nothing
else keeps a list of family names or switches on them.

Standard library only: the edge runtime imports this module on the device.

Adding a family (see docs/architecture.md): write its template pipeline under
``pipelines/<name>/`` (``model``, ``metrics``, ``registered_model`` and ``production_model``
outputs, like the others) and add a :class:`Family` here (or :func:`register_family` it, as the
toy family of ``tests/test_families.py`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

AnswerKind = Literal["probability", "value", "score", "forecast"]
ExportKind = Literal["feature_matrix", "forecaster"]

# Metric direction, the project's single source of truth: smaller is better for these; every
# other metric is better when larger. ``mape[sensor]`` reads as ``mape``.
LOWER_IS_BETTER = frozenset(
    {
        "rmse",
        "mae",
        "nasa_score",
        "nasa_score_mean",
        "mape",
        "mase",
        "smape",
        "false_alarm_rate",
        "missed_alarm_rate",
        "brier",
        "coverage_error",
        "false_alarms_per_1000h",
        "mae_last_100h",
        "answer_rmse",  # the RUL as answered (capped while the failure alarm is on)
        "answer_mae_last_100h",
    }
)


def base_metric(metric: str) -> str:
    """``mape[sensor]`` -> ``mape``."""
    return metric.split("[", maxsplit=1)[0]


def greater_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better."""
    return base_metric(metric) not in LOWER_IS_BETTER


@dataclass(frozen=True)
class Family:
    """What a model family is.

    Attributes:
        name: the family's name: its template stage ``pipelines/<name>``, its namespace inside a
            machine (``<machine>.<name>.*``) and its file in the edge bundle (``<name>.onnx``).
        question: the maintenance question it answers, in words.
        answer_kind: ``probability`` (a probability and a decision at a threshold), ``value``
            (a number), ``score`` (a score and a flag at a threshold) or ``forecast``.
        answer_key: the key of its answer in the edge runtime's result and the prediction log.
        metrics: the test metrics of its metrics document, in report order.
        headline: the metric promotion compares (a per-sensor family: the mean over its sensors).
        guards: metrics a new champion must not make worse (false alarms, calibration).
        answer_fields: ``{answer field: model key}`` copied from the model into its manifest entry
            and from there into every answer (e.g. the classification horizon).
        export: ``feature_matrix`` (one ONNX graph on the feature matrix; output and native
            answer given by ``answer_kind``) or ``forecaster`` (a family-specific export).
        plots: the plot files its pipeline writes (``<name>/<plot>.png``, logged to MLflow).
        pipeline: the template pipeline factory when it is not ``pipelines/<name>``
            (``create_pipeline()``), e.g. for a family defined outside the package.
    """

    name: str
    question: str
    answer_kind: AnswerKind
    answer_key: str
    metrics: tuple[str, ...]
    headline: str
    guards: tuple[str, ...] = ()
    answer_fields: dict[str, str] = field(default_factory=dict)
    export: ExportKind = "feature_matrix"
    plots: tuple[str, ...] = ()
    pipeline: Callable[[], Any] | None = None

    def registry_name(self, machine_id: str) -> str:
        """The family's registered model in MLflow for one machine."""
        return f"{machine_id}-{self.name}"

    @property
    def headline_greater_is_better(self) -> bool:
        """Direction of the headline metric."""
        return greater_is_better(self.headline)

    def metric_directions(self) -> dict[str, str]:
        """``{metric: "max" | "min"}`` of its metrics, headline and guards."""
        names = dict.fromkeys((*self.metrics, self.headline, *self.guards))
        return {m: "max" if greater_is_better(m) else "min" for m in names}


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="classification",
            question="Will the machine fail within the failure horizon?",
            answer_kind="probability",
            answer_key="failure",
            metrics=("f1", "precision", "recall", "pr_auc", "roc_auc"),
            headline="f1",
            guards=("false_alarm_rate", "brier"),
            answer_fields={"horizon_hours": "horizon_hours"},
            plots=("pr_curve.png", "confusion_matrix.png"),
        ),
        Family(
            name="regression",
            question="How many hours of useful life remain?",
            answer_kind="value",
            answer_key="rul_hours",
            metrics=("rmse", "mae", "r2", "nasa_score", "nasa_score_mean"),
            headline="rmse",
            guards=("nasa_score_mean",),
            answer_fields={
                "cap_hours": "rul_cap_hours",
                "cap_at_alarm_hours": "cap_at_alarm_hours",
            },
            plots=("rul_predicted_vs_true.png",),
        ),
        Family(
            name="anomaly",
            question="Is this reading anomalous (a sensor or process fault)?",
            answer_kind="score",
            answer_key="anomaly",
            metrics=("precision", "recall", "f1", "false_alarm_rate", "missed_alarm_rate"),
            headline="f1",
            guards=("false_alarm_rate",),
            answer_fields={"detector": "detector"},
            plots=("score_distribution.png",),
        ),
        Family(
            name="forecasting",
            question="What will the key sensors read over the next 24 hours?",
            answer_kind="forecast",
            answer_key="forecast",
            metrics=("mape", "smape", "mase"),
            headline="mape",
            guards=("coverage_error",),
            export="forecaster",
            plots=("forecast_vs_actual.png",),
        ),
    )
}


class UnknownFamilyError(KeyError):
    """A family name that :data:`FAMILIES` does not define."""

    def __str__(self) -> str:
        return str(self.args[0])


def family_names() -> tuple[str, ...]:
    """Every defined family, in canonical order."""
    return tuple(FAMILIES)


def get_family(name: str) -> Family:
    """The family called ``name``, or a clear error listing the defined ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamilyError(
            f"Unknown model family {name!r}. Defined families: {', '.join(FAMILIES)}."
        ) from None


def register_family(family: Family) -> Family:
    """Add (or replace) a family; returns it. Used by tests and by families defined outside."""
    FAMILIES[family.name] = family
    return family


def unregister_family(name: str) -> None:
    """Remove a family added with :func:`register_family`."""
    FAMILIES.pop(name, None)


def family_of_namespace(namespace: str | None) -> str | None:
    """The family a (template-level) node namespace belongs to: ``anomaly.x`` -> ``anomaly``."""
    head = (namespace or "").split(".")[0]
    return head if head in FAMILIES else None
