"""Pure logic: label schemes, image and mask I/O, project store, metrics, tasks. No Qt, no torch."""
