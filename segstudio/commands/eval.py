"""`segstudio eval`: a model version's metrics on the project's done images (val split by default)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="image folder of the project")
    parser.add_argument("--project-dir", help="the project's state folder, if not PROJECT/.segstudio")
    parser.add_argument("--version", help="model version to evaluate (default: the active one)")
    parser.add_argument(
        "--split", choices=("val", "train", "all"), default="val", help="which done images (default val)"
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument(
        "--max-side",
        type=int,
        help="cap images' long side (default: the cap the version was trained with, else 1024)",
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument(
        "--crf",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also score with and without the project's dense CRF at image resolution "
        "(default: when the project's CRF is on)",
    )


def format_table(metrics: dict[str, Any], title: str) -> str:
    """The metrics as a plain-text table: per-class IoU, then the summary numbers."""

    def pct(value: float | None) -> str:
        return "   n/a" if value is None else f"{100 * value:6.2f}"

    per_class = metrics.get("per_class_iou", {})
    width = max([len("class")] + [len(name) for name in per_class])
    lines = [title, f"{'class':<{width}}  IoU %", f"{'-' * width}  ------"]
    lines += [f"{name:<{width}}  {pct(iou)}" for name, iou in per_class.items()]
    lines += [f"{'-' * width}  ------"]
    for key, label in (
        ("pixel_accuracy", "pixel acc"),
        ("mean_pixel_accuracy", "mean acc"),
        ("miou", "mIoU"),
        ("fwiou", "FWIoU"),
    ):
        lines.append(f"{label:<{width}}  {pct(metrics.get(key))}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from segstudio.core.errors import ProjectError
    from segstudio.core.project import Project
    from segstudio.ml.augment import AugmentConfig, eval_transform
    from segstudio.ml.data import SegmentationDataset
    from segstudio.ml.device import pick_device
    from segstudio.ml.evaluate import evaluate, metrics_record
    from segstudio.ml.manifest import project_samples
    from segstudio.ml.predict import DEFAULT_MAX_SIDE
    from segstudio.ml.spec import ModelSpec
    from segstudio.ml.weights import load_model

    device = pick_device(args.device)
    with Project.open_for_reading(args.project, state_dir=args.project_dir) as project:
        version = args.version or (
            project.active_model_version().version if project.active_model_version() else None
        )
        if version is None:
            raise ProjectError(
                "the project has no model version yet; run `segstudio train` first or pass --version"
            )
        train, val = project_samples(project)
        samples = {"val": val, "train": train, "all": train + val}[args.split]
        if not samples:
            raise ProjectError(
                f"no done images with masks in the {args.split} split; mark corrected images as done"
            )
        loaded = load_model(
            ModelSpec(weights="project", version=version), project.scheme, device, project=project
        )
        norm = loaded.normalization
        max_side = (
            args.max_side if args.max_side is not None else loaded.max_side
        )  # as trained (0 = uncapped)
        max_side = DEFAULT_MAX_SIDE if max_side is None else max_side
        aug = AugmentConfig(max_side=max_side, mean=tuple(norm["mean"]), std=tuple(norm["std"]))  # type: ignore[arg-type]
        dataset = SegmentationDataset(samples, eval_transform(aug))
        cm = evaluate(loaded.model, dataset, project.scheme.num_classes, device)
        metrics = metrics_record(cm, project.scheme.names)
        crf_report = _crf_comparison(project, loaded, samples, max_side, args.crf)
    if args.json:
        print(
            json.dumps(
                {
                    "version": version,
                    "split": args.split,
                    "images": len(samples),
                    "max_side": max_side,
                    **metrics,
                    **({"crf": crf_report} if crf_report else {}),
                }
            )
        )
    else:
        cap = f"long side <= {max_side} px" if max_side > 0 else "full resolution"
        print(format_table(metrics, f"model {version} on {len(samples)} {args.split} image(s), {cap}"))
        if crf_report:
            print(_crf_lines(crf_report))
    return 0


def _crf_comparison(
    project: Any, loaded: Any, samples: list[Any], max_side: int, wanted: bool | None
) -> dict | None:
    """mIoU / boundary accuracy at image resolution without and with the project's CRF (None = not asked)."""
    from segstudio.core.images import load_image
    from segstudio.core.masks import load_mask
    from segstudio.ml.crf import load_params
    from segstudio.ml.crf_project import project_crf
    from segstudio.ml.crf_tune import ScoreAccumulator, TuneSample, labels_for
    from segstudio.ml.predict import Predictor

    params = project_crf(project)
    if wanted is False or (wanted is None and params is None):
        return None
    params = params or load_params(project)
    predictor = Predictor.from_loaded(loaded, max_side=max_side, coarse_probabilities=True)
    n = project.scheme.num_classes
    without, with_crf = ScoreAccumulator(n), ScoreAccumulator(n)
    for sample in samples:
        image = load_image(sample.image)
        truth = load_mask(sample.mask, image.shape[:2])
        item = TuneSample(sample.key, image, predictor.predict(image).coarse, truth)
        without.add(labels_for(item, None), truth)
        with_crf.add(labels_for(item, params), truth)
    names = list(project.scheme.names)
    return {
        "params": params.to_dict(),
        "no_crf": without.result().to_dict(names),
        "with_crf": with_crf.result().to_dict(names),
    }


def _crf_lines(report: dict) -> str:
    a, b = report["no_crf"], report["with_crf"]
    return (
        f"dense CRF at image resolution: mIoU {100 * a['miou']:.2f} -> {100 * b['miou']:.2f}, "
        f"boundary accuracy {100 * a['boundary_accuracy']:.2f} -> {100 * b['boundary_accuracy']:.2f}"
    )
