from __future__ import annotations

import logging

import pytest

from edgert.cli.main import main


@pytest.mark.parametrize("argv", [["explain"], ["explain", "nope"], ["-v", "explain", "models"]])
def test_in_process_main_leaves_logging_as_it_found_it(argv, capsys) -> None:
    log = logging.getLogger("edgert")
    before = (list(log.handlers), log.level, log.propagate)
    main(argv)
    assert (list(log.handlers), log.level, log.propagate) == before
    capsys.readouterr()


def test_logs_reach_caplog_after_an_in_process_main(caplog, capsys) -> None:
    main(["explain"])
    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="edgert"):
        logging.getLogger("edgert.test").info("still visible")
    assert "still visible" in caplog.text
