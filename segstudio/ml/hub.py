"""Torchvision's published weights, fetched by torchvision's own URL + cache (`TORCH_HOME/hub/checkpoints`).

We never let torchvision unpickle them itself (its loader passes `weights_only=False`): the file is
fetched through `torch.hub` and loaded with `weights_only=True`, like every other checkpoint.
Offline, the error says exactly which file to put where, or how to pass it with `--weights FILE`.
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path
from typing import Any

import torch
from torchvision.models._api import WeightsEnum

from segstudio.core.errors import CheckpointError, SegStudioError
from segstudio.core.task_handle import TaskHandle

__all__ = ["WeightsUnavailableError", "cache_path", "fetch_state_dict"]


class WeightsUnavailableError(SegStudioError):
    """Published weights are neither cached nor downloadable (typically: no internet)."""


def cache_path(weights: WeightsEnum) -> Path:
    """Where torch.hub caches this weights file (the URL's basename under TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def fetch_state_dict(weights: WeightsEnum, handle: TaskHandle | None = None) -> dict[str, Any]:
    """The state dict of `weights`, from the cache or downloaded (progress on stderr); safe loading only."""
    target = cache_path(weights)
    name = f"{type(weights).__name__}.{weights.name}"
    if handle is not None:
        verb = "loading" if target.exists() else "downloading"
        handle.set_status(f"{verb} torchvision weights {name}")
    try:
        return weights.get_state_dict(progress=True, check_hash=True, map_location="cpu", weights_only=True)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
        if target.exists():
            raise CheckpointError(
                f"cannot read cached weights {target}: {error}; delete it and retry"
            ) from None
        unavailable = WeightsUnavailableError(
            f"torchvision weights {name} are not cached and cannot be downloaded ({error}). "
            f"On a machine with internet, download {weights.url} and either copy it to {target} "
            f"or pass it with `--weights FILE`."
        )
        # The GUI words its own advice (menus, not `--weights`) from these.
        unavailable.weights_name, unavailable.url, unavailable.target = name, weights.url, str(target)
        raise unavailable from None
    except RuntimeError as error:  # hash mismatch, truncated file
        raise CheckpointError(
            f"torchvision weights file {target} is corrupt ({error}); delete it and retry"
        ) from None
    except Exception as error:  # pickle.UnpicklingError from weights_only=True
        raise CheckpointError(f"refused to load {target}: it is not a plain tensor file ({error})") from None
