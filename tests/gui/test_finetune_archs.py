"""The fine-tuning panel offers the registry's archs, each with its one-line "when to use", and
preselects the registry's fine-tuning default."""

from __future__ import annotations

from PySide6.QtCore import Qt

from segstudio.core.project import Project
from segstudio.core.schemes import LabelScheme
from segstudio.gui.finetune_panel import FinetunePanel
from segstudio.ml.catalog import FINETUNE_ARCHS, FINETUNE_DEFAULT_ARCH, describe
from segstudio.ml.synthetic import shapes_scheme_dict


def test_arch_choices_and_descriptions_come_from_the_registry(qtbot, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    with Project.open(folder, scheme=LabelScheme.from_dict(shapes_scheme_dict())) as project:
        panel = FinetunePanel(project)
        qtbot.addWidget(panel)
        combo = panel.arch_combo
        assert [combo.itemText(i) for i in range(combo.count())] == list(FINETUNE_ARCHS)
        for arch in ("unet_resnet34", "unet_mobilenet_v3_large", "segnet_vgg16_bn", "deeplabv2_resnet101"):
            index = combo.findText(arch)
            assert index >= 0
            assert combo.itemData(index, Qt.ItemDataRole.ToolTipRole) == describe(arch) != ""
        assert combo.currentText() == FINETUNE_DEFAULT_ARCH
        assert panel.arch_help.text() == describe(FINETUNE_DEFAULT_ARCH)
        combo.setCurrentText("segnet_vgg16_bn")
        assert panel.arch_help.text() == describe("segnet_vgg16_bn")
