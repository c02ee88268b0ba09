"""Files the app ships (icon, demo photos, desktop entry): one lookup for an installed wheel and a checkout.

A wheel carries them in `segstudio/_resources/` (copied there at build time by `setup.py`); a source
checkout or an editable install reads the top-level `resources/` (and `packaging/`) directly.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["asset_path", "demo_dir", "desktop_entry_path", "icon_path"]

_PACKAGED = Path(__file__).resolve().parent / "_resources"
_CHECKOUT = Path(__file__).resolve().parent.parent


def asset_path(*parts: str) -> Path | None:
    """`_resources/<parts>` when installed, else `resources/<parts>` in the checkout; None if neither exists."""
    for candidate in (_PACKAGED.joinpath(*parts), _CHECKOUT.joinpath("resources", *parts)):
        if candidate.exists():
            return candidate
    return None


def icon_path(kind: str = "png") -> Path | None:
    return asset_path("icons", f"segstudio.{kind}")


def demo_dir() -> Path | None:
    return asset_path("demo")


def desktop_entry_path() -> Path | None:
    packaged = _PACKAGED / "segstudio.desktop"
    if packaged.is_file():
        return packaged
    checkout = _CHECKOUT / "packaging" / "segstudio.desktop"
    return checkout if checkout.is_file() else None
