"""The window's side of a team project: *File -> Open team project...*, who is editing which image in
the browser, and the lease of the image being edited.

Every server call runs on a plain thread (the screen never waits on the network); results come back
through queued signals. Local projects never create any of this.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLabel, QLineEdit

from segstudio.core.errors import SegStudioError
from segstudio.core.store_records import ImageRecord

__all__ = ["POLL_MS", "TeamPresence", "attach", "install_menu_action"]

_UNKNOWN = object()  # the active version before the first poll read it

#: How often the browser re-reads who is editing what (ms); changes arrive at once by LISTEN/NOTIFY
#: (team.live), this poll is the fallback when notices are lost.
POLL_MS = 3000


def install_menu_action(window: Any) -> QAction:
    """*File -> Open team project...*, placed right after *Open folder*."""
    action = QAction("Open team project…", window)
    action.setStatusTip("Join a team project on a PostgreSQL server (docs/team.md)")
    action.triggered.connect(lambda: choose_team_project(window))
    opener = window.actions_by_id["open_folder"]
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is not None and opener in menu.actions():
            actions = menu.actions()
            after = actions[actions.index(opener) + 1] if actions.index(opener) + 1 < len(actions) else None
            if after is not None:
                menu.insertAction(after, action)
            else:
                menu.addAction(action)
            break
    return action


def choose_team_project(window: Any) -> None:
    """Ask for the server URL and the local copy of the images, then open like any folder."""
    url, ok = QInputDialog.getText(
        window,
        "Open team project",
        "Team server (postgresql://USER@HOST:PORT/DATABASE);\n"
        "the password comes from ~/.pgpass or PGPASSWORD, never from here:",
        QLineEdit.EchoMode.Normal,
    )
    if not ok or not url.strip():
        return
    folder = QFileDialog.getExistingDirectory(
        window, "Your copy of the team's images (any empty folder if the team keeps them in the server)"
    )
    if folder:
        window.open_folder(folder, db=url.strip())


def consensus_notes(project: Any, paths: dict[int, str]) -> dict[str, str]:
    """The browser's note on each open consensus image: for its annotators, that theirs is their own
    (the other is hidden); for reviewers, whether it is ready to compare."""
    notes = {}
    for image_id, c in project.consensus_images().items():
        if not c.open or image_id not in paths:
            continue
        if c.branch_of(project.member) is not None:
            notes[paths[image_id]] = "consensus: your own annotation (the other is hidden)"
        elif c.done("A") and c.done("B"):
            notes[paths[image_id]] = (
                f"consensus {c.annotator_a} + {c.annotator_b}: ready to compare (Team menu)"
            )
        else:
            notes[paths[image_id]] = f"consensus {c.annotator_a} + {c.annotator_b}: being annotated"
    return notes


def attach(window: Any, project: Any) -> TeamPresence | None:
    if not hasattr(project, "take_lease"):
        return None
    return TeamPresence(window, project)


class TeamPresence(QObject):
    editors_seen = Signal(object)  # {rel_path: member} of the others
    lease_refused = Signal(str)  # a message for the status bar
    changed = Signal()  # the server announced a change (LISTEN/NOTIFY): poll now
    queue_seen = Signal(object, object)  # this member's queue [rel_path], {rel_path: rejection note}
    reviewed = Signal(str)  # a review verdict went through (status bar)
    notes_seen = Signal(object, object)  # {rel_path: note} for the browser, [SaveConflict] newly refused
    active_seen = Signal(object)  # the team's active model version name (None: none yet)
    images_seen = Signal(object)  # the whole image list, read because a lead added images

    #: The browser's note on an image whose save is queued on this machine.
    PENDING_NOTE = "not yet on the server"

    def __init__(self, window: Any, project: Any) -> None:
        super().__init__(window)
        self.window = window
        self.project = project
        self._held: ImageRecord | None = None
        self._polling = False
        self._stopped = False
        self.editors_seen.connect(window.browser.model.set_editors)
        self.lease_refused.connect(lambda text: window.statusBar().showMessage(text, 15000))
        self.kept: dict[str, str] = {}  # rel_path -> note on a queued save refused on reconnect
        self.pending_label = QLabel("")  # "N saves not yet on the server" while any are queued
        window.statusBar().addPermanentWidget(self.pending_label)
        self.notes_seen.connect(self._show_notes)
        self.queue: list[str] = []  # this member's unfinished assigned images, in order
        self.rejected: dict[str, str] = {}  # rel_path -> "rejected by NAME: comment"
        self.queue_seen.connect(self._show_queue)
        self.reviewed.connect(self._on_reviewed)
        self._notes: dict[str, str] = {}
        self._active: Any = _UNKNOWN  # the active model version this window predicts with
        self.active_seen.connect(self._on_active)
        self.images_seen.connect(self._show_images)
        self._plain_next = window.browser.next_unfinished
        window.browser.next_unfinished = self.next_unfinished  # "next unfinished" follows my queue
        self.menu = window.menuBar().addMenu("&Team")
        self.accept_action = self.menu.addAction("Accept this image")
        self.accept_action.setStatusTip("Reviewers: accept the current version of the open image")
        self.accept_action.triggered.connect(lambda: self.review_current(True))
        self.reject_action = self.menu.addAction("Reject this image…")
        self.reject_action.setStatusTip("Reviewers: reject the open image with a comment for its annotator")
        self.reject_action.triggered.connect(lambda: self.review_current(False))
        self.compare_action = self.menu.addAction("Compare annotations…")
        self.compare_action.setStatusTip(
            "Reviewers: the two annotations of a consensus image, their agreement, take A, B or a merge"
        )
        self.compare_action.triggered.connect(self.compare_current)
        self.compare_dialog: Any = None
        self.remover: Any = None  # a lead's *Remove from project…* in the browser's context menu
        if project.role == "lead":
            from segstudio.gui.team_remove import RemoveFromProject

            self.remover = RemoveFromProject(self)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.timer.start()
        self._again = False  # a change arrived during a poll: poll once more after it
        self.changed.connect(self.poll)
        from segstudio.team.live import ChangeListener

        self.listener = ChangeListener(project.url, lambda table, image: self.changed.emit()).start()
        project.start_prefetch()  # images kept in the server: this member's queue comes ahead
        self.poll()

    def _thread(self, work: Any) -> None:
        threading.Thread(target=work, name="segstudio-team", daemon=True).start()

    def poll(self) -> None:
        if self._stopped:
            return
        if self._polling:
            self._again = True
            return
        self._again = False
        self._polling = True
        from segstudio.team.project import list_stamp

        paths = {r.id: r.rel_path for r in self.window.browser.model.records()}
        listed = list_stamp(self.window.browser.model.records())
        me = self.project.member

        def work() -> None:
            try:
                if self.project.image_list_stamp() != listed:  # a lead added or removed images
                    records = self.project.images()
                    if not self._stopped:
                        self.images_seen.emit(records)
                notes = {path: self.PENDING_NOTE for path in self.project.pending_saves()}
                conflicts = self.project.take_conflicts()
                if not self._stopped:
                    self.notes_seen.emit(notes, conflicts)
                queue = [r.rel_path for r in self.project.my_queue()]
                rejected = {
                    paths[i]: f"rejected by {r.reviewer}: {r.comment or '(no comment)'}"
                    for i, r in self.project.rejections().items()
                    if i in paths
                }
                rejected = {**consensus_notes(self.project, paths), **rejected}
                if not self._stopped:
                    self.queue_seen.emit(queue, rejected)
                if not self._stopped:
                    self.active_seen.emit(self.project.get_setting("active_model_version"))
                editors = self.project.editors()
                if not self._stopped:
                    self.editors_seen.emit(
                        {paths[i]: m for i, m in editors.items() if m != me and i in paths}
                    )
            except SegStudioError:
                pass  # the next poll tries again; saves report their own errors
            finally:
                self._polling = False
                if self._again and not self._stopped:
                    self.changed.emit()

        self._thread(work)

    def _show_notes(self, notes: dict[str, str], conflicts: list[Any]) -> None:
        for conflict in conflicts:
            self.kept[conflict.rel_path] = "your offline save was NOT applied (kept on this machine)"
            self.window.statusBar().showMessage(conflict.message, 60000)
        pending = sum(1 for note in notes.values() if note == self.PENDING_NOTE)
        was_pending = bool(self.pending_label.text())
        self.pending_label.setText(f" · {pending} save(s) not yet on the server" if pending else "")
        if pending and not was_pending and not conflicts:  # say it once, where the eye goes
            self.window.statusBar().showMessage(
                "The team server cannot be reached: your saves are kept on this machine and sent when it "
                "is back. Keep working.",
                30000,
            )
        elif was_pending and not pending and not conflicts:
            self.window.statusBar().showMessage("Back on the team server: your queued saves landed.", 10000)
        self._notes = notes
        self.window.browser.model.set_notes({**self.rejected, **self.kept, **notes})

    def _on_active(self, version: str | None) -> None:
        """A lead activated another model version: the window's model link switches to it (a running
        worker hot-swaps it before its next prediction; one not started yet starts with it)."""
        previous, self._active = self._active, version
        if previous is _UNKNOWN or version is None or version == previous:
            return  # the first read is what the window opened with
        self.window._version_activated(version)
        self.window.statusBar().showMessage(
            f"The lead activated model {version}: predicting with it now", 15000
        )

    def _show_images(self, records: list[ImageRecord]) -> None:
        """A lead added, removed or restored images: the browser lists the team's images now."""
        known = {r.rel_path for r in self.window.browser.model.records()}
        listed = {r.rel_path for r in records}
        added = [r.rel_path for r in records if r.rel_path not in known]
        gone = known - listed
        closed = self.list_changed(records)
        parts = [f"{len(added)} image(s) added to"] if added else []
        parts += [f"{len(gone)} image(s) removed from"] if gone else []
        if parts:
            text = f"{' and '.join(parts)} the team project"
            if closed is not None:
                text += f"; {closed} was removed by a lead, so it was closed (its saved versions are kept)"
            self.window.statusBar().showMessage(text, 15000 if closed is None else 60000)

    def list_changed(self, records: list[ImageRecord]) -> str | None:
        """Show `records` as the project's images; when the open image is no longer among them, close it
        (give back its lease) and open the next one. The closed image's path, else None."""
        session = self.window.session
        current = None if session is None else session.record
        self.window.browser.refresh(records, {})
        self.window.browser.update_counter()
        if current is None or any(r.id == current.id for r in records):
            return None
        self.window.tools.set_document(None)
        session.close_image()
        if self._held is not None and self._held.id == current.id:
            held, self._held = self._held, None
            self._thread(lambda: self._quietly(lambda: self.project.release_lease(held)))
        target = self.window.browser.next_unfinished() or self.window.browser.neighbour(1)
        if target:
            self.window.open_image(target)
        else:
            self.window.overlay.set_document(None, None, "The team project has no images left.")
        return current.rel_path

    @staticmethod
    def _quietly(work: Any) -> None:
        try:
            work()
        except SegStudioError:
            pass  # a lease left behind expires by itself

    def _show_queue(self, queue: list[str], rejected: dict[str, str]) -> None:
        if queue != self.queue and self.project.prefetcher is not None:
            self.project.prefetcher.poke()  # new work assigned: fetch its images ahead
        self.queue, self.rejected = queue, rejected
        self.window.browser.model.set_notes({**rejected, **self.kept, **self._notes})

    def _on_reviewed(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 15000)
        self.poll()

    def next_unfinished(self) -> str | None:
        """The first unfinished image of this member's queue; without assignments, the browser's own."""
        current = (
            self.window.session.record.rel_path
            if self.window.session and self.window.session.record
            else None
        )
        records = {r.rel_path: r for r in self.window.browser.model.records()}
        from segstudio.gui.browser import UNFINISHED

        for path in self.queue:
            rec = records.get(path)
            if rec is not None and rec.status in UNFINISHED and path != current:
                return path
        return self._plain_next()

    def review_current(self, accepted: bool) -> None:
        """Accept, or reject with a comment, the open image's current version (on a thread)."""
        session = self.window.session
        rec = None if session is None else session.record
        if rec is None:
            self.window.statusBar().showMessage("open an image to review it", 10000)
            return
        comment = ""
        if not accepted:
            comment, ok = QInputDialog.getText(
                self.window, "Reject image", f"Why is {rec.rel_path} rejected? (the annotator sees this)"
            )
            if not ok:
                return

        def work() -> None:
            try:
                review = self.project.review(rec, accepted, comment)
                self.reviewed.emit(f"{rec.rel_path}: {review.verdict} (version {review.mask_version})")
            except SegStudioError as error:
                self.reviewed.emit(f"review not stored: {error}")

        self._thread(work)

    def compare_current(self) -> None:
        """Open *Compare annotations...* on the open image (reviewers and leads, consensus images)."""
        session = self.window.session
        rec = None if session is None else session.record
        if rec is None:
            self.window.statusBar().showMessage("open a consensus image to compare its annotations", 10000)
            return
        if self.project.role == "annotator":
            self.window.statusBar().showMessage(
                "comparing the two annotations of a consensus image is for reviewers and leads", 10000
            )
            return
        from segstudio.gui.consensus_dialog import CompareDialog

        dialog = CompareDialog(self.window, self.project, rec, session.image)
        dialog.accepted.connect(lambda: self._compared(dialog))
        self.compare_dialog = dialog
        dialog.open()

    def _compared(self, dialog: Any) -> None:
        """A resolution was saved: show it in the window (it is the image's main version now)."""
        session, rec = self.window.session, dialog.rec
        if (dialog.version is None and dialog.kept is None) or session is None:
            return
        if session.document is not None and session.record is not None and session.record.id == rec.id:
            session.document.mark_saved()  # the open image showed the main line before the resolution
        session.cache.invalidate_labels(rec.rel_path)
        self.window.open_image(rec.rel_path)
        if dialog.kept is not None:
            who = dialog.found.annotator(dialog.kept) if dialog.found is not None else dialog.kept
            self.window.statusBar().showMessage(
                f"{rec.rel_path} is out of consensus: an ordinary image of {who}"
                + ("" if dialog.version is None else f", whose annotation is version {dialog.version}"),
                30000,
            )
            self.poll()
            return
        how = f"annotation {dialog.taken}"
        if dialog.taken == "merge":
            from segstudio.team.consensus import describe_choices

            picked = describe_choices(dialog.choices, self.project.scheme.names, dialog.found)
            how = f"the merge ({picked})" if dialog.choices else "the merge"
        self.window.statusBar().showMessage(
            f"{rec.rel_path}: {how} is version {dialog.version}; paint any unlabelled (disputed) pixels, then "
            "Team -> Accept this image",
            30000,
        )
        self.poll()

    def image_opened(self, rec: ImageRecord) -> None:
        """Take the lease of the image now being edited; give back the previous one."""
        previous, self._held = self._held, rec
        if rec.rel_path in self.rejected:
            self.window.statusBar().showMessage(f"{rec.rel_path}: {self.rejected[rec.rel_path]}", 30000)

        def work() -> None:
            from segstudio.team.errors import LeaseError

            try:
                if previous is not None and previous.id != rec.id:
                    self.project.release_lease(previous)
                self.project.take_lease(rec)
            except LeaseError as error:
                self.lease_refused.emit(str(error))
            except SegStudioError as error:
                self.lease_refused.emit(f"team server: {error}")

        self._thread(work)

    def stop(self) -> None:
        self._stopped = True
        self.timer.stop()
        threading.Thread(target=self.listener.stop, daemon=True).start()  # never wait on the network
        self.window.statusBar().removeWidget(self.pending_label)
        self.window.menuBar().removeAction(self.menu.menuAction())
        self.window.browser.next_unfinished = self._plain_next
        if self.remover is not None:
            self.remover.stop()
