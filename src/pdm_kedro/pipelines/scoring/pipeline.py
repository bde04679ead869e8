"""Template pipeline: answer an incoming batch with the production models (never retrains).

The registry puts this stage after the scoring parts of ``data_validation`` (the same Pandera
contract: quarantine or fail) and ``feature_engineering`` (the same features); it is registered as
the ``scoring`` pipeline, not in ``__default__`` (it needs incoming data):
``kedro run --pipelines scoring --namespaces <machine>``.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import answer_batch

INFERENCE = True  # the registry keeps this stage out of the training pipelines


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """``features_incoming`` + ``validated_incoming`` + ``edge_bundle`` -> ``prediction_log``."""
    return Pipeline(
        [
            Node(
                answer_batch,
                inputs=["features_incoming", "validated_incoming", "edge_bundle", "params:machine"],
                outputs="prediction_log",
                name="answer_incoming_batch",
            )
        ]
    )
