"""Log a family's model to the active MLflow run, register it and manage its ``champion`` alias.

Saved data is a registration entry (see :func:`pdm_kedro.evaluation.tracking.registration_entry`):
the model dict plus its test score and the test split's fingerprint. On save the dataset

1. logs the model as an MLflow pyfunc model in the active run, the MLflow way that needs no
   pickled Python class: the code is ``family_model_code.py`` ("models from code", which declares
   a ``FamilyModel``) and the model dict is a pickle artifact it loads in ``load_context``;
2. registers it as a new version of ``registered_model_name`` (e.g. ``<machine>-<family>``), with
   the score, metric name and test fingerprint as version tags;
3. points the alias ``champion`` at the new version only if there is no champion yet, or the
   champion was scored on the same test data (same fingerprint) and the new score beats it.

Without an active run (tracking disabled) nothing is logged. The dataset only holds strings, so
it can be pickled.
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

logger = logging.getLogger(__name__)

CHAMPION = "champion"
PIP_REQUIREMENTS = ["pdm_kedro", "xgboost", "scikit-learn", "numpy", "pandas"]
MODEL_CODE = Path(__file__).with_name("family_model_code.py")
MODEL_ARTIFACT = "model_dict"


class FamilyModel(mlflow.pyfunc.PythonModel):
    """A family's model dict served through MLflow's pyfunc interface.

    ``predict`` takes a frame holding the model's ``feature_names`` and returns P(failure)
    (classification), the RUL (regression) or the anomaly score (anomaly); the forecaster is
    stored for reference and served by the edge bundle.
    """

    def __init__(self, model: dict[str, Any] | None = None) -> None:
        self.model = model

    def load_context(self, context: Any) -> None:
        """Read the model dict from the ``model_dict`` artifact (logged from code)."""
        if self.model is None and MODEL_ARTIFACT in (context.artifacts or {}):
            with Path(context.artifacts[MODEL_ARTIFACT]).open("rb") as handle:
                self.model = pickle.load(handle)  # noqa: S301 (our own artifact)

    def predict(
        self,
        context: Any,  # noqa: ARG002
        model_input: pd.DataFrame,
        params: dict[str, str] | None = None,  # noqa: ARG002
    ) -> np.ndarray:
        """Score ``model_input`` (a DataFrame with the model's feature columns)."""
        model = self.model
        names = model.get("feature_names")
        matrix = model_input[names].to_numpy(dtype=np.float32) if names else model_input
        estimator = model["estimator"]
        if model.get("family") == "classification":
            return estimator.predict_proba(matrix)[:, 1]
        if model.get("family") == "anomaly":
            return -estimator.decision_function(matrix)
        if model.get("family") == "forecasting":
            raise NotImplementedError(
                "The registered forecaster stores the fitted ARIMA per key sensor "
                "(model['sensors'][<sensor>]['estimator']); forecasts from raw readings are served "
                "by the machine's edge bundle (python -m pdm_kedro.edge predict)."
            )
        return estimator.predict(matrix)


def model_signature(model: dict[str, Any]) -> ModelSignature | None:
    """Input columns (the model's ``feature_names``, as doubles) and one double output.

    Given explicitly: MLflow cannot infer a signature from ``predict``'s DataFrame type hint and
    warns on every model it logs. None for a model without feature names (the forecaster).
    """
    names = model.get("feature_names")
    if not names:
        return None
    return ModelSignature(
        inputs=Schema([ColSpec("double", str(name)) for name in names]),
        outputs=Schema([ColSpec("double")]),
    )


def is_better(new: float | None, old: float | None, greater_is_better: bool) -> bool:
    """Whether score ``new`` beats ``old`` (a missing old score is beaten by any score)."""
    if new is None:
        return False
    if old is None:
        return True
    return new > old if greater_is_better else new < old


class MlflowModelRegistryDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Write-only: log, register and promote a model in the MLflow model registry."""

    def __init__(
        self,
        registered_model_name: str,
        artifact_path: str = "model",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """``registered_model_name``: registry name (``<machine>-<family>`` via the factory)."""
        self._name = registered_model_name
        self._artifact_path = artifact_path
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._name, "artifact_path": self._artifact_path}

    def load(self) -> dict[str, Any]:
        """Load the champion version's model dict."""
        try:
            pyfunc = mlflow.pyfunc.load_model(f"models:/{self._name}@{CHAMPION}")
        except MlflowException as exc:
            raise DatasetError(f"no champion for registered model {self._name!r}") from exc
        return pyfunc.unwrap_python_model().model

    def save(self, data: dict[str, Any]) -> None:
        """Log and register ``data["model"]``; move ``champion`` if it wins on the same test data."""
        run = mlflow.active_run()
        if run is None:
            logger.warning("no active MLflow run: %s is not logged or registered", self._name)
            return
        signature = model_signature(data["model"])
        example = data.get("input_example")
        with tempfile.TemporaryDirectory(prefix="pdm_model_") as folder:
            artifact = Path(folder) / "model.pkl"
            artifact.write_bytes(pickle.dumps(data["model"]))
            info = mlflow.pyfunc.log_model(
                name=self._artifact_path,
                python_model=str(MODEL_CODE),
                artifacts={MODEL_ARTIFACT: str(artifact)},
                pip_requirements=PIP_REQUIREMENTS,
                # with an input example the signature is complete; without one, none (False: MLflow
                # neither infers one nor warns)
                signature=(signature if example is not None else None) or False,
                input_example=example if signature is not None else None,
            )
        tags = {
            "family": str(data["family"]),
            "machine_id": str(data["machine_id"]),
            "score_name": str(data["score_name"]),
            "score": repr(data["score"]),
            "greater_is_better": str(bool(data["greater_is_better"])),
            "test_fingerprint": str(data["test_fingerprint"]),
            "run_id": run.info.run_id,
        }
        # register_model prints "Successfully registered model ..." to stderr (not a log record):
        # keep it in the run log, the console gets the champion line below
        printed = io.StringIO()
        with contextlib.redirect_stderr(printed):
            version = mlflow.register_model(info.model_uri, self._name, tags=tags)
        for line in printed.getvalue().splitlines():
            logger.debug("%s: %s", self._name, line)
        self._update_champion(version.version, data)

    def _update_champion(self, version: str, data: dict[str, Any]) -> None:
        client = MlflowClient()
        try:
            champion = client.get_model_version_by_alias(self._name, CHAMPION)
        except MlflowException:
            champion = None
        if champion is None:
            decision = "first version"
        elif champion.tags.get("test_fingerprint") != data["test_fingerprint"]:
            logger.info(
                "%s v%s: champion v%s was scored on other test data; champion kept",
                self._name,
                version,
                champion.version,
            )
            client.set_model_version_tag(self._name, version, "champion_decision", "not comparable")
            return
        else:
            old = champion.tags.get("score")
            old_score = None if old in (None, "None") else float(old)
            if not is_better(data["score"], old_score, bool(data["greater_is_better"])):
                logger.info(
                    "%s v%s: %s %s does not beat champion v%s (%s); champion kept",
                    self._name,
                    version,
                    data["score_name"],
                    data["score"],
                    champion.version,
                    old,
                )
                client.set_model_version_tag(self._name, version, "champion_decision", "kept")
                return
            decision = f"beats v{champion.version} ({old})"
        client.set_registered_model_alias(self._name, CHAMPION, version)
        client.set_model_version_tag(self._name, version, "champion_decision", decision)
        logger.info("%s v%s is the new champion (%s)", self._name, version, decision)
