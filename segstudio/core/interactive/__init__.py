"""Interactive segmentation tools as plain numpy/OpenCV functions (no Qt, no torch).

Every tool maps `(image, prompts, per-image state) -> region` (a boolean HxW array); writing the
region with the active class, under the protect mode, is `regions.paste_region` (for the benchmark
robot) or `MaskDocument.apply_region` (for the GUI, one undo step). The GUI and `bench/annotate.py`
call the same functions, so the benchmark measures what users get.
"""

from importlib import import_module
from typing import Any

#: name -> submodule; resolved on first access (PEP 562), so the GUI can import the light modules
#: (`polygon`, `wand`, `prompts`) at start-up without loading scikit-image and SciPy for the engines.
_EXPORTS = {
    "ENGINES": "engines", "Engine": "engines", "create_engine": "engines",
    "Prompts": "prompts",
    "keep_seeded": "regions", "paste_region": "regions",
    "ClickSession": "click_session",
    "Superpixels": "superpixels", "compute_superpixels": "superpixels", "superpixel_brush": "superpixels",
    "magic_wand": "wand",
}  # fmt: skip

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
