"""What a checkpoint file may contain, checked before any of it is used.

`torch.load(weights_only=True)` stops pickled code, but not data of the wrong shape: a `classes`
list of ints, a class without a name, `provenance` as a list, `metrics` as a string, `arch` as a
list, integer state-dict keys or a `resume.pt` holding a list all load "safely" and then crash
whatever reads them (predict --weights, train --base/--resume, eval, the project model). And
a 1 MB file whose tensors are deflate-compressed can inflate to gigabytes inside `torch.load`
before anything is checked. This module is the one place that knows the expected shape:

- `check_archive` looks at the zip directory of a torch file (no tensor is read) and refuses
  storages that add up to more than any supported architecture needs, or that are compressed
  (torch never compresses them; a high ratio is a memory bomb);
- `checkpoint_metadata` / `state_dict_of` / `resume_payload` validate the loaded objects.

Every refusal is a `CheckpointError` naming the file and the field.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from segstudio.core.errors import CheckpointError

__all__ = [
    "MAX_MODEL_BYTES",
    "MAX_STORAGE_BYTES",
    "check_archive",
    "checkpoint_metadata",
    "resume_payload",
    "state_dict_of",
]

#: Parameter + buffer bytes of the largest architecture SegStudio builds (deeplabv2_resnet101 with
#: 256 classes: 235 MiB; tests/ml/test_checkpoint_schema.py builds every arch to keep this true).
MAX_MODEL_BYTES = 256 * 2**20
#: A resume file holds the model and the optimizer (AdamW: two moments per weight), plus small state.
MAX_STORAGE_BYTES = 4 * MAX_MODEL_BYTES + 64 * 2**20
#: torch.save stores tensors uncompressed; a re-zipped file compresses float weights ~1.1x.
_MAX_RATIO = 20


def check_archive(path: Path, limit: int = MAX_STORAGE_BYTES) -> None:
    """Refuse a torch zip file whose declared tensor data is too large or bomb-compressed.

    Legacy (non-zip) torch files are not compressed, so their size on disk bounds the memory."""
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {error}; is it a PyTorch weights file?"
        ) from None
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.compress_type != zipfile.ZIP_STORED and ratio > _MAX_RATIO and info.file_size > 2**20:
            raise CheckpointError(
                f"refused to load {path}: its entry {info.filename} inflates {info.compress_size:,} bytes to "
                f"{info.file_size:,} ({ratio:.0f}x); PyTorch never writes compressed tensors, so this file "
                "was built to exhaust memory. Use a checkpoint saved by SegStudio or PyTorch"
            )
    if total > limit:
        raise CheckpointError(
            f"refused to load {path}: it declares {total / 2**20:,.0f} MiB of data, more than any model "
            f"SegStudio builds can hold ({limit / 2**20:,.0f} MiB); is it the right file?"
        )


def _number(value: object) -> bool:
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an int of 400 digits (torch.save keeps Python ints as they are)
        return False


def state_dict_of(obj: Any, path: Path, what: str = "state_dict") -> dict[str, torch.Tensor]:
    """`obj` as a {text key: tensor} dict, or CheckpointError."""
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"checkpoint {path}: {what} must be a non-empty mapping of weights; re-export it"
        )
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(
                f"checkpoint {path}: {what} has a key {key!r} that is not text; re-export it"
            )
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"checkpoint {path}: {what}[{key!r}] is {type(value).__name__}, not a tensor; re-export it"
            )
    return dict(obj)


def _classes(value: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or len(value) > 255:
        raise CheckpointError(
            f"checkpoint {path}: 'classes' must be a list of 1 to 255 classes; re-export it"
        )
    classes = []
    for number, item in enumerate(value):
        where = f"checkpoint {path}: class {number}"
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise CheckpointError(f"{where} must be an object with a text 'name'; re-export it")
        color = item.get("color", (0, 0, 0))
        if (
            not isinstance(color, (list, tuple))
            or len(color) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
        ):
            raise CheckpointError(
                f"{where} ({item['name']!r}): 'color' must be 3 integers 0-255; re-export it"
            )
        classes.append({"name": item["name"], "color": [int(c) for c in color]})
    return classes


def _metrics(value: Any, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    ok = isinstance(value, Mapping) and all(
        isinstance(k, str)
        and (
            v is None
            or _number(v)
            or (
                isinstance(v, Mapping)
                and all(isinstance(a, str) and (b is None or _number(b)) for a, b in v.items())
            )
        )
        for k, v in value.items()
    )
    if not ok:
        raise CheckpointError(
            f"checkpoint {path}: 'metrics' must map names to finite numbers (or to such maps); re-export it"
        )
    return dict(value)


def _mapping(value: Any, path: Path, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise CheckpointError(f"checkpoint {path}: '{field}' must be an object with text keys; re-export it")
    return dict(value)


def _text(value: Any, path: Path, field: str) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 200):
        raise CheckpointError(
            f"checkpoint {path}: '{field}' must be text, got {type(value).__name__}; re-export it"
        )
    return value


def checkpoint_metadata(obj: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The checked fields of a SegStudio checkpoint dict (its `format` already recognised)."""
    return {
        "arch": _text(obj.get("arch"), path, "arch"),
        "classes": _classes(obj.get("classes"), path),
        "state_dict": state_dict_of(obj.get("state_dict"), path),
        "provenance": _mapping(obj.get("provenance"), path, "provenance"),
        "metrics": _metrics(obj.get("metrics"), path),
        "version": _text(obj.get("version"), path, "version"),
        "parent": _text(obj.get("parent"), path, "parent"),
        "extra": _mapping(obj.get("extra"), path, "extra"),
    }


def _whole(value: Any, path: Path, field: str, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"resume state {path}: '{field}' must be a whole number >= 0; start a new run")
    return value


def resume_payload(obj: Any, path: Path) -> dict[str, Any]:
    """A `resume.pt` payload with every field `RunState.load`/`restore` reads checked."""
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise CheckpointError(
            f"resume state {path} is {type(obj).__name__}, not a saved run; start a new run"
        )
    payload = dict(obj)
    for field in ("fingerprint", "arch"):
        if not isinstance(payload.get(field), str):
            raise CheckpointError(f"resume state {path}: '{field}' must be text; start a new run")
    _whole(payload.get("epoch"), path, "epoch")
    _whole(payload.get("iteration"), path, "iteration")
    _whole(payload.get("bad_epochs"), path, "bad_epochs", default=0)
    if not _number(payload.get("elapsed")):
        raise CheckpointError(f"resume state {path}: 'elapsed' must be a number of seconds; start a new run")
    for field in ("best_miou", "baseline_miou"):
        if payload.get(field) is not None and not _number(payload[field]):
            raise CheckpointError(f"resume state {path}: '{field}' must be a number; start a new run")
    if payload.get("best_epoch") is not None:
        _whole(payload["best_epoch"], path, "best_epoch")
    _metrics(payload.get("best_metrics"), path)
    if payload.get("history") is not None and not isinstance(payload["history"], list):
        raise CheckpointError(f"resume state {path}: 'history' must be a list; start a new run")
    for field in ("baseline_cms", "best_cms"):
        if payload.get(field) is not None and not isinstance(payload[field], torch.Tensor):
            raise CheckpointError(f"resume state {path}: '{field}' must be a tensor; start a new run")
    state_dict_of(payload.get("model"), path, "model")
    for field in ("optimizer", "scaler"):
        _mapping(payload.get(field), path, field)
    if "rng" in payload and not (
        isinstance(payload["rng"], torch.Tensor) and payload["rng"].dtype == torch.uint8
    ):
        raise CheckpointError(f"resume state {path}: 'rng' must be a byte tensor; start a new run")
    return payload
