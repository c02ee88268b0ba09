"""Dataset exporters and importers (VOC, Cityscapes, COCO, labelme). No Qt, no torch."""
