"""The PySide6 + pyqtgraph front end: a thin layer of widgets and workers over core/export/ml."""
