"""Progress counts nodes per machine and stage; off a terminal it logs one line per stage."""

import logging

import pytest

from pdm_kedro.console.progress import RunProgress, fmt_seconds


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture()
def caplog():
    """Records of the progress logger itself (conf/logging.yml stops pdm_kedro propagating)."""
    logger = logging.getLogger("pdm_kedro.console.progress")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_plain_progress_logs_each_finished_stage(caplog):
    groups = [("m1", "a"), ("m1", "a"), ("m1", "b"), ("m2", "a")]
    progress = RunProgress(groups, mode="plain")
    assert progress.total == 4 and set(progress.machines) == {"m1", "m2"}
    progress.start()
    for machine, stage in groups:
        progress.node_started(machine, stage)
        progress.node_done(machine, stage)
    progress.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3  # m1.a, m1.b, m2.a
    assert lines[0].startswith("m1: a done (1/2 stages), run 2/4 nodes")
    assert progress.machines["m1"].stages_done == 2


def test_off_is_silent(caplog):
    progress = RunProgress([("m1", "a")], mode="off")
    progress.node_done("m1", "a")
    assert not caplog.records


def test_fmt_seconds():
    assert (fmt_seconds(9.44), fmt_seconds(75), fmt_seconds(3725)) == ("9.4s", "1m15s", "1h02m")
