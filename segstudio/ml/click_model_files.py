"""Where a model version keeps its click model (torch-free: the GUI and the CLI ask without loading torch).

A version's click model lives next to its checkpoint (`models/<version>/click_model.pt`), so a
version carries its click model and making an older version active (rollback) restores both.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CLICK_MODEL_NAME", "click_model_path"]

CLICK_MODEL_NAME = "click_model.pt"


def click_model_path(checkpoint: str | Path | None) -> Path | None:
    """The click model stored with the checkpoint `checkpoint` (a version's best.pt), if there is one."""
    if checkpoint is None:
        return None
    path = Path(checkpoint).parent / CLICK_MODEL_NAME
    return path if path.is_file() else None
