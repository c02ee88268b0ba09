"""SAM click engine latency: image embedding per photo, prompt decoder per click, first click with the
embedding prefetched vs not. Random ViT-B weights (same shapes and cost as the real checkpoint;
nothing is downloaded), on the CPU by default or on `--device cuda`.

    .venv/bin/python -m bench.sam                    # 3 VOC photos, 12 clicks each, 2 torch threads
    .venv/bin/python -m bench.sam --count 1 --clicks 6 --skip-busy
    .venv/bin/python -m bench.sam --device cuda      # embedding and decoder on the GPU (timed with syncs)
    .venv/bin/python -m bench.sam --arch tiny --count 1 --clicks 2 --skip-busy   # code path only (dry runs)
    .venv/bin/python -m bench.sam --arch vit_t --embed-reference vit_b --skip-busy  # MobileSAM vs ViT-B

`--arch vit_t` is MobileSAM (TinyViT encoder, `mobilesam-mirror`), random weights of the real shapes.
`--embed-reference ARCH` also embeds every photo with ARCH, right after the benchmarked arch (so both
see the same machine load), and reports `reference_embed_s_median` and `embed_speedup`.

`--arch tiny` is a 2-block, 64-wide encoder with SAM's real neck and decoder: its timings mean nothing;
it exists so `bench/gpu_proof.sh --dry-run` can run this benchmark's whole path on a CPU in seconds.

Per photo: `embed_s` (the ViT encoder, what the inference worker runs in the background),
`first_click_cold_ms` (embedding + attach + decode: what a click would cost if nothing had been
prefetched), `first_click_prefetched_ms` (cache hit + attach + decode: the app's path once the worker
has embedded the photo) and the decoder latency of clicks that add prompts to one object (1-3
positives and a negative, as a user refines), with the app's decoder threads
(`ml.sam_engine.decoder_threads`: half the cores) and with all `--threads`. Then `busy`: clicks on
the first photo *while* another thread embeds a new image, as in the app when the inference worker
prefetches the next photo during clicking (one extra embedding per decoder-thread setting). The
reference, timed in the same run on the same photos, is the default offline engine (`superpixel`:
per-image SLIC precomputation, then clicks). Prints one JSON line per photo and a summary line
(medians, p90).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

TESTDATA = Path("/work/shared/testdata")


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90)) if values else float("nan")


def _clicks(shape: tuple[int, int], count: int, seed: int) -> list[list[tuple[int, int]]]:
    """`count` prompt sets: objects of up to 3 positives and 1 negative, growing like a user's refinements."""
    rng = np.random.default_rng(seed)
    h, w = shape
    out: list[list[tuple[int, int]]] = []
    while len(out) < count:
        points = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(4)]
        out += [points[:k] for k in range(1, 5)]
    return out[:count]


def _prompts(points: list[tuple[int, int]]):
    from segstudio.core.interactive import Prompts

    return Prompts(positives=points[:3], negatives=points[3:])


_SYNC: list = []  # torch.cuda.synchronize when the model is on CUDA: kernels finish inside the timing


def _time_ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    for sync in _SYNC:
        sync()
    return 1000 * (time.perf_counter() - t0)


def _build(arch: str):
    """A SAM model with random weights; `tiny` for dry runs (see the module docstring)."""
    from segment_anything import sam_model_registry

    if arch == "vit_t":
        from segstudio.ml.sam_engine import build_mobile_sam

        return build_mobile_sam()
    if arch != "tiny":
        return sam_model_registry[arch](checkpoint=None)
    from segment_anything.build_sam import _build_sam

    return _build_sam(
        encoder_embed_dim=64, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1]
    )


def _bench_photo(
    runtime, name: str, image: np.ndarray, clicks: int, all_threads: int
) -> tuple[dict, list[float]]:
    from segstudio.ml.sam_engine import SAMEngine

    key = (name, "bench")
    engine = SAMEngine(runtime)
    sets = _clicks(image.shape[:2], clicks, seed=len(name))
    box: dict = {}

    def embed() -> None:
        box["embedding"] = runtime.embed(key, image)

    def attach_and_click() -> None:
        engine.attach(image, box["embedding"])
        engine.region(_prompts(sets[0]), 1)

    before = runtime.computed
    embed_ms = _time_ms(embed)  # what the inference worker does in the background
    cold = embed_ms + _time_ms(attach_and_click)  # a click that had to wait for the embedding
    prefetched = _time_ms(embed) + _time_ms(attach_and_click)  # embedding prefetched: a cache hit
    assert runtime.computed == before + 1, "the second first-click must reuse the cached embedding"
    decode = [_time_ms(lambda p=p: engine.region(_prompts(p), 1)) for p in sets]
    wide = SAMEngine(runtime, threads=all_threads)
    wide.attach(image, box["embedding"])
    decode_all = [_time_ms(lambda p=p: wide.region(_prompts(p), 1)) for p in sets]
    row = {
        "bench": "sam_photo",
        "image": name,
        "size": list(image.shape[:2]),
        "embed_s": round(embed_ms / 1000, 3),
        "first_click_cold_ms": round(cold, 1),
        "first_click_prefetched_ms": round(prefetched, 1),
        "decode_median_ms": round(statistics.median(decode), 1),
        "decode_p90_ms": round(_p90(decode), 1),
        "decoder_threads": engine.threads,
        "decode_all_threads_median_ms": round(statistics.median(decode_all), 1),
    }
    return row, decode


def _busy(runtime, image: np.ndarray, clicks: int, threads: int) -> dict:
    """Decoder latency while another thread embeds a new image (the worker prefetching)."""
    from segstudio.ml.sam_engine import SAMEngine

    engine = SAMEngine(runtime, threads=threads)
    engine.attach(image, runtime.embed(("busy", "base"), image))
    other = np.ascontiguousarray(image[:, ::-1])
    worker = threading.Thread(target=runtime.embed, args=(("busy", f"flipped-{threads}"), other))
    sets = _clicks(image.shape[:2], clicks, seed=threads)
    lat: list[float] = []
    worker.start()
    while worker.is_alive() and len(lat) < 4 * clicks:
        prompt_set = sets[len(lat) % len(sets)]
        lat.append(_time_ms(lambda p=prompt_set: engine.region(_prompts(p), 1)))
    worker.join()
    return {
        "decoder_threads": threads,
        "clicks": len(lat),
        "median_ms": round(statistics.median(lat), 1),
        "p90_ms": round(_p90(lat), 1),
    }


def _reference(name: str, image: np.ndarray, clicks: int) -> dict:
    from segstudio.core.interactive import create_engine

    engine = create_engine("superpixel")
    prepare_s = _time_ms(lambda: engine.prepare(image)) / 1000
    sets = _clicks(image.shape[:2], clicks, seed=len(name))
    lat = [_time_ms(lambda p=p: engine.region(_prompts(p), 1)) for p in sets]
    return {
        "prepare_s": round(prepare_s, 3),
        "click_median_ms": round(statistics.median(lat), 1),
        "click_p90_ms": round(_p90(lat), 1),
    }


def _photo_paths(folder: Path, count: int) -> list[Path]:
    """The first `count` photos of `folder`; scikit-image's sample photos when the folder is absent (a
    device machine without the shared test data: the timings depend on the size, not the content)."""
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    import tempfile

    from skimage import data as skdata

    out = Path(tempfile.mkdtemp(prefix="bench_sam_"))
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    paths = []
    for i in range(count):
        paths.append(out / f"synthetic_{i}.png")
        Image.fromarray(photos[i % len(photos)]).save(paths[-1])
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=TESTDATA / "labelme_voc_example" / "data_annotated")
    parser.add_argument("--count", type=int, default=3, help="photos (each costs one ViT-B embedding)")
    parser.add_argument("--clicks", type=int, default=12, help="decoder calls per photo")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    archs = ("vit_t", "vit_b", "vit_l", "vit_h", "tiny")
    parser.add_argument("--arch", choices=archs, default="vit_b")
    parser.add_argument("--embed-reference", choices=archs, help="also time this arch's embedding per photo")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument(
        "--skip-reference", action="store_true", help="no superpixel reference (dry runs: code path only)"
    )
    parser.add_argument(
        "--skip-busy", action="store_true", help="no clicks-while-embedding runs (2 embeddings)"
    )
    args = parser.parse_args(argv)

    import torch

    from segstudio.ml.device import device_label, pick_device
    from segstudio.ml.sam_engine import SamRuntime, decoder_threads

    torch.set_num_threads(args.threads)
    paths = _photo_paths(args.images, args.count)
    if not paths:
        raise SystemExit(f"no photos in {args.images}")
    torch.manual_seed(0)
    t0 = time.perf_counter()
    device = pick_device(args.device)
    runtime = SamRuntime(_build(args.arch).eval().to(device))  # random weights
    if device.type == "cuda":
        _SYNC.append(lambda: torch.cuda.synchronize(device))
        _SYNC[0]()
    build_s = time.perf_counter() - t0
    reference = SamRuntime(_build(args.embed_reference).eval().to(device)) if args.embed_reference else None
    rows, refs, decode = [], [], []
    for path in paths:
        image = np.array(Image.open(path).convert("RGB"))
        row, times = _bench_photo(runtime, path.name, image, args.clicks, args.threads)
        decode += times
        if reference is not None:
            t_ref = time.perf_counter()
            reference.embed(("ref", path.name), image)
            row["reference_embed_s"] = round(time.perf_counter() - t_ref, 3)
        if not args.skip_reference:
            row["reference_superpixel"] = _reference(path.name, image, args.clicks)
            refs.append(row["reference_superpixel"])
        print(json.dumps(row), flush=True)
        rows.append(row)
    busy = []
    if not args.skip_busy:
        first = np.array(Image.open(paths[0]).convert("RGB"))
        for threads in sorted({decoder_threads(), args.threads}):
            busy.append(_busy(runtime, first, args.clicks, threads))
            print(json.dumps({"bench": "sam_busy", **busy[-1]}), flush=True)

    def med(key: str, source: list[dict] = rows) -> float:
        return round(statistics.median(r[key] for r in source), 3)

    print(
        json.dumps(
            {
                "bench": "sam_summary",
                "arch": args.arch,
                "device": device_label(device),
                "weights": "random",
                "threads": args.threads,
                "photos": len(rows),
                "clicks_per_photo": args.clicks,
                "build_s": round(build_s, 2),
                "embed_s_median": med("embed_s"),
                "first_click_cold_ms_median": med("first_click_cold_ms"),
                "first_click_prefetched_ms_median": med("first_click_prefetched_ms"),
                "reference_arch": args.embed_reference,
                "reference_embed_s_median": med("reference_embed_s") if reference else None,
                "embed_speedup": round(med("reference_embed_s") / med("embed_s"), 2) if reference else None,
                "decoder_threads": decoder_threads(),
                "decode_ms_median": round(statistics.median(decode), 1),
                "decode_ms_p90": round(_p90(decode), 1),
                "decode_all_threads_ms_median": med("decode_all_threads_median_ms"),
                "decode_while_embedding": busy,
                "cache_mb": round(runtime.cache.nbytes / 2**20, 1),
                "cache_budget_mb": runtime.cache.max_bytes >> 20,
                "reference_superpixel": {
                    "prepare_s_median": med("prepare_s", refs),
                    "click_ms_median": med("click_median_ms", refs),
                }
                if refs
                else None,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
