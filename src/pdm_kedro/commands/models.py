"""``pdm-kedro models list|promote|rollback <machine> [<family>]``: the production models by hand.

- ``list``: every registered version of the machine's families, with its aliases (``champion``,
  ``challenger``, ``previous_champion``), headline score and last promotion decision.
- ``promote``: apply the promotion rule (:mod:`pdm_kedro.promotion`) to the family's
  ``challenger`` (or ``--version N``, which becomes the challenger first): the champion and the
  challenger are re-scored on the same evaluation data and the champion moves only if the
  challenger wins by the configured margin with no guard worse. It runs the family's
  ``promotion`` nodes in a Kedro session (I/O through the catalog, as in a training run), then
  rebuilds the machine's edge bundle from the champion versions.
- ``rollback``: the ``previous_champion`` becomes ``champion`` again (and the rolled-back version
  ``previous_champion``); the bundle is rebuilt.

Every decision is a line in ``data/08_reporting/promotions.jsonl`` and tags on the version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import mlflow
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pdm_kedro.datasets.mlflow_model_registry import append_audit
from pdm_kedro.families import FAMILIES, UnknownFamilyError, get_family
from pdm_kedro.fleet import (
    UnknownMachineError,
    load_project_parameters,
    machines_in_parameters,
    require_machine,
)
from pdm_kedro.paths import data_root, mlflow_tracking_uri, project_root
from pdm_kedro.pipeline_registry import discover_templates, machine_pipeline
from pdm_kedro.promotion import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, PROMOTION_TAG

AUDIT_FILE = "promotions.jsonl"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS_CHAMPION)


def audit_path() -> Path:
    """``<data root>/08_reporting/promotions.jsonl``."""
    return data_root() / "08_reporting" / AUDIT_FILE


def _machine_families(env: str | None, machine_id: str) -> tuple[dict, list[str]]:
    parameters = load_project_parameters(env=env)
    machines = machines_in_parameters(parameters)
    require_machine(machine_id, machines)
    wanted = machines[machine_id].get("source", {}).get("families")
    return parameters, [f for f in FAMILIES if wanted is None or f in wanted]


def _check_family(family: str, trained: list[str], machine_id: str) -> None:
    get_family(family)
    if family not in trained:
        raise UnknownFamilyError(
            f"Machine {machine_id} does not train family {family!r}; it trains "
            f"{', '.join(trained)}."
        )


def _client() -> MlflowClient:
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    return MlflowClient()


def _versions(client: MlflowClient, name: str) -> list:
    try:
        return sorted(
            client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version)
        )
    except MlflowException:
        return []


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(name="models")
def command() -> None:
    """The production (champion) models of a machine: list, promote, roll back."""


def _machine_option(func):  # noqa: ANN001, ANN202
    func = click.option("--env", "-e", default=None, help="Kedro configuration environment.")(func)
    return func


def _resolve(env: str | None, machine_id: str, family: str | None) -> list[str]:
    try:
        _, trained = _machine_families(env, machine_id)
        if family is not None:
            _check_family(family, trained, machine_id)
            return [family]
    except (UnknownMachineError, UnknownFamilyError) as err:
        _fail(str(err))
    return trained


@command.command(name="list")
@click.argument("machine_id")
@click.argument("family", required=False)
@_machine_option
def list_models(machine_id: str, family: str | None, env: str | None) -> None:
    """List the registered versions of MACHINE_ID's families (or one FAMILY)."""
    families = _resolve(env, machine_id, family)
    client = _client()
    for name in families:
        registered = get_family(name).registry_name(machine_id)
        versions = _versions(client, registered)
        click.echo(f"{registered}:")
        if not versions:
            click.echo("  no registered version (run the machine's training pipeline first)")
            continue
        aliases = {alias: _alias_version(client, registered, alias) for alias in ALIASES}
        for version in versions:
            names = [a for a, v in aliases.items() if v == str(version.version)]
            tags = version.tags
            click.echo(
                f"  v{version.version}  {tags.get('score_name', '?')}={tags.get('score', '?')}"
                f"  trained_until={tags.get('trained_until', '?')}"
                f"  decision={tags.get('promotion_decision', '-')}"
                + (f"  [{', '.join(names)}]" if names else "")
            )


def _run_session(env: str | None, machine_id: str, node_names: list[str]) -> None:
    bootstrap_project(project_root())
    with KedroSession.create(project_path=project_root(), env=env) as session:
        session.run(pipeline_name=machine_id, node_names=node_names)


def _stages(env: str | None, machine_id: str) -> dict:
    block = machines_in_parameters(load_project_parameters(env=env))[machine_id]
    return machine_pipeline(
        discover_templates(),
        machine_id,
        block.get("source", {}).get("type", "synthetic"),
        block.get("source", {}).get("families"),
    )


def _rebuild_bundle(env: str | None, machine_id: str) -> None:
    stages = _stages(env, machine_id)
    if "edge_export" not in stages:
        return
    click.echo(f"rebuilding the edge bundle of {machine_id} from the champion versions")
    _run_session(env, machine_id, [n.name for n in stages["edge_export"].nodes])


@command.command(name="promote")
@click.argument("machine_id")
@click.argument("family")
@click.option("--version", "version", default=None, help="Make this version the challenger first.")
@_machine_option
@click.option(
    "--bundle/--no-bundle", default=True, help="Rebuild the edge bundle when the champion moves."
)
def promote(
    machine_id: str, family: str, version: str | None, env: str | None, bundle: bool
) -> None:
    """Apply the promotion rule to FAMILY's challenger of MACHINE_ID (re-scored against the
    champion on the same evaluation data), then rebuild the edge bundle."""
    _resolve(env, machine_id, family)
    client = _client()
    registered = get_family(family).registry_name(machine_id)
    if not _versions(client, registered):
        _fail(f"{registered} has no registered version: run `kedro run --namespaces {machine_id}`")
    if version is not None:
        try:
            client.get_model_version(registered, str(version))
        except MlflowException:
            known = ", ".join(f"v{v.version}" for v in _versions(client, registered))
            _fail(f"{registered} has no version {version!r}; it has {known}.")
        client.set_registered_model_alias(registered, CHALLENGER, str(version))
    if _alias_version(client, registered, CHALLENGER) is None:
        _fail(f"{registered} has no challenger: pass --version N")
    before = _alias_version(client, registered, CHAMPION)
    stage = _stages(env, machine_id)[family]
    _run_session(env, machine_id, [n.name for n in stage.nodes if PROMOTION_TAG in n.tags])
    after = _alias_version(client, registered, CHAMPION)
    if after != before:
        click.echo(f"{registered}: champion v{before} -> v{after} (see {audit_path()})")
        if bundle:
            _rebuild_bundle(env, machine_id)
    else:
        click.echo(f"{registered}: champion kept at v{before} (the reason is in {audit_path()})")


@command.command(name="rollback")
@click.argument("machine_id")
@click.argument("family")
@_machine_option
@click.option("--bundle/--no-bundle", default=True, help="Rebuild the edge bundle afterwards.")
def rollback(machine_id: str, family: str, env: str | None, bundle: bool) -> None:
    """Make FAMILY's previous champion of MACHINE_ID the champion again; rebuild the bundle."""
    _resolve(env, machine_id, family)
    client = _client()
    registered = get_family(family).registry_name(machine_id)
    champion = _alias_version(client, registered, CHAMPION)
    previous = _alias_version(client, registered, PREVIOUS_CHAMPION)
    if previous is None:
        _fail(f"{registered} has no previous_champion to roll back to (champion v{champion}).")
    client.set_registered_model_alias(registered, CHAMPION, previous)
    if champion is not None:
        client.set_registered_model_alias(registered, PREVIOUS_CHAMPION, champion)
    time = datetime.now(UTC).isoformat(timespec="seconds")
    reason = "rolled back by hand (pdm-kedro models rollback)"
    for version, decision in ((previous, "rollback_to"), (champion, "rolled_back")):
        if version is not None:
            client.set_model_version_tag(registered, version, "promotion_decision", decision)
            client.set_model_version_tag(registered, version, "promotion_reason", reason)
            client.set_model_version_tag(registered, version, "promotion_time", time)
    append_audit(
        audit_path(),
        {
            "machine_id": machine_id,
            "family": family,
            "registered_model": registered,
            "challenger_version": previous,
            "champion_version": champion,
            "decision": "rollback",
            "promote": True,
            "reason": reason,
            "time": time,
        },
    )
    click.echo(f"{registered}: champion v{champion} -> v{previous} (rollback)")
    if bundle:
        _rebuild_bundle(env, machine_id)
