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


class InstallError(SegStudioError):
    """A file SegStudio itself ships (icon, desktop entry, demo) is missing: the installation is incomplete."""


class ProjectError(SegStudioError):
    """A project cannot be opened or updated."""


class ProjectLockedError(ProjectError):
    """Another SegStudio process has the project open."""


class StateReadOnlyError(ProjectError):
    """The project's state folder exists but cannot be written; reading commands can still use it."""


class CheckpointError(SegStudioError):
    """A model checkpoint cannot be loaded (unsafe, corrupt, or for another scheme)."""


class ExportError(SegStudioError):
    """An export or import cannot proceed; the message lists the problems."""


class CancelledError(SegStudioError):
    """Long work was cancelled by the user; partial results have been discarded or kept as documented.

    Not a failure: the CLI exits 130 with "cancelled" (like Ctrl-C) and the GUI shows no error dialog.
    It stays a SegStudioError so code that stops on any of our errors also stops on a cancel.
    """


class UnsafePathError(ExportError):
    """A path written inside a data file leaves the folder it belongs to (or is no file name at all)."""


class DiskWriteError(ExportError):
    """Writing to `destination` failed (disk full, read-only, no permission); what was saved before is intact.

    An ExportError because exports and imports are where most big writes happen; predict raises it too."""

    def __init__(self, destination: str | Path, action: str, error: Exception) -> None:
        import errno

        self.destination = Path(destination)
        self.cause = (
            error  # lets an outer step name its own destination (an import's target, not its staging)
        )
        code = getattr(error, "errno", None)
        if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)) or "disk is full" in str(
            error
        ):  # SQLite says it so
            cause = f"the disk holding {self.destination} is full"
            todo = "free some space there"
        elif code == errno.EROFS:
            cause = f"{self.destination} is on a read-only file system"
            todo = "choose a writable folder"
        elif code in (errno.EACCES, errno.EPERM):
            cause = f"no permission to write in {self.destination}"
            todo = "fix the folder's permissions or choose another folder"
        else:
            cause = f"writing in {self.destination} failed ({getattr(error, 'strerror', None) or error})"
            todo = "check free space and permissions"
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        super().__init__(
            f"{action} stopped: {cause}{where}; {todo} and run it again. Everything saved before is intact"
        )


class UnsafeStateError(ProjectError):
    """A project's state folder holds a link (or a special file) that SegStudio did not make.

    Refused before anything is written: following such a link would overwrite a file outside the
    project (a folder from a stranger could point `.segstudio/lock` at the user's files)."""


class DamagedProjectError(ProjectError):
    """The project database cannot be trusted (emptied, missing tables, damaged pages, unreadable values).

    Refused instead of starting a new project over existing masks; `segstudio repair FOLDER` salvages it."""
