"""What the smart tools (gui/smart_tools.py, core/interactive/click_session.py) ask of a click engine.

Why a Protocol next to the `Engine` base class: an engine may come from anywhere (`register_engine`
from `ml/` - SAM, the CRF engine - or a plugin) and need not inherit `Engine`; this is the whole
contract the GUI relies on, checked for every registered engine by
`tests/core/interactive/test_engine_protocol.py`. Engine-specific extras (SAM's `attach`, the superpixel
engine's `superpixels`) are used only after narrowing to that engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from segstudio.core.interactive.prompts import Prompts

__all__ = ["ClickEngine"]


@runtime_checkable
class ClickEngine(Protocol):
    name: str
    needs_probabilities: bool  # `prepare` needs the image's stored class probabilities
    handles_box: bool  # False: a box prompt goes to GrabCut's rectangle mode
    object_bounded: bool  # True: its region is one object by construction (no click-window limit)

    def prepare(self, image: np.ndarray, probabilities: np.ndarray | None = None) -> None:
        """Per-image precomputation (the slow part; the GUI runs it off the GUI thread)."""

    @property
    def ready(self) -> bool:
        """`prepare` (or an equivalent, e.g. SAM's `attach`) has run: `region` may be called."""

    def region(self, prompts: Prompts, active_class: int = 0, labels: np.ndarray | None = None) -> np.ndarray:
        """Boolean HxW region the prompts describe (empty without a positive prompt)."""
