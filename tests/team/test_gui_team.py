"""The window on a team project, as a member uses it: File -> Open team project..., the browser shows
who else is editing an image, and opening an image takes its lease."""

from __future__ import annotations

from segstudio.team.project import TeamProject
from tests.team.conftest import open_team_window

WAIT = 30_000


def _row_text(window, rel_path: str) -> str:
    from PySide6.QtCore import Qt

    model = window.browser.model
    row = model.row_of(rel_path)
    return "" if row is None else str(model.data(model.index(row), Qt.ItemDataRole.DisplayRole))


def test_open_team_project_shows_other_editors_and_takes_the_lease(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.settings import AppSettings

    with TeamProject.join(image_folder, team.url("bob"), state_dir=tmp_path / "bob") as bob:
        coffee = bob.get("b_coffee.png")
        bob.take_lease(coffee)
        monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (team.url("alice"), True))
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(image_folder))
        window = MainWindow(AppSettings())
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        try:
            file_menu = next(
                a.menu()
                for a in window.menuBar().actions()
                if a.menu() and window.open_team_action in a.menu().actions()
            )
            assert file_menu is not None
            window.open_team_action.trigger()
            qtbot.waitUntil(
                lambda: window.session is not None and window.session.document is not None, timeout=WAIT
            )
            assert isinstance(window.project, TeamProject) and window.project.member == "alice"
            qtbot.waitUntil(lambda: "being edited by bob" in _row_text(window, "b_coffee.png"), timeout=WAIT)
            opened = window.session.record
            qtbot.waitUntil(lambda: bob.lease_holder(opened) == "alice", timeout=WAIT)
            bob.release_lease(coffee)
            qtbot.waitUntil(lambda: "being edited" not in _row_text(window, "b_coffee.png"), timeout=WAIT)
        finally:
            window.close()
        assert bob.lease_holder(opened) is None  # closing the window gave the lease back


def test_a_save_while_the_server_is_down_shows_as_not_yet_on_the_server_until_it_lands(
    qtbot, team, image_folder, monkeypatch
):
    import segstudio.team.editing as editing

    monkeypatch.setattr(editing, "RETRY_SECONDS", 0.3)
    window = open_team_window(qtbot, monkeypatch, team.url("alice"), image_folder, poll_ms=300)
    try:
        opened = window.session.record
        shown: list[str] = []
        window.statusBar().messageChanged.connect(shown.append)
        team.server.stop("fast")
        try:
            window.actions_by_id["mark_done"].trigger()  # the window does not wait: the save is queued
            qtbot.waitUntil(
                lambda: "not yet on the server" in _row_text(window, opened.rel_path), timeout=WAIT
            )
            assert "1 save(s) not yet on the server" in window.team_presence.pending_label.text()
            assert any("cannot be reached" in m and "kept on this machine" in m for m in shown), shown
        finally:
            team.server.start()
        qtbot.waitUntil(
            lambda: "not yet on the server" not in _row_text(window, opened.rel_path), timeout=WAIT
        )
        assert window.team_presence.pending_label.text() == ""
        assert any("queued saves landed" in m for m in shown), shown
    finally:
        window.close()
    with TeamProject.join(image_folder, team.url("lena"), heartbeat=False) as lena:
        assert lena.get(opened.rel_path).status.value == "done"
        assert [v.author for v in lena.mask_history(lena.get(opened.rel_path))] == ["alice"]


def _open_window(qtbot, team, image_folder, monkeypatch, user):
    return open_team_window(qtbot, monkeypatch, team.url(user), image_folder, poll_ms=300)


def _alice_saves_everything(team, image_folder, tmp_path):
    from segstudio.core.project import Status
    from tests.team.conftest import mask_of

    with TeamProject.join(
        image_folder, team.url("alice"), state_dir=tmp_path / "a", heartbeat=False
    ) as alice:
        for rec in alice.images():
            alice.load_mask(rec)
            alice.save_mask(rec, mask_of(2), Status.DONE)


def test_a_reviewer_accepts_and_rejects_the_open_image_from_the_team_menu(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QInputDialog

    _alice_saves_everything(team, image_folder, tmp_path)
    window = _open_window(qtbot, team, image_folder, monkeypatch, "rita")
    try:
        presence = window.team_presence
        assert presence.menu.title() == "&Team"
        opened = window.session.record
        shown: list[str] = []  # every status message the reviewer saw (others may replace it quickly)
        window.statusBar().messageChanged.connect(shown.append)
        asked = []
        monkeypatch.setattr(
            QInputDialog, "getText", lambda *a, **k: (asked.append(a), ("the sky is labelled road", True))[1]
        )
        presence.reject_action.trigger()
        assert asked, "the reject action asks for a comment"
        with TeamProject.join(image_folder, team.url("lena"), heartbeat=False) as lena:
            qtbot.waitUntil(lambda: lena.review_of(opened) is not None, timeout=WAIT)
            review = lena.review_of(opened)
            assert (review.verdict, review.comment, review.reviewer) == (
                "rejected",
                "the sky is labelled road",
                "rita",
            )
            presence.accept_action.trigger()
            qtbot.waitUntil(lambda: lena.review_of(opened).verdict == "accepted", timeout=WAIT)
        qtbot.waitUntil(lambda: any(": accepted (version" in text for text in shown), timeout=WAIT)
    finally:
        window.close()


def test_an_annotator_sees_the_rejection_on_the_image_and_next_follows_their_queue(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    from segstudio.core.project import Status
    from tests.team.conftest import mask_of

    with TeamProject.join(
        image_folder, team.url("alice"), state_dir=tmp_path / "a", heartbeat=False
    ) as alice:
        coffee = alice.get("b_coffee.png")
        alice.load_mask(coffee)
        alice.save_mask(coffee, mask_of(2), Status.DONE)
    with TeamProject.join(image_folder, team.url("rita"), state_dir=tmp_path / "r", heartbeat=False) as rita:
        rita.review(rita.get("b_coffee.png"), False, "fix the handle")
    queue = ["sub/d_rocket.png", "a_cat.png"]
    with TeamProject.join(image_folder, team.url("lena"), state_dir=tmp_path / "l", heartbeat=False) as lena:
        lena.assign([lena.get(p) for p in queue], ["alice"], "hand")
    window = _open_window(qtbot, team, image_folder, monkeypatch, "alice")
    try:
        qtbot.waitUntil(
            lambda: "rejected by rita: fix the handle" in _row_text(window, "b_coffee.png"), timeout=WAIT
        )
        qtbot.waitUntil(lambda: window.team_presence.queue == queue, timeout=WAIT)
        current = window.session.record.rel_path
        expected = next(p for p in queue if p != current)
        window.actions_by_id["next_unfinished"].trigger()
        qtbot.waitUntil(lambda: window.session.record.rel_path == expected, timeout=WAIT)
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        view, model = window.browser.view, window.browser.model
        index = model.index(model.row_of("b_coffee.png"))
        view.scrollTo(index)
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         view.visualRect(index).center())  # fmt: skip
        qtbot.waitUntil(lambda: window.session.record.rel_path == "b_coffee.png", timeout=WAIT)
        qtbot.waitUntil(lambda: "fix the handle" in window.statusBar().currentMessage(), timeout=WAIT)
    finally:
        window.close()


def test_the_browser_learns_of_another_editor_by_notify_without_waiting_for_the_poll(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    import time

    from segstudio.gui import team_view

    window = _open_window(qtbot, team, image_folder, monkeypatch, "alice")
    monkeypatch.setattr(team_view, "POLL_MS", 600_000)
    window.team_presence.timer.setInterval(600_000)  # only a notice can bring the change now
    window.team_presence.timer.start()
    try:
        qtbot.waitUntil(window.team_presence.listener.listening.is_set, timeout=WAIT)
        qtbot.wait(500)  # the first poll is over
        with TeamProject.join(
            image_folder, team.url("bob"), state_dir=tmp_path / "b", heartbeat=False
        ) as bob:
            other = next(r for r in bob.images() if r.rel_path != window.session.record.rel_path)
            started = time.monotonic()
            bob.take_lease(other)
            qtbot.waitUntil(lambda: "being edited by bob" in _row_text(window, other.rel_path), timeout=5000)
            assert time.monotonic() - started < 3.0
    finally:
        window.close()


def test_the_window_switches_to_the_model_version_a_lead_activates(
    qtbot, team, image_folder, monkeypatch, tmp_path
):
    from segstudio.cli import main
    from tests.fakes import FakeInferenceClient

    window = _open_window(qtbot, team, image_folder, monkeypatch, "alice")
    try:
        worker = FakeInferenceClient(window.project)
        window.model.set_controller(worker)  # a running model worker, as after the first prediction
        qtbot.waitUntil(lambda: window.team_presence._active is None, timeout=WAIT)  # first poll done
        checkpoint = tmp_path / "best.pt"
        checkpoint.write_bytes(b"weights")
        with TeamProject.join(
            image_folder, team.url("bob"), state_dir=tmp_path / "b", heartbeat=False
        ) as bob:
            bob.add_model_version("v1", checkpoint, "lraspp_mobilenet_v3_large")  # any member stores one
        assert main(["team", "activate", str(image_folder), "v1", "--db", team.url("lena")]) == 0
        qtbot.waitUntil(lambda: any(getattr(m, "version", None) == "v1" for m in worker.models), timeout=WAIT)
        assert worker.models[-1].weights == "project"
        assert "activated model v1" in window.statusBar().currentMessage()
    finally:
        window.close()


def _click_in_browser(qtbot, window, rel_path: str) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    view, model = window.browser.view, window.browser.model
    index = model.index(model.row_of(rel_path))
    view.scrollTo(index)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     view.visualRect(index).center())  # fmt: skip
    qtbot.waitUntil(
        lambda: window.session.record.rel_path == rel_path and window.session.document is not None,
        timeout=WAIT,
    )


def test_a_reviewer_compares_a_consensus_image_and_takes_b_or_merges_from_the_team_menu(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    import numpy as np
    from PySide6.QtCore import Qt

    from segstudio.cli import main
    from segstudio.core.project import Status
    from segstudio.core.schemes import UNLABELED
    from segstudio.team.agreement import merge_annotations
    from tests.team.test_consensus import IOU_1, IOU_2, _annotate, _b_of, _halves

    assert main(["team", "assign", str(image_folder), "a_cat.png", "b_coffee.png", "--db", team.url("lena"),
                 "--to", "alice,bob", "--consensus", "1"]) == 0  # fmt: skip
    a, b = _halves(), _b_of(_halves())
    with (
        TeamProject.join(image_folder, team.url("alice"), state_dir=tmp_path / "a", heartbeat=False) as alice,
        TeamProject.join(image_folder, team.url("bob"), state_dir=tmp_path / "b", heartbeat=False) as bob,
    ):
        for path in ("a_cat.png", "b_coffee.png"):
            _annotate(alice, path, a)
            _annotate(bob, path, b)
    window = _open_window(qtbot, team, image_folder, monkeypatch, "rita")
    try:
        presence = window.team_presence
        team_menu = next(act.menu() for act in window.menuBar().actions() if act.text() == "&Team")
        compare = next(act for act in team_menu.actions() if act.text() == "Compare annotations…")
        qtbot.waitUntil(
            lambda: "consensus alice + bob: ready to compare" in _row_text(window, "a_cat.png"), timeout=WAIT
        )
        _click_in_browser(qtbot, window, "a_cat.png")
        compare.trigger()
        dialog = presence.compare_dialog
        qtbot.waitUntil(lambda: dialog.take_b.isEnabled(), timeout=WAIT)
        assert (
            dialog.isVisible()
            and dialog.take_a.text() == "Take A (alice)"
            and dialog.take_b.text() == "Take B (bob)"
        )
        assert "mIoU 0.909" in dialog.summary.text() and "64 pixels disputed" in dialog.summary.text()
        names = window.project.scheme.names
        rows = {
            dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text()
            for r in range(dialog.table.rowCount())
        }
        assert rows == {names[1]: f"{IOU_1:.3f}", names[2]: f"{IOU_2:.3f}"}
        assert all(not p.pixmap().isNull() for p in dialog.pictures)  # A, B and the disagreement are shown
        qtbot.mouseClick(dialog.take_b, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "consensus" not in _row_text(window, "a_cat.png"), timeout=WAIT)
        qtbot.waitUntil(lambda: dialog.version is not None and not dialog.isVisible(), timeout=WAIT)
        qtbot.waitUntil(
            lambda: window.session.document is not None and np.array_equal(window.session.document.labels, b),
            timeout=WAIT,
        )
        assert "annotation B is version" in window.statusBar().currentMessage()
        presence.accept_action.trigger()
        with TeamProject.join(image_folder, team.url("lena"), heartbeat=False) as lena:
            cat = lena.get("a_cat.png")
            qtbot.waitUntil(lambda: lena.review_of(cat) is not None, timeout=WAIT)
            assert lena.review_of(cat).verdict == "accepted" and lena.consensus_of(cat).resolved_how == "B"

            _click_in_browser(qtbot, window, "b_coffee.png")
            compare.trigger()
            dialog = presence.compare_dialog
            qtbot.waitUntil(lambda: dialog.merge.isEnabled(), timeout=WAIT)
            assert "(64 pixels left to paint)" in dialog.captions[3].text()  # the merge rule: the box is void
            qtbot.mouseClick(dialog.choice_buttons[names[2]]["A"], Qt.MouseButton.LeftButton)  # trust A there
            previewed = dialog.preview.copy()
            qtbot.mouseClick(dialog.merge, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: dialog.version is not None, timeout=WAIT)
            coffee = lena.get("b_coffee.png")
            merged = lena.load_mask(coffee)
            _, mask_a, mask_b = lena.branch_masks(coffee)  # readable by everyone once resolved
            np.testing.assert_array_equal(merged, previewed)  # saved exactly what the preview showed
            np.testing.assert_array_equal(merged, merge_annotations(mask_a, mask_b, {2: "A"})[0])
            assert (merged[0:8, 16:24] == mask_a[0:8, 16:24]).all()  # the disputed box: A's word on class 2
            assert (
                int((merged == UNLABELED).sum()) != 64 and lena.consensus_of(coffee).resolved_how == "merge"
            )
            assert coffee.status == Status.DONE
            qtbot.waitUntil(
                lambda: np.array_equal(window.session.document.labels, merged), timeout=WAIT
            )  # the reviewer paints the disputed pixels in the window next
    finally:
        window.close()


def test_an_annotator_of_a_consensus_image_saves_on_their_branch_from_the_window(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    from segstudio.cli import main

    assert (
        main(
            [
                "team",
                "assign",
                str(image_folder),
                "a_cat.png",
                "--db",
                team.url("lena"),
                "--to",
                "bob,alice",
                "--consensus",
                "1",
            ]
        )
        == 0
    )  # fmt: skip  (bob is A, alice is B)
    window = _open_window(qtbot, team, image_folder, monkeypatch, "alice")
    try:
        qtbot.waitUntil(
            lambda: "consensus: your own annotation" in _row_text(window, "a_cat.png"), timeout=WAIT
        )
        _click_in_browser(qtbot, window, "a_cat.png")
        window.actions_by_id["mark_done"].trigger()
        with TeamProject.join(image_folder, team.url("lena"), heartbeat=False) as lena:
            cat = lena.get("a_cat.png")
            qtbot.waitUntil(lambda: lena.consensus_of(cat).done("B"), timeout=WAIT)
            assert [(v.branch, v.author) for v in lena.mask_history(cat)] == [("B", "alice")]
            assert lena.get("a_cat.png").status.value == "new"  # the main line waits for the resolution
        qtbot.waitUntil(lambda: window.browser.model.record("a_cat.png").status.value == "done", timeout=WAIT)
        window.team_presence.compare_action.trigger()
        assert "for reviewers and leads" in window.statusBar().currentMessage()
        assert window.team_presence.compare_dialog is None
    finally:
        window.close()


def test_an_image_path_from_the_server_leading_out_of_the_folder_is_a_problem_not_a_read(
    qtbot, team, image_folder, tmp_path, monkeypatch
):
    """A hostile or damaged team database names a file outside the folder: clicking it lists a problem
    (never reads the file), and the window goes on with the other images."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    hostile = "../outside/secret.png"
    with team.raw("lena") as conn:
        conn.execute("UPDATE segstudio.images SET rel_path = %s WHERE rel_path = 'b_coffee.png'", (hostile,))
    window = open_team_window(qtbot, monkeypatch, team.url("alice"), image_folder)
    try:
        view, model = window.browser.view, window.browser.model
        for rel_path in (hostile, "c_astronaut.png"):
            index = model.index(model.row_of(rel_path))
            view.scrollTo(index)
            QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                             view.visualRect(index).center())  # fmt: skip
            qtbot.waitUntil(lambda p=rel_path: window.session.record.rel_path == p, timeout=WAIT)
            if rel_path == hostile:
                qtbot.waitUntil(lambda: hostile in window.problems.problems(), timeout=WAIT)
                assert "not a file inside" in window.problems.problems()[hostile]
                assert window.session.document is None
        assert window.session.document is not None and window.session.image is not None
    finally:
        window.close()
