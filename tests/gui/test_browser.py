"""Image browser: large lists, filters, counters, least-confident sort, next-unfinished, thumbnails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.project import ImageRecord, Project, Status
from segstudio.gui.browser import BrowserWidget, badge_of
from segstudio.gui.thumbnails import THUMB_SIZE


def _rec(
    i: int, status: Status = Status.NEW, conf: float | None = None, error: str | None = None
) -> ImageRecord:
    return ImageRecord(
        id=i,
        rel_path=f"img_{i:05d}.jpg",
        width=None if error else 64,
        height=None if error else 48,
        content_hash=f"h{i}",
        status=status,
        split="train",
        model_version=None,
        mean_confidence=conf,
        error=error,
        created_at=0.0,
        updated_at=0.0,
    )


@pytest.fixture
def browser(qtbot) -> BrowserWidget:
    widget = BrowserWidget()
    qtbot.addWidget(widget)
    return widget


def test_ten_thousand_records_counters_and_filters(browser):
    statuses = [Status.DONE] * 312 + [Status.IN_PROGRESS] * 100 + [Status.NEW] * 9588
    records = [_rec(i, s) for i, s in enumerate(statuses)]
    browser.model.set_records(records, None, None)
    browser.update_counter()
    assert browser.model.rowCount() == 10_000
    assert browser.counter.text().startswith("312 / 10,000 done")
    browser.set_status_filter("Done")
    assert browser.model.rowCount() == 312
    assert "(showing 312)" in browser.counter.text()
    browser.set_status_filter("All images")
    browser.name_filter.setText("img_0999")
    assert browser.model.visible_paths() == [f"img_0999{d}.jpg" for d in range(10)]


def test_least_confident_first_and_navigation(browser):
    records = [
        _rec(0, Status.PREDICTED, 0.9),
        _rec(1, Status.DONE),
        _rec(2, Status.PREDICTED, 0.2),
        _rec(3, Status.NEW),
        _rec(4, Status.PREDICTED, 0.5),
        _rec(5, Status.NEW, error="truncated file"),
    ]
    browser.model.set_records(records, None, None)
    browser.set_sort_mode("least_confident")
    order = browser.model.visible_paths()
    assert order[:3] == ["img_00002.jpg", "img_00004.jpg", "img_00000.jpg"]  # worst first
    browser.set_sort_mode("name")
    browser.set_current("img_00000.jpg")
    assert browser.neighbour(1) == "img_00001.jpg"
    assert browser.neighbour(-1) is None
    browser.set_current("img_00004.jpg")
    # Skips done and unreadable images, wraps around.
    assert browser.next_unfinished() == "img_00000.jpg"
    assert badge_of(records[5]) == "unreadable"
    browser.set_status_filter("Unreadable")
    assert browser.model.visible_paths() == ["img_00005.jpg"]
    assert "truncated file" in browser.model.data(browser.model.index(0), 3)  # ToolTipRole


def test_thumbnails_are_made_in_background_and_cached(browser, qtbot, tmp_path: Path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(folder / f"p{i}.jpg")
    with Project.open(folder) as project:
        browser.set_project(project)
        browser.resize(300, 600)
        browser.show()
        qtbot.waitUntil(
            lambda: all(browser.model.has_thumbnail(f"p{i}.jpg") for i in range(3)), timeout=20_000
        )
        cached = sorted(project.thumbnails_dir.glob("*.jpg"))
        assert len(cached) == 3
        with Image.open(cached[0]) as thumb:
            assert max(thumb.size) == THUMB_SIZE
        browser.shutdown()


def test_a_team_note_wraps_under_the_name_instead_of_being_cut_after_a_few_words(browser, qtbot):
    """In a real window the reviewer's note read "consensus alice + bo..." and never said what to do."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

    browser.resize(240, 600)  # the dock's default width
    browser.show()
    qtbot.waitExposed(browser)
    browser.model.set_records([_rec(1), _rec(2)], None, None)
    note = "consensus alice + bob: ready to compare (Team menu)"
    browser.model.set_notes({"img_00001.jpg": note})
    view, index = browser.view, browser.model.index(0)
    option = QStyleOptionViewItem()
    option.initFrom(view)
    option.rect = view.visualRect(index)
    option.decorationSize = view.iconSize()
    option.decorationPosition = QStyleOptionViewItem.Position.Left
    view.itemDelegate().initStyleOption(option, index)
    if view.wordWrap():
        option.features |= QStyleOptionViewItem.ViewItemFeature.WrapText
    assert option.features & QStyleOptionViewItem.ViewItemFeature.WrapText  # what the delegate paints with
    text_rect = view.style().subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, view)
    needed = option.fontMetrics.boundingRect(
        QRect(0, 0, text_rect.width(), 10_000), int(Qt.TextFlag.TextWordWrap), option.text
    )
    assert option.text.endswith(note)
    assert needed.width() <= text_rect.width() and needed.height() <= option.rect.height()
