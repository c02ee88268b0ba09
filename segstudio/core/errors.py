"""Typed errors a user can cause. Each message says what happened and what to do about it."""

from __future__ import annotations

from pathlib import Path


class SegStudioError(Exception):
    """Base of every error the GUI shows in a dialog and the CLI prints without a traceback."""


class ImageReadError(SegStudioError):
    """An image file cannot be decoded; `reason` is short enough for a browser badge."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


class MaskError(SegStudioError):
    """A mask file is missing, corrupt, or does not fit its image."""


class SchemeError(SegStudioError):
    """A label scheme file or definition is invalid."""


class UsageError(SegStudioError):
    """An option, argument or value cannot work as given; the message says which values can."""


class ProjectError(SegStudioError):
    """A project cannot be opened or updated."""


class ProjectLockedError(ProjectError):
    """Another SegStudio process has the project open."""


class CheckpointError(SegStudioError):
    """A model checkpoint cannot be loaded (unsafe, corrupt, or for another scheme)."""


class ExportError(SegStudioError):
    """An export or import cannot proceed; the message lists the problems."""


class CancelledError(SegStudioError):
    """Long work was cancelled by the user; partial results have been discarded or kept as documented.

    Not a failure: the CLI exits 130 with "cancelled" (like Ctrl-C) and the GUI shows no error dialog.
    It stays a SegStudioError so code that stops on any of our errors also stops on a cancel.
    """
