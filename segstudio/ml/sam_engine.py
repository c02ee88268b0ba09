"""The ``sam`` click engine: Segment Anything (Meta's `segment-anything` package) from a checkpoint
file the user picks. Never downloads anything.

Per image the ViT image encoder computes an embedding once (`prepare`, seconds on a CPU: it runs
on the smart tools' worker thread, and `prefetch` can fill the cache for the next images); every
click then only runs the small prompt decoder. Embeddings of the last few images are kept, so
going back to an image is instant. Checkpoints load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.build_sam import build_sam_vit_b, build_sam_vit_h, build_sam_vit_l
from segment_anything.modeling import Sam

from segstudio.core.errors import CheckpointError
from segstudio.core.interactive.engines import Engine, register_engine
from segstudio.core.interactive.prompts import Prompts

__all__ = ["SAM_ARCHS", "load_sam", "SAMEngine", "use_sam_checkpoint"]

#: encoder width -> (name, builder): the three published ViT sizes, told apart by their weights.
SAM_ARCHS: dict[int, tuple[str, Callable[..., Sam]]] = {
    768: ("vit_b", build_sam_vit_b),
    1024: ("vit_l", build_sam_vit_l),
    1280: ("vit_h", build_sam_vit_h),
}
CACHE_SIZE = 4  # image embeddings kept (ViT: 256x64x64 floats = 4 MB each)
SCRIBBLE_POINTS = 5  # a scribble becomes this many positive points along it


def load_sam(path: str | Path) -> Sam:
    """A SAM model from a checkpoint file (a state dict), its size read from the weights."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"SAM checkpoint {path} does not exist; pick the .pth file you downloaded")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means "not a plain state dict"
        raise CheckpointError(f"{path} is not a SAM checkpoint (a PyTorch state dict): {error}") from None
    pos = state.get("image_encoder.pos_embed") if isinstance(state, dict) else None
    if pos is None:
        raise CheckpointError(f"{path} has no SAM image encoder (image_encoder.pos_embed); is it a SAM ViT checkpoint?")
    width = int(pos.shape[-1])
    if width not in SAM_ARCHS:
        raise CheckpointError(f"{path}: unknown SAM encoder width {width}; supported: "
                              + ", ".join(f"{n} ({w})" for w, (n, _) in SAM_ARCHS.items()))
    model = SAM_ARCHS[width][1](checkpoint=None)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit SAM {SAM_ARCHS[width][0]}: {str(error)[:300]}") from None
    return model.eval()


class SAMEngine(Engine):
    name = "sam"
    handles_box = True

    def __init__(self, model: Sam, tolerance: float | None = None) -> None:
        super().__init__(tolerance)
        self.predictor = SamPredictor(model)
        self._cache: OrderedDict[int, tuple] = OrderedDict()

    @staticmethod
    def _key(image: np.ndarray) -> int:
        return hash((image.shape, image[::17, ::17].tobytes()))

    def _embed(self, image: np.ndarray) -> tuple:
        key = self._key(image)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        with torch.inference_mode():
            self.predictor.set_image(np.ascontiguousarray(image[..., :3]))
        p = self.predictor
        entry = (p.features, p.original_size, p.input_size)
        self._cache[key] = entry
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return entry

    def prefetch(self, images: list[np.ndarray]) -> None:
        """Embed upcoming images now (call from a worker thread) so opening them is instant."""
        current = self.image
        for image in images:
            self._embed(image)
        if current is not None:
            self._use(current)

    def _use(self, image: np.ndarray) -> None:
        p = self.predictor
        p.features, p.original_size, p.input_size = self._embed(image)
        p.is_image_set = True

    def prepare(self, image: np.ndarray, probabilities: np.ndarray | None = None) -> None:
        super().prepare(image, probabilities)
        self._use(self.image)

    def _region(self, prompts: Prompts, active_class: int, barrier: np.ndarray | None) -> np.ndarray:
        assert self.image is not None
        self._use(self.image)
        points = list(prompts.positives)
        for stroke in prompts.scribbles:
            idx = np.linspace(0, len(stroke) - 1, min(SCRIBBLE_POINTS, len(stroke))).round().astype(int)
            points += [stroke[i] for i in idx]
        labels = [1] * len(points) + [0] * len(prompts.negatives)
        points += list(prompts.negatives)
        coords = np.asarray(points, np.float32).reshape(-1, 2) if points else None
        box = None if prompts.box is None else np.asarray(prompts.box, np.float32)
        single = len(points) == 1 and box is None  # one click is ambiguous: take SAM's most confident mask
        with torch.inference_mode():
            masks, scores, _ = self.predictor.predict(
                point_coords=coords, point_labels=None if coords is None else np.asarray(labels),
                box=box, multimask_output=single)
        return masks[int(np.argmax(scores))].astype(bool)


def use_sam_checkpoint(path: str | Path) -> None:
    """Load a SAM checkpoint and make ``sam`` an engine choice (one model shared by all images)."""
    model = load_sam(path)
    engine: list[SAMEngine] = []

    def factory(tolerance: float | None = None) -> SAMEngine:
        if not engine:
            engine.append(SAMEngine(model, tolerance))
        return engine[0]  # one engine: its embedding cache serves every image

    register_engine("sam", factory)
