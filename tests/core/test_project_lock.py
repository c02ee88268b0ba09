"""One SegStudio process per project: a second one gets a clear error, never a shared database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.errors import ProjectLockedError
from segstudio.core.project import LOCKED_MESSAGE, Project

REPO_ROOT = Path(__file__).resolve().parents[2]

_OPEN_SCRIPT = textwrap.dedent(
    """
    import sys
    from segstudio.core.errors import ProjectLockedError
    from segstudio.core.project import Project
    try:
        project = Project.open(sys.argv[1])
    except ProjectLockedError as error:
        print("LOCKED:", error)
        sys.exit(3)
    print("OPENED", len(project.images()))
    if len(sys.argv) > 2:  # hold the project until killed
        sys.stdout.flush()
        sys.stdin.read()
    project.close()
    """
)


def _python(*args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", _OPEN_SCRIPT, *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE, **kwargs,
    )  # fmt: skip


def _folder(tmp_path: Path, write_image) -> Path:
    folder = tmp_path / "locked ü"
    write_image(folder / "a.png", np.zeros((4, 4, 3), np.uint8))
    return folder


def test_second_process_gets_project_locked_error(tmp_path: Path, write_image) -> None:
    folder = _folder(tmp_path, write_image)
    with Project.open(folder) as project:
        child = _python(str(folder))
        out, err = child.communicate(timeout=120)
        assert child.returncode == 3, err
        assert out.startswith("LOCKED: " + LOCKED_MESSAGE)
        assert "project is in use by another SegStudio process" in out
        project.images()  # the holder is unaffected
    child = _python(str(folder))  # closed: the next process may open it
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0 and out.startswith("OPENED 1"), err


def test_lock_dies_with_a_killed_process(tmp_path: Path, write_image) -> None:
    folder = _folder(tmp_path, write_image)
    holder = _python(str(folder), "hold")
    try:
        assert holder.stdout.readline().startswith("OPENED"), holder.stderr.read()
        with pytest.raises(ProjectLockedError, match=LOCKED_MESSAGE):
            Project.open(folder)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()
    with Project.open(folder) as project:
        assert len(project.images()) == 1


def test_second_open_in_the_same_process_is_refused_too(tmp_path: Path, write_image) -> None:
    folder = _folder(tmp_path, write_image)
    with Project.open(folder), pytest.raises(ProjectLockedError, match="close or finish it first"):
        Project.open(folder)


def test_open_for_reading_falls_back_to_read_only_while_locked(tmp_path: Path, write_image) -> None:
    folder = _folder(tmp_path, write_image)
    with Project.open_for_reading(folder) as project:
        assert not project.read_only
    with Project.open(folder), Project.open_for_reading(folder) as reader:
        assert reader.read_only and len(reader.images()) == 1
