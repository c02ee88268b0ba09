"""The ``sam`` click engine: Segment Anything (Meta's `segment-anything` package) or MobileSAM (its
TinyViT encoder, the `mobilesam-mirror` package) from a checkpoint file the user picks or fetched
by *Model → Get a SAM model…* (`segstudio.ml.sam_download`). Never downloads anything itself.

Two halves with different costs, run in different places:
- `SamRuntime.embed`: the ViT image encoder, once per image (seconds on a CPU). In the app the
  long-lived inference worker runs it in the background, for the image on screen first and then
  for the next images in browser order (`segstudio.ml.sam_cache` holds the plan and the bounded LRU).
- `SAMEngine.region`: the prompt encoder + mask decoder, per click (milliseconds), on the smart
  tools' side, from a cached embedding (`SAMEngine.attach`), never recomputing it.
`SAMEngine.prepare` embeds synchronously (through the same cache) for the CLI and the benchmarks.
Checkpoints load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.build_sam import build_sam_vit_b, build_sam_vit_h, build_sam_vit_l
from segment_anything.modeling import Sam

from segstudio.core.errors import CancelledError, CheckpointError, UsageError
from segstudio.core.interactive.engines import Engine, register_engine
from segstudio.core.interactive.prompts import Prompts
from segstudio.core.logs import timed
from segstudio.ml.checkpoint_schema import check_archive
from segstudio.ml.sam_cache import DEFAULT_MAX_BYTES, EmbeddingCache

__all__ = [
    "MOBILE_SAM_KEY",
    "SAM_ARCHS",
    "SAMEngine",
    "SamEmbedding",
    "SamRuntime",
    "content_key",
    "decoder_threads",
    "load_sam",
    "use_sam_checkpoint",
]

#: encoder width -> (name, builder): the three published ViT sizes, told apart by their weights.
SAM_ARCHS: dict[int, tuple[str, Callable[..., Sam]]] = {
    768: ("vit_b", build_sam_vit_b),
    1024: ("vit_l", build_sam_vit_l),
    1280: ("vit_h", build_sam_vit_h),
}
#: a key only MobileSAM's TinyViT encoder has (its first conv): the checkpoint is a ``vit_t``.
MOBILE_SAM_KEY = "image_encoder.patch_embed.seq.0.c.weight"
#: The largest SAM checkpoint (ViT-H) is 2.4 GiB; a file declaring more is not a SAM model.
MAX_SAM_BYTES = 3 * 2**30
SCRIBBLE_POINTS = 5  # a scribble becomes this many positive points along it


def decoder_threads() -> int:
    """CPU threads for a click's decoder: half the cores, leaving the others to the inference worker,
    which may be embedding the next image at that moment. The decoder's small matrices gain little
    from more threads: on the shared 2-core machine one thread decoded ~4x faster than two
    (`bench.sam`: `decode_ms_median` vs `decode_all_threads_ms_median`)."""
    return max(1, (os.cpu_count() or 2) // 2)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` intra-op threads; torch keeps this count per calling thread
    (OpenMP / MKL thread-local), so another thread's model is not affected."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_sam(path: str | Path) -> Sam:
    """A SAM model from a checkpoint file (a state dict), its size read from the weights."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"SAM checkpoint {path} does not exist; pick the .pth file you downloaded")
    check_archive(path, MAX_SAM_BYTES)  # declared sizes and compression, before torch.load inflates
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a SAM checkpoint (a PyTorch state dict): {error}") from None
    if isinstance(state, dict) and MOBILE_SAM_KEY in state:
        return _load_into(build_mobile_sam(), state, path, "vit_t (MobileSAM)")
    pos = state.get("image_encoder.pos_embed") if isinstance(state, dict) else None
    if pos is None:
        raise CheckpointError(
            f"{path} has no SAM image encoder (image_encoder.pos_embed or MobileSAM's TinyViT);"
            " is it a SAM or MobileSAM checkpoint?"
        )
    width = int(pos.shape[-1])
    if width not in SAM_ARCHS:
        raise CheckpointError(
            f"{path}: unknown SAM encoder width {width}; supported: "
            + ", ".join(f"{n} ({w})" for w, (n, _) in SAM_ARCHS.items())
        )
    return _load_into(SAM_ARCHS[width][1](checkpoint=None), state, path, SAM_ARCHS[width][0])


def build_mobile_sam() -> Sam:
    """MobileSAM (``vit_t``): SAM's prompt encoder and mask decoder behind a 5.7M-parameter TinyViT
    encoder, with random weights. Imported here, not at module import: ``mobile_sam`` pulls timm."""
    with warnings.catch_warnings():  # mobile_sam imports timm's deprecated paths and re-registers
        warnings.simplefilter("ignore")  # timm's TinyViT names: noise to a user, nothing to act on
        from mobile_sam import sam_model_registry

    return sam_model_registry["vit_t"](checkpoint=None)


def _load_into(model: Sam, state: dict, path: Path, name: str) -> Sam:
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit SAM {name}: {str(error)[:300]}") from None
    return model.eval()


def encoder_blocks(encoder: torch.nn.Module) -> list[torch.nn.Module]:
    """The encoder's transformer/conv blocks, where a cancelled embedding may stop: ViT's ``blocks``
    (12 in ViT-B) or TinyViT's ``layers[i].blocks`` (12 in MobileSAM: 2 MBConv, 10 attention)."""
    if hasattr(encoder, "blocks"):
        return list(encoder.blocks)
    return [block for layer in getattr(encoder, "layers", []) for block in layer.blocks]


@dataclass(frozen=True)
class SamEmbedding:
    """What SAM's decoder needs from the encoder: the features and the resize geometry."""

    features: torch.Tensor  # (1, 256, 64, 64) float32: 4 MiB
    original_size: tuple[int, int]
    input_size: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return self.features.element_size() * self.features.nelement()


def content_key(image: np.ndarray) -> tuple[str, str]:
    """A cache key from the pixels themselves, for callers without a project path (CLI, benchmarks)."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16)
    return ("pixels", f"{image.shape}:{digest.hexdigest()}")


class SamRuntime:
    """One loaded SAM model and its embedding cache, shared by the inference worker (encoder) and
    the smart tools (decoder): the two halves are separate sub-modules, so they may run at once."""

    def __init__(self, model: Sam, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.model = model
        self.cache = EmbeddingCache(max_bytes)
        self.computed = 0  # encoder passes run (tests and the benchmark count them)
        self._encoder = SamPredictor(model)
        self._lock = threading.Lock()  # the encoding predictor holds per-image state

    @timed("SAM embedding")
    def embed(
        self, key: tuple[str, str], image: np.ndarray, should_stop: Callable[[], bool] | None = None
    ) -> SamEmbedding:
        """The cached embedding of `key`, computed from `image` (HxWx3 uint8) when missing.

        `should_stop` is polled before each encoder block (12 in ViT-B, 12 in MobileSAM): when it says yes the pass ends
        with `CancelledError`, so the worker can switch to the image the user moved to (or quit)
        within a fraction of an embedding instead of finishing a stale one."""
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        with self._lock:
            hit = self.cache.get(key)  # another thread may have computed it while we waited
            if hit is not None:
                return hit
            p = self._encoder
            hooks = (
                []
                if should_stop is None
                else [
                    block.register_forward_pre_hook(lambda _m, _i: _stop_if(should_stop))
                    for block in encoder_blocks(self.model.image_encoder)
                ]
            )
            try:
                with torch.inference_mode():
                    p.set_image(np.ascontiguousarray(image[..., :3]))
                embedding = SamEmbedding(p.features, tuple(p.original_size), tuple(p.input_size))
            finally:
                for hook in hooks:
                    hook.remove()
                p.reset_image()
            self.computed += 1
        self.cache.put(key, embedding, embedding.nbytes)
        return embedding


def _stop_if(should_stop: Callable[[], bool]) -> None:
    if should_stop():
        raise CancelledError("SAM image embedding cancelled")


class SAMEngine(Engine):
    name = "sam"
    handles_box = True

    def __init__(
        self, runtime: SamRuntime, tolerance: float | None = None, threads: int | None = None
    ) -> None:
        super().__init__(tolerance)
        self.runtime = runtime
        self.threads = threads or decoder_threads()
        self.predictor = SamPredictor(runtime.model)  # decoding only; its features come from the cache
        self.embedding: SamEmbedding | None = None

    def prepare(self, image: np.ndarray, probabilities: np.ndarray | None = None) -> None:
        """Embed now (through the cache): the CLI/benchmark path; the app uses `attach`."""
        super().prepare(image, probabilities)
        assert self.image is not None
        self.attach(self.image, self.runtime.embed(content_key(self.image), self.image))

    def attach(self, image: np.ndarray, embedding: SamEmbedding) -> None:
        """Use an embedding computed elsewhere (the inference worker): no encoder pass here."""
        super().prepare(image)
        self.embedding = embedding
        p = self.predictor
        p.features, p.original_size, p.input_size = (
            embedding.features,
            embedding.original_size,
            embedding.input_size,
        )
        p.is_image_set = True

    @property
    def ready(self) -> bool:
        return self.embedding is not None

    def _region(self, prompts: Prompts, active_class: int, barrier: np.ndarray | None) -> np.ndarray:
        if self.embedding is None:
            raise UsageError("the SAM engine has no image embedding yet: call prepare() or attach() first")
        points = list(prompts.positives)
        for stroke in prompts.scribbles:
            idx = np.linspace(0, len(stroke) - 1, min(SCRIBBLE_POINTS, len(stroke))).round().astype(int)
            points += [stroke[i] for i in idx]
        labels = [1] * len(points) + [0] * len(prompts.negatives)
        points += list(prompts.negatives)
        coords = np.asarray(points, np.float32).reshape(-1, 2) if points else None
        box = None if prompts.box is None else np.asarray(prompts.box, np.float32)
        single = len(points) == 1 and box is None  # one click is ambiguous: take SAM's most confident mask
        with torch.inference_mode(), torch_threads(self.threads):
            masks, scores, _ = self.predictor.predict(
                point_coords=coords,
                point_labels=None if coords is None else np.asarray(labels),
                box=box,
                multimask_output=single,
            )
        return masks[int(np.argmax(scores))].astype(bool)


def use_sam_checkpoint(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> SamRuntime:
    """Load a SAM checkpoint and make ``sam`` an engine choice; every engine shares the returned
    runtime (one model, one embedding cache)."""
    runtime = SamRuntime(load_sam(path), max_bytes)

    def factory(tolerance: float | None = None) -> SAMEngine:
        return SAMEngine(runtime, tolerance)

    register_engine("sam", factory)
    return runtime
