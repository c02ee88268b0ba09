"""Dataset exporters and importers (VOC, Cityscapes, COCO, mask folder, CamVid, YOLO, labelme). No Qt, no torch.

- `project_export.check_project / export_project`: what the CLI and GUI call to export.
- `registry`: format and importer names (`get_format`, `get_importer`, titles for menus) with
  errors listing choices.
- `engine` + `staging`: the shared loop (incremental reuse, progress, cancel) and the
  stage-then-rename output folder with its `segstudio_manifest.json`.
- `voc`, `cityscapes`, `coco`, `mask_folder`, `camvid`, `yolo`: one module per layout;
  `polygons`: masks <-> painted polygons (Cityscapes); `yolo_polygons`: masks <-> simple polygons
  with bridged holes (YOLO).
- `voc_import`, `cityscapes_import`, `labelme_import`, `mask_folder_import`, `camvid_import`,
  `coco_import`: preview functions returning an `import_common.ImportPlan` (class mapping first);
  `index_import` pairs image + index-PNG files; `import_common.run_import` writes the project.
"""
