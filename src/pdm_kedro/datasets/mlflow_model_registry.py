"""The MLflow model registry seen through the catalog: register, read an alias, apply promotions.

A *model package* is what crosses stages for one machine and family::

    {"model": <the family's model dict>, "metrics": <its metrics document>, "family",
     "machine_id", "registered_model": "<machine>-<family>", "registry_version": "3" | None,
     "trained_until": "<ISO timestamp>", "run_id"}

Datasets (one per machine and family through factories, see ``conf/base/catalog_reporting.yml``):

- :class:`MlflowModelRegistryDataset` (``registered_model``): save logs the model to the active
  run and registers it as a new version with the alias ``challenger``; load returns the
  challenger package (the one just saved in this run, else the ``challenger`` alias).
- :class:`MlflowAliasDataset` (``champion_model``): load the package an alias points at, or None.
- :class:`MlflowPromotionDataset` (``production_model``): save applies a promotion decision
  (aliases ``champion`` / ``previous_champion``, version tags, one audit line in
  ``promotions.jsonl``); load returns the production (champion) package.

Alias moves are held back while a Kedro run goes (``hold_alias_moves``, from the run guard hook in
:mod:`pdm_kedro.hooks`) and applied only once every node succeeded (``apply_held_alias_moves``);
a failed or interrupted run drops them (``drop_held_alias_moves``), so its versions never get an
alias, and a run killed outright never applies them. Outside a Kedro run they apply at once.

Without an active MLflow run (tracking disabled) nothing is logged or read from a registry: the
packages of the run itself flow through (``registry_version`` None), and the audit line is still
written. The datasets hold only strings and what the run saved, so they can be pickled.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pdm_kedro.families import FAMILIES
from pdm_kedro.promotion import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION

logger = logging.getLogger(__name__)

PIP_REQUIREMENTS = ["pdm_kedro", "xgboost", "scikit-learn", "numpy", "pandas"]
PACKAGE_TAGS = ("family", "machine_id", "trained_until", "run_id")


class _CloudpickleNotice(logging.Filter):
    """MLflow's warning that a Python object is serialised with CloudPickle: known and intended
    here (the model dict is our own), so it goes to this module's DEBUG log instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "CloudPickle" in record.getMessage():
            logger.debug("mlflow: %s", record.getMessage())
            return False
        return True


@contextlib.contextmanager
def _cloudpickle_notice_to_debug() -> Iterator[None]:
    pyfunc_logger = logging.getLogger("mlflow.pyfunc")
    notice = _CloudpickleNotice()
    pyfunc_logger.addFilter(notice)
    try:
        yield
    finally:
        pyfunc_logger.removeFilter(notice)


class FamilyModel(mlflow.pyfunc.PythonModel):
    """A family's model dict (and its metrics document) served through MLflow's pyfunc.

    ``predict`` takes a frame holding the model's ``feature_names`` and returns the family's
    answer by its kind (:mod:`pdm_kedro.families`): P(positive) for ``probability``, the
    value for ``value``, the score (higher = more anomalous) for ``score``. Forecasters are
    stored for reference and promotion and served by the machine's edge bundle.
    """

    def __init__(self, model: dict[str, Any], metrics: dict[str, Any] | None = None) -> None:
        self.model = model
        self.metrics = metrics or {}

    def predict(
        self,
        context: Any,  # noqa: ARG002
        model_input: pd.DataFrame,
        params: dict[str, str] | None = None,  # noqa: ARG002
    ) -> np.ndarray:
        """Score ``model_input`` (a DataFrame with the model's feature columns)."""
        model = self.model
        names = model.get("feature_names")
        matrix = model_input[names].to_numpy(dtype="float32") if names else model_input
        estimator = model["estimator"]
        family = FAMILIES.get(model.get("family"))
        kind = family.answer_kind if family else "value"
        if kind == "probability":
            return estimator.predict_proba(matrix)[:, 1]
        if kind == "score":
            return -estimator.decision_function(matrix)
        if kind == "forecast":
            raise NotImplementedError(
                "The registered forecaster stores the fitted ARIMA per key sensor "
                "(model['sensors'][<sensor>]['estimator']); forecasts from raw readings are served "
                "by the machine's edge bundle (python -m pdm_kedro.edge predict)."
            )
        return estimator.predict(matrix)


class _HeldAliasMoves:
    """Alias moves asked for during a Kedro run, applied in order once the run succeeded."""

    def __init__(self) -> None:
        self.holding = False
        self.moves: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()


_HELD = _HeldAliasMoves()


def hold_alias_moves() -> None:
    """From now on, hold alias moves back (the start of a Kedro run)."""
    with _HELD.lock:
        _HELD.holding = True
        _HELD.moves = []


def set_alias(client: MlflowClient, name: str, alias: str, version: Any) -> None:
    """Point ``alias`` of ``name`` at ``version`` now, or when the run succeeds (held)."""
    with _HELD.lock:
        if _HELD.holding:
            _HELD.moves.append((name, alias, str(version)))
            logger.debug("%s: alias %s -> v%s held until the run succeeds", name, alias, version)
            return
    client.set_registered_model_alias(name, alias, str(version))


def apply_held_alias_moves(client: MlflowClient | None = None) -> list[tuple[str, str, str]]:
    """Apply the held moves in the order they were asked for and stop holding (the run's nodes
    all succeeded). Returns them."""
    with _HELD.lock:
        moves, _HELD.moves, _HELD.holding = _HELD.moves, [], False
    if moves:
        client = client or MlflowClient()
        for name, alias, version in moves:
            client.set_registered_model_alias(name, alias, version)
            logger.debug("%s v%s is now %s", name, version, alias)
    return moves


def drop_held_alias_moves() -> list[tuple[str, str, str]]:
    """Forget the held moves and stop holding (the run failed or was interrupted)."""
    with _HELD.lock:
        moves, _HELD.moves, _HELD.holding = _HELD.moves, [], False
    return moves


def is_better(new: float | None, old: float | None, greater_is_better: bool) -> bool:
    """Whether score ``new`` beats ``old`` (a missing old score is beaten by any score)."""
    if new is None:
        return False
    if old is None:
        return True
    return new > old if greater_is_better else new < old


def tracking_active() -> bool:
    """The registry is used only inside an active MLflow run (kedro-mlflow starts one)."""
    return mlflow.active_run() is not None


def load_package(name: str, alias: str, client: MlflowClient | None = None) -> dict[str, Any]:
    """The package the alias ``alias`` of registered model ``name`` points at.

    Raises:
        DatasetError: no such registered model or alias (names the model and the alias).
    """
    client = client or MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise DatasetError(
            f"registered model {name!r} has no version with alias {alias!r}"
        ) from exc
    return load_version(name, str(version.version), client)


def load_version(name: str, version: str, client: MlflowClient | None = None) -> dict[str, Any]:
    """The package of one version of ``name``."""
    client = client or MlflowClient()
    try:
        info = client.get_model_version(name, version)
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    except MlflowException as exc:
        raise DatasetError(f"registered model {name!r} has no version {version!r}") from exc
    wrapped = pyfunc.unwrap_python_model()
    return {
        "model": wrapped.model,
        "metrics": getattr(wrapped, "metrics", {}) or {},
        "registered_model": name,
        "registry_version": str(info.version),
        **{key: info.tags.get(key) for key in PACKAGE_TAGS},
    }


def _strip(package: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in package.items() if k not in ("model", "metrics")}


class MlflowModelRegistryDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Register each saved model as a new version with the alias ``challenger``."""

    def __init__(
        self,
        registered_model_name: str,
        artifact_path: str = "model",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """``registered_model_name``: registry name (``<machine>-<family>`` via the factory)."""
        self._name = registered_model_name
        self._artifact_path = artifact_path
        self._saved: dict[str, Any] | None = None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._name, "artifact_path": self._artifact_path}

    def load(self) -> dict[str, Any]:
        """The challenger package: the one saved in this run, else the ``challenger`` alias."""
        if self._saved is not None:
            return self._saved
        if not tracking_active():
            raise DatasetError(
                f"{self._name}: no challenger saved in this run and no MLflow run to read one from"
            )
        return load_package(self._name, CHALLENGER)

    def save(self, data: dict[str, Any]) -> None:
        """Log and register ``data["model"]`` as a new version; alias it ``challenger``."""
        package = {
            "model": data["model"],
            "metrics": data.get("metrics", {}),
            "family": str(data["family"]),
            "machine_id": str(data["machine_id"]),
            "registered_model": self._name,
            "registry_version": None,
            "trained_until": data.get("trained_until"),
            "run_id": None,
        }
        run = mlflow.active_run()
        if run is None:
            logger.warning("no active MLflow run: %s is not logged or registered", self._name)
            self._saved = package
            return
        with _cloudpickle_notice_to_debug():
            info = mlflow.pyfunc.log_model(
                name=self._artifact_path,
                python_model=FamilyModel(data["model"], data.get("metrics")),
                pip_requirements=PIP_REQUIREMENTS,
            )
        tags = {
            "family": package["family"],
            "machine_id": package["machine_id"],
            "score_name": str(data.get("score_name")),
            "score": repr(data.get("score")),
            "test_fingerprint": str(data.get("test_fingerprint")),
            "run_id": run.info.run_id,
        }
        if data.get("trained_until") is not None:
            tags["trained_until"] = str(data["trained_until"])
        # register_model prints "Successfully registered model ..." to stderr (not a log record):
        # keep it in the run log; the console gets the line below
        printed = io.StringIO()
        with contextlib.redirect_stderr(printed):
            version = mlflow.register_model(info.model_uri, self._name, tags=tags)
        for line in printed.getvalue().splitlines():
            logger.debug("%s: %s", self._name, line)
        set_alias(MlflowClient(), self._name, CHALLENGER, version.version)
        logger.info("%s v%s registered as %s", self._name, version.version, CHALLENGER)
        self._saved = package | {
            "registry_version": str(version.version),
            "run_id": run.info.run_id,
        }


class MlflowAliasDataset(AbstractDataset[None, dict[str, Any] | None]):
    """Read-only: the package an alias of a registered model points at (None if there is none)."""

    def __init__(
        self, registered_model_name: str, alias: str = CHAMPION, metadata: dict | None = None
    ) -> None:
        self._name = registered_model_name
        self._alias = alias
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._name, "alias": self._alias}

    def load(self) -> dict[str, Any] | None:
        """The package, or None (no tracking, no such model or alias)."""
        if not tracking_active():
            return None
        try:
            return load_package(self._name, self._alias)
        except DatasetError:
            return None

    def save(self, data: Any) -> None:
        raise DatasetError(f"{self._name}@{self._alias} is read-only: aliases move by promotion")


def append_audit(path: Path, record: dict[str, Any]) -> None:
    """One JSON line per decision (``promotions.jsonl``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")


def apply_decision(
    decision: dict[str, Any], audit_path: Path, client: MlflowClient | None = None
) -> None:
    """Move the aliases the decision says, tag the versions and write the audit line."""
    name = decision.get("registered_model")
    challenger = decision.get("challenger_version")
    champion = decision.get("champion_version")
    if client is not None and name and challenger is not None:
        if decision["promote"]:
            if champion is not None and champion != challenger:
                set_alias(client, name, PREVIOUS_CHAMPION, champion)
            set_alias(client, name, CHAMPION, challenger)
        client.set_model_version_tag(name, challenger, "promotion_decision", decision["decision"])
        client.set_model_version_tag(name, challenger, "promotion_reason", decision["reason"])
        client.set_model_version_tag(name, challenger, "promotion_time", decision["time"])
    append_audit(audit_path, {k: v for k, v in decision.items() if k not in ("production",)})
    logger.info(
        "%s: %s v%s (champion v%s): %s",
        name,
        decision["decision"],
        challenger,
        champion,
        decision["reason"],
    )


class MlflowPromotionDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Save: apply a promotion decision. Load: the production (``champion``) package."""

    def __init__(
        self, registered_model_name: str, audit_path: str, metadata: dict | None = None
    ) -> None:
        self._name = registered_model_name
        self._audit_path = Path(audit_path)
        self._production: dict[str, Any] | None = None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._name, "audit_path": str(self._audit_path)}

    def save(self, data: dict[str, Any]) -> None:
        """Apply ``data`` (a decision of :func:`pdm_kedro.promotion.decide_promotion`)."""
        client = MlflowClient() if tracking_active() else None
        apply_decision(data, self._audit_path, client)
        self._production = data.get("production")

    def load(self) -> dict[str, Any]:
        """The champion package: the one this run decided on, else the registry's champion."""
        if self._production is not None:
            return self._production
        if tracking_active():
            return load_package(self._name, CHAMPION)
        if self._production is None:
            raise DatasetError(
                f"{self._name}: no champion (run the family's training pipeline first, with "
                "MLflow tracking on)"
            )
        return self._production


def production_summary(package: dict[str, Any]) -> dict[str, Any]:
    """The registry fields of a package (for manifests and the prediction log)."""
    return _strip(package)
