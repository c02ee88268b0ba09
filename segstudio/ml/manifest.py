"""The training manifest: what a training run trains on, as a small JSON file (no torch imported here).

Why a manifest: the GUI holds the project's exclusive lock, so the training child process must not
open the project. The parent writes a `TrainManifest` (image and mask paths per split, the label
scheme, the starting checkpoint, where to write, the settings) and `segstudio train --manifest`
consumes it. The plain CLI builds the same manifest in-process, so the trainer has one input.
Torch-free so the GUI can build one without paying torch's import.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from segstudio.core.atomic import atomic_write_json
from segstudio.core.errors import SegStudioError
from segstudio.core.hashing import sha256_file, sha256_json
from segstudio.core.schemes import LabelScheme

__all__ = [
    "BASE_KINDS",
    "MANIFEST_FORMAT",
    "BaseSpec",
    "ManifestError",
    "Sample",
    "TrainManifest",
    "file_digest",
    "manifest_from_project",
    "project_samples",
    "resolve_base",
]

MANIFEST_FORMAT = "segstudio-train-manifest"
BASE_KINDS = ("checkpoint", "torchvision", "auto", "scratch")


class ManifestError(SegStudioError):
    """A training manifest is missing, malformed, or describes no trainable data."""


@dataclass(frozen=True)
class Sample:
    """One image and its corrected mask (absolute paths); `key` identifies it (the project's rel_path)."""

    image: str
    mask: str
    key: str = ""
    image_hash: str = ""
    mask_hash: str = ""


@dataclass(frozen=True)
class BaseSpec:
    """The starting point: a checkpoint file, torchvision weights (strict or `auto` = when cached), or scratch."""

    kind: str = "auto"
    checkpoint: str | None = None
    version: str | None = None  # the project version the checkpoint is (becomes the new version's parent)

    def __post_init__(self) -> None:
        if self.kind not in BASE_KINDS:
            raise ManifestError(f"unknown base kind {self.kind!r}; choose one of: {', '.join(BASE_KINDS)}")
        if self.kind == "checkpoint" and not self.checkpoint:
            raise ManifestError("base kind 'checkpoint' needs a checkpoint path")


@dataclass
class TrainManifest:
    scheme: dict[str, Any]
    train: list[Sample]
    val: list[Sample]
    output_dir: str
    base: BaseSpec = field(default_factory=BaseSpec)
    arch: str | None = None  # None: the base checkpoint's arch, else the default arch
    version: str | None = None  # the name the new checkpoint will be registered under
    settings: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields

    def label_scheme(self) -> LabelScheme:
        return LabelScheme.from_dict(self.scheme)

    def fingerprint(self) -> str:
        """Identifies the training data: which images/masks (by content) and which classes."""
        payload = {
            "classes": [c["name"] for c in self.scheme.get("classes", [])],
            "train": sorted((s.key or s.image, s.image_hash, s.mask_hash) for s in self.train),
            "val": sorted((s.key or s.image, s.image_hash, s.mask_hash) for s in self.val),
        }
        return sha256_json(payload)[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "format_version": 1,
            "scheme": self.scheme,
            "train": [asdict(s) for s in self.train],
            "val": [asdict(s) for s in self.val],
            "output_dir": self.output_dir,
            "base": asdict(self.base),
            "arch": self.arch,
            "version": self.version,
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainManifest:
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ManifestError(
                'not a SegStudio training manifest (missing "format": "segstudio-train-manifest")'
            )
        try:
            return cls(
                scheme=dict(data["scheme"]),
                train=[Sample(**s) for s in data.get("train", [])],
                val=[Sample(**s) for s in data.get("val", [])],
                output_dir=str(data["output_dir"]),
                base=BaseSpec(**(data.get("base") or {})),
                arch=data.get("arch"),
                version=data.get("version"),
                settings=dict(data.get("settings") or {}),
            )
        except (KeyError, TypeError) as error:
            raise ManifestError(
                f"training manifest is malformed ({error}); re-create it from the project"
            ) from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainManifest:
        from segstudio.core.safe_json import load_json_file  # depth-limited: the file may come from elsewhere

        data = load_json_file(path, ManifestError, "re-create the training manifest from the project")
        return cls.from_dict(data)


def file_digest(path: str | os.PathLike[str]) -> str:
    """Short sha256 of a file's bytes (masks are small PNGs, so this is cheap)."""
    return sha256_file(path)[:16]


def project_samples(project: Any) -> tuple[list[Sample], list[Sample]]:
    """(train, val) samples: the project's `done` images that have a corrected mask, by its stable split."""
    from segstudio.core.project import Status

    train: list[Sample] = []
    val: list[Sample] = []
    for rec in project.images(status=Status.DONE):
        if rec.error or not project.has_mask(rec):
            continue
        mask_path = project.mask_path(rec)
        sample = Sample(
            image=str(project.image_file(rec)),
            mask=str(mask_path),
            key=rec.rel_path,
            image_hash=rec.content_hash,
            mask_hash=file_digest(mask_path),
        )
        (val if rec.split == "val" else train).append(sample)
    return train, val


def resolve_base(project: Any, base: str | None) -> BaseSpec:
    """`--base`: "active" (default: the active version, else torchvision weights when cached, else
    scratch), a version name ("v3"), "torchvision", "scratch", or a checkpoint file path."""
    base = (base or "active").strip()
    if base in ("active", "auto"):
        active = project.active_model_version()
        if active is None:
            return BaseSpec("auto")
        return BaseSpec("checkpoint", str(active.checkpoint_path), active.version)
    if base in ("torchvision", "scratch"):
        return BaseSpec(base)
    version = project.get_model_version(base)
    if version is not None:
        return BaseSpec("checkpoint", str(version.checkpoint_path), version.version)
    if Path(base).expanduser().is_file():
        return BaseSpec("checkpoint", str(Path(base).expanduser().absolute()), None)
    known = ", ".join(v.version for v in project.model_versions()) or "none yet"
    raise ManifestError(
        f"unknown base {base!r}: not a model version (known: {known}), not a file, and not one of "
        "active, torchvision, scratch"
    )


def manifest_from_project(
    project: Any,
    base: str | None = None,
    arch: str | None = None,
    settings: dict[str, Any] | None = None,
    version: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    min_val: int | None = None,
) -> TrainManifest:
    """The manifest for fine-tuning the project's model; output in `models/<version>/` by default.

    First tops the val split up to `min_val` images (default `selection.MIN_VAL_IMAGES`, 0 = off) so
    the before/after comparison is not decided by a handful of frames.
    """
    from segstudio.ml.selection import MIN_VAL_IMAGES, reserve_val_images

    team_samples = getattr(project, "training_samples", None)  # a team project: its accepted images
    if team_samples is not None:
        train, val = team_samples()  # splits are the lead's: no val top-up here
    else:
        reserve_val_images(project, MIN_VAL_IMAGES if min_val is None else min_val)
        train, val = project_samples(project)
    if not train:
        raise ManifestError(
            f"no training images: the project has {len(val)} done image(s) in the val split and none in train; "
            "mark more corrected images as done"
        )
    version = version or project.next_version_name()
    out = Path(output_dir) if output_dir is not None else Path(project.models_dir) / version
    return TrainManifest(
        scheme=project.scheme.to_dict(),
        train=train,
        val=val,
        output_dir=str(out.absolute()),
        base=resolve_base(project, base),
        arch=arch,
        version=version,
        settings=dict(settings or {}),
    )
