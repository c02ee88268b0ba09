"""Fine-tuning a team project: the training set is the **accepted** images (a reviewer's verdict on the
current mask version), their masks fetched from the server into this machine's cache, so any member or a
GPU box under torchrun trains on exactly what the team signed off. The new version goes back to the
server (schema 3 lets every member store one); only a lead activates it (a team setting).
"""

from __future__ import annotations

from typing import Any

from segstudio.core.errors import ProjectError

__all__ = ["accepted_samples", "next_version_name", "require_lead_to_activate"]


def accepted_samples(project: Any) -> tuple[list[Any], list[Any]]:
    """(train, val) samples of the accepted images, split by the project's stable split."""
    from segstudio.core.atomic import atomic_write_bytes
    from segstudio.ml.manifest import Sample, file_digest

    accepted = {i for i, r in project.verdicts().items() if r.verdict == "accepted"}
    rows = project._rows(
        "SELECT i.id, v.png FROM segstudio.images i JOIN segstudio.mask_versions v ON v.id = i.mask_head "
        "WHERE v.png IS NOT NULL AND i.removed_at IS NULL"
    )
    pngs = {int(i): bytes(png) for i, png in rows if int(i) in accepted}
    folder = project.state_dir / "train-masks"
    folder.mkdir(parents=True, exist_ok=True)
    train: list[Any] = []
    val: list[Any] = []
    for rec in project.images():
        if rec.id not in pngs or rec.error:
            continue
        mask = folder / f"{rec.id}.png"
        atomic_write_bytes(mask, pngs[rec.id])
        sample = Sample(
            image=str(project.image_file(rec)),
            mask=str(mask),
            key=rec.rel_path,
            image_hash=rec.content_hash,
            mask_hash=file_digest(mask),
        )
        (val if rec.split == "val" else train).append(sample)
    if not train:
        raise ProjectError(
            f"no accepted images to train on ({len(val)} accepted in the val split, none in train): a reviewer "
            "or lead accepts finished images first (Team -> Accept this image)"
        )
    return train, val


def next_version_name(project: Any) -> str:
    """v1, v2, ... after the highest `vN` on the server."""
    import re

    numbers = [int(m.group(1)) for v in project.model_versions() if (m := re.fullmatch(r"v(\d+)", v.version))]
    return f"v{max(numbers, default=0) + 1}"


def require_lead_to_activate(project: Any) -> None:
    """Refuse before training, not after: activating is a lead's decision (the server enforces it too)."""
    if project.role != "lead":
        raise ProjectError(
            f"{project.member} is a {project.role}: only a lead activates a model version. Train without "
            "--activate yes; your lead runs `segstudio team activate FOLDER --db URL VERSION`"
        )
