"""Template pipeline: continue a machine's simulated life after its test period as a production
stream (daily incoming batches and late-arriving labels), with an optional drift scenario.

Not part of training (``INFERENCE``: the registry registers it as its own pipeline over every
machine): ``kedro run --pipelines production_stream --namespaces <machine> --params
production_stream.days=30,production_stream.scenario=sensor_offset``.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import simulate_production_stream

INFERENCE = True  # the registry keeps this stage out of the training pipelines
STANDALONE = True  # its own registered pipeline, not a part of `scoring`


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """``raw_test`` (where the stream continues) -> ``incoming_readings`` + ``production_labels``
    + ``production_stream_report``."""
    return Pipeline(
        [
            Node(
                simulate_production_stream,
                inputs=[
                    "raw_test",
                    "params:machine",
                    "params:simulation",
                    "params:labels",
                    "params:production_stream",
                ],
                outputs=["incoming_readings", "production_labels", "production_stream_report"],
                name="simulate_production_stream",
            )
        ]
    )
