"""Hostile torch files (benchmarks and tests of the loaders): a real file's tensor data swapped for a bomb."""

from __future__ import annotations

import zipfile
from pathlib import Path

__all__ = ["deflate_bomb"]


def deflate_bomb(plain: Path, path: Path, inflated: int) -> None:
    """`path`: the torch zip file `plain` with each tensor's data replaced by `inflated` zero bytes,
    deflate-compressed (about 1/1000). PyTorch never compresses, so only a file built to exhaust
    memory looks like this; streamed, so the test itself never holds the inflated bytes either."""
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            if "/data/" in info.filename and not info.filename.endswith("serialization_id"):
                entry = zipfile.ZipInfo(info.filename)
                entry.compress_type = zipfile.ZIP_DEFLATED
                with target.open(entry, "w", force_zip64=True) as out:
                    chunk = bytes(2**22)
                    for _ in range(inflated // len(chunk)):
                        out.write(chunk)
                continue
            target.writestr(info, source.read(info), compress_type=zipfile.ZIP_STORED)
