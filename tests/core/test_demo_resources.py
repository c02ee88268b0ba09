"""The bundled demo folder: every photo opens and is credited; it opens as a project."""

from __future__ import annotations

import shutil
from pathlib import Path

from segstudio.core.images import IMAGE_EXTENSIONS, load_image
from segstudio.core.project import Project

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


def test_demo_photos_load_and_are_credited() -> None:
    photos = sorted(p for p in DEMO.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    assert len(photos) >= 4
    credits = (DEMO / "CREDITS.md").read_text(encoding="utf-8")
    for photo in photos:
        image = load_image(photo)
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 256
        assert f"`{photo.name}`" in credits, f"{photo.name} is not credited in CREDITS.md"


def test_demo_folder_opens_as_a_project(tmp_path: Path) -> None:
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy, ignore=shutil.ignore_patterns(".segstudio"))
    with Project.open(copy) as project:
        names = [r.rel_path for r in project.images()]
        assert {"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"} <= set(names)
        assert all(r.error is None for r in project.images())
