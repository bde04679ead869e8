"""The run log file is written only once a run is admitted: a refused run truncates nothing."""

from __future__ import annotations

import logging

from pdm_kedro.console.runlog import RUN_LOG, RunLog


def test_records_are_held_until_the_run_is_admitted_then_written_in_order(tmp_path):
    log = logging.getLogger("pdm_kedro.tests.runlog")
    log.setLevel(logging.INFO)
    running = RunLog()
    path = running.open(tmp_path)
    assert path == tmp_path / RUN_LOG
    log.info("before the run: catalog built")
    assert not path.exists()  # nothing written before the run guard admitted the run
    assert running.start_file() == path
    log.info("first node")
    running.handler.flush()
    lines = path.read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "before the run: catalog built",
        "first node",
    ]

    # a second session on the same data root, refused before its run starts: the running
    # session's file keeps every line, and the running one goes on writing to it
    refused = RunLog()
    refused.open(tmp_path)
    log.warning("refused: already being run")
    refused.close()
    log.info("second node")
    running.handler.flush()
    text = path.read_text()
    assert "first node" in text and "second node" in text
    assert "refused: already being run" in text  # the running session's handler saw it too
    running.close()
    assert running.handler is None
    log.info("after close")
    assert "after close" not in path.read_text()


def test_start_file_without_an_open_session_does_nothing(tmp_path):
    assert RunLog().start_file() is None
    assert not (tmp_path / RUN_LOG).exists()
