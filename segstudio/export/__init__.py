"""Dataset exporters and importers (VOC, Cityscapes, COCO, labelme). No Qt, no torch.

- `project_export.check_project / export_project`: what the CLI and GUI call to export.
- `registry`: format and importer names (`get_format`, `get_importer`) with errors listing choices.
- `engine` + `staging`: the shared loop (incremental reuse, progress, cancel) and the
  stage-then-rename output folder with its `segstudio_manifest.json`.
- `voc`, `cityscapes`, `coco`: one module per layout; `polygons`: masks <-> painted polygons.
- `voc_import`, `cityscapes_import`, `labelme_import`: preview functions returning an
  `import_common.ImportPlan` (class mapping first); `import_common.run_import` writes the project.
"""
