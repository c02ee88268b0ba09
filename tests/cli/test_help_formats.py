"""`segstudio --help`, `import --help` and `export --help` name every format the choices list."""

from __future__ import annotations

import pytest

from segstudio.cli import main
from segstudio.export.registry import available_formats, available_importers

#: how each registry name is written in the help text
WORDS = {
    "voc": "VOC",
    "cityscapes": "Cityscapes",
    "coco": "COCO",
    "masks": "mask",
    "camvid": "CamVid",
    "yolo": "YOLO",
    "labelme": "labelme",
}


def _help(capsys, *args: str) -> str:
    try:
        code = main([*args, "--help"])
    except SystemExit as exit_:  # argparse's own --help
        code = exit_.code
    assert code in (0, None)
    return capsys.readouterr().out


def test_top_level_help_names_every_export_and_import_format(capsys):
    text = _help(capsys)
    export_line = next(line for line in text.splitlines() if line.strip().startswith("export "))
    import_line = next(line for line in text.splitlines() if line.strip().startswith("import "))
    for name in available_formats():
        assert WORDS[name] in export_line, (name, export_line)
    for name in available_importers():
        assert WORDS[name] in import_line, (name, import_line)


@pytest.mark.parametrize("command, names", [("import", available_importers), ("export", available_formats)])
def test_command_help_describes_every_choice(capsys, command, names):
    description = " ".join(_help(capsys, command).split()).split("positional arguments")[0]
    for name in names():
        assert WORDS[name] in description, name
