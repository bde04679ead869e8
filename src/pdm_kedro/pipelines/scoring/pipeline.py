"""Template pipeline: answer the new incoming files with the production models (never retrains).

Incremental: ``admit_incoming_batches`` (:mod:`.gate`) takes only the incoming files without an
account in ``scoring_batches``, rejects whole files that break the contract's columns or dtypes
and rows already received or out of order, and adds the earlier scored rows of the same episodes
as context. The registry then puts the scoring parts of ``data_validation`` (the same Pandera
contract: quarantine or fail) and ``feature_engineering`` (the same features) before
``answer_incoming_batch``; ``account_incoming_batches`` writes each file's account (rows in =
rows scored + rows quarantined). Registered as the ``scoring`` pipeline, not in ``__default__``
(it needs incoming data): ``kedro run --pipelines scoring --namespaces <machine>``.
"""

from kedro.pipeline import Node, Pipeline

from .gate import account_batches, admit_incoming_batches
from .nodes import answer_batch

INFERENCE = True  # the registry keeps this stage out of the training pipelines


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """``incoming_readings`` (new files only) -> ``incoming_batch`` -> (contract, features) ->
    ``prediction_log`` + ``scored_features`` + ``scoring_batches``."""
    return Pipeline(
        [
            Node(
                admit_incoming_batches,
                inputs=[
                    "incoming_readings",
                    "scoring_batches_seen",
                    "prediction_log_seen",
                    "params:machine",
                ],
                outputs=["incoming_batch", "rejected_incoming", "incoming_files"],
                name="admit_incoming_batches",
            ),
            Node(
                answer_batch,
                inputs=[
                    "features_incoming",
                    "validated_incoming",
                    "edge_bundle",
                    "params:machine",
                    "prediction_log_seen",
                ],
                outputs=["prediction_log", "scored_features"],
                name="answer_incoming_batch",
            ),
            Node(
                account_batches,
                inputs=[
                    "incoming_files",
                    "raw_incoming",
                    "rejected_incoming",
                    "validated_incoming",
                    "quarantine_incoming",
                    "params:machine",
                ],
                outputs="scoring_batches",
                name="account_incoming_batches",
            ),
        ]
    )
