"""Resolving consensus with one annotator trusted per class (`team resolve --take merge --class car=A`):
the pure rule on hand-made masks with exact expected arrays, then the command against a real server."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.errors import ProjectError
from segstudio.core.schemes import UNLABELED
from segstudio.team.agreement import merge_annotations
from segstudio.team.consensus import ConsensusImage, parse_class_choices

V = UNLABELED
ROAD, CAR, SKY, PERSON = 0, 1, 2, 3
NAMES = ["road", "car", "sky", "person"]

# one pixel per case; the comment says which rule decides it with car=A and road=B
A = np.array([[CAR, CAR, ROAD, ROAD, SKY, SKY, CAR, V, SKY, SKY, V, PERSON]], np.uint8)
B = np.array([[CAR, ROAD, CAR, SKY, SKY, ROAD, V, CAR, V, PERSON, V, CAR]], np.uint8)
EXPECTED = np.array(
    [[
        CAR,  # both say car: car (A, trusted for car, says so)
        V,  # A car (car -> A says car) vs B road (road -> B says road): the two choices conflict
        V,  # A road (road -> B says car) vs B car (car -> A says road): conflict again
        SKY,  # A road, B sky: road is B's, and B says sky there
        SKY,  # both sky, no choice: agreement kept
        ROAD,  # A sky, B road: road is B's, B says road
        CAR,  # A car, B void: car is A's
        V,  # A void, B car: car is A's, and A left it unlabelled
        SKY,  # A sky, B void, no choice: one-sided label kept (the merge rule)
        V,  # A sky, B person, no choice: disputed (the merge rule)
        V,  # nobody labelled it
        PERSON,  # A person, B car: car is A's, and A says person
    ]],
    np.uint8,
)  # fmt: skip


def test_per_class_choices_on_hand_made_masks_give_exactly_the_expected_mask():
    merged, left = merge_annotations(A, B, {CAR: "A", ROAD: "B"})
    np.testing.assert_array_equal(merged, EXPECTED)
    assert merged.dtype == np.uint8
    # left to paint: void although someone labelled it (columns 1, 2, 7, 9)
    assert left == 4


def test_without_choices_the_merge_is_unchanged_and_choosing_one_side_for_every_class_is_that_side():
    plain, disputed = merge_annotations(A, B)
    np.testing.assert_array_equal(plain, merge_annotations(A, B, {})[0])
    expected_plain = np.where(A == V, B, A)
    expected_plain[(A != B) & (A != V) & (B != V)] = V
    np.testing.assert_array_equal(plain, expected_plain)
    assert disputed == int(((A != B) & (A != V) & (B != V)).sum()) == 6  # columns 1, 2, 3, 5, 9, 11
    every = range(len(NAMES))
    np.testing.assert_array_equal(merge_annotations(A, B, dict.fromkeys(every, "A"))[0], A)
    np.testing.assert_array_equal(merge_annotations(A, B, dict.fromkeys(every, "B"))[0], B)


def test_on_random_masks_every_pixel_is_a_label_of_a_or_b_or_void_and_a_chosen_class_is_where_its_annotator_drew_it():
    rng = np.random.default_rng(7)
    values = np.array([ROAD, CAR, SKY, PERSON, V], np.uint8)
    for _ in range(50):
        a = rng.choice(values, (20, 30))
        b = rng.choice(values, (20, 30))
        choices = {
            int(c): str(rng.choice(["A", "B"])) for c in rng.choice(4, rng.integers(1, 4), replace=False)
        }
        merged, left = merge_annotations(a, b, choices)
        assert ((merged == a) | (merged == b) | (merged == V)).all()  # never a label neither gave
        for cls, who in choices.items():
            trusted, other = (a, b) if who == "A" else (b, a)
            contested = np.isin(other, [c for c, w in choices.items() if w != who])
            np.testing.assert_array_equal(merged == cls, (trusted == cls) & ~contested)
        unclaimed = ~np.isin(a, list(choices)) & ~np.isin(b, list(choices))
        plain, _ = merge_annotations(a, b)
        np.testing.assert_array_equal(merged[unclaimed], plain[unclaimed])
        assert left == int(((merged == V) & ((a != V) | (b != V))).sum())


def test_the_two_masks_must_have_one_size_and_choices_name_a_or_b():
    with pytest.raises(ValueError, match="differ in size"):
        merge_annotations(A, B[:, :5], {CAR: "A"})
    with pytest.raises(ValueError, match="'A' or 'B'"):
        merge_annotations(A, B, {CAR: "C"})


def _found() -> ConsensusImage:
    return ConsensusImage(1, "alice", "bob", None, 11, 12, None, None, None, "done", "done")


def test_class_choices_are_read_by_class_name_and_annotator_letter_or_name():
    assert parse_class_choices(["car=A", "road=B"], NAMES) == {CAR: "A", ROAD: "B"}
    assert parse_class_choices(["Car=bob", " sky = a "], NAMES, _found()) == {CAR: "B", SKY: "A"}
    assert parse_class_choices(["car=A", "car=alice"], NAMES, _found()) == {CAR: "A"}  # the same choice twice
    with pytest.raises(
        ProjectError, match="'bus' is not a class of this project; its classes are: road, car"
    ):
        parse_class_choices(["bus=A"], NAMES)
    with pytest.raises(ProjectError, match=r"'carl' is neither annotator.*\(alice or bob\)"):
        parse_class_choices(["car=carl"], NAMES, _found())
    with pytest.raises(ProjectError, match="'C' is neither annotator"):
        parse_class_choices(["car=C"], NAMES)
    with pytest.raises(ProjectError, match="CLASS=A or CLASS=B"):
        parse_class_choices(["car"], NAMES)
    with pytest.raises(ProjectError, match="names car twice, with A and with B"):
        parse_class_choices(["car=A", "car=B"], NAMES)


# ---------------------------------------------------------------- the command, against a real server


def test_team_resolve_with_a_class_choice_writes_the_exact_mask_and_refuses_unknown_classes_and_annotators(
    team, image_folder, tmp_path, capsys
):
    from tests.team.test_consensus import _annotate, _b_of, _cli, _consensus_on, _halves, _join

    _consensus_on(team, image_folder, capsys, "a_cat.png")
    a, b = _halves(), _b_of(_halves())  # B moved an 8 x 8 box from class 1 to 2 and left 4 rows void
    with (
        _join(team, image_folder, "alice", tmp_path) as alice,
        _join(team, image_folder, "bob", tmp_path) as bob,
    ):
        _annotate(alice, "a_cat.png", a)
        _annotate(bob, "a_cat.png", b)
    with _join(team, image_folder, "rita", tmp_path) as rita:
        names = rita.scheme.names
        cat = rita.get("a_cat.png")
        head = rita._head(cat.id)
    resolve = ["team", "resolve", str(image_folder), "a_cat.png", "--db", team.url("rita")]
    for extra, message in (
        (["--take", "merge", "--class", "no-such-class=A"], "'no-such-class' is not a class of this project"),
        (["--take", "merge", "--class", f"{names[2]}=carl"], "'carl' is neither annotator; name A or B, or "
                                                             "annotator A or B by name (alice or bob)"),
        (["--take", "A", "--class", f"{names[2]}=B"], "use it with --take merge, not --take A"),
    ):  # fmt: skip
        code, out, err = _cli(capsys, *resolve, *extra)
        assert code == 2 and message in err, err
    code, out, err = _cli(capsys, *resolve, "--take", "merge", "--class", f"{names[2]}=bob", "--accept")
    assert code == 0, err
    assert f"made from alice's and bob's annotations; {names[2]} from bob (B)" in out
    # class 2 is bob's: wherever either drew class 2 (the right half, the moved box) bob's labels are
    # kept, void included (his 4 bottom rows); class 1 alone on the bottom-left stays (one-sided)
    expected = a.copy()
    expected[0:8, 16:24] = 2
    expected[28:32, 24:] = UNLABELED
    with _join(team, image_folder, "lena", tmp_path) as lena:
        cat = lena.get("a_cat.png")
        assert lena._head(cat.id) != head
        np.testing.assert_array_equal(lena.load_mask(cat), expected)
        found = lena.consensus_of(cat)
        assert found.resolved_how == "merge" and found.resolved_by == "rita"
        review = lena.review_of(cat)
        assert review.verdict == "accepted" and review.comment == f"consensus: took merge ({names[2]} from B)"
