"""The errors a team member can meet; all are ProjectErrors, so the CLI and GUI show them as usual."""

from __future__ import annotations

from segstudio.core.errors import ProjectError

__all__ = ["LeaseError", "StaleSaveError", "TeamConnectionError", "TeamError", "TeamPermissionError"]


class TeamError(ProjectError):
    """The team server cannot be reached or used (bad URL, login refused, not a SegStudio database)."""


class TeamConnectionError(TeamError):
    """The connection to the server dropped and could not be reopened (server down, network away)."""


class StaleSaveError(TeamError):
    """Someone saved this image after you opened it: your save was refused, nothing was overwritten."""


class LeaseError(TeamError):
    """Another member is editing this image (holds its lease)."""


class TeamPermissionError(TeamError):
    """The member's database role does not allow this (e.g. an annotator changing the scheme)."""
