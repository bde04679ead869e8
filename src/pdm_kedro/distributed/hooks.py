"""Hooks of the scale-out: scoped parameter validation, and ParallelRunner's clear refusal."""

from __future__ import annotations

from multiprocessing.reduction import ForkingPickler
from pickle import PicklingError
from typing import Any

import click
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

from pdm_kedro.distributed.config_loader import scoped_machines

PARALLEL_RUNNER_MESSAGE = (
    "ParallelRunner cannot run these pipelines: {datasets} cannot be pickled to its worker processes "
    "(kedro-mlflow's artifact datasets, the ONNX and plot datasets), and kedro-mlflow's hooks do "
    "not run there. Run machines in parallel with `pdm-kedro fleet run --machines <id,...> "
    "--workers N` (one Kedro session per machine on a Dask cluster, see docs/scale_out.md); "
    "ParallelRunner still works for the foundation stages (data_generation, data_validation, "
    "feature_engineering)."
)


class ScaleOutHooks:
    """Keep a run's start-up proportional to what it runs, and refuse what cannot run."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        """Validate typed parameters against ``__default__`` unless the session scopes it.

        Kedro validates against every registered pipeline when a run uses ``__default__``
        (``kedro run``, ``kedro run --namespaces m``), which builds every machine's pipelines:
        minutes at thousands of machines. ``__default__`` is the pipeline such a run runs. The
        session still sets its own scope for ``--pipelines`` runs.
        """
        if getattr(context, "_pipelines_to_validate", "absent") is None:
            # a fleet task runs its machine's pipeline (`session.run(pipeline_names=[machine])`):
            # the scope the session sets later, so the parameters are validated once, not twice
            scoped = scoped_machines()
            context._pipelines_to_validate = sorted(scoped) if scoped else ["__default__"]  # noqa: SLF001

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Fail in one sentence when ParallelRunner meets datasets it cannot pickle."""
        if "ParallelRunner" not in str(run_params.get("runner")):
            return
        names = []
        for name in sorted(pipeline.datasets()):
            try:
                dataset = catalog.get(name, fallback_to_runtime_pattern=True)
                ForkingPickler.dumps(dataset)
            except (AttributeError, PicklingError, TypeError):
                names.append(name)
            except Exception:  # noqa: BLE001, S112 (not ours to judge: the runner reports it)
                continue
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise click.ClickException(PARALLEL_RUNNER_MESSAGE.format(datasets=shown))
