"""Checkpoints and weight loading: our checkpoint format, safe loading, and the weights precedence.

A checkpoint is a dict of plain tensors and JSON-able values (see docs/architecture.md), so it loads
with `torch.load(weights_only=True)`; a pickle that carries code is refused with `CheckpointError`.
It records the classes it predicts; loading it for another scheme is refused unless the caller asks
to remap by class name (classifier rows of matching names are copied, the others start fresh).

`load_model(spec, scheme, device)` resolves `spec.weights`:
  "auto"        project checkpoint (active version) > torchvision published weights (VOC scheme only) > none
  "project"     a project model version (spec.version or the active one)
  "file"        a checkpoint file (ours, or a bare state dict such as torchvision's .pth)
  "torchvision" torchvision's COCO_WITH_VOC_LABELS_V1 weights (21 VOC classes), via TORCH_HOME
  "none"        random initialisation (seeded, so the same spec gives the same model)
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import pickle
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from segstudio import __version__
from segstudio.core.atomic import atomic_writer
from segstudio.core.errors import CheckpointError
from segstudio.core.hashing import sha256_file
from segstudio.core.schemes import VOC_CLASSES, ClassDef, LabelScheme
from segstudio.core.task_handle import TaskHandle
from segstudio.ml.augment import IMAGENET_MEAN, IMAGENET_STD
from segstudio.ml.checkpoint_schema import check_archive, checkpoint_metadata, state_dict_of
from segstudio.ml.models import ARCHS, DEFAULT_ARCH, ModelError, arch_info, build_model, class_dependent_keys
from segstudio.ml.spec import WEIGHT_SOURCES, ModelSpec

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "IMAGENET_NORMALIZATION",
    "Checkpoint",
    "LoadedModel",
    "apply_state_dict",
    "load_checkpoint",
    "load_model",
    "refuse_non_finite",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "segstudio-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
IMAGENET_NORMALIZATION: dict[str, list[float]] = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
_RANDOM_SEED = 0


@dataclass
class Checkpoint:
    """A loaded checkpoint. `arch`/`classes` are None for a bare state dict (no metadata)."""

    arch: str | None
    classes: list[dict[str, Any]] | None
    state_dict: dict[str, torch.Tensor]
    normalization: dict[str, list[float]] = field(default_factory=lambda: dict(IMAGENET_NORMALIZATION))
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    parent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def class_names(self) -> list[str] | None:
        return None if self.classes is None else [str(c["name"]) for c in self.classes]

    def scheme(self, name: str = "checkpoint") -> LabelScheme | None:
        """The label scheme the checkpoint was trained for (None for a bare state dict)."""
        if self.classes is None:
            return None
        return LabelScheme(name, tuple(ClassDef(str(c["name"]), tuple(c["color"])) for c in self.classes))


def _plain_json(value: Any) -> Any:
    """JSON-able copy (str subclasses, numpy scalars, paths become plain values) so weights_only can load it."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    model = getattr(model, "module", model)  # DistributedDataParallel / DataParallel wrapper
    return {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    arch: str,
    scheme: LabelScheme,
    metrics: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    version: str | None = None,
    parent: str | None = None,
    normalization: Mapping[str, list[float]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (a crash leaves the old file or the new one, never half of one).

    `extra` holds further weights_only-safe values (e.g. an optimizer state dict for resuming).
    """
    arch_info(arch)  # unknown arch -> ModelError before anything is written
    state = _plain_state_dict(model)
    refuse_non_finite(state, f"refused to save {path}")
    record = {
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "segstudio": __version__,
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "host": platform.node(),
    }
    record.update(dict(provenance or {}))
    record = _plain_json(record)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "arch": arch,
        "classes": [{"name": c.name, "color": list(c.color)} for c in scheme.classes],
        "normalization": {
            k: list(map(float, v)) for k, v in dict(normalization or IMAGENET_NORMALIZATION).items()
        },
        "state_dict": state,
        "provenance": record,
        "metrics": _plain_json(dict(metrics or {})),
        "version": version,
        "parent": parent,
        "extra": dict(extra or {}),
    }
    path = Path(path)
    with atomic_writer(path) as handle:
        torch.save(payload, handle)
    return path


def _unpickling_reason(error: Exception) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return f"it references {found.group(1)}" if found else "it is not a plain tensor file"


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def refuse_non_finite(state: Mapping[str, torch.Tensor], refused: str) -> None:
    """Raise CheckpointError("<refused>: ...") when a floating tensor of `state` holds NaN/inf.

    Checked on save (a diverged run must not leave a poisoned checkpoint, nor replace a good one)
    and on load (files from elsewhere): such weights predict garbage (or all one class) silently,
    and a fine-tune started from them could never recover.
    """
    bad = [
        name
        for name, tensor in state.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(
            f"{refused}: {len(bad)} weight tensor(s) contain NaN or infinite values ({shown}); "
            "the training diverged. Use an earlier version or retrain with a lower learning rate"
        )


def _require_finite(state: Mapping[str, torch.Tensor], path: Path) -> None:
    refuse_non_finite(state, f"refused to load {path}")


def _checked_normalization(value: Any, path: Path) -> dict[str, list[float]]:
    """mean/std of 3 finite numbers each, std > 0 (a zero or NaN std turns every input into NaN)."""
    try:
        if not isinstance(value, Mapping):
            raise TypeError(type(value).__name__)
        mean, std = [float(v) for v in value["mean"]], [float(v) for v in value["std"]]
        ok = len(mean) == len(std) == 3 and all(map(math.isfinite, mean + std)) and min(std) > 0
    except (KeyError, TypeError, ValueError, OverflowError, IndexError, RuntimeError):
        ok = False
    if not ok:
        raise CheckpointError(
            f"refused to load {path}: its normalization {str(value)[:80]} is not 3 finite means and 3 positive stds"
        )
    return {"mean": mean, "std": std}


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint with `weights_only=True`; bare state dicts (torchvision .pth files) are accepted."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    check_archive(path)  # declared tensor sizes, before torch.load inflates anything
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load {path}: it contains Python objects or code, not just tensors "
            f"({_unpickling_reason(error)}). "
            "Only load checkpoints saved by SegStudio or plain state dicts from a source you trust."
        ) from None
    except Exception as error:  # zip/EOF/format errors from a truncated or non-torch file
        raise CheckpointError(
            f"cannot read checkpoint {path}: {error}; is it a PyTorch weights file?"
        ) from None
    if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
        version = obj.get("format_version")
        if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format version {version!r}; this SegStudio reads up to "
                f"{CHECKPOINT_FORMAT_VERSION}; update SegStudio"
            )
        if not _is_state_dict(obj.get("state_dict")) or not isinstance(obj.get("classes"), list):
            raise CheckpointError(f"checkpoint {path} is incomplete (no state_dict or classes); re-export it")
        fields = checkpoint_metadata(obj, path)  # every field's type, before anything reads it
        _require_finite(fields["state_dict"], path)
        return Checkpoint(
            **fields,
            normalization=_checked_normalization(
                IMAGENET_NORMALIZATION if obj.get("normalization") is None else obj["normalization"], path
            ),
            path=path,
        )
    for key in ("state_dict", "model"):  # common wrappers, e.g. torchvision's reference trainer
        if isinstance(obj, Mapping) and _is_state_dict(obj.get(key)):
            obj = obj[key]
            break
    if _is_state_dict(obj):
        state = state_dict_of(obj, path)
        _require_finite(state, path)
        return Checkpoint(arch=None, classes=None, state_dict=state, path=path)
    raise CheckpointError(f"{path} is neither a SegStudio checkpoint nor a state dict of tensors")


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def apply_state_dict(
    model: nn.Module,
    arch: str,
    state: Mapping[str, torch.Tensor],
    source_names: list[str] | None,
    scheme: LabelScheme,
    remap_by_name: bool = False,
    where: str = "checkpoint",
) -> None:
    """Load `state` into `model` (built for `scheme`), checking or remapping the class rows."""
    state = _strip_prefix(state)
    target = model.state_dict()
    class_keys = class_dependent_keys(arch) & set(target)
    ckpt_classes = next((state[k].shape[0] for k in sorted(class_keys) if k in state), None)
    names = [n.casefold() for n in scheme.names]
    if source_names is None:  # bare state dict: only the class count can be checked
        if ckpt_classes is not None and ckpt_classes != scheme.num_classes:
            raise CheckpointError(
                f"{where} predicts {ckpt_classes} classes but the scheme {scheme.name!r} has "
                f"{scheme.num_classes}; use weights trained for this scheme"
            )
        same = True
    else:
        same = [n.casefold() for n in source_names] == names
        if not same and not remap_by_name:
            raise CheckpointError(
                f"{where} was trained for classes [{', '.join(source_names)}] but the scheme {scheme.name!r} "
                f"has [{', '.join(scheme.names)}]; choose a matching checkpoint or remap by class name "
                "(--remap-classes / remap_by_name=True)"
            )
    new_state: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in target:
            continue
        if key in class_keys and not same:
            assert source_names is not None
            rows = target[key].clone()
            lookup = {n.casefold(): i for i, n in enumerate(source_names)}
            matched = [(i, lookup[n]) for i, n in enumerate(names) if n in lookup]
            if not matched:
                raise CheckpointError(
                    f"{where} shares no class name with scheme {scheme.name!r}; nothing to remap"
                )
            for dst, src in matched:
                rows[dst] = value[src]
            value = rows
        elif value.shape != target[key].shape:
            raise CheckpointError(
                f"{where} does not fit arch {arch}: {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(target[key].shape)}; is it for another architecture?"
            )
        new_state[key] = value
    missing = [k for k in target if k not in new_state and not k.endswith("num_batches_tracked")]
    if missing:
        raise CheckpointError(
            f"{where} does not fit arch {arch}: {len(missing)} weights missing (e.g. {missing[:3]}); "
            "is it for another architecture?"
        )
    model.load_state_dict(new_state, strict=False)


@dataclass
class LoadedModel:
    """A model ready for inference and what to record about it."""

    model: nn.Module
    arch: str
    scheme: LabelScheme
    device: torch.device
    version: str  # recorded with every prediction ("v3", "torchvision:...", "file:...", "untrained:...")
    source: str  # "project" | "file" | "torchvision" | "none"
    description: str
    normalization: dict[str, list[float]] = field(default_factory=lambda: dict(IMAGENET_NORMALIZATION))
    #: the long-side cap the checkpoint was trained with (its provenance; 0 = none, full resolution), so
    #: inference sees images at the scale the model learned; None when unknown (torchvision, bare state dicts)
    max_side: int | None = None


def _training_max_side(provenance: Mapping[str, Any]) -> int | None:
    value = provenance.get("max_side")
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return 0 if value <= 0 else value if value >= 32 else None


def _is_voc(scheme: LabelScheme) -> bool:
    return [n.casefold() for n in scheme.names] == [n.casefold() for n in VOC_CLASSES]


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _active_version(project: Any) -> str | None:
    active = project.active_model_version()
    if active is None or isinstance(active, str):
        return active
    return _field(active, "version")


def _project_checkpoint(project: Any, version: str | None) -> tuple[str, Path]:
    version = version or _active_version(project)
    if version is None:
        raise CheckpointError(
            "the project has no active model version yet; fine-tune one or choose other weights"
        )
    for mv in project.model_versions():
        if _field(mv, "version") == version:
            path = Path(_field(mv, "checkpoint_path"))
            if not path.is_absolute():
                path = Path(project.models_dir) / path
            return version, path
    known = ", ".join(str(_field(mv, "version")) for mv in project.model_versions()) or "none"
    raise CheckpointError(f"the project has no model version {version!r}; its versions are: {known}")


def _file_tag(path: Path) -> str:
    return f"file:{path.name}:{sha256_file(path)[:8]}"


def _resolve_source(spec: ModelSpec, scheme: LabelScheme, project: Any) -> str:
    if spec.weights not in WEIGHT_SOURCES:
        raise ModelError(
            f"unknown weights source {spec.weights!r}; choose one of: {', '.join(WEIGHT_SOURCES)}"
        )
    if spec.weights != "auto":
        return spec.weights
    if project is not None and _active_version(project) is not None:
        return "project"
    if spec.path:
        return "file"
    arch = spec.arch or DEFAULT_ARCH
    if _is_voc(scheme) and arch_info(arch).published_weights is not None:
        return "torchvision"
    return "none"


def load_model(
    spec: ModelSpec,
    scheme: LabelScheme,
    device: torch.device | str = "cpu",
    remap_by_name: bool = False,
    project: Any = None,
    handle: TaskHandle | None = None,
    keep_aux: bool = False,
) -> LoadedModel:
    """Build the model `spec` describes for `scheme`, load its weights, move it to `device`, eval mode.

    The auxiliary head is dropped unless `keep_aux` (inference never uses it; it costs a forward pass).
    """
    device = torch.device(device)
    remap_by_name = remap_by_name or bool(getattr(spec, "remap_classes", False))
    source = _resolve_source(spec, scheme, project)
    normalization = dict(IMAGENET_NORMALIZATION)
    max_side: int | None = None
    if source in ("project", "file"):
        if source == "project":
            if project is None:
                raise CheckpointError("project weights were requested but no project is open")
            version, path = _project_checkpoint(project, spec.version)
            where = f"project model {version} ({path.name})"
        else:
            if not spec.path:
                raise CheckpointError("no weights file given; pass --weights FILE")
            path = Path(spec.path).expanduser()
            where = f"checkpoint {path}"
        ckpt = load_checkpoint(path)
        if source == "file":
            version = _file_tag(path)
        arch = ckpt.arch or spec.arch or DEFAULT_ARCH
        if ckpt.arch and spec.arch and ckpt.arch != spec.arch:
            raise CheckpointError(
                f"{where} is a {ckpt.arch} model, not {spec.arch}; drop --model or choose {ckpt.arch}"
            )
        has_aux = any(k.removeprefix("module.").startswith("aux_classifier.") for k in ckpt.state_dict)
        model = build_model(arch, scheme.num_classes, aux_loss=has_aux)
        source_names = ckpt.class_names
        if (
            getattr(spec, "classes_by_index", False)
            and source_names
            and len(source_names) == scheme.num_classes
        ):
            source_names = list(scheme.names)  # the project took over these classes: a rename keeps its row
        apply_state_dict(model, arch, ckpt.state_dict, source_names, scheme, remap_by_name, where)
        normalization = ckpt.normalization
        max_side = _training_max_side(ckpt.provenance)
        description = f"{arch}, {where}"
    elif source == "torchvision":
        arch = spec.arch or DEFAULT_ARCH
        info = arch_info(arch)
        if info.published_weights is None:
            with_weights = ", ".join(n for n, i in sorted(ARCHS.items()) if i.published_weights is not None)
            raise CheckpointError(
                f"torchvision publishes no pretrained weights for {arch}; choose one of {with_weights}, "
                "or use a checkpoint (--weights FILE) or no weights (--weights none)"
            )
        if not _is_voc(scheme):
            raise CheckpointError(
                f"torchvision's published weights predict the 21 Pascal VOC classes, but the scheme "
                f"{scheme.name!r} has {scheme.num_classes} classes ({', '.join(scheme.names[:6])}...); "
                "use a checkpoint trained for this scheme (--weights FILE), or --weights none and fine-tune"
            )
        from segstudio.ml.hub import fetch_state_dict

        weights = info.published_weights
        state = fetch_state_dict(weights, handle)
        model = build_model(
            arch, scheme.num_classes, aux_loss=any(k.startswith("aux_classifier.") for k in state)
        )
        apply_state_dict(model, arch, state, list(VOC_CLASSES), scheme, False, f"torchvision {weights}")
        version = f"torchvision:{arch}:{weights.name}"
        description = f"{arch}, torchvision {weights.name}"
    else:
        arch = spec.arch or DEFAULT_ARCH
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_RANDOM_SEED)
            model = build_model(arch, scheme.num_classes)
        version = f"untrained:{arch}"
        description = (
            f"{arch}, UNTRAINED (random weights: its predictions are meaningless; use a project model, "
            "torchvision's pretrained weights or a checkpoint file to get real ones)"
        )
    if not keep_aux and getattr(model, "aux_classifier", None) is not None:
        model.aux_classifier = None
    model.eval().to(device)
    return LoadedModel(model, arch, scheme, device, version, source, description, normalization, max_side)
