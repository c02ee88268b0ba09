"""File names that come from the team server are checked before this machine reads or writes them.

Why: a member may join a server they do not control (a stranger's team, a database someone broke
into), and the server names files: each image's path in the shared folder, each model version's
checkpoint in the state folder. A row saying `../../.bashrc` or `/home/me/.ssh/authorized_keys` must
not make the client read or write outside those folders - the same containment `core.paths` gives
datasets from strangers. Writes also refuse a symbolic link that leads out of the folder.
"""

from __future__ import annotations

from pathlib import Path

from segstudio.core.paths import UnsafePathError, resolve_inside
from segstudio.team.errors import TeamError

__all__ = ["server_named_path"]


def server_named_path(root: Path, name: str, what: str, for_writing: bool = False) -> Path:
    """`root / name` when it stays inside `root`; TeamError (a SegStudioError: one clear message) if not."""
    try:
        return resolve_inside(root, str(name), strict=for_writing)
    except UnsafePathError as error:
        raise TeamError(
            f"the team server names {what} {name!r}, which is not a file inside {root} ({error}); nothing "
            "was read or written there. Ask your lead to check the team database."
        ) from None
