"""Generated "textured shapes" data: a segmentation task that is easy to learn but not trivial.

Why: the trainer's tests and benchmark need data that a small model learns from scratch on a CPU
in a couple of minutes (so a broken trainer fails visibly), with a second, *shifted* appearance to
prove fine-tuning adapts a model. Each class is a shape with its own colour and texture on a
textured background; the shifted style changes every colour and texture, so a model trained on
one style does poorly on the other until it is fine-tuned.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "SHAPE_CLASSES",
    "make_shapes_dataset",
    "make_shapes_sample",
    "shapes_scheme_dict",
    "write_shapes_manifest",
]

#: index -> class name of the generated masks
SHAPE_CLASSES: tuple[str, ...] = ("background", "disk", "square", "triangle")

# per style: RGB colour of background, disk, square, triangle
_STYLES = {
    "base": np.array([[110, 110, 100], [200, 50, 40], [40, 70, 200], [50, 170, 60]], dtype=np.float32),
    "shifted": np.array([[60, 90, 140], [230, 200, 60], [170, 60, 180], [90, 200, 200]], dtype=np.float32),
}


def _texture(rng: np.random.Generator, size: int, kind: int) -> np.ndarray:
    """A zero-mean HxW texture: stripes, checks or blotchy noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(4, 9)
    angle = rng.uniform(0, np.pi)
    if kind == 0:
        tex = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    elif kind == 1:
        tex = np.sign(np.sin(xx * 2 * np.pi / period) * np.sin(yy * 2 * np.pi / period))
    else:
        noise = rng.standard_normal((size // 4 + 1, size // 4 + 1)).astype(np.float32)
        tex = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    return tex.astype(np.float32)


def make_shapes_sample(
    rng: np.random.Generator, size: int = 64, style: str = "base"
) -> tuple[np.ndarray, np.ndarray]:
    """One (HxWx3 uint8 image, HxW uint8 mask) pair with 1-3 shapes on a textured background."""
    colours = _STYLES[style]
    texture_kind = {"base": (2, 0, 1, 0), "shifted": (0, 2, 2, 1)}[style]
    mask = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(1, 4))
        r = int(rng.integers(size // 7, size // 3))
        cx, cy = (int(v) for v in rng.integers(r // 2, size - r // 2, size=2))
        if cls == 1:
            cv2.circle(mask, (cx, cy), r, cls, thickness=-1)
        elif cls == 2:
            cv2.rectangle(mask, (cx - r, cy - r), (cx + r, cy + r), cls, thickness=-1)
        else:
            pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], dtype=np.int32)
            cv2.fillPoly(mask, [pts], cls)
    image = np.empty((size, size, 3), dtype=np.float32)
    brightness = rng.uniform(-20, 20)
    for cls in range(len(SHAPE_CLASSES)):
        region = mask == cls
        if not region.any():
            continue
        tex = _texture(rng, size, texture_kind[cls])
        colour = colours[cls] + rng.normal(0, 12, size=3)
        image[region] = colour[None, :] + (25 * tex[region])[:, None] + brightness
    image += rng.normal(0, 6, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def make_shapes_dataset(
    count: int, size: int = 64, style: str = "base", seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`count` reproducible samples (same seed, same data)."""
    rng = np.random.default_rng(seed)
    pairs = [make_shapes_sample(rng, size, style) for _ in range(count)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def shapes_scheme_dict() -> dict:
    """The label scheme of the generated masks (as `LabelScheme.to_dict()` data)."""
    colours = [(0, 0, 0), (220, 40, 40), (40, 80, 220), (40, 180, 60)]
    return {
        "name": "shapes",
        "classes": [{"name": n, "color": list(c)} for n, c in zip(SHAPE_CLASSES, colours)],
    }


def write_shapes_manifest(
    folder: str | os.PathLike[str],
    train: int,
    val: int,
    size: int = 64,
    style: str = "base",
    seed: int = 0,
    **manifest_fields: Any,
):
    """Write generated images + masks as PNG files under `folder` and return a `TrainManifest` for them.

    Extra keyword arguments go to the manifest (output_dir defaults to `folder/run`, plus base, arch,
    version, settings).
    """
    from segstudio.core.masks import save_mask
    from segstudio.ml.manifest import Sample, TrainManifest, file_digest

    root = Path(folder)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    images, masks = make_shapes_dataset(train + val, size, style, seed)
    samples = []
    for index, (image, mask) in enumerate(zip(images, masks)):
        name = f"{style}_{seed}_{index:04d}"
        image_path, mask_path = root / "images" / f"{name}.png", root / "masks" / f"{name}.png"
        cv2.imwrite(str(image_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        save_mask(mask_path, mask)
        samples.append(
            Sample(str(image_path), str(mask_path), name, file_digest(image_path), file_digest(mask_path))
        )
    manifest_fields.setdefault("output_dir", str(root / "run"))
    return TrainManifest(
        scheme=shapes_scheme_dict(), train=samples[:train], val=samples[train:], **manifest_fields
    )
