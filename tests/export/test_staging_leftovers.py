"""Leftovers of killed or odd exports and imports: swept by owner pid and age, and `--out` links.

A staging folder of a writer killed by SIGKILL used to stay until the next run into the same target;
now any export, import or `segstudio info` removes it. An `--out` that is a link (to an earlier
export, to an empty folder, or dangling) is followed once: the export lands where it points and no
`.<name>.segstudio-old-*` is left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.project import Project, Status
from segstudio.export import staging_registry
from segstudio.export.staging import MANIFEST_NAME

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX pids and symlinks")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    with Project.open(folder) as opened:
        for rec in opened.images():
            opened.save_mask(rec, np.ones(rec.shape, np.uint8), status=Status.DONE)
    return folder


def _killed_writer(target: Path) -> Path:
    """A process that makes a staging folder for `target`, then dies without cleaning up (like SIGKILL)."""
    script = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from segstudio.export.staging import make_staging_dir
        staging = make_staging_dir(Path(sys.argv[1]), ".segstudio-tmp-")
        (staging / "half.png").write_bytes(b"x" * 100)
        print(staging, flush=True)
        os._exit(0)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    target.parent.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", script, str(target)], env=env, capture_output=True, check=True
    )
    staging = Path(out.stdout.decode().strip())
    assert staging.is_dir()
    return staging


def test_info_sweeps_a_dead_writers_staging_folder(project, tmp_path, capsys):
    staging = _killed_writer(tmp_path / "elsewhere" / "export")
    assert main(["info", str(project)]) == 0
    assert not staging.exists()
    assert not list(staging_registry.registry_dir().glob("*.json"))


def test_an_export_into_another_target_sweeps_it_too(project, tmp_path):
    staging = _killed_writer(tmp_path / "first")
    assert (
        main(["export", str(project), "--format", "voc", "--out", str(tmp_path / "second"), "--quiet"]) == 0
    )
    assert not staging.exists()


def test_a_live_writers_staging_and_a_reused_pid(tmp_path):
    mine = tmp_path / ".out.segstudio-tmp-0-deadbeef"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reused = tmp_path / f".old.segstudio-tmp-{live.pid}-0123abcd"
        alive = tmp_path / f".new.segstudio-tmp-{live.pid}-4567abcd"
        foreign = tmp_path / "my-photos"
        for folder in (reused, alive, foreign):
            folder.mkdir()
        registry = staging_registry.registry_dir()
        registry.mkdir(parents=True, exist_ok=True)
        notes = {
            "reused": {
                "path": str(reused),
                "pid": live.pid,
                "created": time.time() - 3600,
            },  # made before it started
            "alive": {"path": str(alive), "pid": live.pid, "created": time.time() + 5},
            "tampered": {"path": str(foreign), "pid": 999_999_999, "created": 0},  # not a staging name
        }
        for name, note in notes.items():
            (registry / f"{name}.json").write_text(json.dumps(note), encoding="utf-8")
        removed = staging_registry.sweep()
        assert removed == [reused] or set(removed) == {reused, foreign}
        assert not reused.exists() and alive.is_dir() and foreign.is_dir()
        assert not mine.exists()
    finally:
        live.kill()
        live.wait()


def _export(project: Path, out: Path) -> int:
    return main(["export", str(project), "--format", "voc", "--out", str(out), "--quiet"])


def test_out_link_to_an_earlier_export_updates_it_and_leaves_nothing(project, tmp_path):
    real = tmp_path / "exports" / "voc"
    assert _export(project, real) == 0
    first = json.loads((real / MANIFEST_NAME).read_text(encoding="utf-8"))
    link = tmp_path / "latest"
    link.symlink_to(real, target_is_directory=True)
    with Project.open(project) as opened:  # a change the second export must carry
        rec = opened.get("im1.png")
        opened.save_mask(rec, np.full(rec.shape, 2, np.uint8), status=Status.DONE)
    assert _export(project, link) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads((real / MANIFEST_NAME).read_text(encoding="utf-8")) != first
    leftovers = [p.name for p in (tmp_path.iterdir()) if "segstudio-" in p.name]
    leftovers += [p.name for p in real.parent.iterdir() if "segstudio-" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("kind", ["empty-folder", "dangling"])
def test_out_link_to_an_empty_folder_or_nowhere(project, tmp_path, kind, capsys):
    where = tmp_path / "dest"
    if kind == "empty-folder":
        where.mkdir()
    link = tmp_path / "out"
    link.symlink_to(where, target_is_directory=True)
    assert _export(project, link) == 0, capsys.readouterr().err
    assert (where / MANIFEST_NAME).is_file() and link.is_symlink()
    assert [p.name for p in tmp_path.iterdir() if "segstudio-" in p.name] == []


def test_import_out_link_to_an_empty_folder(project, tmp_path, capsys):
    assert _export(project, tmp_path / "voc") == 0
    where = tmp_path / "new-project"
    where.mkdir()
    link = tmp_path / "proj-link"
    link.symlink_to(where, target_is_directory=True)
    assert main(["import", "voc", str(tmp_path / "voc"), "--out", str(link), "--quiet"]) == 0, (
        capsys.readouterr()
    )
    assert (
        sorted(p.name for p in where.iterdir()) == [".segstudio", "im0.jpg", "im1.jpg"] and link.is_symlink()
    )


def test_an_old_link_backup_left_by_an_earlier_version_is_removed(project, tmp_path):
    real = tmp_path / "voc"
    assert _export(project, real) == 0
    stale = tmp_path / ".voc.segstudio-old-1234abcd"
    stale.symlink_to(real, target_is_directory=True)
    assert _export(project, real) == 0
    assert not stale.is_symlink() and (real / MANIFEST_NAME).is_file()
