"""SegStudio: semantic-segmentation annotation with a model in the loop."""

__version__ = "0.1.0"
