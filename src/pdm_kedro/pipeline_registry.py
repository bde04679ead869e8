"""Register one namespaced instance of every template pipeline per machine.

Templates live in ``pipelines/<stage>/`` and know nothing of machines. The machine list comes from
config (``conf/base`` plus ``KEDRO_ENV``), so adding a machine is adding a config file.

Registered pipelines:
- ``__default__``: every stage for the priority machines (``fleet.priority_machines``);
- ``<stage>`` (e.g. ``feature_engineering``): that stage for the priority machines;
- ``fleet``: every stage for every defined machine;
- ``<machine_id>``: every stage for that machine (priority or not).

The ``reporting`` stage is wired from the other pipelines' outputs, never from hand-written names:
each machine's model card reads the ``.metrics`` outputs of that machine's family pipelines, and
``__default__``, ``reporting`` and ``fleet`` end with one fleet-level (not namespaced) node that
gathers every ``<machine>.<family>.metrics`` of their machines into ``fleet_metrics``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import sys

from kedro.pipeline import Pipeline

from pdm_kedro.distributed.lazy_registry import LazyRegistry, concatenate
from pdm_kedro.families import FAMILIES, family_names, family_of_namespace
from pdm_kedro.fleet import load_project_parameters, machines_in_parameters, priority_machines
from pdm_kedro.pipelines import reporting

# Stages that produce a machine's raw splits, by the machine's `source.type`.
SOURCE_STAGES = {"synthetic": "data_generation", "file": "data_ingestion"}
MACHINE_PARAMETER = "params:machine"
REPORTING_STAGE = "reporting"
DIAGNOSIS_STAGE = "diagnosis"
# Model-family stages (a file-source machine may restrict them with `source.families`: data that
# support only some of them train only those) are the families of `pdm_kedro.families`.

# The configuration environment of the active Kedro session (`kedro run -e cmapss`), recorded by
# `pdm_kedro.hooks.ConfigEnvHook` before the pipelines are first read; None: KEDRO_ENV or local.
_config_env: str | None = None


def use_config_env(env: str | None) -> bool:
    """Build the machine list from ``env`` (set by a hook from the session's ``--env``).

    Returns True when this changes the environment (pipelines built before are then stale).
    """
    global _config_env  # noqa: PLW0603
    changed = env != _config_env
    _config_env = env
    return changed


def namespace_for_machine(
    template: Pipeline, machine_id: str, overridden: tuple[str, ...] = ()
) -> Pipeline:
    """The template's instance for one machine.

    Datasets, nodes and ``params:machine`` get the ``<machine_id>.`` prefix; every other
    parameter is fleet-wide and keeps its name, except the groups of ``overridden`` (the
    families the machine's ``model_overrides`` sets): ``params:<family>`` then reads
    ``params:<machine_id>.<family>``, the fleet's values with the machine's merged in
    (``pdm_kedro.distributed.context.FleetContext``).
    """
    own = tuple(f"params:{group}" for group in overridden)
    shared_params = {
        name: f"params:{machine_id}.{name.removeprefix('params:')}"
        if name in own or name.startswith(tuple(f"{group}." for group in own))
        else name
        for name in template.inputs()
        if name.startswith("params:")
        and name != MACHINE_PARAMETER
        and not name.startswith(MACHINE_PARAMETER + ".")
    }
    return Pipeline(template, namespace=machine_id, parameters=shared_params)


def machine_pipeline(
    templates: dict[str, Pipeline],
    machine_id: str,
    source_type: str,
    families: list[str] | None = None,
    overridden: tuple[str, ...] = (),
    time_ordered: bool = True,
) -> dict[str, Pipeline]:
    """The per-stage instances for one machine, with the ingestion stage its source needs.

    ``families`` (a file source's ``source.families``) keeps only those model-family stages;
    ``overridden`` (the families of the machine's ``model_overrides``) read the machine's own
    parameters of those families; a snapshot table (``time_ordered`` false: a file source with
    ``time_kind: none``) gets no stage that declares ``NEEDS_TIME_ORDER``.
    """
    source_stages = set(SOURCE_STAGES.values())
    wanted = SOURCE_STAGES[source_type]
    skipped = set(family_names()) - set(families) if families is not None else set()
    stages = {}
    for stage, template in templates.items():
        if stage in skipped or (stage in source_stages and stage != wanted):
            continue
        if not time_ordered and needs_time_order(stage):
            continue
        rebuild = getattr(
            sys.modules.get(f"pdm_kedro.pipelines.{stage}"), "create_pipeline_for_families", None
        )
        if skipped and rebuild is not None and _built_by_its_package(stage, template):
            # the stage rebuilds itself for the trained families
            template = rebuild([f for f in family_names() if f not in skipped])  # noqa: PLW2901
        if skipped:  # cross-family stages (e.g. edge export) lose their skipped-family parts
            kept = [n for n in template.nodes if family_of_namespace(n.namespace) not in skipped]
            if not kept:
                continue
            template = Pipeline(kept) if len(kept) < len(template.nodes) else template  # noqa: PLW2901
        stages[stage] = namespace_for_machine(template, machine_id, overridden)
    return stages


def _built_by_its_package(stage: str, template: Pipeline) -> bool:
    """Whether ``template`` is the stage package's own (a node of it runs a function of
    ``pdm_kedro.pipelines.<stage>``): only then may the package rebuild it for the trained
    families; a template given in its place (a test's stand-in) is used as given."""
    package = f"pdm_kedro.pipelines.{stage}."
    return any(getattr(n.func, "__module__", "").startswith(package) for n in template.nodes)


def _stage_module(stage: str):  # noqa: ANN202
    return sys.modules.get(f"pdm_kedro.pipelines.{stage}")


def needs_time_order(stage: str) -> bool:
    """A stage whose inputs are window statistics (``NEEDS_TIME_ORDER = True`` in its package):
    left out for snapshot tables."""
    return bool(getattr(_stage_module(stage), "NEEDS_TIME_ORDER", False))


def is_time_ordered(block: dict) -> bool:
    """Whether a machine's rows have a time order (not a snapshot table, ``time_kind: none``)."""
    source = block.get("source") or {}
    return (source.get("columns") or {}).get("time_kind") != "none"


def scoring_template(templates: dict[str, Pipeline]) -> Pipeline:
    """The scoring stage of one machine (un-namespaced): the ``create_scoring_pipeline()`` part
    of every training stage that has one (validation, features), then the inference stages."""
    parts = [
        getattr(_stage_module(stage), "create_scoring_pipeline")()  # noqa: B009
        for stage in templates
        if hasattr(_stage_module(stage), "create_scoring_pipeline")
    ]
    parts += [
        pipe
        for stage, pipe in templates.items()
        if is_inference_stage(stage) and not is_standalone_stage(stage)
    ]
    return sum(parts, Pipeline([]))


def is_inference_stage(stage: str) -> bool:
    """A stage that answers new data (``INFERENCE = True`` in its package): not in training."""
    return bool(getattr(_stage_module(stage), "INFERENCE", False))


def is_standalone_stage(stage: str) -> bool:
    """An inference stage registered as its own pipeline over every machine (``STANDALONE =
    True``: ``production_stream``, ``monitoring``), not a part of ``scoring``."""
    return is_inference_stage(stage) and bool(getattr(_stage_module(stage), "STANDALONE", False))


def build_registry(templates: dict[str, Pipeline], parameters: dict) -> LazyRegistry:
    """All registered pipelines for the machines defined in ``parameters``.

    Built lazily and joined in one pass (:mod:`pdm_kedro.distributed.lazy_registry`): reading
    ``registry[name]`` builds only the machines that pipeline holds, so the cost of a run grows
    with the machines it runs, not with the machines configured. Inference stages (``scoring``)
    are left out of the training pipelines: ``scoring`` is its own pipeline over every defined
    machine (select one with ``--namespaces``).
    """
    # the diagnosis stage's fleet node (its module imports scikit-learn): imported when a
    # registry is built, not with the project's settings (a fleet command's own process)
    from pdm_kedro.pipelines import diagnosis  # noqa: PLC0415

    machines = machines_in_parameters(parameters)
    priority = priority_machines(parameters)
    inference = {stage for stage in templates if is_inference_stage(stage)}
    standalone = {stage: templates[stage] for stage in inference if is_standalone_stage(stage)}
    scoring = scoring_template(templates) if inference - set(standalone) else None
    templates = {k: v for k, v in templates.items() if k not in inference}

    def overridden_of(machine_id: str) -> tuple[str, ...]:
        return tuple(machines[machine_id].get("model_overrides") or {})

    @functools.cache
    def stages_of(machine_id: str) -> dict[str, Pipeline]:
        block = machines[machine_id]
        stages = machine_pipeline(
            templates,
            machine_id,
            block.get("source", {}).get("type", "synthetic"),
            block.get("source", {}).get("families"),
            overridden_of(machine_id),
            is_time_ordered(block),
        )
        if REPORTING_STAGE in templates:  # each model card reads the family metrics it makes
            made = reporting.metrics_datasets(
                pipe for stage, pipe in stages.items() if stage != REPORTING_STAGE
            )
            card = namespace_for_machine(
                reporting.create_pipeline(len(made)),
                machine_id,
                overridden_of(machine_id),
            )
            stages[REPORTING_STAGE] = reporting.connect_family_metrics(card, made)
        return stages

    def fleet_report(machine_ids: list[str]) -> Pipeline:
        if REPORTING_STAGE not in templates:
            return Pipeline([])
        return reporting.create_fleet_pipeline(
            reporting.metrics_datasets(registry[m] for m in machine_ids)
        ) + diagnosis_report(machine_ids)

    def diagnosis_report(machine_ids: list[str]) -> Pipeline:  # pipelines/diagnosis: fleet node
        return diagnosis.create_fleet_pipeline(
            diagnosis.diagnosis_datasets(registry[m] for m in machine_ids)
        )

    def build(name: str) -> Pipeline:
        if name in standalone:
            return concatenate(
                namespace_for_machine(standalone[name], m, overridden_of(m)) for m in machines
            )
        if name == "scoring" and scoring is not None:
            return concatenate(
                namespace_for_machine(scoring, m, overridden_of(m)) for m in machines
            )
        if name in machines:
            return concatenate(stages_of(name).values())
        if name == "fleet":
            return concatenate([*(registry[m] for m in machines), fleet_report(list(machines))])
        if name == "__default__":
            return concatenate([*(registry[m] for m in priority), fleet_report(priority)])
        stage = concatenate(stages_of(m)[name] for m in priority if name in stages_of(m))
        if name == REPORTING_STAGE:
            stage = concatenate([stage, fleet_report(priority)])
        if name == DIAGNOSIS_STAGE:
            stage = concatenate(
                [stage, diagnosis.create_fleet_pipeline(diagnosis.diagnosis_datasets([stage]))]
            )
        return stage

    names = [
        *templates,
        *machines,
        "fleet",
        "__default__",
        *(["scoring"] if scoring else []),
        *standalone,
    ]
    registry = LazyRegistry(names, build)
    return registry


def discover_templates() -> dict[str, Pipeline]:
    """Every template pipeline under ``pdm_kedro.pipelines`` (one folder each), plus the
    families of :data:`pdm_kedro.families.FAMILIES` that bring their own ``pipeline`` factory.

    Like ``find_pipelines(raise_errors=True)`` a broken template fails loudly, but all of them are
    loaded whatever ``--pipelines`` asks for: the registered names are machine ids and stages,
    not folder names.
    """
    package = importlib.import_module("pdm_kedro.pipelines")
    factories = {
        module.name: importlib.import_module(f"{package.__name__}.{module.name}").create_pipeline
        for module in pkgutil.iter_modules(package.__path__)
        if module.ispkg
    }
    factories |= {name: f.pipeline for name, f in FAMILIES.items() if f.pipeline is not None}
    templates = {}
    for name, factory in factories.items():
        pipe = factory()
        if not isinstance(pipe, Pipeline):
            raise TypeError(f"pipelines/{name}: create_pipeline() must return a Pipeline")
        templates[name] = pipe
    return templates


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines."""
    return build_registry(discover_templates(), load_project_parameters(env=_config_env))
