"""Interactive segmentation tools as plain numpy/OpenCV functions (no Qt, no torch).

Every tool maps `(image, prompts, per-image state) -> region` (a boolean HxW array); writing the
region with the active class, under the protect mode, is `regions.paste_region` (for the benchmark
robot) or `MaskDocument.apply_region` (for the GUI, one undo step). The GUI and `bench/annotate.py`
call the same functions, so the benchmark measures what users get.
"""

from segstudio.core.interactive.engines import ENGINES, Engine, create_engine
from segstudio.core.interactive.prompts import Prompts
from segstudio.core.interactive.regions import keep_seeded, paste_region
from segstudio.core.interactive.session import ClickSession
from segstudio.core.interactive.superpixels import Superpixels, compute_superpixels, superpixel_brush
from segstudio.core.interactive.wand import magic_wand

__all__ = ["ENGINES", "Engine", "create_engine", "Prompts", "keep_seeded", "paste_region", "ClickSession",
           "Superpixels", "compute_superpixels", "superpixel_brush", "magic_wand"]
