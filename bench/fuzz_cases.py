"""Hypothesis strategies for hostile datasets and checkpoints, and the one rule they are judged by.

Used by the bounded fuzz tests (tests/export/test_fuzz.py) and the long run (`python -m
bench.fuzz --minutes N`). Each case is a whole input as a stranger could send it: a labelme,
COCO, VOC or mask-folder dataset written to a fresh folder (JSON documents with numbers of every
kind, nesting, wrong types, hostile names; PNG masks of every mode and size, truncated files,
headers claiming gigapixels), or a checkpoint dict / resume payload saved with torch.save. The
case runs what a user runs: the importer's preview then `run_import` (through the registry, as
the CLI and the GUI do), or `load_checkpoint` / `RunState.load` and what callers read next.

The rule: the run may succeed or raise `SegStudioError` (our typed error, a message for the
user); any other exception is a failure.
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st
from PIL import Image

__all__ = ["TARGETS", "Failure", "run_case"]

H, W = 12, 16  # image size of every generated dataset: small, so a case costs milliseconds


class Failure(Exception):
    """An exception that is not a SegStudioError escaped a case (the rule was broken)."""


# ------------------------------------------------------------------------------------------ leaves
HUGE = [10**400, -(10**30), 2**63, 1e308, -1e308, 1e400, float("nan"), float("inf"), float("-inf")]
numbers = st.one_of(
    st.integers(-5, 40),
    st.floats(-50, 50, allow_nan=False),
    st.sampled_from(HUGE),
    st.integers(),
    st.floats(),
)
names = st.one_of(
    st.sampled_from(
        ["a.png", "sub/a.png", "../a.png", "/etc/passwd", "C:\\a.png", "\\\\srv\\a.png", "a\x00.png", "x" * 300 + ".png",
         "²", "", ".", "..", "~/a.png", "file:///a.png", "a.png/", "images/a.png", "%2e%2e/a.png", "\ud800.png"]
    ),
    st.text(max_size=12),
)  # fmt: skip
leaves = st.one_of(numbers, names, st.booleans(), st.none())
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=4)),
    max_leaves=12,
)


def maybe(strategy: st.SearchStrategy, hostile: st.SearchStrategy = json_values) -> st.SearchStrategy:
    """Usually (7 in 8) the well-formed value, sometimes anything at all: a case with one or two
    hostile fields reaches the code behind the first check, where the surprises are."""
    return st.integers(0, 7).flatmap(lambda k: hostile if k == 7 else strategy)  # shrinks to well-formed


def _png(mode: str, size: tuple[int, int], value: int = 1) -> bytes:
    buffer = io.BytesIO()
    array = np.full(
        (size[1], size[0]) + ((3,) if mode in ("RGB",) else (4,) if mode == "RGBA" else ()), value
    )
    if mode == "I;16":
        Image.fromarray(array.astype(np.uint16)).save(buffer, format="PNG")
    elif mode == "1":
        Image.fromarray(array.astype(bool)).save(buffer, format="PNG")
    else:
        image = Image.fromarray(array.astype(np.uint8), mode="L" if mode == "P" else mode)
        (image.convert("P") if mode == "P" else image).save(buffer, format="PNG")
    return buffer.getvalue()


def _header_only(width: int, height: int, colour_type: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


sizes = st.one_of(st.just((W, H)), st.just((W, H)), st.tuples(st.integers(1, 40), st.integers(1, 40)))
mask_bytes = st.one_of(
    st.builds(_png, st.just("L"), st.just((W, H)), st.integers(0, 3)),
    st.builds(_png, st.just("P"), st.just((W, H)), st.integers(0, 3)),
    st.builds(_png, st.sampled_from(["L", "L", "P", "RGB", "RGBA", "I;16", "1"]), sizes, st.integers(0, 255)),
    st.builds(_header_only, st.integers(1, 70000), st.integers(1, 70000), st.sampled_from([0, 2, 3, 6])),
    st.binary(max_size=64),
    st.builds(lambda data, cut: data[:cut], st.builds(_png, st.just("L"), sizes), st.integers(8, 60)),
)
IMAGE = _png("RGB", (W, H), 90)


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(data)


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True, ensure_ascii=False)


raw_json = st.one_of(
    st.builds(_dumps, json_values),
    st.builds(lambda n: "[" * n + "]" * n, st.integers(60, 200_000)),
    st.sampled_from(["", "{", "nul", "\ufeff{}", '{"a": 1e400}', "1" * 5000]),
)


def json_text(document: st.SearchStrategy) -> st.SearchStrategy:
    """A document serialised as JSON (NaN and Infinity included), or raw hostile text."""
    return st.integers(0, 7).flatmap(lambda k: raw_json if k == 7 else st.builds(_dumps, document))


# ---------------------------------------------------------------------------------------- labelme
point = maybe(st.lists(numbers, min_size=2, max_size=2))
shape = st.fixed_dictionaries(
    {
        "label": maybe(st.sampled_from(["car", "road", "_background_", "__ignore__", "ca\nr"])),
        "points": maybe(st.lists(point, max_size=8)),
        "shape_type": maybe(
            st.sampled_from(["polygon", "rectangle", "circle", "line", "linestrip", "point", "mask", None])
        ),
    },
    optional={"mask": maybe(st.builds(lambda b: base64.b64encode(b).decode(), mask_bytes))},
)
labelme_doc = st.fixed_dictionaries(
    {
        "shapes": maybe(st.lists(shape, max_size=4)),
        "imagePath": maybe(st.sampled_from(["a.png"]), names),
        "imageHeight": maybe(st.just(H), numbers),
        "imageWidth": maybe(st.just(W), numbers),
    },
    optional={
        "imageData": maybe(
            st.builds(lambda b: base64.b64encode(b).decode(), st.one_of(st.just(IMAGE), mask_bytes)), names
        ),
    },
)
labelme_case = st.fixed_dictionaries(
    {
        "a.json": json_text(labelme_doc),
        "b.json": st.one_of(st.none(), json_text(labelme_doc)),
        "labels.txt": st.one_of(
            st.none(), st.text(max_size=40), st.just("__ignore__\n_background_\ncar\nroad\n")
        ),
    }
)


def _labelme_folder(root: Path, case: dict[str, Any]) -> Path:
    _write(root / "a.png", IMAGE)
    for name, text in case.items():
        if text is not None:
            _write(root / name, text)
    return root


# ------------------------------------------------------------------------------------------- COCO
polygon = maybe(st.lists(numbers, min_size=6, max_size=12))
rle = st.fixed_dictionaries(
    {
        "size": maybe(st.just([H, W]), st.lists(numbers, max_size=3)),
        "counts": st.one_of(st.lists(numbers, max_size=5), st.just([H * W]), st.just([5, H * W - 5]), st.text(max_size=10),
                            st.just("0" + "o" * 20), json_values),
    }
)  # fmt: skip
coco_doc = st.fixed_dictionaries(
    {
        "images": maybe(st.lists(st.fixed_dictionaries({
            "id": maybe(st.just(1), numbers), "file_name": maybe(st.just("a.png"), names),
            "height": maybe(st.just(H), numbers), "width": maybe(st.just(W), numbers)}), max_size=2)),
        "categories": maybe(st.lists(st.fixed_dictionaries({
            "id": maybe(st.just(1), numbers), "name": maybe(st.sampled_from(["car", "person"]))},
            optional={"color": maybe(st.lists(st.integers(0, 255), min_size=3, max_size=3))}), min_size=1, max_size=3)),
        "annotations": maybe(st.lists(st.fixed_dictionaries({
            "image_id": maybe(st.just(1), numbers), "category_id": maybe(st.just(1), numbers),
            "segmentation": st.one_of(st.lists(polygon, max_size=3), rle, json_values)},
            optional={"iscrowd": maybe(st.sampled_from([0, 1])), "area": maybe(numbers), "id": numbers}), max_size=4)),
    }
)  # fmt: skip
coco_case = st.fixed_dictionaries({"annotations/instances_train.json": json_text(coco_doc)})


def _coco_folder(root: Path, case: dict[str, Any]) -> Path:
    _write(root / "images" / "a.png", IMAGE)
    for name, text in case.items():
        _write(root / name, text)
    return root


# -------------------------------------------------------------------------------------------- VOC
ids = st.lists(
    maybe(st.sampled_from(["a", "b"]), names.filter(lambda n: "\n" not in n and "\r" not in n)), max_size=4
)
voc_case = st.fixed_dictionaries(
    {
        "ImageSets/Segmentation/train.txt": maybe(st.just("a\nb"), st.one_of(st.none(), st.builds("\n".join, ids))),
        "ImageSets/Segmentation/val.txt": st.one_of(st.none(), st.builds("\n".join, ids)),
        "SegmentationClass/a.png": mask_bytes,
        "SegmentationClass/b.png": st.one_of(st.none(), mask_bytes),
        "segstudio_scheme.json": st.one_of(st.none(), json_text(st.fixed_dictionaries({
            "name": maybe(st.just("s")), "classes": maybe(st.lists(st.fixed_dictionaries({
                "name": maybe(st.sampled_from(["bg", "car"])),
                "color": maybe(st.lists(st.integers(0, 255), min_size=3, max_size=3))}), max_size=3))}))),
        "class_names.txt": st.one_of(st.none(), st.text(max_size=30)),
    }
)  # fmt: skip


def _voc_folder(root: Path, case: dict[str, Any]) -> Path:
    base = root / "VOC2012"
    _write(base / "JPEGImages" / "a.jpg", IMAGE)
    _write(base / "JPEGImages" / "b.jpg", IMAGE)
    (base / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    for name, data in case.items():
        if data is not None:
            _write(base / name, data)
    return root


# ------------------------------------------------------------------------------------ mask folder
manifest_doc = st.fixed_dictionaries(
    {"dataset_format": maybe(st.just("masks")),
     "items": maybe(st.lists(st.fixed_dictionaries({"name": maybe(st.sampled_from(["a.png", "b.png"]), names),
                                                     "source": maybe(st.sampled_from(["x.png", "a.png"]), names)}),
                             max_size=3))}
)  # fmt: skip
masks_case = st.fixed_dictionaries(
    {
        "masks/a.png": mask_bytes,
        "masks/b_mask.png": st.one_of(st.none(), mask_bytes),
        "scheme.json": st.one_of(st.none(), voc_case.map(lambda c: c["segstudio_scheme.json"]).filter(bool)),
        "classes.txt": st.one_of(st.none(), st.text(max_size=30)),
        "train.txt": st.one_of(st.none(), st.builds("\n".join, ids)),
        "segstudio_manifest.json": st.one_of(st.none(), json_text(manifest_doc)),
    }
)


def _masks_folder(root: Path, case: dict[str, Any]) -> Path:
    _write(root / "images" / "a.png", IMAGE)
    _write(root / "images" / "b.png", IMAGE)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for name, data in case.items():
        if data is not None:
            _write(root / name, data)
    return root


def _import(kind: str, build: Callable[[Path, dict[str, Any]], Path]) -> Callable[[dict[str, Any]], None]:
    def run(case: dict[str, Any]) -> None:
        from segstudio.export.import_common import run_import
        from segstudio.export.registry import get_importer

        with tempfile.TemporaryDirectory(prefix="segstudio-fuzz-") as tmp:
            source = build(Path(tmp) / "source", case)
            plan = get_importer(kind)(source)
            plan.describe()
            run_import(plan, Path(tmp) / "project")

    return run


# ------------------------------------------------------------------------------------- checkpoints
def _tensors(draw_shape: tuple[int, ...]) -> Any:
    import torch

    return torch.zeros(draw_shape)


tensor = st.builds(_tensors, st.lists(st.integers(0, 3), max_size=3).map(tuple))
ckpt_values = st.one_of(
    json_values, tensor, st.lists(tensor, max_size=2), st.dictionaries(names, tensor, max_size=2)
)
checkpoint_doc = st.fixed_dictionaries(
    {
        "format": maybe(st.just("segstudio-checkpoint")),
        "format_version": maybe(st.just(1), numbers),
        "arch": maybe(st.just("lraspp_mobilenet_v3_large"), ckpt_values),
        "classes": maybe(st.lists(st.fixed_dictionaries({"name": maybe(st.sampled_from(["bg", "car"])),
                                                         "color": maybe(st.just([1, 2, 3]))}), max_size=3), ckpt_values),
        "state_dict": maybe(st.dictionaries(st.sampled_from(["classifier.weight", "a"]), tensor, min_size=1, max_size=2),
                            st.one_of(ckpt_values, st.dictionaries(st.integers(), tensor, min_size=1, max_size=2))),
        "normalization": maybe(st.just({"mean": [0.5] * 3, "std": [0.2] * 3}), ckpt_values),
        "provenance": maybe(st.dictionaries(st.sampled_from(["max_side", "host"]), numbers, max_size=2), ckpt_values),
        "metrics": maybe(st.dictionaries(st.sampled_from(["miou", "per_class_iou"]), numbers, max_size=2), ckpt_values),
        "version": maybe(st.just("v1"), ckpt_values),
        "parent": maybe(st.none(), ckpt_values),
        "extra": maybe(st.just({}), ckpt_values),
    }
)  # fmt: skip
checkpoint_case = maybe(checkpoint_doc, ckpt_values)
resume_doc = st.fixed_dictionaries(
    {
        "fingerprint": maybe(st.just("f")), "arch": maybe(st.just("a")),
        "epoch": maybe(st.integers(0, 5), numbers), "iteration": maybe(st.integers(0, 5), numbers),
        "elapsed": maybe(st.floats(0, 10), numbers), "bad_epochs": maybe(st.integers(0, 3), numbers),
        "best_miou": maybe(st.none(), numbers), "best_epoch": maybe(st.none(), numbers),
        "best_metrics": maybe(st.just({}), ckpt_values), "history": maybe(st.just([]), ckpt_values),
        "baseline_cms": maybe(st.none(), ckpt_values), "best_cms": maybe(st.none(), ckpt_values),
        "model": maybe(st.dictionaries(st.just("w"), tensor, min_size=1, max_size=1), ckpt_values),
        "optimizer": maybe(st.just({}), ckpt_values), "scaler": maybe(st.just({}), ckpt_values),
    }
)  # fmt: skip
resume_case = maybe(resume_doc, ckpt_values)


def _load_checkpoint(case: Any) -> None:
    import torch

    from segstudio.ml.weights import _training_max_side, load_checkpoint

    with tempfile.TemporaryDirectory(prefix="segstudio-fuzz-") as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(case, path)
        ckpt = load_checkpoint(path)
        ckpt.scheme()  # what predict / eval / train --base read next
        _ = ckpt.class_names
        _training_max_side(ckpt.provenance)


def _load_resume(case: Any) -> None:
    import torch

    from segstudio.ml.run_state import RunState

    with tempfile.TemporaryDirectory(prefix="segstudio-fuzz-") as tmp:
        path = Path(tmp) / "resume.pt"
        torch.save(case, path)
        state, payload = RunState.load(path, "f", "a")
        model = torch.nn.Linear(1, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        state.restore(payload, optimizer, torch.amp.GradScaler("cpu", enabled=False))


#: name -> (strategy, what one case runs)
TARGETS: dict[str, tuple[st.SearchStrategy, Callable[[Any], None]]] = {
    "labelme": (labelme_case, _import("labelme", _labelme_folder)),
    "coco": (coco_case, _import("coco", _coco_folder)),
    "voc": (voc_case, _import("voc", _voc_folder)),
    "masks": (masks_case, _import("masks", _masks_folder)),
    "checkpoint": (checkpoint_case, _load_checkpoint),
    "resume": (resume_case, _load_resume),
}


def run_case(target: str, case: Any) -> None:
    """Run one case; raise Failure (chained to the cause) when the rule is broken."""
    from segstudio.core.errors import SegStudioError

    try:
        TARGETS[target][1](case)
    except SegStudioError:
        pass
    except Exception as error:
        raise Failure(f"{target}: {type(error).__name__}: {str(error)[:300]}") from error
