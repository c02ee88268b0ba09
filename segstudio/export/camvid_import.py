"""A CamVid / SegNet folder (`train/ trainannot/ val/ valannot/ test/ testannot/`) -> an ImportPlan.

Pairs come from `train.txt` / `val.txt` / `test.txt` ("image annotation" per line) when present,
else from every `<split>annot/*.png` with the image of the same stem in `<split>/`. SegNet's own
lists hold absolute paths from its Docker image (`/SegNet/CamVid/train/x.png`); each entry is read
as its last two parts (`train/x.png`) inside the dataset folder, through the containment check
(`core.paths.resolve_inside`), so no list can make the import read outside it; with
`allow_outside` (`--allow-outside`) an entry naming an existing file as written is read there. Values 0-10 are the CamVid classes, 11 (Unlabelled)
and 255 are void. SegStudio projects have train and val only: CamVid's test images join val, so
they are never trained on. A SegStudio export's manifest gives the images back their project paths.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from segstudio.core.errors import ExportError
from segstudio.core.paths import resolve_inside
from segstudio.core.schemes import UNLABELED, LabelScheme, camvid_scheme
from segstudio.export.camvid import CAMVID_NAMES, CAMVID_VOID
from segstudio.export.import_common import ImportPlan, map_values, original_names
from segstudio.export.index_import import Pair, find_image, read_list, samples_from_pairs

__all__ = ["preview_camvid"]

_SPLITS = {"train": "train", "val": "val", "test": "val"}


def _anchored(root: Path, entry: str, allow_outside: bool) -> Path:
    """A list entry as '<folder>/<file>' under root (see the module docstring); with `allow_outside`
    an entry that names an existing file as written is read there."""
    if allow_outside:
        written = resolve_inside(root, entry, allow_outside=True)
        if written.is_file():
            return written
    parts = PurePosixPath(entry.replace("\\", "/")).parts
    return resolve_inside(root, "/".join(parts[-2:]))


def _listed_pairs(
    root: Path, split: str, warnings: list[str], allow_outside: bool
) -> list[tuple[Path, Path]]:
    list_file = root / f"{split}.txt"
    if list_file.is_file():
        pairs = []
        for row in read_list(list_file):
            if len(row) != 2:
                raise ExportError(
                    f"{list_file}: expected 'image annotation' on each line, got {' '.join(row)!r}"
                )
            pairs.append((_anchored(root, row[0], allow_outside), _anchored(root, row[1], allow_outside)))
        return pairs
    pairs = []
    for mask in sorted((root / f"{split}annot").glob("*.png")):
        image = find_image(root / split, mask.stem)
        if image is None:
            warnings.append(f"{split}annot/{mask.name}: no image {split}/{mask.stem}.* (skipped)")
            continue
        pairs.append((image, mask))
    return pairs


def preview_camvid(
    source: str | Path, scheme: LabelScheme | None = None, allow_outside: bool = False
) -> ImportPlan:
    root = Path(source).expanduser().absolute()
    present = [s for s in _SPLITS if (root / f"{s}annot").is_dir() or (root / f"{s}.txt").is_file()]
    if not present:
        raise ExportError(f"no CamVid data in {root}; choose the folder that contains train/ and trainannot/")
    target = scheme or camvid_scheme()
    mapping = map_values(
        list(enumerate(CAMVID_NAMES[:-1])), target, by_name=True, void_values=(CAMVID_VOID, UNLABELED)
    )
    warnings: list[str] = []
    pairs: list[Pair] = []
    taken: set[str] = set()
    originals = original_names(
        root, "camvid", warnings
    )  # a SegStudio export: restore the project's file names
    for split in present:
        for image, mask in _listed_pairs(root, split, warnings, allow_outside):
            if not image.is_file() or not mask.is_file():
                warnings.append(f"{image.relative_to(root)} or {mask.relative_to(root)} is missing (skipped)")
                continue
            rel = originals.get(image.name) or (
                image.name if image.name.casefold() not in taken else f"{split}/{image.name}"
            )
            taken.add(rel.casefold())
            pairs.append(Pair(image, mask, rel, _SPLITS[split]))
    samples, seen, _ = samples_from_pairs(pairs, mapping.lut)
    return ImportPlan("camvid", root, target, mapping.rows + mapping.unknown_rows(seen), samples, warnings)
