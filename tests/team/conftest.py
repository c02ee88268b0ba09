"""A real PostgreSQL server for the team tests: started once per session in a temp folder, removed after.

No mock and no SQLite stand-in: the rules under test (grants, row-level security, the stale-save
trigger) live in the server. Skipped only when the server binaries are not installed (`make test`
installs the Debian package through packaging/system_deps.sh).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from segstudio.team.local_server import LocalServer, find_server_binaries, start_local_server

#: login role -> (group, password); the passwords reach libpq only through the PGPASSFILE below.
MEMBERS = {
    "lena": ("lead", "lena-pw"),
    "alice": ("annotator", "alice-pw"),
    "bob": ("annotator", "bob-pw"),
    "rita": ("reviewer", "rita-pw"),
}

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    if find_server_binaries() is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed; `make test` installs the Debian "
            "package postgresql-15 through packaging/system_deps.sh"
        )
    pytest.importorskip("psycopg", reason="psycopg is in the `test` extra; `make test` installs it")
    server = start_local_server()
    old = os.environ.get("PGPASSFILE")
    try:
        passfile = tmp_path_factory.mktemp("pgpass") / "pgpass"
        lines = [f"127.0.0.1:{server.port}:*:postgres:{server.password}"]
        lines += [f"127.0.0.1:{server.port}:*:{name}:{pw}" for name, (_, pw) in MEMBERS.items()]
        passfile.write_text("\n".join(lines) + "\n")
        passfile.chmod(0o600)
        os.environ["PGPASSFILE"] = str(passfile)
        _create_roles(server)
        yield server
    finally:
        if old is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = old
        server.remove()


def _create_roles(server: LocalServer) -> None:

    from segstudio.team.schema import GROUP_ROLES, server_sql

    with server.admin() as conn:
        conn.execute(server_sql())
        for name, (group, password) in MEMBERS.items():
            conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {GROUP_ROLES[group]}")


@dataclass
class TeamDB:
    server: LocalServer
    name: str

    def url(self, user: str = "lena") -> str:
        return self.server.url(user, self.name)

    def raw(self, user: str):
        """A plain psycopg connection as that member: what psql would let them do."""
        import psycopg

        return psycopg.connect(self.url(user), autocommit=True)


@pytest.fixture
def team_db(pg_server):
    """A fresh, empty database owned by the lead group (what `team init-server` creates)."""

    name = f"team_{os.getpid()}_{next(_counter)}"
    with pg_server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER segstudio_lead')
    try:
        yield TeamDB(pg_server, name)
    finally:
        with pg_server.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def image_folder(tmp_path):
    """Four small real photos (scikit-image) in a folder, one in a subfolder."""
    from skimage import data

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for rel, photo in (("a_cat.png", data.chelsea()), ("b_coffee.png", data.coffee()),
                       ("c_astronaut.png", data.astronaut()), ("sub/d_rocket.png", data.rocket())):  # fmt: skip
        Image.fromarray(photo).resize((48, 32)).save(folder / rel)
    return folder


@pytest.fixture
def team(team_db, image_folder, tmp_path, monkeypatch):
    """The photos made a team project led by lena (each test its own image cache)."""
    from segstudio.core.project import Project
    from segstudio.team.transfer import create_team_project

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    Project.open(image_folder).close()
    create_team_project(image_folder, team_db.url("lena"))
    return team_db


def open_team_window(qtbot, monkeypatch, url: str, folder, poll_ms: int | None = None):
    """A window on the team project as a member opens it: File -> Open team project..., the URL and the
    folder typed into the dialogs; returns once its first image is shown. `poll_ms`: a faster live view."""
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    from segstudio.gui import team_view
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    if poll_ms is not None:
        monkeypatch.setattr(team_view, "POLL_MS", poll_ms)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (url, True))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.open_team_action.trigger()
    qtbot.waitUntil(
        lambda: window.session is not None and window.session.document is not None, timeout=30_000
    )
    return window


def mask_of(value: int, shape=(32, 48)) -> np.ndarray:
    mask = np.full(shape, 255, np.uint8)
    mask[4:20, 6:30] = value
    return mask
