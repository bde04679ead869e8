"""Template pipeline: validate a machine's raw splits (valid rows, quarantine, report)."""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from pdm_kedro.contract import SPLITS

from .nodes import combine_validation_reports, gather_partitions, validate_readings

INCOMING = "incoming"


def _validate_split(split: str, report: str | None = None):
    func = partial(validate_readings, split=split)
    update_wrapper(func, validate_readings)
    return Node(
        func,
        inputs=[f"raw_{split}", "params:machine", "params:validation"],
        outputs=[
            f"validated_{split}",
            f"quarantine_{split}",
            report or f"validation_summary_{split}",
        ],
        name=f"validate_{split}_readings",
    )


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """``raw_<split>`` -> ``validated_<split>`` + ``quarantine_<split>`` and ``validation_report``."""
    return Pipeline(
        [
            *(_validate_split(split) for split in SPLITS),
            Node(
                combine_validation_reports,
                inputs=[
                    "params:machine",
                    *(f"validation_summary_{split}" for split in SPLITS),
                ],
                outputs="validation_report",
                name="combine_validation_reports",
            ),
        ]
    )


def create_scoring_pipeline() -> Pipeline:
    """The scoring stage's part: the incoming batch (one partition per day) -> the same Pandera
    contract as training -> ``validated_incoming`` + ``quarantine_incoming`` (rows conserved)
    and ``incoming_validation_report``."""
    return Pipeline(
        [
            Node(
                gather_partitions,
                inputs="incoming_batch",  # the new files and their context (scoring's gate)
                outputs=f"raw_{INCOMING}",
                name="gather_incoming_readings",
            ),
            _validate_split(INCOMING, report="incoming_validation_report"),
        ]
    )
