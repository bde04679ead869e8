"""The end-of-run summary: per machine and family the headline metric beside its baseline.

Built from the run's ``<machine>.<family>.metrics`` reports (the same JSON the model cards read)
and the families' ``registry.champion_metric`` / ``greater_is_better`` parameters, so the
headline is the metric the champion rule compares. A family with one metric per sensor
(``mape[<sensor>]``) is summarised by the mean over its sensors, model and baseline alike.
A metric row's ``ceiling`` (an upper reference, where a family reports one) is shown too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from pdm_kedro.console.progress import fmt_seconds
from pdm_kedro.families import FAMILIES, greater_is_better

FAMILY_ORDER = ("classification", "regression", "anomaly", "forecasting")


@dataclass(frozen=True)
class SummaryRow:
    """One machine and family of the run."""

    machine: str
    family: str
    metric: str
    value: float | None
    baseline: float | None
    baseline_name: str
    ceiling: float | None
    greater_is_better: bool
    seconds: float

    @property
    def verdict(self) -> str:
        """``yes`` / ``no`` (beats the baseline), ``tie`` or ``n/a``."""
        if self.value is None or self.baseline is None:
            return "n/a"
        if math.isclose(self.value, self.baseline, rel_tol=1e-9, abs_tol=1e-12):
            return "tie"
        better = (
            self.value > self.baseline if self.greater_is_better else self.value < self.baseline
        )
        return "yes" if better else "no"


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def headline(
    report: Mapping[str, Any], metric: str
) -> tuple[float | None, float | None, str, float | None]:
    """``(value, baseline, baseline_name, ceiling)`` of ``metric`` in a family's metrics report."""
    rows = list(report.get("metrics", []))
    exact = [r for r in rows if r.get("metric") == metric]
    chosen = exact or [r for r in rows if str(r.get("metric", "")).startswith(f"{metric}[")]
    if not chosen:
        return None, None, "", None
    return (
        _mean([_number(r.get("value")) for r in chosen]),
        _mean([_number(r.get("baseline")) for r in chosen]),
        str(chosen[0].get("baseline_name", "")),
        _mean([_number(r.get("ceiling")) for r in chosen])
        if any("ceiling" in r for r in chosen)
        else None,
    )


def build_rows(
    reports: Mapping[tuple[str, str], Mapping[str, Any]],
    parameters: Mapping[str, Any],
    seconds: Mapping[tuple[str, str], float],
) -> list[SummaryRow]:
    """Summary rows for ``{(machine, family): metrics report}`` of the run.

    ``parameters``: the run's parameters (``<family>.registry`` holds the headline metric);
    ``seconds``: wall time of each ``(machine, family)``'s nodes.
    """
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    out = []
    for (machine, family), report in sorted(
        reports.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99), kv[0][1])
    ):
        registry = (parameters.get(family) or {}).get("registry") or {}
        known = FAMILIES.get(family)  # the family seam: headline metric and its direction
        metric = str(
            registry.get("champion_metric")
            or (known.headline if known else report["metrics"][0]["metric"])
        )
        greater = bool(registry.get("greater_is_better", greater_is_better(metric)))
        if metric in set(report.get("lower_is_better") or []):
            greater = False
        value, baseline, baseline_name, ceiling = headline(report, metric)
        out.append(
            SummaryRow(
                machine=machine,
                family=family,
                metric=metric if greater else f"{metric} (lower is better)",
                value=value,
                baseline=baseline,
                baseline_name=baseline_name,
                ceiling=ceiling,
                greater_is_better=greater,
                seconds=float(seconds.get((machine, family), 0.0)),
            )
        )
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


COLUMNS = (
    "machine",
    "family",
    "headline metric",
    "model",
    "baseline",
    "ceiling",
    "beats baseline",
    "time",
)


def _cells(row: SummaryRow) -> list[str]:
    baseline = _fmt(row.baseline) + (f" ({row.baseline_name})" if row.baseline_name else "")
    return [
        row.machine,
        row.family,
        row.metric,
        _fmt(row.value),
        baseline,
        _fmt(row.ceiling),
        row.verdict,
        fmt_seconds(row.seconds),
    ]


def rich_table(rows: list[SummaryRow], title: str) -> Table:
    """The summary as a rich table (a model that loses to its baseline is shown in red)."""
    table = Table(title=title, title_justify="left")
    for name in COLUMNS:
        table.add_column(name, justify="right" if name in ("model", "ceiling", "time") else "left")
    styles = {"yes": "green", "no": "bold red", "tie": "yellow", "n/a": "dim"}
    for row in rows:
        cells = _cells(row)
        cells[6] = f"[{styles[row.verdict]}]{cells[6]}[/]"
        table.add_row(*cells)
    return table


def markdown(
    rows: list[SummaryRow], title: str, facts: list[tuple[str, str]], where: list[tuple[str, str]]
) -> str:
    """The summary as Markdown (``08_reporting/run_summary.md``)."""
    lines = [f"# {title}", "", "_Written by the run's console hook; do not edit._", ""]
    lines += [f"- {name}: {value}" for name, value in facts]
    lines += ["", "## Models beside their baselines (test split)", ""]
    if rows:
        lines.append("| " + " | ".join(COLUMNS) + " |")
        lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
        lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
        losers = [r for r in rows if r.verdict == "no"]
        lines.append("")
        lines.append(
            f"{len(losers)} of {len(rows)} models do not beat their baseline"
            + (": " + ", ".join(f"{r.machine}/{r.family}" for r in losers) + "." if losers else ".")
        )
    else:
        lines.append("No model family ran in this run.")
    lines += ["", "## Where to look", ""]
    lines += [f"- {name}: `{value}`" for name, value in where]
    return "\n".join(lines) + "\n"
