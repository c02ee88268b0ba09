from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.errors import SchemeError
from segstudio.core.schemes import (
    CITYSCAPES_LABELS,
    UNLABELED,
    VOID_COLOR,
    ClassDef,
    LabelScheme,
    available_schemes,
    cityscapes_scheme,
    get_scheme,
    label_id_to_train_id,
    train_id_to_label_id,
    voc_colormap,
    voc_scheme,
)


def _reference_voc_colormap(n: int) -> np.ndarray:
    """The VOCdevkit's labelcolormap, transcribed loop by loop from its published pseudo-code."""

    def bit(value: int, index: int) -> int:
        return (value >> index) & 1

    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= bit(c, 0) << (7 - j)
            g |= bit(c, 1) << (7 - j)
            b |= bit(c, 2) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def test_voc_colormap_matches_reference_for_all_256_entries() -> None:
    assert np.array_equal(voc_colormap(), _reference_voc_colormap(256))
    assert voc_colormap().shape == (256, 3) and voc_colormap().dtype == np.uint8
    # Well-known anchors: background, aeroplane, person (15), void (255).
    assert tuple(voc_colormap()[0]) == (0, 0, 0)
    assert tuple(voc_colormap()[1]) == (128, 0, 0)
    assert tuple(voc_colormap()[15]) == (192, 128, 128)
    assert tuple(voc_colormap()[255]) == (224, 224, 192) == VOID_COLOR


def test_voc_scheme_has_21_classes_in_index_order() -> None:
    scheme = voc_scheme()
    assert scheme.num_classes == 21
    assert (
        scheme.names[0] == "background" and scheme.names[15] == "person" and scheme.names[20] == "tvmonitor"
    )
    assert scheme.index_of("Person") == 15
    lut = scheme.lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert np.array_equal(lut[:21], voc_colormap(21))
    assert np.all(lut[21:255] == 0)
    assert tuple(lut[UNLABELED]) == VOID_COLOR
    assert [c.export_id for c in scheme.classes] == list(range(21))


def test_cityscapes_table_matches_cityscapesscripts() -> None:
    labels_mod = pytest.importorskip("cityscapesscripts.helpers.labels")
    reference = [tuple(label) for label in labels_mod.labels]
    assert len(CITYSCAPES_LABELS) == 35
    assert [tuple(label) for label in CITYSCAPES_LABELS] == reference
    assert CITYSCAPES_LABELS[-1].name == "license plate" and CITYSCAPES_LABELS[-1].id == -1
    assert CITYSCAPES_LABELS[0]._fields == labels_mod.Label._fields


def test_cityscapes_scheme_and_id_mappings() -> None:
    labels_mod = pytest.importorskip("cityscapesscripts.helpers.labels")
    scheme = cityscapes_scheme()
    assert scheme.num_classes == 19
    for train_id, cls in enumerate(scheme.classes):
        ref = labels_mod.trainId2label[train_id]
        assert (cls.name, cls.color, cls.export_id) == (ref.name, ref.color, ref.id)
    l2t = label_id_to_train_id()
    t2l = train_id_to_label_id()
    assert l2t.shape == (256,) and t2l.shape == (256,)
    for label in labels_mod.labels:
        if label.id < 0:
            continue
        expected = label.trainId if label.trainId not in (-1, 255) else 255
        assert l2t[label.id] == expected, label.name
    for train_id in range(19):
        assert l2t[t2l[train_id]] == train_id
    assert t2l[255] == 0  # void goes back to 'unlabeled'


def test_registry_and_unknown_name() -> None:
    assert available_schemes() == ["camvid", "cityscapes", "voc"]
    assert get_scheme("voc") == voc_scheme()
    assert get_scheme("Cityscapes") == cityscapes_scheme()
    with pytest.raises(SchemeError, match=r"unknown scheme 'ade20k'; choose one of: camvid, cityscapes, voc"):
        get_scheme("ade20k")


def test_custom_scheme_round_trip(tmp_path: Path) -> None:
    scheme = LabelScheme(
        "weeds",
        (ClassDef("soil", (120, 80, 40)), ClassDef("crop", "#00ff00", 7), ClassDef("Unkraut ü", [255, 0, 0])),
    )
    path = tmp_path / "scheme dir" / "weeds.json"
    scheme.save(path)
    loaded = LabelScheme.load(path)
    assert loaded == scheme
    assert loaded.classes[1].color == (0, 255, 0) and loaded.classes[1].export_id == 7
    assert get_scheme(str(path)) == scheme
    assert loaded.export_ids()[:3].tolist() == [0, 7, 2]
    assert json.loads(path.read_text(encoding="utf-8"))["classes"][2]["name"] == "Unkraut ü"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "x", "classes": [{"name": "a", "color": [1, 2, 3]}, {"name": "A", "color": [1, 2, 3]}]},
            "duplicate class name",
        ),
        ({"name": "x", "classes": [{"name": "a", "color": [1, 2, 300]}]}, "bad color"),
        ({"name": "x", "classes": [{"name": "a", "color": "red"}]}, "bad color"),
        ({"name": "x", "classes": [{"name": "a", "color": [1, 2]}]}, "bad color"),
        ({"name": "x", "classes": [{"name": "a", "color": [1.5, 2, 3]}]}, "bad color"),
        ({"name": "x", "classes": [{"name": "", "color": [1, 2, 3]}]}, "empty"),
        ({"name": "x", "classes": [{"name": "a"}]}, 'needs a "name" and a "color"'),
        ({"name": "x", "classes": [{"name": "a", "color": [1, 2, 3], "colour": 1}]}, "unknown key"),
        ({"name": "x", "classes": [{"name": "a", "color": [1, 2, 3], "export_id": 256}]}, "export id"),
        ({"name": "x", "classes": []}, "no classes"),
        ({"name": "x", "classes": "a,b"}, "must be a list"),
        ({"classes": [{"name": "a", "color": [1, 2, 3]}]}, "no name"),
        (
            {"name": "x", "classes": [{"name": f"c{i}", "color": [0, 0, 0]} for i in range(255)]},
            "at most 254",
        ),
    ],
)
def test_invalid_custom_schemes_are_rejected_with_clear_errors(
    tmp_path: Path, data: dict, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SchemeError, match=message) as info:
        LabelScheme.load(path)
    assert str(path) in str(info.value)


def test_254_classes_is_the_maximum_allowed() -> None:
    scheme = LabelScheme.from_dict(
        {"name": "big", "classes": [{"name": f"c{i}", "color": [i, 0, 0]} for i in range(254)]}
    )
    assert scheme.num_classes == 254
    assert tuple(scheme.lut()[253]) == (253, 0, 0)


def test_unreadable_scheme_files(tmp_path: Path) -> None:
    with pytest.raises(SchemeError, match="does not exist"):
        LabelScheme.load(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SchemeError, match="not valid JSON"):
        LabelScheme.load(tmp_path / "broken.json")


def test_index_of_unknown_class_lists_classes() -> None:
    with pytest.raises(SchemeError, match=r"has no class 'tree'.*background, aeroplane"):
        voc_scheme().index_of("tree")


def test_schemes_are_immutable_and_hashable() -> None:
    scheme = voc_scheme()
    with pytest.raises(AttributeError):
        scheme.name = "other"  # type: ignore[misc]
    assert hash(scheme) == hash(voc_scheme())
    assert LabelScheme.from_dict(scheme.to_dict()) == scheme


@pytest.mark.parametrize(
    "name", ["a\nb", "cat\x00", "tab\there", "line\u2028sep", "next\x85line", "del\x7f", "\r"]
)
def test_class_and_scheme_names_with_control_characters_are_refused(name):
    from segstudio.core.schemes import ClassDef, LabelScheme

    with pytest.raises(SchemeError, match="control characters"):
        ClassDef(name if name.strip() else f"x{name}", (1, 2, 3))
    with pytest.raises(SchemeError, match="control characters"):
        LabelScheme(f"s{name}", (ClassDef("ok", (1, 2, 3)),))


def test_scheme_file_with_a_newline_in_a_class_name_names_the_file(tmp_path):
    from segstudio.core.schemes import LabelScheme

    path = tmp_path / "s.json"
    path.write_text(json.dumps({"name": "s", "classes": [{"name": "a\nb", "color": [1, 2, 3]}]}))
    with pytest.raises(SchemeError, match=r"s\.json.*control characters"):
        LabelScheme.load(path)


def test_camvid_preset_matches_the_shared_sample_table(shared_testdata: Path) -> None:
    sample = LabelScheme.load(shared_testdata / "camvid_sample" / "scheme.json")
    assert get_scheme("camvid").classes == sample.classes
