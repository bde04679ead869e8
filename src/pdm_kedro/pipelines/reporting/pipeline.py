"""Reporting: a model card per machine and the fleet metrics table.

The dataset names these pipelines read are never written by hand: the registry passes the
``.metrics`` outputs of each machine's built family pipelines (for its card) and of every built
machine pipeline (for the fleet table).
"""

import re
import warnings
from collections.abc import Iterable, Sequence

from kedro.pipeline import Node, Pipeline

from .nodes import build_fleet_metrics, write_model_card

METRICS_SUFFIX = ".metrics"
# The card template reads family metrics through placeholders, mapped to real datasets per machine.
PLACEHOLDER = "family_metrics_{index:02d}"
PLACEHOLDER_PATTERN = re.compile(r"(^|\.)family_metrics_\d{2}$")


def metrics_datasets(pipelines: Iterable[Pipeline]) -> list[str]:
    """Every ``<...>.metrics`` dataset (a family's metrics) the pipelines produce, sorted."""
    return sorted(
        {name for pipe in pipelines for name in pipe.all_outputs() if name.endswith(METRICS_SUFFIX)}
    )


def create_pipeline(n_families: int = 0, **kwargs) -> Pipeline:  # noqa: ARG001
    """Per-machine template: the model card from ``n_families`` family metrics placeholders (see
    :func:`connect_family_metrics`). Every family logs its own MLflow metrics and plots."""
    placeholders = [PLACEHOLDER.format(index=i) for i in range(n_families)]
    return Pipeline(
        [
            Node(
                write_model_card,
                inputs=["params:machine", "params:reporting", "sensor_baselines", *placeholders],
                outputs="model_card",
                name="write_model_card",
            ),
        ]
    )


def connect_family_metrics(card: Pipeline, family_metrics: Sequence[str]) -> Pipeline:
    """A machine's (namespaced) card pipeline reading the given ``<machine>.<family>.metrics``."""
    placeholders = sorted(name for name in card.inputs() if PLACEHOLDER_PATTERN.search(name))
    if len(placeholders) != len(family_metrics):
        raise ValueError(f"{len(placeholders)} placeholders for {len(family_metrics)} metrics")
    return Pipeline(card, inputs=dict(zip(placeholders, sorted(family_metrics), strict=True)))


def create_fleet_pipeline(machine_metrics: Iterable[str]) -> Pipeline:
    """Fleet level (not namespaced): ``fleet_metrics`` from the given ``<machine>.<family>.metrics``."""
    names = sorted(machine_metrics)
    if not names:
        return Pipeline([])
    with warnings.catch_warnings():
        # the dotted names come from the built machine pipelines, not from hand-written strings
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        node = Node(
            build_fleet_metrics, inputs=names, outputs="fleet_metrics", name="build_fleet_metrics"
        )
    return Pipeline([node])
