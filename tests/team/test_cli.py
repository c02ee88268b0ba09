"""`segstudio team ...` and `--db` from the command line, and every bad input as one clear paragraph
(exit 2, no traceback, nothing written)."""

from __future__ import annotations

import pytest

from segstudio.cli import main
from segstudio.core.project import Project
from segstudio.team.project import TeamProject


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_server_prints_the_sql_it_runs_and_is_idempotent(pg_server, capsys):
    name = "cli_init_db"
    try:
        code, out, _ = _run(capsys, "team", "init-server", "--db", pg_server.url(), "--database", name)
        assert code == 0
        assert "CREATE ROLE segstudio_annotator NOLOGIN" in out
        assert f'CREATE DATABASE "{name}" OWNER segstudio_lead;' in out
        with pg_server.admin() as conn:
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            assert owner == ("segstudio_lead",)
        code, _, err = _run(capsys, "team", "init-server", "--db", pg_server.url(), "--database", name)
        assert code == 0 and "already exists" in err
    finally:
        with pg_server.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_init_server_print_only_touches_nothing(capsys):
    code, out, _ = _run(
        capsys, "team", "init-server", "--db", "postgresql://nobody@127.0.0.1:1/x", "--print-only"
    )
    assert code == 0 and "CREATE ROLE segstudio_lead" in out


def test_create_join_and_pull_from_the_command_line(team_db, image_folder, tmp_path, capsys):
    Project.open(image_folder).close()
    code, out, _ = _run(capsys, "team", "create", str(image_folder), "--db", team_db.url("lena"))
    assert code == 0 and "4 images" in out
    with Project.open(image_folder, db=team_db.url("alice"), state_dir=tmp_path / "cache") as project:
        assert isinstance(project, TeamProject)
        assert len(project) == 4 and project.member == "alice" and project.role == "annotator"
    code, out, _ = _run(
        capsys, "team", "pull", team_db.url("bob"), str(image_folder), "--project-dir", str(tmp_path / "p")
    )
    assert code == 0 and "4 images" in out
    code, out, _ = _run(
        capsys,
        "info",
        str(image_folder),
        "--db",
        team_db.url("rita"),
        "--project-dir",
        str(tmp_path / "cache"),
    )
    assert code == 0 and "as rita (reviewer)" in out and "images:  4" in out
    for path in (tmp_path / "cache").rglob("*"):  # no password anywhere in what the client wrote
        if path.is_file():
            assert b"alice-pw" not in path.read_bytes()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://alice@127.0.0.1:1/segstudio", "no PostgreSQL server answers"),
        ("postgresql://alice:secret@127.0.0.1:1/segstudio", "contains a password"),
        ("this is not a url", "not understood"),
    ],
)
def test_bad_urls_are_one_clear_paragraph(image_folder, capsys, url, message):
    code, out, err = _run(capsys, "predict", str(image_folder), "--db", url, "--weights", "none", "--quiet")
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "secret" not in err + out
    assert not (image_folder / ".segstudio").exists()  # nothing written


def test_wrong_password_unknown_database_and_foreign_database(
    pg_server, team_db, image_folder, capsys, monkeypatch
):
    code, _, err = _run(capsys, "team", "pull", pg_server.url("alice", "postgres"), str(image_folder))
    assert code == 2 and "is not a SegStudio team project" in err
    code, _, err = _run(capsys, "team", "pull", pg_server.url("alice", "no_such_db"), str(image_folder))
    assert code == 2 and "does not exist" in err
    monkeypatch.setenv("PGPASSWORD", "wrong")
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    code, _, err = _run(capsys, "team", "pull", team_db.url("alice"), str(image_folder))
    assert code == 2 and "refused the login" in err and "wrong" not in err.replace("wrong password", "")
    assert "Traceback" not in err
    assert not (image_folder / ".segstudio").exists()


def test_a_newer_schema_is_refused(team_db, image_folder, tmp_path, capsys):
    Project.open(image_folder).close()
    assert main(["team", "create", str(image_folder), "--db", team_db.url("lena")]) == 0
    with team_db.raw("lena") as lena:
        lena.execute("UPDATE segstudio.schema_version SET version = 99")
    capsys.readouterr()
    code, _, err = _run(
        capsys, "team", "pull", team_db.url("alice"), str(image_folder), "--project-dir", str(tmp_path / "x")
    )
    assert code == 2 and "uses schema 99, newer than this SegStudio reads" in err
    assert not (tmp_path / "x").exists()


def test_joining_in_the_window_with_a_bad_url_fails_before_any_window(image_folder, capsys):
    code, _, err = _run(capsys, str(image_folder), "--db", "postgresql://alice@127.0.0.1:1/segstudio")
    assert code == 2 and "no PostgreSQL server answers" in err and "Traceback" not in err
    code, _, err = _run(capsys, "gui", "--db", "postgresql://alice@127.0.0.1:1/segstudio")
    assert code == 2 and "needs the image folder" in err


def test_a_server_of_an_unsupported_major_version_is_one_clear_paragraph(
    pg_server, team_db, image_folder, tmp_path, capsys, monkeypatch
):
    from segstudio.team import connection

    with team_db.raw("lena") as raw:  # the number checked is the one the server reports
        real = int(raw.execute("SELECT current_setting('server_version_num')").fetchone()[0])
        assert connection.server_version_num(raw) == real >= connection.MIN_SERVER_VERSION
    Project.open(image_folder).close()
    before = sorted(p.name for p in (image_folder / ".segstudio").iterdir())
    monkeypatch.setattr(connection, "server_version_num", lambda conn: 120015)  # a real login, an old server
    for args in (
        ["team", "create", str(image_folder), "--db", team_db.url("lena")],
        ["team", "pull", team_db.url("alice"), str(image_folder), "--project-dir", str(tmp_path / "copy")],
        ["team", "init-server", "--db", pg_server.url("postgres", "postgres"), "--database", "never_made"],
        [str(image_folder), "--db", team_db.url("alice")],
    ):
        code, _, err = _run(capsys, *args)
        assert code == 2, args
        assert "runs PostgreSQL 12.15, older than SegStudio supports (PostgreSQL 13 or newer" in err
        assert "upgrade" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # nothing written: no team schema on the server, no new database, no local copy, the local project as it was
    monkeypatch.undo()
    with team_db.raw("lena") as raw:
        assert raw.execute("SELECT to_regclass('segstudio.schema_version')").fetchone()[0] is None
    with pg_server.admin() as admin:
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = 'never_made'").fetchone() is None
    assert not (tmp_path / "copy").exists()
    assert sorted(p.name for p in (image_folder / ".segstudio").iterdir()) == before
    monkeypatch.setattr(connection, "server_version_num", lambda conn: 180002)  # a newer major is accepted
    assert main(["team", "create", str(image_folder), "--db", team_db.url("lena")]) == 0
