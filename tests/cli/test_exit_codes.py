"""How `segstudio` ends: bad input is an error (exit 2), a cancel is not (exit 130, no "error:")."""

from __future__ import annotations

import types

import pytest

from segstudio import cli
from segstudio.core.errors import CancelledError, ProjectError
from segstudio.core.task_handle import NullTask


def _fake_command(monkeypatch: pytest.MonkeyPatch, run) -> None:
    """Route `segstudio info` to a module whose run() is `run` (argument parsing stays real)."""
    module = types.SimpleNamespace(add_arguments=lambda parser: None, run=run)
    real_import = cli.importlib.import_module
    monkeypatch.setattr(
        cli.importlib,
        "import_module",
        lambda name: module if name == "segstudio.commands.info" else real_import(name),
    )


def test_cancel_from_a_task_handle_exits_130_without_error(monkeypatch, capsys) -> None:
    def run(args) -> int:
        handle = NullTask()
        handle.cancel()  # what a progress handle does when the user stops the work
        handle.check_cancelled()
        return 0

    _fake_command(monkeypatch, run)
    assert cli.main(["info"]) == cli.EXIT_CANCELLED == 130
    err = capsys.readouterr().err
    assert "cancelled" in err and "error" not in err


def test_user_error_still_exits_2_with_its_message(monkeypatch, capsys) -> None:
    def run(args) -> int:
        raise ProjectError("image folder /nowhere does not exist; check the path")

    _fake_command(monkeypatch, run)
    assert cli.main(["info"]) == 2
    assert "error: image folder /nowhere does not exist" in capsys.readouterr().err


def test_ctrl_c_exits_130(monkeypatch, capsys) -> None:
    def run(args) -> int:
        raise KeyboardInterrupt

    _fake_command(monkeypatch, run)
    assert cli.main(["info"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_cancelled_is_still_a_segstudio_error_for_callers_that_stop_on_any() -> None:
    from segstudio.core.errors import SegStudioError

    assert issubclass(CancelledError, SegStudioError)
