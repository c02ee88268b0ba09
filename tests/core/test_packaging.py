"""What the wheel ships and the desktop-entry installer (the full wheel install runs in
packaging/check_wheel.sh, from .ci/run)."""

from __future__ import annotations

import configparser
import runpy
from pathlib import Path

from segstudio.assets import demo_dir, desktop_entry_path, icon_path
from segstudio.cli import main
from segstudio.desktop_entry import entry_text, install_desktop_entry

ROOT = Path(__file__).resolve().parents[2]


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in desktop files
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_the_build_hook_ships_existing_files_and_the_checkout_finds_them():
    shipped = runpy.run_path(str(ROOT / "setup.py"), run_name="not_main")["SHIPPED"]
    assert all((ROOT / rel).exists() for rel in shipped)
    assert icon_path() is not None and icon_path("svg") is not None and desktop_entry_path() is not None
    assert len(list(demo_dir().glob("*.jpg"))) >= 4  # type: ignore[union-attr]
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert all(rel in manifest for rel in shipped)  # an sdist carries them too


def test_entry_text_points_at_the_command():
    text = entry_text(
        "# comment\n[Desktop Entry]\nExec=segstudio %f\nTryExec=segstudio\nIcon=segstudio\n",
        ["/opt/my env/bin/segstudio"],
    )
    assert text == (
        '[Desktop Entry]\nExec="/opt/my env/bin/segstudio" %f\nTryExec=/opt/my env/bin/segstudio\n'
        "Icon=segstudio\n"
    )


def test_install_desktop_entry_writes_the_entry_and_icons(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert main(["--install-desktop-entry"]) == 0
    written = [Path(line.removeprefix("wrote ")) for line in capsys.readouterr().out.splitlines()]
    desktop = tmp_path / "share" / "applications" / "segstudio.desktop"
    assert desktop in written and all(p.is_file() for p in written)
    entry = _entry(desktop)
    assert entry["Type"] == "Application" and entry["Icon"] == "segstudio" and entry["Name"] == "SegStudio"
    assert entry["Exec"].endswith(" %f") and ("segstudio" in entry["Exec"])
    png = tmp_path / "share" / "icons" / "hicolor" / "256x256" / "apps" / "segstudio.png"
    assert png.read_bytes() == icon_path().read_bytes()  # type: ignore[union-attr]
    again = install_desktop_entry(tmp_path / "share")  # idempotent
    assert again == written
