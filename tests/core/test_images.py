from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import ImageReadError, SegStudioError
from segstudio.core.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    is_image_file,
    load_image,
    read_image_size,
)

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_formats_round_trip_real_photos(tmp_path: Path, real_photo, name: str, ext: str) -> None:
    photo = real_photo(name)
    path = tmp_path / f"{name}{ext}"
    Image.fromarray(photo).save(path, **({"lossless": True} if ext == ".webp" else {}))
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.flags["C_CONTIGUOUS"]
    assert np.array_equal(loaded, photo)
    assert read_image_size(path) == (photo.shape[1], photo.shape[0])


@pytest.mark.parametrize("name", PHOTOS)
def test_jpeg_real_photos_decode_close_to_original(tmp_path: Path, real_photo, name: str) -> None:
    photo = real_photo(name)
    path = tmp_path / f"{name}.jpg"
    Image.fromarray(photo).save(path, quality=95)
    loaded = load_image(path)
    assert loaded.shape == photo.shape
    assert np.abs(loaded.astype(int) - photo.astype(int)).mean() < 4.0


def test_grayscale_becomes_three_equal_channels(tmp_path: Path, real_photo) -> None:
    gray = real_photo("astronaut").mean(axis=2).astype(np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    loaded = load_image(path)
    assert loaded.shape == gray.shape + (3,)
    for channel in range(3):
        assert np.array_equal(loaded[:, :, channel], gray)


def test_one_bit_image(tmp_path: Path) -> None:
    bits = np.zeros((10, 12), dtype=bool)
    bits[2:5, 3:7] = True
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    loaded = load_image(path)
    assert np.array_equal(loaded[:, :, 0] == 255, bits)
    assert set(np.unique(loaded).tolist()) == {0, 255}


def test_16bit_grayscale_is_scaled_to_8bit(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I")
    loaded = load_image(path)
    assert loaded[0, :, 0].tolist() == [0, 1, 128, 255]
    assert np.array_equal(loaded[:, :, 0], loaded[:, :, 2])


def test_16bit_tiff(tmp_path: Path) -> None:
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    path = tmp_path / "deep.tif"
    Image.fromarray(ramp).save(path)
    assert np.array_equal(load_image(path)[:, :, 0], np.arange(256, dtype=np.uint8).reshape(16, 16))


def test_palette_image_is_expanded(tmp_path: Path, real_photo) -> None:
    photo = Image.fromarray(real_photo("chelsea"))
    pal = photo.quantize(colors=16)
    path = tmp_path / "pal.png"
    pal.save(path)
    loaded = load_image(path)
    assert np.array_equal(loaded, np.asarray(pal.convert("RGB")))
    assert len(np.unique(loaded.reshape(-1, 3), axis=0)) <= 16


def test_palette_transparency_is_composited_on_white(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 2))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * (254 * 3))
    pal.putdata([0, 0, 1, 1, 0, 0, 1, 1])
    pal.info["transparency"] = 1
    path = tmp_path / "paltrans.png"
    pal.save(path, transparency=1)
    loaded = load_image(path)
    assert loaded[0, 0].tolist() == [255, 0, 0]
    assert loaded[0, 2].tolist() == [255, 255, 255]


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # a red that is hidden where alpha = 0
    rgba[0, 0, 3] = 255  # opaque
    rgba[0, 1, 3] = 0  # fully transparent -> white, not red
    rgba[0, 2, 3] = 128  # half -> halfway between red and white
    rgba[1, :, 3] = 255
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    loaded = load_image(path)
    assert loaded[0, 0].tolist() == [200, 0, 0]
    assert loaded[0, 1].tolist() == [255, 255, 255]
    r, g, b = loaded[0, 2].tolist()
    assert abs(r - 228) <= 1 and abs(g - 127) <= 1 and g == b


def test_gray_with_alpha(tmp_path: Path) -> None:
    la = np.zeros((1, 2, 2), dtype=np.uint8)
    la[0, 0] = (10, 255)
    la[0, 1] = (10, 0)
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    assert load_image(path)[0].tolist() == [[10, 10, 10], [255, 255, 255]]


def test_cmyk_jpeg_is_converted(tmp_path: Path, real_photo) -> None:
    rgb = Image.fromarray(real_photo("coffee"))
    path = tmp_path / "cmyk.jpg"
    rgb.convert("CMYK").save(path, quality=95)
    with Image.open(path) as img:
        assert img.mode == "CMYK"
    loaded = load_image(path)
    assert loaded.shape == (400, 600, 3)
    assert np.abs(loaded.astype(int) - np.asarray(rgb).astype(int)).mean() < 6.0


@pytest.mark.parametrize(
    ("orientation", "transform"),
    [
        (1, lambda a: a),
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),  # stored rotated: display turns it 90 degrees clockwise
        (8, lambda a: np.rot90(a, 1)),
        (2, lambda a: a[:, ::-1]),
        (5, lambda a: np.transpose(a, (1, 0, 2))),
    ],
)
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, transform) -> None:
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:5, :10] = (255, 0, 0)  # a red block in the stored top-left corner
    stored[-5:, -10:] = (0, 0, 255)
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"exif{orientation}.png"
    img.save(path, exif=exif.tobytes())
    loaded = load_image(path)
    expected = transform(stored)
    assert np.array_equal(loaded, expected)
    assert read_image_size(path) == (expected.shape[1], expected.shape[0])


def test_exif_rotated_real_jpeg(tmp_path: Path, real_photo) -> None:
    photo = real_photo("rocket")  # 427 x 640 landscape
    img = Image.fromarray(photo)
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    img.save(path, quality=95, exif=exif.tobytes())
    assert read_image_size(path) == (427, 640)  # shown as portrait
    loaded = load_image(path)
    assert loaded.shape == (640, 427, 3)
    assert np.abs(loaded.astype(int) - np.rot90(photo, -1).astype(int)).mean() < 4.0


# ---------------------------------------------------------------------------------- broken files


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny file claiming a huge 1-bit image: what a decompression bomb looks like from its header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _encoded(photo: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def broken_corpus(tmp_path: Path, real_photo) -> dict[str, tuple[Path, str]]:
    """name -> (file, a phrase the human-readable reason must contain)."""
    photo = real_photo("astronaut")
    jpeg = _encoded(photo, "JPEG")
    png = _encoded(photo, "PNG")
    files: dict[str, tuple[bytes | None, str, str]] = {
        "zero-byte": (b"", "empty.jpg", "empty file"),
        "truncated-jpeg": (jpeg[: len(jpeg) // 2], "cut.jpg", "truncated"),
        "truncated-png": (png[: len(png) // 2], "cut.png", "truncated"),
        "png-header-only": (png[:60], "header.png", "truncated"),
        "text-as-jpeg": (b"this is not an image, just some text\n" * 10, "notes.jpg", "not an image"),
        "html-as-png": (b"<html><body>404 Not Found</body></html>", "download.png", "not an image"),
        "random-bytes": (
            bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
            "noise.webp",
            "not an image",
        ),
        "bomb": (_bomb_png(100_000, 100_000), "bomb.png", "too large"),
        "missing": (None, "gone.jpg", "not found"),
    }
    corpus = {}
    for name, (data, filename, reason) in files.items():
        path = tmp_path / "corpus" / filename
        path.parent.mkdir(exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        corpus[name] = (path, reason)
    folder_named_jpg = tmp_path / "corpus" / "folder.jpg"
    folder_named_jpg.mkdir()
    corpus["folder"] = (folder_named_jpg, "not a regular file")
    return corpus


def test_broken_corpus_raises_typed_readable_errors(broken_corpus) -> None:
    for name, (path, reason) in broken_corpus.items():
        with pytest.raises(ImageReadError) as info:
            load_image(path)
        error = info.value
        assert isinstance(error, SegStudioError), name
        assert reason in error.reason, (name, error.reason)
        assert error.path == path
        assert str(path) in str(error)
        # no raw Pillow error leaks into the message or the traceback
        assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), name


def test_broken_corpus_header_reads(broken_corpus) -> None:
    header_readable = {"truncated-jpeg", "truncated-png", "png-header-only"}  # the header itself is intact
    for name, (path, reason) in broken_corpus.items():
        if name in header_readable:
            assert read_image_size(path) == (512, 512)
            continue
        if name == "bomb":
            assert read_image_size(path) == (100_000, 100_000)  # no cap: the header is just read
            with pytest.raises(ImageReadError, match="too large"):
                read_image_size(path, max_pixels=DEFAULT_MAX_PIXELS)
            continue
        with pytest.raises(ImageReadError) as info:
            read_image_size(path)
        assert reason in info.value.reason, name


def test_pixel_cap_is_configurable(tmp_path: Path, real_photo) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(real_photo("astronaut")).save(path)
    with pytest.raises(ImageReadError, match=r"512x512 = 262,144 pixels exceeds the limit of 262,143"):
        load_image(path, max_pixels=512 * 512 - 1)
    assert load_image(path, max_pixels=512 * 512).shape == (512, 512, 3)
    assert load_image(path, max_pixels=None).shape == (512, 512, 3)


def test_bigger_than_pillow_default_cap_opens_when_allowed(tmp_path: Path) -> None:
    # 10000 x 9000 = 90 MP is above Pillow's own 89.5 MP warning threshold; our cap (150 MP) decides.
    img = Image.new("L", (10_000, 9_000), 7)
    path = tmp_path / "big.png"
    img.save(path, compress_level=1)
    del img
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning from Pillow's global guard
        assert read_image_size(path, max_pixels=DEFAULT_MAX_PIXELS) == (10_000, 9_000)
    with pytest.raises(ImageReadError, match="too large"):
        load_image(path, max_pixels=50_000_000)


def test_extension_filter() -> None:
    assert {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS
    assert is_image_file("A/B/PHOTO.JPG") and is_image_file("x.TiFf")
    assert not is_image_file("notes.txt") and not is_image_file("jpg")


def test_non_ascii_path(tmp_path: Path, real_photo) -> None:
    path = tmp_path / "Fotos mit Ümlaut" / "猫 chelsea.png"
    path.parent.mkdir()
    Image.fromarray(real_photo("chelsea")).save(path)
    assert load_image(path).shape == (300, 451, 3)


@pytest.mark.parametrize("where", ["header", "after_pixels"])
def test_png_exif_orientation_is_found_before_or_after_the_pixels(tmp_path: Path, where: str) -> None:
    img = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / f"{where}.png"
    if where == "header":
        img.save(path, exif=exif.tobytes())
    else:  # an eXIf chunk between the last IDAT and IEND (allowed by the PNG 1.5 extension)
        plain = io.BytesIO()
        img.save(plain, format="PNG")
        data = plain.getvalue()
        path.write_bytes(
            data[:-12] + _png_chunk(b"eXIf", exif.tobytes()[6:]) + data[-12:]
        )  # drop the Exif\0\0 prefix
    assert load_image(path).shape == (40, 20, 3)
    assert read_image_size(path) == (20, 40)


def test_png_size_is_read_without_decoding_the_pixels(tmp_path: Path, monkeypatch) -> None:
    """A first project open reads every image's size: decoding each PNG for its (absent) EXIF cost ~7 ms."""
    from PIL import PngImagePlugin

    path = tmp_path / "plain.png"
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(path, exif=Image.Exif().tobytes())
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(tmp_path / "bare.png")

    def no_decode(self):
        raise AssertionError("decoded the pixels to read the size")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decode)
    assert read_image_size(path) == (50, 30)
    assert read_image_size(tmp_path / "bare.png") == (50, 30)
