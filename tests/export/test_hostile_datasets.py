"""Hostile datasets: an import reads only inside its source and writes only inside the new project;
an export writes only inside its target, whatever the files say.

Every test snapshots the whole surrounding folder (type, size, mtime, SHA-256, link target of
every entry) before and after, and compares everything outside the one folder allowed to change.
The attacks cover classes, not single examples: absolute paths (POSIX, drive, UNC), `..` climbing
(plain, hidden behind a folder `a/../../x`, with backslashes), control characters, surrogate
text, percent-encoding, names that are `..` themselves, symlinks leading out, wrong JSON types.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import SegStudioError
from segstudio.core.project import Project, Status
from segstudio.export.cityscapes_import import preview_cityscapes
from segstudio.export.import_common import run_import
from segstudio.export.labelme_import import preview_labelme
from segstudio.export.project_export import export_project
from segstudio.export.staging import MANIFEST_NAME
from segstudio.export.voc_import import preview_voc

REPO = Path(__file__).resolve().parents[2]


def snapshot(folder: Path, skip: Path | list[Path] | None = None) -> dict[str, tuple]:
    """Every entry under `folder` (not following links), except the `skip` folders and their content."""
    skips = [skip] if isinstance(skip, Path) else list(skip or [])
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skips]
        for name in dirnames + filenames:
            path = here / name
            if path in skips:
                continue
            st = path.lstat()
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir", st.st_mode)
            else:
                state[rel] = (
                    "file",
                    st.st_size,
                    st.st_mtime_ns,
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                )
    return state


def jpeg(seed: int, size: tuple[int, int] = (24, 32)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def png_mask(value: int, size: tuple[int, int] = (24, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full(size, value, np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """tmp/victim holds files an attacker wants to overwrite or steal (valid images, so a leak
    would import cleanly); tmp/data is the dataset, tmp/out the parent of the new project."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret.jpg").write_bytes(jpeg(99))
    (victim / "secret.png").write_bytes(png_mask(7))
    (victim / "escaped.jpg").write_bytes(b"precious user file")
    (victim / "escaped.png").write_bytes(b"precious user file")
    (tmp_path / "escaped.jpg").write_bytes(b"next to the project")
    (tmp_path / "out").mkdir()
    return {
        "tmp": tmp_path,
        "victim": victim,
        "data": tmp_path / "data",
        "target": tmp_path / "out" / "project",
    }


def climbing(world: dict[str, Path], stem: str) -> list[str]:
    """The class of paths that leave their folder, all aiming at tmp/victim/<stem>."""
    victim = world["victim"]
    return [
        str(victim / stem),  # absolute
        f"../../../victim/{stem}",
        f"../../../../victim/{stem}",
        f"a/../../../../victim/{stem}",
        f"..\\..\\..\\victim\\{stem}",
        f"./../../../victim/{stem}",
        "/" + "/".join([".."] * 30) + str(victim / stem),
        f"C:\\victim\\{stem}",
        f"\\\\server\\share\\{stem}",
        f"{stem}\x00",
        f"{stem}\nx",
        f"\ud800{stem}",
        "..",
        "../escaped",
    ]


def assert_contained(
    world: dict[str, Path], before: dict[str, tuple], allowed: Path, state: Path | None = None
) -> None:
    """Nothing changed outside `allowed` (and the open project's own `state` folder, if any)."""
    after = snapshot(world["tmp"], skip=[allowed] + ([state] if state else []))
    assert after == before, {
        k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)
    }
    leftovers = [p.name for p in allowed.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no staging folder left behind


def assert_no_secret(project: Path) -> None:
    secrets = {hashlib.sha256(jpeg(99)).hexdigest(), hashlib.sha256(b"precious user file").hexdigest()}
    for path in project.rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() not in secrets, path


# ------------------------------------------------------------------------------------------ VOC


def build_voc(world: dict[str, Path], ids: list[str]) -> Path:
    root = world["data"] / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    (root / "JPEGImages" / "good.jpg").write_bytes(jpeg(1))
    (root / "SegmentationClass" / "good.png").write_bytes(png_mask(15))
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text(
        "\n".join(["good", *ids]) + "\n", encoding="utf-8", errors="surrogatepass"
    )
    return root


def test_voc_list_entries_never_leave_the_dataset(world):
    ids = [p[: -len(".jpg")] if p.endswith(".jpg") else p for p in climbing(world, "secret")]
    ids += ["../../escaped", "../../../escaped", "JPEGImages/../../../victim/secret"]
    root = build_voc(world, [i for i in ids if "\n" not in i and "\ud800" not in i])
    before = snapshot(world["tmp"], skip=world["target"])
    plan = preview_voc(root)
    assert [s.rel_path for s in plan.samples] == ["good.jpg"]
    assert sum("refused" in w for w in plan.warnings) >= 10
    run_import(plan, world["target"])
    assert_contained(world, before, world["target"])
    assert_no_secret(world["target"])
    with Project.open(world["target"]) as project:
        assert [r.rel_path for r in project.images()] == ["good.jpg"]


def test_voc_symlinks_inside_the_dataset_are_read_as_they_are(world):
    root = build_voc(world, ["linked"])
    os.symlink(world["victim"] / "secret.jpg", root / "JPEGImages" / "linked.jpg")
    os.symlink(world["victim"] / "secret.png", root / "SegmentationClass" / "linked.png")
    before = snapshot(world["tmp"], skip=world["target"])
    plan = preview_voc(root)
    assert sorted(s.rel_path for s in plan.samples) == ["good.jpg", "linked.jpg"]
    run_import(plan, world["target"])
    assert_contained(world, before, world["target"])
    assert not (world["target"] / "linked.jpg").is_symlink()  # copied content, not the link


def test_voc_allow_outside_reads_but_still_writes_only_inside(world):
    root = build_voc(world, [str(world["victim"] / "secret")])
    (
        root / "SegmentationClass" / "x"
    ).mkdir()  # the mask of an absolute id is read from the victim folder too
    before = snapshot(world["tmp"], skip=world["target"])
    plan = preview_voc(root, allow_outside=True)
    assert sorted(s.rel_path for s in plan.samples) == ["good.jpg", "secret.jpg"]
    run_import(plan, world["target"])
    assert_contained(world, before, world["target"])


# ----------------------------------------------------------------------------------- Cityscapes


def build_cityscapes(world: dict[str, Path], sources: list[object]) -> Path:
    root = world["data"] / "cs"
    items = []
    for number, source in enumerate(sources):
        base = f"city_000000_{number:06d}"
        (root / "leftImg8bit" / "train" / "city").mkdir(parents=True, exist_ok=True)
        (root / "gtFine" / "train" / "city").mkdir(parents=True, exist_ok=True)
        Image.open(io.BytesIO(jpeg(number))).save(
            root / "leftImg8bit" / "train" / "city" / f"{base}_leftImg8bit.png"
        )
        (root / "gtFine" / "train" / "city" / f"{base}_gtFine_labelIds.png").write_bytes(png_mask(26))
        items.append({"name": base, "source": source})
    (root / MANIFEST_NAME).write_text(
        json.dumps({"format": "segstudio-export", "dataset_format": "cityscapes", "items": items})
    )
    return root


def test_cityscapes_manifest_sources_never_leave_the_project(world):
    sources = ["kept/original.jpg"] + [s for s in climbing(world, "escaped.png")]
    root = build_cityscapes(world, sources)
    before = snapshot(world["tmp"], skip=world["target"])
    plan = preview_cityscapes(root)
    rels = sorted(s.rel_path for s in plan.samples)
    assert "kept/original.png" in rels and len(rels) == len(sources)
    assert all(r == "kept/original.png" or r.startswith("city/city_000000_") for r in rels)
    assert sum("refused" in w for w in plan.warnings) == len(sources) - 1
    run_import(plan, world["target"])
    assert_contained(world, before, world["target"])
    assert (world["victim"] / "escaped.png").read_bytes() == b"precious user file"


@pytest.mark.parametrize(
    "manifest",
    [
        {"format": "segstudio-export", "dataset_format": "cityscapes", "items": 5},
        {"format": "segstudio-export", "dataset_format": "cityscapes", "items": [5]},
        {"format": "segstudio-export", "dataset_format": "cityscapes", "items": [{"name": "x", "source": 5}]},
        {
            "format": "segstudio-export",
            "dataset_format": "cityscapes",
            "items": [{"name": ["x"], "source": "a.png"}],
        },
        "not json {",
    ],
)
def test_cityscapes_manifest_of_the_wrong_type_is_a_clear_error(world, manifest):
    root = build_cityscapes(world, ["a.jpg"])
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (root / MANIFEST_NAME).write_text(text)
    with pytest.raises(SegStudioError, match=MANIFEST_NAME):
        preview_cityscapes(root)


# -------------------------------------------------------------------------------------- labelme


def labelme_doc(image_path: object, embedded: bytes | None = None) -> dict:
    return {
        "version": "5.4.1",
        "shapes": [{"label": "cat", "shape_type": "rectangle", "points": [[2, 2], [10, 10]]}],
        "imagePath": image_path,
        "imageData": base64.b64encode(embedded).decode() if embedded else None,
        "imageHeight": 24,
        "imageWidth": 32,
    }


def test_labelme_image_paths_never_leave_the_folder(world):
    source = world["data"] / "labelme"
    (source / "annotations").mkdir(parents=True)
    (source / "images").mkdir()
    (source / "images" / "ok.jpg").write_bytes(jpeg(1))
    (source / "plain.jpg").write_bytes(jpeg(2))
    (source / "annotations" / "ok.json").write_text(json.dumps(labelme_doc("../images/ok.jpg")))
    (source / "plain.json").write_text(json.dumps(labelme_doc("plain.jpg")))
    attacks = climbing(world, "secret.jpg") + ["sub/..", ".", 5, ["x"], {"a": 1}]
    for number, attack in enumerate(attacks):
        (source / "annotations" / f"attack{number}.json").write_text(json.dumps(labelme_doc(attack)))
    # the same attacks with an embedded image: the embedded one is used, under a contained name
    for number, attack in enumerate(attacks):
        doc = labelme_doc(attack, embedded=jpeg(50 + number))
        (source / "annotations" / f"embedded{number}.json").write_text(json.dumps(doc))
    before = snapshot(world["tmp"], skip=world["target"])
    plan = preview_labelme(source)
    rels = [s.rel_path for s in plan.samples]
    assert "annotations/ok.jpg" in rels and "plain.jpg" in rels
    assert all(s.image_path is None or world["data"] in s.image_path.parents for s in plan.samples)
    assert all(not r.startswith("..") and "\x00" not in r for r in rels)
    assert sum("refused" in w for w in plan.warnings) >= len(attacks)
    run_import(plan, world["target"])
    assert_contained(world, before, world["target"])
    assert_no_secret(world["target"])
    with Project.open(world["target"]) as project:
        assert project.get("annotations/ok.jpg").status == Status.DONE


def test_labelme_symlinked_folder_leading_out_is_not_walked(world):
    source = world["data"] / "labelme"
    source.mkdir(parents=True)
    (source / "plain.jpg").write_bytes(jpeg(2))
    (source / "plain.json").write_text(json.dumps(labelme_doc("plain.jpg")))
    (world["victim"] / "their.json").write_text(json.dumps(labelme_doc("secret.jpg")))
    os.symlink(world["victim"], source / "linked")
    before = snapshot(world["tmp"], skip=world["target"])
    plan = preview_labelme(source)
    assert [s.rel_path for s in plan.samples] == ["plain.jpg"]
    run_import(plan, world["target"])
    assert_contained(world, before, world["target"])


# --------------------------------------------------------------------------- export manifest


def test_export_manifest_cannot_steal_or_overwrite(world, voc_project):
    out = world["tmp"] / "export"
    with voc_project.open() as project:
        export_project(project, "coco", out)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    attacks = climbing(world, "secret.jpg")
    for number, entry in enumerate(manifest["items"]):
        # keys still match, so reuse is tempted; the real files stay listed so the folder is "ours"
        entry["files"] = entry["files"] + [attacks[number % len(attacks)], "../victim/escaped.jpg"]
        if number >= 2:  # items 0 and 1 keep their names (and so their keys): only their files are hostile
            entry["name"] = attacks[(number + 3) % len(attacks)]
    manifest["items"].append({"source": "x", "name": "../../victim/escaped", "files": "nope", "record": 5})
    manifest["items"].append("garbage")
    # a symlink planted in the export where a listed image was
    planted = out / manifest["items"][1]["files"][0]
    planted.unlink()
    os.symlink(world["victim"] / "secret.jpg", planted)
    manifest["items"][1]["files"] = manifest["items"][1]["files"][:1]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    state = voc_project.image_dir / ".segstudio"  # the project's own lock and database
    before = snapshot(world["tmp"], skip=[out, state])
    with voc_project.open() as project:
        report = export_project(project, "coco", out)
    assert report.reused == 0 and report.exported == len(voc_project.masks)
    assert_contained(world, before, out, state)
    assert_no_secret(out)
    assert not any(p.is_symlink() for p in out.rglob("*"))
    names = {e["name"] for e in json.loads((out / MANIFEST_NAME).read_text())["items"]}
    assert all("/" not in n and ".." not in n for n in names)


# ----------------------------------------------------------------------------------------- CLI


def test_cli_import_warns_per_file_and_allow_outside_is_explicit(world):
    source = world["data"] / "labelme"
    source.mkdir(parents=True)
    (source / "plain.jpg").write_bytes(jpeg(2))
    (source / "plain.json").write_text(json.dumps(labelme_doc("plain.jpg")))
    (source / "evil.json").write_text(json.dumps(labelme_doc(str(world["victim"] / "secret.jpg"))))
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, "-m", "segstudio", "import", "labelme", str(source), "--quiet"]
    before = snapshot(world["tmp"], skip=world["target"])
    done = subprocess.run(
        [*command, "--out", str(world["target"])], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (
        "evil.json: imagePath refused" in done.stdout + done.stderr
        and "--allow-outside" in done.stdout + done.stderr
    )
    assert_contained(world, before, world["target"])
    assert_no_secret(world["target"])
    trusted = world["tmp"] / "out" / "trusted"
    done = subprocess.run(
        [*command, "--allow-outside", "--out", str(trusted)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (trusted / "secret.jpg").read_bytes() == jpeg(99)


def test_voc_lists_with_bom_crlf_and_non_utf8_ids_find_their_files(world):
    root = build_voc(world, [])
    latin1 = os.fsdecode(b"caf\xe9")
    (root / "JPEGImages" / f"{latin1}.jpg").write_bytes(jpeg(3))
    (root / "SegmentationClass" / f"{latin1}.png").write_bytes(png_mask(15))
    (root / "ImageSets" / "Segmentation" / "train.txt").write_bytes(b"\xef\xbb\xbfgood\r\ncaf\xe9\r\n")
    plan = preview_voc(root)
    assert sorted(s.rel_path for s in plan.samples) == sorted(["good.jpg", f"{latin1}.jpg"]), plan.warnings


# --------------------------------------------- COCO, mask folder, CamVid (the importers added later)


def build_coco(world: dict[str, Path], attack: str) -> Path:
    root = world["data"] / "coco"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "images" / "good.jpg").write_bytes(jpeg(1))
    polygon = {"category_id": 1, "segmentation": [[2, 2, 20, 2, 20, 20]], "iscrowd": 0, "area": 160}
    images = [
        {"id": 1, "file_name": "good.jpg", "height": 24, "width": 32},
        {"id": 2, "file_name": attack, "height": 24, "width": 32},
    ]
    annotations = [{"id": i, "image_id": i, **polygon} for i in (1, 2)]
    data = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "cat"}]}
    (root / "annotations" / "instances_train.json").write_text(json.dumps(data))
    return root


def build_mask_folder(world: dict[str, Path], attack: str) -> Path:
    root = world["data"] / "masks"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "images" / "good.jpg").write_bytes(jpeg(1))
    (root / "masks" / "good.png").write_bytes(png_mask(1))
    (root / "train.txt").write_text(f"good\n{attack}\n", encoding="utf-8", errors="surrogatepass")
    return root


def build_camvid(world: dict[str, Path], attack: str) -> Path:
    root = world["data"] / "camvid"
    for folder in ("train", "trainannot"):
        (root / folder).mkdir(parents=True)
    Image.open(io.BytesIO(jpeg(1))).save(root / "train" / "good.png")
    (root / "trainannot" / "good.png").write_bytes(png_mask(1))
    (root / "train.txt").write_text(
        f"train/good.png trainannot/good.png\n{attack} {attack}\n", encoding="utf-8", errors="surrogatepass"
    )
    return root


@pytest.mark.parametrize("kind", ["coco", "masks", "camvid"])
def test_later_importers_never_leave_their_folders(world, kind):
    from segstudio.export.registry import get_importer

    build = {"coco": build_coco, "masks": build_mask_folder, "camvid": build_camvid}[kind]
    attacks = [
        a
        for a in climbing(world, "secret.jpg") + ["sub/..", "a/../../x.jpg"]
        if not any(c.isspace() for c in a)
    ]
    for attack in attacks:
        shutil.rmtree(world["data"], ignore_errors=True)
        shutil.rmtree(world["target"], ignore_errors=True)
        root = build(world, attack)
        before = snapshot(world["tmp"], skip=world["target"])
        try:
            plan = get_importer(kind)(root)
        except SegStudioError:  # refused as a whole: fine, as long as nothing was touched
            assert snapshot(world["tmp"], skip=world["target"]) == before
            continue
        assert all(s.image_path is None or root in s.image_path.parents for s in plan.samples), attack
        run_import(plan, world["target"])
        assert_contained(world, before, world["target"])
        assert_no_secret(world["target"])


@pytest.mark.parametrize("kind", ["labelme", "voc", "coco", "masks", "cityscapes"])
def test_fifos_named_like_dataset_files_never_block_an_import(world, kind):
    import threading

    from segstudio.export.registry import get_importer

    if kind == "labelme":
        root = world["data"] / "labelme"
        root.mkdir(parents=True)
        (root / "plain.jpg").write_bytes(jpeg(2))
        (root / "plain.json").write_text(json.dumps(labelme_doc("plain.jpg")))
        os.mkfifo(root / "blocking.json")
    elif kind == "voc":
        root = build_voc(world, ["pipe"])
        (root / "JPEGImages" / "pipe.jpg").write_bytes(jpeg(3))
        os.mkfifo(root / "SegmentationClass" / "pipe.png")
    elif kind == "coco":
        root = build_coco(world, "good.jpg")
        os.mkfifo(root / "annotations" / "instances_val.json")
    elif kind == "masks":
        root = build_mask_folder(world, "good")
        (root / "images" / "pipe.jpg").write_bytes(jpeg(3))
        os.mkfifo(root / "masks" / "pipe.png")
    else:
        root = build_cityscapes(world, ["a.jpg"])
        gt = root / "gtFine" / "train" / "city"
        Image.open(io.BytesIO(jpeg(5))).save(
            root / "leftImg8bit" / "train" / "city" / "city_000000_000009_leftImg8bit.png"
        )
        os.mkfifo(gt / "city_000000_000009_gtFine_labelIds.png")
    outcome: list[object] = []

    def work() -> None:
        try:
            outcome.append(run_import(get_importer(kind)(root), world["target"]))
        except SegStudioError as error:
            outcome.append(error)

    thread = threading.Thread(target=work, daemon=True)  # a blocked read must not hang the test run
    thread.start()
    thread.join(timeout=60)
    assert outcome, f"the {kind} import blocked on a FIFO"
