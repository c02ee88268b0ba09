"""Model → Use weights file… with a checkpoint trained for other classes than the project's.

Why: an annotator with their own model used to get a refusal naming a command-line flag. Here the
window offers what the CLI offers, as buttons: adopt the checkpoint's classes (names, colours) when
the project has no masks yet, or map the checkpoint's classes onto the project's by name (the
CLI's --remap-classes, `ml.weights.apply_state_dict`). torch is imported only when a file is chosen.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget

from segstudio.core.errors import SegStudioError
from segstudio.core.scheme_edit import adopt_scheme, has_masks
from segstudio.core.schemes import LabelScheme

__all__ = ["CheckpointChoice", "ask_checkpoint_classes"]


class CheckpointChoice:
    """What the user chose: the extra spec changes for the weights, or cancelled."""

    def __init__(self, changes: dict[str, Any] | None, adopted: LabelScheme | None = None) -> None:
        self.changes = changes  # None: cancelled
        self.adopted = adopted  # the scheme the project took over, if any


def checkpoint_scheme(path: str) -> LabelScheme | None:
    """The classes a SegStudio checkpoint was trained for (None for a bare state dict)."""
    from segstudio.ml.weights import load_checkpoint

    return load_checkpoint(path).scheme("checkpoint")


def ask_checkpoint_classes(parent: QWidget, project: Any, path: str) -> CheckpointChoice:
    """Compare the checkpoint's classes with the project's and ask what to do when they differ."""
    try:
        theirs = checkpoint_scheme(path)
    except SegStudioError as exc:
        QMessageBox.warning(parent, "Use weights file", str(exc))
        return CheckpointChoice(None)
    ours = project.scheme
    if theirs is None:
        return CheckpointChoice({"remap_classes": False, "classes_by_index": False})
    if [n.casefold() for n in theirs.names] == [n.casefold() for n in ours.names]:
        return CheckpointChoice({"remap_classes": False, "classes_by_index": True})
    shared = sorted({n.casefold() for n in theirs.names} & {n.casefold() for n in ours.names})
    masks = has_masks(project)
    box = QMessageBox(parent)
    box.setObjectName("checkpoint_classes_box")
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Checkpoint classes differ")
    listed = ", ".join(theirs.names[:12]) + (" …" if theirs.num_classes > 12 else "")
    text = (
        f"This checkpoint was trained for {theirs.num_classes} classes ({listed}); the project has "
        f"{ours.num_classes} ({ours.name})."
    )
    adopt = box.addButton(f"Use its {theirs.num_classes} classes", QMessageBox.ButtonRole.AcceptRole)
    adopt.setObjectName("adopt_button")
    mapped = box.addButton(f"Map by name ({len(shared)} shared)", QMessageBox.ButtonRole.ActionRole)
    mapped.setObjectName("map_button")
    box.addButton(QMessageBox.StandardButton.Cancel)
    if masks:
        adopt.setEnabled(False)
        text += " The project already has masks in its classes, so it keeps them."
    else:
        text += " The project has no masks yet: it can take over the checkpoint's class names and colours."
    if not shared:
        mapped.setEnabled(False)
        text += " No class name is shared, so the classes cannot be mapped by name."
    else:
        text += (
            f" Mapping by name predicts only the {len(shared)} shared classes "
            "(the others start untrained until you fine-tune)."
        )
    box.setText(text)
    box.setDefaultButton(adopt if not masks else mapped)
    box.exec()
    clicked = box.clickedButton()
    if clicked is adopt and adopt.isEnabled():
        try:
            adopt_scheme(
                project, LabelScheme(theirs.name if theirs.name != "checkpoint" else "custom", theirs.classes)
            )
        except SegStudioError as exc:
            QMessageBox.warning(parent, "Use weights file", str(exc))
            return CheckpointChoice(None)
        return CheckpointChoice({"remap_classes": False, "classes_by_index": True}, adopted=project.scheme)
    if clicked is mapped and mapped.isEnabled():
        return CheckpointChoice({"remap_classes": True, "classes_by_index": False})
    return CheckpointChoice(None)
