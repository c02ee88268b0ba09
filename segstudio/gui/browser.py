"""Image browser: a lazy list of the project's images with status badges, filters and counters.

Why a QAbstractListModel over plain records: with `uniformItemSizes` the view asks only for the
rows on screen, so 10,000 images open instantly, and thumbnails are requested only for those
rows (see `thumbnails.py`). Filtering and sorting are done in Python over the record list (a
few milliseconds for 10,000 rows) instead of a per-row `lessThan` proxy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from functools import partial

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QSizePolicy,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.paths import display_path
from segstudio.core.project import ImageRecord, Project, Status
from segstudio.gui.thumbnails import THUMB_SIZE, ThumbnailLoader

__all__ = ["SORT_LEAST_CONFIDENT", "SORT_NAME", "UNFINISHED", "BrowserWidget", "ImageListModel", "badge_of"]

RecordRole = Qt.ItemDataRole.UserRole + 1
BadgeRole = Qt.ItemDataRole.UserRole + 2
UNFINISHED = (Status.NEW, Status.PREDICTED, Status.IN_PROGRESS)
SORT_NAME = "name"
SORT_LEAST_CONFIDENT = "least_confident"
UNREADABLE = "unreadable"
PROBLEM = "problem"  # readable at scan time, but something failed later (see the Problems list)

BADGE_COLORS = {
    Status.NEW.value: QColor(120, 120, 120),
    Status.PREDICTED.value: QColor(52, 120, 200),
    Status.IN_PROGRESS.value: QColor(220, 150, 30),
    Status.DONE.value: QColor(40, 160, 70),
    Status.SKIPPED.value: QColor(150, 90, 170),
    UNREADABLE: QColor(200, 40, 40),
    PROBLEM: QColor(215, 80, 20),
}
BADGE_TEXT = {Status.IN_PROGRESS.value: "in progress"}


def badge_of(rec: ImageRecord) -> str:
    """The badge shown for a record: its status, or "unreadable" when the file cannot be decoded."""
    return UNREADABLE if rec.error else Status(rec.status).value


class ImageListModel(QAbstractListModel):
    """Records of the project, filtered and sorted; thumbnails requested on demand."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._records: list[ImageRecord] = []
        self._row_of_path: dict[str, int] = {}  # index into _records
        self._visible: list[int] = []  # indices into _records, in display order
        self._visible_row: dict[int, int] = {}
        self._badges: set[str] | None = None
        self._text = ""
        self._sort = SORT_NAME
        self._thumbs: OrderedDict[str, QPixmap] = OrderedDict()
        self._requested: set[str] = set()
        self.max_thumbs = 2000
        self.loader: ThumbnailLoader | None = None
        self.project: Project | None = None
        self.problems: dict[str, str] = {}  # rel_path -> reason, marked in the list
        self.editors: dict[str, str] = {}  # rel_path -> team member editing it now (team projects)
        self.notes: dict[str, str] = {}  # rel_path -> a team note ("not yet on the server", a rejection)
        self._placeholder = QPixmap(THUMB_SIZE, THUMB_SIZE * 3 // 4)
        self._placeholder.fill(QColor(70, 70, 70))

    # -- data ----------------------------------------------------------------------------------------
    def set_records(
        self, records: list[ImageRecord], project: Project | None, loader: ThumbnailLoader | None
    ) -> None:
        self.beginResetModel()
        self._records = list(records)
        self._row_of_path = {r.rel_path: i for i, r in enumerate(self._records)}
        self.project = project
        self.loader = loader
        self._thumbs.clear()
        self._requested.clear()
        self._recompute()
        self.endResetModel()

    def replace_records(
        self, records: list[ImageRecord], renamed: dict[str, str], changed: Iterable[str] = ()
    ) -> None:
        """The folder changed (see folder_watch.py): keep thumbnails and problem marks, following renames.

        Thumbnails of `changed` paths (new pixels under the same name) are dropped and asked for again.
        """
        self.beginResetModel()
        for rel_path in changed:
            self._thumbs.pop(rel_path, None)
            self._requested.discard(rel_path)
        self._records = list(records)
        self._row_of_path = {r.rel_path: i for i, r in enumerate(self._records)}
        thumbs = OrderedDict((renamed.get(k, k), v) for k, v in self._thumbs.items())
        self._thumbs = OrderedDict((k, v) for k, v in thumbs.items() if k in self._row_of_path)
        self._requested = {renamed.get(k, k) for k in self._requested} & set(self._row_of_path)
        problems = {renamed.get(k, k): v for k, v in self.problems.items()}
        self.problems = {k: v for k, v in problems.items() if k in self._row_of_path}
        self._recompute()
        self.endResetModel()

    def records(self) -> list[ImageRecord]:
        return self._records

    def record(self, rel_path: str) -> ImageRecord | None:
        i = self._row_of_path.get(rel_path)
        return None if i is None else self._records[i]

    def update_record(self, rec: ImageRecord) -> None:
        i = self._row_of_path.get(rec.rel_path)
        if i is None:
            return
        self._records[i] = rec
        row = self._visible_row.get(i)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._visible)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._visible):
            return None
        rec = self._records[self._visible[index.row()]]
        if role == Qt.ItemDataRole.DisplayRole:
            name = display_path(rec.rel_path)  # a non-UTF-8 name shows U+FFFD where Qt would drop the byte
            editor = self.editors.get(rec.rel_path)
            lines = [name] if editor is None else [name, f"being edited by {editor}"]
            note = self.notes.get(rec.rel_path)
            return "\n".join(lines if note is None else [*lines, note])
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(rec)
        if role == RecordRole:
            return rec
        if role == BadgeRole:
            return PROBLEM if rec.rel_path in self.problems and not rec.error else badge_of(rec)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [rec.rel_path, f"status: {BADGE_TEXT.get(rec.status, rec.status)}"]
            if rec.width:
                lines.append(f"{rec.width} x {rec.height}")
            if rec.mean_confidence is not None:
                lines.append(f"mean confidence: {rec.mean_confidence:.1%}")
            if rec.error:
                lines.append(f"unreadable: {rec.error}")
            if rec.rel_path in self.problems:
                lines.append(f"problem: {self.problems[rec.rel_path]}")
            if rec.rel_path in self.editors:
                lines.append(f"being edited by {self.editors[rec.rel_path]} (you can look; saves are theirs)")
            if rec.rel_path in self.notes:
                lines.append(self.notes[rec.rel_path])
            return "\n".join(lines)
        return None

    def _thumbnail(self, rec: ImageRecord) -> QPixmap:
        pixmap = self._thumbs.get(rec.rel_path)
        if pixmap is not None:
            self._thumbs.move_to_end(rec.rel_path)
            return pixmap
        if (
            self.loader is not None
            and self.project is not None
            and not rec.error
            and rec.rel_path not in self._requested
        ):
            self._requested.add(rec.rel_path)
            self.loader.request(rec.rel_path, partial(self.project.image_file, rec), rec.content_hash)
        return self._placeholder

    def thumbnail_ready(self, key: str, image: QImage) -> None:
        self._thumbs[key] = QPixmap.fromImage(image)
        while len(self._thumbs) > self.max_thumbs:
            old, _ = self._thumbs.popitem(last=False)
            self._requested.discard(old)
        i = self._row_of_path.get(key)
        row = None if i is None else self._visible_row.get(i)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def set_editors(self, editors: dict[str, str]) -> None:
        """Who else is editing which image (team projects); repaints the rows that changed."""
        changed = set(editors.items()) ^ set(self.editors.items())
        self.editors = dict(editors)
        self._repaint_paths({path for path, _ in changed})

    def set_notes(self, notes: dict[str, str]) -> None:
        """Team notes per image (a save not yet on the server, a reviewer's rejection); repaints changes."""
        changed = set(notes.items()) ^ set(self.notes.items())
        self.notes = dict(notes)
        self._repaint_paths({path for path, _ in changed})

    def _repaint_paths(self, rel_paths: set[str]) -> None:
        """Repaint the visible rows of these images (hidden or unknown ones are skipped)."""
        for rel_path in rel_paths:
            i = self._row_of_path.get(rel_path)
            row = None if i is None else self._visible_row.get(i)
            if row is not None:
                index = self.index(row)
                self.dataChanged.emit(index, index)

    def set_problem(self, rel_path: str, reason: str | None) -> None:
        """Mark (reason) or unmark (None) an image as having a problem; repaints its row."""
        if reason is None:
            if self.problems.pop(rel_path, None) is None:
                return
        else:
            self.problems[rel_path] = reason
        i = self._row_of_path.get(rel_path)
        row = None if i is None else self._visible_row.get(i)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def has_thumbnail(self, rel_path: str) -> bool:
        return rel_path in self._thumbs

    # -- filter and sort -------------------------------------------------------------------------------
    def set_filter(self, badges: Iterable[str] | None = None, text: str | None = None) -> None:
        self.beginResetModel()
        if badges is not None:
            self._badges = set(badges) or None
        if text is not None:
            self._text = text.strip().casefold()
        self._recompute()
        self.endResetModel()

    def clear_badge_filter(self) -> None:
        self.beginResetModel()
        self._badges = None
        self._recompute()
        self.endResetModel()

    def set_sort(self, mode: str) -> None:
        self.beginResetModel()
        self._sort = mode
        self._recompute()
        self.endResetModel()

    def _recompute(self) -> None:
        rows = range(len(self._records))
        if self._badges is not None:
            rows = [i for i in rows if badge_of(self._records[i]) in self._badges]
        if self._text:
            rows = [i for i in rows if self._text in self._records[i].rel_path.casefold()]
        rows = list(rows)
        if self._sort == SORT_LEAST_CONFIDENT:

            def key(i: int) -> tuple[int, float, int]:
                conf = self._records[i].mean_confidence
                return (0, conf, i) if conf is not None else (1, 0.0, i)

            rows.sort(key=key)
        self._visible = rows
        self._visible_row = {i: row for row, i in enumerate(rows)}

    def visible_paths(self) -> list[str]:
        return [self._records[i].rel_path for i in self._visible]

    def row_of(self, rel_path: str) -> int | None:
        i = self._row_of_path.get(rel_path)
        return None if i is None else self._visible_row.get(i)

    def path_at(self, row: int) -> str | None:
        return self._records[self._visible[row]].rel_path if 0 <= row < len(self._visible) else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self._records:
            badge = badge_of(rec)
            out[badge] = out.get(badge, 0) + 1
        return out


class BadgeDelegate(QStyledItemDelegate):
    """Draws the item as usual plus a coloured status pill on the right."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().paint(painter, option, index)
        badge = index.data(BadgeRole)
        if not badge:
            return
        text = BADGE_TEXT.get(badge, badge)
        painter.save()
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        width = painter.fontMetrics().horizontalAdvance(text) + 10
        height = painter.fontMetrics().height() + 2
        rect = QRect(option.rect.right() - width - 4, option.rect.bottom() - height - 4, width, height)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BADGE_COLORS.get(badge, QColor(100, 100, 100)))
        painter.drawRoundedRect(rect, height / 2, height / 2)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(220, THUMB_SIZE * 3 // 4 + 10)


STATUS_FILTERS: list[tuple[str, set[str] | None]] = [
    ("All images", None),
    ("Unfinished", {s.value for s in UNFINISHED}),
    ("New", {Status.NEW.value}),
    ("Predicted", {Status.PREDICTED.value}),
    ("In progress", {Status.IN_PROGRESS.value}),
    ("Done", {Status.DONE.value}),
    ("Skipped", {Status.SKIPPED.value}),
    ("Unreadable", {UNREADABLE}),
]


SORT_SETTING = "gui.browser_sort"


class BrowserWidget(QWidget):
    """Filter bar, counter and list; emits `image_activated(rel_path)` when the user picks one."""

    image_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ImageListModel(self)
        self.name_filter = QLineEdit(self)
        self.name_filter.setPlaceholderText("Filter by name…")
        self.name_filter.setClearButtonEnabled(True)
        self.status_filter = QComboBox(self)
        for label, _ in STATUS_FILTERS:
            self.status_filter.addItem(label)
        self.sort_combo = QComboBox(self)
        self.sort_combo.addItem("Sort by name", SORT_NAME)
        self.sort_combo.addItem("Least confident first", SORT_LEAST_CONFIDENT)
        self.counter = QLabel("no folder open", self)
        self.counter.setObjectName("browser_counter")
        # A longer counter line wraps instead of widening the dock: the panel keeps the user's width.
        self.counter.setWordWrap(True)
        self.counter.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for combo in (
            self.status_filter,
            self.sort_combo,
        ):  # shrink with the dock, elided, not the other way round
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
            combo.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.view = QListView(self)
        self.view.setObjectName("image_list")
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(200)
        self.view.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE * 3 // 4))
        self.view.setItemDelegate(BadgeDelegate(self.view))
        # Team notes ("consensus alice + bob: ready to compare") wrap under the name instead of being
        # elided after a few words: the part cut off was the part that says what to do.
        self.view.setWordWrap(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.view.clicked.connect(self._activated)
        self.view.activated.connect(self._activated)
        self.name_filter.textChanged.connect(lambda text: self._apply_filter())
        self.status_filter.currentIndexChanged.connect(lambda _: self._apply_filter())
        self.sort_combo.currentIndexChanged.connect(lambda _: self._apply_sort())
        top = QHBoxLayout()
        top.addWidget(self.status_filter)
        top.addWidget(self.sort_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.name_filter)
        layout.addLayout(top)
        layout.addWidget(self.counter)
        layout.addWidget(self.view, 1)
        self._current: str | None = None
        self.loader: ThumbnailLoader | None = None
        self._project: Project | None = None

    def _activated(self, index: QModelIndex) -> None:
        # A method, not `lambda: signal.emit(...)`: PySide6 6.12 mishandles slots returning a bool.
        # The record's path, not the display text (that carries team notes and a display-safe name).
        # Ctrl/Shift-click only selects (a lead picks several images to remove): it opens nothing.
        picking = QApplication.keyboardModifiers() & (
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        )
        if picking or len(self.view.selectionModel().selectedRows()) > 1:
            return
        rec = index.data(RecordRole)
        if rec is not None:
            self.image_activated.emit(rec.rel_path)

    # -- project ---------------------------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        if self.loader is not None:
            self.loader.stop()
            self.loader = None
        self.model.problems.clear()
        if project is None:
            self.model.set_records([], None, None)
        else:
            self.loader = ThumbnailLoader(project.thumbnails_dir, parent=self)
            self.loader.ready.connect(self.model.thumbnail_ready)
            self.model.set_records(project.images(), project, self.loader)
        self._project = project
        self._current = None
        saved = project.get_setting(SORT_SETTING) if project is not None else None
        mode = saved if self.sort_combo.findData(saved) >= 0 else SORT_NAME
        self.sort_combo.blockSignals(True)  # restored, not chosen: nothing is written back
        self.sort_combo.setCurrentIndex(self.sort_combo.findData(mode))
        self.sort_combo.blockSignals(False)
        self.model.set_sort(mode)
        self.update_counter()

    def refresh(
        self, records: list[ImageRecord], renamed: dict[str, str], changed: Iterable[str] = ()
    ) -> None:
        """New records after a rescan; the current image follows a rename (no signal emitted)."""
        self.model.replace_records(records, renamed, changed)
        if self._current is not None:
            self._current = renamed.get(self._current, self._current)
            if self.model.record(self._current) is None:
                self._current = None
        self._reselect()

    def shutdown(self) -> None:
        if self.loader is not None:
            self.loader.stop()
            self.loader = None

    def update_record(self, rec: ImageRecord) -> None:
        self.model.update_record(rec)
        self.update_counter()

    def update_counter(self) -> None:
        counts = self.model.counts()
        total = len(self.model.records())
        if not total:
            self.counter.setText("no images")
            return
        done = counts.get(Status.DONE.value, 0)
        parts = [f"{done:,} / {total:,} done"]
        for badge, label in (
            (Status.IN_PROGRESS.value, "in progress"),
            (Status.PREDICTED.value, "predicted"),
            (Status.NEW.value, "new"),
            (Status.SKIPPED.value, "skipped"),
            (UNREADABLE, "unreadable"),
        ):
            if counts.get(badge):
                parts.append(f"{counts[badge]:,} {label}")
        shown = self.model.rowCount()
        text = " · ".join(parts)
        if shown != total:
            text += f"  (showing {shown:,})"
        self.counter.setText(text)

    # -- filters ---------------------------------------------------------------------------------------
    def _apply_filter(self) -> None:
        badges = STATUS_FILTERS[self.status_filter.currentIndex()][1]
        if badges is None:
            self.model.clear_badge_filter()
        self.model.set_filter(badges, self.name_filter.text())
        self._reselect()

    def _apply_sort(self) -> None:
        mode = self.sort_combo.currentData()
        self.model.set_sort(mode)
        project = self._project
        if project is not None and not project.closed:
            project.set_setting(SORT_SETTING, mode)  # the project reopens in this order
        self._reselect(scroll=False)
        self.view.scrollToTop()  # a new order is read from its first row (least confident first)

    def set_status_filter(self, label: str) -> None:
        self.status_filter.setCurrentIndex([name for name, _ in STATUS_FILTERS].index(label))

    def set_sort_mode(self, mode: str) -> None:
        self.sort_combo.setCurrentIndex(self.sort_combo.findData(mode))

    # -- navigation -------------------------------------------------------------------------------------
    @property
    def current(self) -> str | None:
        return self._current

    def set_current(self, rel_path: str | None) -> None:
        """Highlight `rel_path` (does not emit `image_activated`)."""
        self._current = rel_path
        self._reselect()

    def _reselect(self, scroll: bool = True) -> None:
        row = None if self._current is None else self.model.row_of(self._current)
        self.view.blockSignals(True)
        if row is None:
            self.view.clearSelection()
        else:
            index = self.model.index(row)
            self.view.setCurrentIndex(index)
            if scroll:
                self.view.scrollTo(index)
        self.view.blockSignals(False)
        self.update_counter()

    def neighbour(self, step: int) -> str | None:
        """The visible image `step` rows from the current one (first/last when none is current)."""
        rows = self.model.rowCount()
        if not rows:
            return None
        row = None if self._current is None else self.model.row_of(self._current)
        if row is None:
            return self.model.path_at(0 if step > 0 else rows - 1)
        return self.model.path_at(row + step)

    def next_unfinished(self) -> str | None:
        """The next readable new / predicted / in-progress image after the current one, wrapping."""
        records = {r.rel_path: r for r in self.model.records()}
        order = self.model.visible_paths()
        if not order:
            return None
        start = self.model.row_of(self._current) if self._current else None
        start = -1 if start is None else start
        for k in range(1, len(order) + 1):
            path = order[(start + k) % len(order)]
            rec = records[path]
            if rec.status in UNFINISHED and not rec.error and path != self._current:
                return path
        # Nothing unfinished among the visible rows: look in the whole project.
        for rec in self.model.records():
            if rec.status in UNFINISHED and not rec.error and rec.rel_path != self._current:
                return rec.rel_path
        return None
