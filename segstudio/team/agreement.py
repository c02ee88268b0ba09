"""Agreement between two annotations of one image, and the reviewer's merge of them (pure numpy).

Agreement is the IoU of each class between annotation A and annotation B, computed with the project's
own metrics (`core.metrics`: B is scored against A; IoU is symmetric). Pixels void (UNLABELED) in either
annotation are left out: "not labelled" is no opinion, not a disagreement. The image's mIoU is the mean
over the classes present in either annotation. Over a project, the per-image confusion matrices are
summed (they are additive), so a class's project IoU weighs every pixel once.

The merge keeps every pixel the two agree on (or that only one of them labelled) and leaves the pixels
they disagree on UNLABELED, so the reviewer sees exactly what is disputed (in the void colour) and
paints only that; accepted as is, the disputed pixels are ignored in training and evaluation.

A reviewer may trust one annotator per class (`choices`: class -> "A" or "B"). A chosen class claims
every pixel that either annotator labelled as it, and there the result is the chosen annotator's
labelling, void included ("A's car outline is the truth": A's car pixels stay car, B's car pixels that
A labelled otherwise take A's label, or void where A left them unlabelled). A pixel claimed by two
choices that name different annotators (A says car, trusted for car; B says road, trusted for road) is
a conflict between the reviewer's own choices and is left void, like any dispute. Unclaimed pixels
follow the merge rule above. So every pixel of the result is A's label, B's label or void, and a chosen
class appears exactly where its chosen annotator drew it and no other choice contests it; choosing A for
every class gives A's annotation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from segstudio.core.metrics import SegmentationMetrics, confusion_matrix
from segstudio.core.schemes import UNLABELED

__all__ = ["Agreement", "agreement_of", "merge_annotations", "pair_confusion", "summarize"]


def pair_confusion(a: np.ndarray, b: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = A's class, columns = B's, over pixels both labelled."""
    if a.shape != b.shape:
        raise ValueError(f"the two annotations differ in size: {a.shape} and {b.shape}")
    both = np.where(b == UNLABELED, UNLABELED, a)  # void in either: not counted (void target is ignored)
    return confusion_matrix(np.where(both == UNLABELED, 0, b), both, num_classes, UNLABELED)


@dataclass(frozen=True)
class Agreement:
    """IoU per class present (by name), their mean, and the pixels counted / disputed."""

    per_class: dict[str, float]
    miou: float | None
    pixels: int  # labelled in both
    disputed: int  # labelled in both, differently

    @classmethod
    def from_confusion(cls, cm: np.ndarray, names: Sequence[str]) -> Agreement:
        metrics = SegmentationMetrics.from_confusion(cm)
        per_class = {
            str(names[i]) if i < len(names) else str(i): round(float(v), 4)
            for i, v in enumerate(metrics.per_class_iou)
            if np.isfinite(v)
        }
        total = int(cm.sum())
        miou = None if not per_class else round(float(metrics.miou), 4)
        return cls(per_class, miou, total, total - int(np.trace(cm)))

    def to_dict(self) -> dict[str, object]:
        return {"miou": self.miou, "per_class_iou": self.per_class, "pixels": self.pixels,
                "disputed_pixels": self.disputed}  # fmt: skip


def agreement_of(a: np.ndarray, b: np.ndarray, names: Sequence[str]) -> tuple[Agreement, np.ndarray]:
    """The agreement of two masks and its confusion matrix (to be summed over a project)."""
    cm = pair_confusion(a, b, len(names))
    return Agreement.from_confusion(cm, names), cm


#: Claim codes of a class choice, as bits: a pixel claimed by both annotators' choices has both set.
_CLAIM = {"A": 1, "B": 2}


def merge_annotations(
    a: np.ndarray, b: np.ndarray, choices: Mapping[int, str] | None = None
) -> tuple[np.ndarray, int]:
    """(merged mask, pixels left to paint): agreement kept, one-sided labels kept, disagreement left void;
    `choices` (class index -> "A" or "B") hands each chosen class to one annotator (module docstring).
    Pixels left to paint: void in the result although at least one annotator labelled them (without
    choices, exactly the disputed pixels)."""
    if a.shape != b.shape:
        raise ValueError(f"the two annotations differ in size: {a.shape} and {b.shape}")
    merged = np.where(a == UNLABELED, b, a)
    merged[(a != b) & (a != UNLABELED) & (b != UNLABELED)] = UNLABELED
    if choices:
        claim_of = np.zeros(256, np.uint8)  # class value -> claim bits; void (255) claims nothing
        for cls, who in choices.items():
            if who not in _CLAIM or not 0 <= int(cls) < UNLABELED:
                raise ValueError(f"a class choice is a class index and 'A' or 'B', not {cls!r}: {who!r}")
            claim_of[int(cls)] = _CLAIM[who]
        claims = claim_of[a] | claim_of[b]
        merged = np.where(claims == _CLAIM["A"], a, merged)
        merged = np.where(claims == _CLAIM["B"], b, merged)
        merged[claims == _CLAIM["A"] | _CLAIM["B"]] = UNLABELED
    left = (merged == UNLABELED) & ((a != UNLABELED) | (b != UNLABELED))
    return merged.astype(np.uint8), int(left.sum())


def summarize(
    items: Iterable[tuple[str, str, Agreement, np.ndarray]], names: Sequence[str]
) -> dict[str, object]:
    """Project figures from (annotator A, annotator B, image agreement, confusion) of each compared image:
    per class (pooled confusion) and per annotator pair (images, mean image mIoU, pooled mIoU)."""
    pooled = np.zeros((len(names), len(names)), np.int64)
    pairs: dict[tuple[str, str], list[tuple[Agreement, np.ndarray]]] = {}
    for a, b, agreement, cm in items:
        pooled += cm
        pairs.setdefault(tuple(sorted((a, b))), []).append((agreement, cm))  # type: ignore[arg-type]
    overall = Agreement.from_confusion(pooled, names)
    by_pair = []
    for (a, b), found in sorted(pairs.items()):
        scored = [g.miou for g, _ in found if g.miou is not None]
        pair_cm = np.sum([cm for _, cm in found], axis=0)
        by_pair.append({
            "annotators": [a, b],
            "images": len(found),
            "mean_image_miou": round(float(np.mean(scored)), 4) if scored else None,
            "pooled_miou": Agreement.from_confusion(pair_cm, names).miou,
        })  # fmt: skip
    return {"miou": overall.miou, "per_class_iou": overall.per_class, "pairs": by_pair}
