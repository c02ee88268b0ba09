"""Build hook only (all metadata lives in pyproject.toml): copy what the installed app needs from the
top-level `resources/` into the package as `segstudio/_resources/`.

Why: the repository keeps `resources/` at the top (the README, `make run` and the screenshot script
use it), but package data must sit inside the package, so a wheel built from the tree would ship no
icon and no demo. Copying at build time keeps one copy in git; `segstudio.assets` finds the files in
either place (installed wheel, or a source checkout / editable install).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: top-level paths shipped inside the package (the 368 KB screenshot is for the README only)
SHIPPED = ("resources/icons", "resources/demo", "packaging/segstudio.desktop")


class BuildPyWithResources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's resources/ directly (segstudio.assets)
        target = Path(self.build_lib) / "segstudio" / "_resources"
        for rel in SHIPPED:
            source = ROOT / rel
            if source.is_dir():
                shutil.copytree(
                    source,
                    target / source.name,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".segstudio", "__pycache__"),
                )
            elif source.is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / source.name)


if __name__ == "__main__":  # setuptools' build backend runs this file as __main__
    setup(cmdclass={"build_py": BuildPyWithResources})
