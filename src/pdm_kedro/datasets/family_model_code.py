"""MLflow "models from code" entry of a registered family model (see ``mlflow_model_registry``).

MLflow runs this file when it logs or loads the model; ``FamilyModel.load_context`` then reads the
model dict from the version's ``model_dict`` artifact.
"""

from mlflow.models import set_model

from pdm_kedro.datasets.mlflow_model_registry import FamilyModel

set_model(FamilyModel())
