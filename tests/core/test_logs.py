"""Logging: warnings to stderr, INFO and up with tracebacks to a rotating file that follows the project."""

from __future__ import annotations

import logging
import logging.handlers

from segstudio.core.logs import (
    LOG_FILE,
    current_log_dir,
    log_exception,
    project_log_dir,
    setup_logging,
    user_log_dir,
)


def test_warnings_go_to_stderr_and_the_file_info_only_to_the_file(tmp_path, capsys):
    folder = setup_logging(tmp_path / "logs")
    assert folder == (tmp_path / "logs").absolute() and current_log_dir() == folder
    log = logging.getLogger("segstudio.test")
    log.info("opened 3 images")
    log.warning("mask of a.png is smaller than the image")
    err = capsys.readouterr().err
    assert "smaller than the image" in err and "opened 3 images" not in err
    text = (folder / LOG_FILE).read_text()
    assert "opened 3 images" in text and "smaller than the image" in text
    setup_logging(tmp_path / "logs")  # again: no second stderr handler, the same file
    log.warning("once")
    assert capsys.readouterr().err.count("once") == 1


def test_a_worker_exception_is_logged_with_its_traceback(tmp_path, capsys):
    folder = setup_logging(tmp_path)

    def deep() -> None:
        raise ZeroDivisionError("inside the worker")

    try:
        deep()
    except ZeroDivisionError as error:
        log_exception("inference.predict", error)
    text = (folder / LOG_FILE).read_text()
    assert "Traceback" in text and "in deep" in text and "ZeroDivisionError: inside the worker" in text
    assert "Traceback" in capsys.readouterr().err


def test_the_file_moves_with_the_project_rotates_and_falls_back_when_unwritable(tmp_path):
    setup_logging()
    assert current_log_dir() == user_log_dir().absolute()  # no project: the user's folder (tests: a tmp one)
    state = tmp_path / "photos" / ".segstudio"
    setup_logging(project_log_dir(state))
    assert current_log_dir() == (state / "logs").absolute()
    files = [h for h in logging.getLogger("segstudio").handlers if isinstance(h, logging.FileHandler)]
    assert len(files) == 1 and isinstance(files[0], logging.handlers.RotatingFileHandler)
    assert files[0].maxBytes > 0 and files[0].backupCount >= 1
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert setup_logging(blocked / "logs") == user_log_dir().absolute()


def test_timed_work_logs_its_duration_and_how_it_ended(caplog):
    import pytest

    from segstudio.core.errors import CancelledError, ExportError
    from segstudio.core.logs import timed

    caplog.set_level(logging.INFO)

    @timed("export")
    def work(outcome):
        if outcome is not None:
            raise outcome
        return 7

    assert work(None) == 7
    for error in (CancelledError("stop"), ExportError("disk full; free some space"), KeyError("bug")):
        with pytest.raises(type(error)):
            work(error)
    lines = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines[0][0] == "INFO" and lines[0][1].startswith("export: done in ") and lines[0][1].endswith("s")
    assert lines[1][0] == "INFO" and lines[1][1].startswith("export: cancelled after ")
    assert lines[2][0] == "WARNING" and "disk full" in lines[2][1] and not lines[2][2]
    assert (
        lines[3][0] == "ERROR" and lines[3][1].startswith("export: failed after ") and lines[3][2]
    )  # traceback
    assert {r.name for r in caplog.records} == {__name__}


def test_cli_verbose_prints_the_timings_the_log_file_keeps(tmp_path, capsys, monkeypatch):
    import numpy as np
    from PIL import Image

    from segstudio import cli
    from segstudio.core.project import Project, Status

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(photos / "a.png")
    with Project.open(photos) as project:
        project.save_mask(project.images()[0], np.zeros((16, 24), np.uint8), status=Status.DONE)
    argv = ["export", str(photos), "--format", "voc", "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    assert "export: done in" not in capsys.readouterr().err  # quiet by default...
    logged = (user_log_dir() / LOG_FILE).read_text()
    assert "export: done in" in logged  # ...but the log file has it
    assert cli.main([*argv[:-1], str(tmp_path / "out2"), "--verbose"]) == 0
    assert "export: done in" in capsys.readouterr().err
