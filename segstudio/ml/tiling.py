"""Sliding-window geometry, blending weights and memory-bounded bilinear upsampling.

Why tiles: a forward pass on a 4000x3000 image needs several GB of activations; tiles of a fixed
size bound that, and an overlap with weights that ramp down towards a neighbouring tile's edge hides
the seams (a pixel near a tile border sees a truncated context, so it gets little weight there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

__all__ = ["Tile", "iter_upsampled_bands", "tile_grid", "tile_weight"]


@dataclass(frozen=True)
class Tile:
    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


def _starts(length: int, size: int, overlap: int) -> list[int]:
    if length <= size:
        return [0]
    stride = max(1, size - overlap)
    starts = list(range(0, length - size, stride))
    starts.append(length - size)
    return starts


def tile_grid(height: int, width: int, size: int, overlap: int) -> list[Tile]:
    """Windows of at most `size` x `size` covering the image, neighbours overlapping by >= `overlap` px."""
    return [
        Tile(top, left, min(size, height), min(size, width))
        for top in _starts(height, size, overlap)
        for left in _starts(width, size, overlap)
    ]


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    weight = torch.ones(length)
    n = min(overlap, length // 2)
    if n > 0:
        ramp = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        if ramp_start:
            weight[:n] = ramp
        if ramp_end:
            weight[length - n :] = ramp.flip(0)
    return weight


def tile_weight(tile: Tile, height: int, width: int, overlap: int) -> torch.Tensor:
    """(h, w) blending weight: linear ramps only on sides shared with another tile (never at the image border)."""
    wy = _ramp(tile.height, overlap, tile.top > 0, tile.top + tile.height < height)
    wx = _ramp(tile.width, overlap, tile.left > 0, tile.left + tile.width < width)
    return wy[:, None] * wx[None, :]


def _source_coords(
    out_size: int, in_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear sampling positions with align_corners=False (the same mapping as F.interpolate)."""
    scale = in_size / out_size
    pos = ((torch.arange(out_size, device=device, dtype=torch.float32) + 0.5) * scale - 0.5).clamp(min=0)
    low = pos.floor().long().clamp(max=in_size - 1)
    high = (low + 1).clamp(max=in_size - 1)
    frac = (pos - low.float()).clamp(0, 1)
    return low, high, frac


def iter_upsampled_bands(
    probs: torch.Tensor, height: int, width: int, band_rows: int = 256
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first_row, (C, rows, width) band) of `probs` (C, h, w) bilinearly resized to (height, width).

    Equivalent to F.interpolate(..., mode="bilinear", align_corners=False) on the whole map, but only
    one band of full-resolution values exists at a time, so a 4000x3000 output never needs C x 12 MP floats.
    """
    _, h, w = probs.shape
    if (h, w) == (height, width):  # views, no temporaries: one band is fastest (strided slices reduce slowly)
        yield 0, probs
        return
    y0, y1, fy = _source_coords(height, h, probs.device)
    x0, x1, fx = _source_coords(width, w, probs.device)
    for top in range(0, height, band_rows):
        rows = slice(top, min(top + band_rows, height))
        a = probs[:, y0[rows]]
        b = probs[:, y1[rows]]
        wy = fy[rows][None, :, None]
        vertical = a + (b - a) * wy
        left = vertical[:, :, x0]
        right = vertical[:, :, x1]
        yield top, left + (right - left) * fx[None, None, :]
